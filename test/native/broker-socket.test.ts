/**
 * The broker over real sockets in this process (no root needed, no device touched): it is
 * started with `bind: false` on a PCI function of this host that is not bound to vfio-pci, so a
 * GRANT can only be answered with an error. What is tested is the socket level — SO_PEERCRED
 * against the allow list, refusals of garbage and oversize messages, fds sent to the broker
 * closed unread (counted in /proc/self/fd), hangups — with the broker serving after each.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UnixSocket } from '../../lib/sys/unix-socket';
import { Broker, type BrokerLogEntry } from '../../lib/broker/server';
import { BrokerClient } from '../../lib/broker/client';
import { decodeReply, encodeRequest, MAX_MESSAGE_BYTES } from '../../lib/broker/protocol';
import { kernel, linuxOnly } from './support';

const openFds = () => fs.readdirSync('/proc/self/fd').length;

/** A PCI function of this host not bound to vfio-pci (so the broker can only refuse to grant it). */
function someDevice(): string | undefined {
  const root = '/sys/bus/pci/devices';
  if (!fs.existsSync(root)) return undefined;
  return fs.readdirSync(root).find((d) => {
    try {
      return path.basename(fs.readlinkSync(path.join(root, d, 'driver'))) !== 'vfio-pci';
    } catch {
      return true;
    }
  });
}

describe('native: the broker over real unix sockets', function () {
  linuxOnly(this);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfio-broker-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('refuses what it must, closes fds it is sent, and keeps serving; nothing leaks', async function () {
    const bdf = someDevice();
    if (bdf === undefined) {
      console.log('      (skipped: this host shows no PCI function in sysfs)');
      this.skip();
    }
    const k = kernel();
    const before = openFds();
    const log: BrokerLogEntry[] = [];
    const socketPath = path.join(dir, 'broker.sock');
    const uid = process.getuid!();
    const broker = Broker.start({ kernel: k, socketPath, allowUids: [uid], devices: [bdf], bind: false, log: (e) => log.push(e) });

    // Allowed (it is this process): an unlisted device, then the listed one, which is not on vfio-pci.
    const client = BrokerClient.connect(socketPath, { kernel: k });
    await assert.rejects(client.grant('ffff:ff:1f.7'), (e: Error & { code?: string }) => e.code === 'ERR_NOT_LISTED');
    await assert.rejects(client.grant(bdf), (e: Error & { code?: string }) => e.code === 'ERR_VFIO_NO_CDEV' || e.code === 'ENOENT');
    // Garbage with an fd attached, and an oversize message.
    const raw = UnixSocket.connect(socketPath, { kernel: k });
    const efd = k.eventfd(0, 0);
    raw.send(Buffer.from('garbage!garbage!'), [efd]);
    assert.equal(decodeReply((await raw.receive(MAX_MESSAGE_BYTES)).data).type, 'error');
    raw.send(Buffer.alloc(MAX_MESSAGE_BYTES + 1, 1));
    const big = decodeReply((await raw.receive(MAX_MESSAGE_BYTES)).data);
    assert.equal(big.type === 'error' && big.code, 'ERR_SIZE');
    k.close(efd);
    raw.close();
    client.close();

    // Not allowed: a broker that allows someone else refuses this process by its SO_PEERCRED uid.
    const otherPath = path.join(dir, 'other.sock');
    const other = Broker.start({
      kernel: k,
      socketPath: otherPath,
      allowUids: [uid + 1],
      devices: [bdf],
      bind: false,
      log: (e) => log.push(e),
    });
    const stranger = BrokerClient.connect(otherPath, { kernel: k });
    await assert.rejects(stranger.grant(bdf), (e: Error & { code?: string }) => e.code === 'EACCES');
    stranger.close();

    // Still serving after all that.
    const again = BrokerClient.connect(socketPath, { kernel: k });
    await assert.rejects(again.grant('ffff:ff:1f.7'), (e: Error & { code?: string }) => e.code === 'ERR_NOT_LISTED');
    // A request sent and the socket closed before the reply: the broker notices the hangup.
    const early = UnixSocket.connect(socketPath, { kernel: k });
    early.send(encodeRequest({ type: 'grant', bdf }));
    early.close();
    again.close();
    await broker.close();
    await other.close();
    assert.equal(fs.existsSync(socketPath), false, 'the socket path was removed');
    assert.ok(log.some((e) => e.event === 'refused' && /bad message/.test(e.message)));
    assert.ok(log.some((e) => e.event === 'refused' && /is not allowed/.test(e.message)));
    assert.equal(openFds(), before, 'no fd left in this process: the eventfd sent to the broker was closed by it');
  });

  it('a peer that closes with our message unread: the waiting receive ends, ECONNRESET once, then its reply, then EOF', async () => {
    const k = kernel();
    const before = openFds();
    const socketPath = path.join(dir, 'reset.sock');
    const listener = UnixSocket.listen(socketPath, { kernel: k });
    const client = UnixSocket.connect(socketPath, { kernel: k });
    const server = await listener.accept();
    client.send(Buffer.from('never read'));
    const waiting = client.receive();
    await new Promise((r) => setTimeout(r, 10));
    server.send(Buffer.from('reply'));
    server.close();
    // Was EBADF from the addon's wait (libuv reports POLLERR as UV_EBADF).
    await assert.rejects(waiting, (e: unknown) => (e as { code?: string }).code === 'ECONNRESET');
    assert.equal((await client.receive()).data.toString(), 'reply');
    assert.equal((await client.receive()).data.length, 0);
    client.close();
    listener.close();
    assert.equal(openFds(), before);
  });
});

/**
 * Bad input and abuse of the broker on the model. Every case ends with the broker's fd table as
 * it was (no fd of a client kept, none of the broker's leaked into a client) and with another,
 * well-behaved client still served.
 */
import assert from 'node:assert/strict';
import type { ModelKernel } from '../../lib/model';
import { UnixSocket } from '../../lib/sys/unix-socket';
import { isVfioError } from '../../lib/sys/errors';
import { openDevice } from '../../lib/vfio/open-device';
import { BrokerClient } from '../../lib/broker/client';
import { decodeReply, encodeRequest, MAX_MESSAGE_BYTES, type BrokerReply } from '../../lib/broker/protocol';
import { EDU, SOCKET, settle, startBroker, unprivileged, type BrokerSetup } from './support';

/** A message with a valid header around `body` (a string, sent as is). */
function framed(type: number, body: string, version = 1): Buffer {
  const json = Buffer.from(body);
  const out = Buffer.alloc(12 + json.length);
  out.writeUInt32LE(0x4b424656, 0);
  out.writeUInt16LE(version, 4);
  out.writeUInt16LE(type, 6);
  out.writeUInt32LE(json.length, 8);
  json.copy(out, 12);
  return out;
}

async function ask(sock: UnixSocket, bytes: Uint8Array, fds: number[] = []): Promise<BrokerReply> {
  sock.send(bytes, fds);
  const m = await sock.receive(MAX_MESSAGE_BYTES);
  assert.equal(m.fds.length, 0, 'a refusal carries no fds');
  return decodeReply(m.data);
}

/** A well-behaved client gets the device and gives it back: the broker is still serving. */
async function stillServes(setup: BrokerSetup): Promise<void> {
  const good = setup.root.spawnProcess(unprivileged());
  const dev = await openDevice(EDU, { kernel: good, broker: SOCKET });
  assert.equal(dev.config.read16(0), 0x1234);
  dev.close();
  good.exit();
  await settle();
}

async function drained(root: ModelKernel, baseline: number): Promise<void> {
  for (let i = 0; i < 5 && root.openFdCount !== baseline; i++) await settle();
  assert.equal(root.openFdCount, baseline, `broker fds: ${JSON.stringify(root.openFiles().map((f) => f.path))}`);
}

describe('broker: bad input and abuse [model]', () => {
  let setup: BrokerSetup;
  let baseline: number;
  beforeEach(() => {
    setup = startBroker('linux-7.3-noiommu');
    baseline = setup.root.openFdCount;
  });
  afterEach(async () => {
    await setup.broker.close();
  });

  it('refuses a peer whose uid and gid are not allowed (EACCES), and logs it', async () => {
    const stranger = setup.root.spawnProcess(unprivileged(2000, 2000));
    const client = BrokerClient.connect(SOCKET, { kernel: stranger });
    await assert.rejects(client.grant(EDU), (e: Error & { code?: string }) => e.code === 'EACCES' && /uid 2000/.test(e.message));
    client.close();
    assert.ok(setup.log.some((e) => e.event === 'refused' && e.peer?.uid === 2000));
    assert.equal(stranger.openFdCount, 0);
    await drained(setup.root, baseline);
    await stillServes(setup);
  });

  it('allows by gid', async () => {
    await setup.broker.close();
    setup = startBroker('linux-7.3-iommu', { allowUids: [], allowGids: [77] });
    baseline = setup.root.openFdCount;
    const member = setup.root.spawnProcess(unprivileged(3000, 77));
    const dev = await openDevice(EDU, { kernel: member, broker: SOCKET });
    dev.close();
    const other = setup.root.spawnProcess(unprivileged(3000, 78));
    await assert.rejects(openDevice(EDU, { kernel: other, broker: SOCKET }), /EACCES/);
  });

  it('refuses a device it does not list, and names that are not PCI addresses', async () => {
    const proc = setup.root.spawnProcess(unprivileged());
    const sock = UnixSocket.connect(SOCKET, { kernel: proc });
    assert.deepEqual(await ask(sock, encodeRequest({ type: 'grant', bdf: '0000:00:04.0' })), {
      type: 'error',
      code: 'ERR_NOT_LISTED',
      message: '0000:00:04.0 is not a device this broker hands out',
    });
    for (const bdf of [
      '/sys/bus/pci/devices/0000:00:03.0',
      '../0000:00:03.0',
      '0000:00:03.0/../../x',
      '0000:00:03.0\n',
      'vfio0',
      3,
      null,
    ]) {
      const r = await ask(sock, framed(1, JSON.stringify({ bdf })));
      assert.equal(r.type, 'error');
      assert.equal(r.type === 'error' && r.code, 'ERR_FIELD', String(bdf));
    }
    assert.ok(setup.log.filter((e) => e.event === 'refused').length >= 8);
    sock.close();
    await drained(setup.root, baseline);
    await stillServes(setup);
  });

  it('answers garbage with the check that failed, closes fds sent with it, and drops a client past 16 bad messages', async () => {
    const proc = setup.root.spawnProcess(unprivileged());
    const sock = UnixSocket.connect(SOCKET, { kernel: proc });
    const efd = proc.eventfd(0, 0);
    const cases: [Buffer, string][] = [
      [Buffer.from('hello'), 'ERR_SIZE'],
      [Buffer.alloc(64, 0xff), 'ERR_MAGIC'],
      [framed(1, '{"bdf":"0000:00:03.0"}', 2), 'ERR_VERSION'],
      [Buffer.concat([framed(1, '{"bdf":"0000:00:03.0"}'), Buffer.of(0)]), 'ERR_LENGTH'],
      [framed(1, '{"bdf":'), 'ERR_JSON'],
      [framed(1, '[1,2]'), 'ERR_JSON'],
      [framed(0x81, '{"bdf":"0000:00:03.0","noiommu":true}'), 'ERR_TYPE'],
      [framed(3, '{"bdf":"0000:00:03.0","ioasId":1,"iova":"-1","length":"4096"}'), 'ERR_FIELD'],
      [framed(3, '{"bdf":"0000:00:03.0","ioasId":1,"iova":"18446744073709551615","length":"2"}'), 'ERR_FIELD'],
      [Buffer.alloc(MAX_MESSAGE_BYTES + 100, 0x41), 'ERR_SIZE'],
    ];
    for (const [bytes, code] of cases) {
      const r = await ask(sock, bytes, [efd]);
      assert.equal(r.type === 'error' && r.code, code, bytes.subarray(0, 24).toString('hex'));
    }
    await drained(setup.root, baseline + 1); // its end of this connection, and no received eventfd
    // Past the limit the broker hangs up.
    for (let i = 0; i < 10; i++) sock.send(Buffer.from('junk'));
    let reset = false;
    for (;;) {
      let m;
      try {
        m = await sock.receive(MAX_MESSAGE_BYTES);
      } catch (e) {
        // It hung up with junk of ours unread: ECONNRESET once, as on Linux, then the rest.
        assert.ok(isVfioError(e, 'ECONNRESET') && !reset, String(e));
        reset = true;
        continue;
      }
      if (m.data.length === 0) break;
    }
    assert.ok(reset, 'the broker closed without reading the rest');
    assert.ok(setup.log.some((e) => e.event === 'dropped' && /bad messages/.test(e.message)));
    sock.close();
    await drained(setup.root, baseline);
    await stillServes(setup);
  });

  it('one client per device (EBUSY), the same device twice (EALREADY), GET_PA only for what was granted (ENOENT)', async () => {
    const a = setup.root.spawnProcess(unprivileged());
    const b = setup.root.spawnProcess(unprivileged());
    const ca = BrokerClient.connect(SOCKET, { kernel: a });
    const cb = BrokerClient.connect(SOCKET, { kernel: b });
    const grant = await ca.grant(EDU);
    await assert.rejects(ca.grant(EDU), (e: Error & { code?: string }) => e.code === 'EALREADY');
    await assert.rejects(cb.grant(EDU), (e: Error & { code?: string }) => e.code === 'EBUSY' && new RegExp(`pid ${a.pid}`).test(e.message));
    await assert.rejects(cb.physicalSegments(EDU, 1, 0n as never, 4096n), (e: Error & { code?: string }) => e.code === 'ENOENT');
    await assert.rejects(cb.releaseDevice(EDU), (e: Error & { code?: string }) => e.code === 'ENOENT');
    assert.equal(b.openFdCount, 1, 'b got nothing but its socket');
    a.close(grant.deviceFd);
    a.close(grant.iommufdFd);
    await ca.releaseDevice(EDU);
    const second = await cb.grant(EDU);
    assert.equal(b.openFdCount, 3);
    ca.close();
    cb.close();
    b.close(second.deviceFd);
    b.close(second.iommufdFd);
    await drained(setup.root, baseline);
  });

  it('a client that closes early or dies releases its device, which is handed out again', async () => {
    // Asks and hangs up before the reply.
    const early = setup.root.spawnProcess(unprivileged());
    const sock = UnixSocket.connect(SOCKET, { kernel: early });
    sock.send(encodeRequest({ type: 'grant', bdf: EDU }));
    sock.close();
    await drained(setup.root, baseline);
    assert.deepEqual(setup.broker.grants(), []);
    // Gets the device, then dies holding it.
    const dying = setup.root.spawnProcess(unprivileged());
    const dev = await openDevice(EDU, { kernel: dying, broker: SOCKET });
    assert.equal(setup.broker.grants().length, 1);
    void dev;
    dying.exit();
    await drained(setup.root, baseline);
    assert.deepEqual(setup.broker.grants(), []);
    assert.ok(setup.log.some((e) => e.event === 'release' && /connection ended/.test(e.message)));
    await stillServes(setup);
  });

  it('a client that floods without reading replies is dropped; others are served meanwhile', async () => {
    const flooder = setup.root.spawnProcess(unprivileged());
    const sock = UnixSocket.connect(SOCKET, { kernel: flooder });
    const request = encodeRequest({ type: 'release', bdf: EDU });
    let sent = 0;
    let refusedAt: string | undefined;
    for (; sent < 100_000; sent++) {
      try {
        sock.send(request);
      } catch (e) {
        refusedAt = isVfioError(e, 'EAGAIN') ? 'EAGAIN' : isVfioError(e, 'EPIPE') ? 'EPIPE' : String(e);
        break;
      }
      if (sent % 64 === 0) await settle();
    }
    assert.ok(refusedAt === 'EAGAIN' || refusedAt === 'EPIPE', `the flood was stopped (${refusedAt} after ${sent})`);
    await stillServes(setup);
    for (let i = 0; i < 10; i++) await settle();
    assert.ok(
      setup.log.some((e) => e.event === 'dropped' && e.peer?.pid === flooder.pid),
      'the flooder was dropped',
    );
    sock.close();
    await drained(setup.root, baseline);
  });

  it('many clients at once each get their answer', async () => {
    const clients = Array.from({ length: 50 }, () => setup.root.spawnProcess(unprivileged()));
    const results = await Promise.allSettled(clients.map((k) => openDevice(EDU, { kernel: k, broker: SOCKET })));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one device, one grant');
    for (const r of results) if (r.status === 'rejected') assert.match(String(r.reason), /EBUSY/);
    for (const r of results) if (r.status === 'fulfilled') r.value.close();
    for (const k of clients) assert.equal(k.openFdCount, 0, 'the refused got no fd, the closed kept none');
    await drained(setup.root, baseline);
  });
});

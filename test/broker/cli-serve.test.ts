/**
 * `vfio serve` on the model: usage errors exit 2 before anything is bound or listened on; a run
 * serves a client of another process until SIGTERM, logging JSON lines with --json.
 */
import assert from 'node:assert/strict';
import { runCli } from '../../lib/cli/main';
import { createModelKernel, type ModelKernel } from '../../lib/model';
import { openDevice } from '../../lib/vfio/open-device';
import { UnixSocket } from '../../lib/sys/unix-socket';
import { EDU, SOCKET, unprivileged } from './support';

async function vfioOn(kernel: ModelKernel, ...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) }, kernel);
  return { code, out, err: err.join('\n') };
}

describe('vfio serve [model]', () => {
  it('exits 2 on usage errors: no socket, no --allow, a bad uid, no device, a path for a device', async () => {
    const kernel = createModelKernel('linux-7.3-noiommu');
    const cases: [string[], RegExp][] = [
      [['serve', '--allow', '1000', EDU], /--socket PATH is required/],
      [['serve', '--socket', SOCKET, EDU], /--allow is required/],
      [['serve', '--socket', SOCKET, '--allow', 'root', EDU], /'root' is not a uid/],
      [['serve', '--socket', SOCKET, '--allow', '1000'], /at least one device/],
      [['serve', '--socket', SOCKET, '--allow', '1000', '--device', '/sys/bus/pci/devices/0000:00:03.0'], /is not a PCI address/],
      [['serve', '--socket', SOCKET, '--allow', '1000', '../../0000:00:03.0'], /is not a PCI address/],
    ];
    for (const [argv, message] of cases) {
      const r = await vfioOn(kernel, ...argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err, message);
    }
    assert.equal(kernel.openFdCount, 0, 'nothing was opened or listened on');
  });

  it('serves a client until SIGTERM and logs grant and release as JSON lines', async () => {
    const kernel = createModelKernel('linux-7.3-noiommu');
    const run = vfioOn(kernel, 'serve', '--socket', SOCKET, '--allow', 'uid:1000,gid:5', '--device', EDU, '--json');
    await new Promise((r) => setImmediate(r));
    const client = kernel.spawnProcess(unprivileged());
    const dev = await openDevice(EDU, { kernel: client, broker: SOCKET });
    assert.equal(dev.config.read16(0), 0x1234);
    dev.close();
    await new Promise((r) => setTimeout(r, 5));
    process.emit('SIGTERM');
    const r = await run;
    assert.equal(r.code, 0, r.err);
    const events = r.out.map((l) => (JSON.parse(l) as { event: string }).event);
    assert.deepEqual(events, ['listening', 'grant', 'release']);
    assert.equal(kernel.openFdCount, 0, 'the broker closed everything, its socket too');
    // The socket path was unlinked: listening there again is not EADDRINUSE.
    UnixSocket.listen(SOCKET, { kernel }).close();
  });
});

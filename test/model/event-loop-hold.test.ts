/**
 * A model wait holds the process open like a real poll: a program awaiting an interrupt that
 * does not come keeps waiting instead of exiting as if it were done, and exits once the wait
 * settles. Run in child processes, where nothing else holds the loop.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';

const dist = path.resolve(__dirname, '../..');

function program(triggerAfterMs: number | null): string {
  return `
    const { createModelKernel, profiles } = require(${JSON.stringify(path.join(dist, 'lib/model'))});
    const { openDevice } = require(${JSON.stringify(path.join(dist, 'lib'))});
    const kernel = createModelKernel('linux-7.3-noiommu');
    const bdf = profiles['linux-7.3-noiommu'].pci.find((d) => d.device === 'edu').address;
    const dev = openDevice(bdf, { kernel });
    const [msi] = dev.irqs.enable('msi', 1);
    ${triggerAfterMs === null ? '' : `setTimeout(() => msi.trigger(), ${triggerAfterMs}).unref();`}
    msi.wait().then((n) => { console.log('interrupts ' + n); dev.close(); });
    console.log('waiting');
  `;
}

/**
 * Runs `source` in a child and kills it `killAfterMs` after it printed "waiting" (counted from
 * there, so a slow start on a busy machine does not eat the time the wait is given).
 */
function run(source: string, killAfterMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let killer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (killer === undefined && /^waiting$/m.test(out)) killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, out });
    });
  });
}

describe('model kernel: a pending wait holds the event loop', function () {
  this.timeout(60_000);

  it('a wait for an interrupt that never comes keeps the process alive, as on the real kernel', async () => {
    const r = await run(program(null), 1500);
    assert.equal(r.signal, 'SIGKILL', `the process ended by itself (code ${r.code}) with the wait unsettled`);
    assert.match(r.out, /^waiting$/m);
  });

  it('once the interrupt comes and the wait settles, the process exits by itself', async () => {
    const r = await run(program(200), 10_000);
    assert.equal(r.code, 0);
    assert.match(r.out, /interrupts 1/);
  });
});

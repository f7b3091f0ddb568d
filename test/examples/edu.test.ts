/**
 * The edu example driver, run as a user runs it (`npm start`), on every model profile where it
 * can work, and refused with a clear error where it cannot.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const main = path.resolve(__dirname, '../../examples/edu/main.js');

async function edu(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run(process.execPath, [main, ...args], { timeout: 60_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, out: (err.stdout ?? '') + (err.stderr ?? '') };
  }
}

describe('examples/edu driver', function () {
  this.timeout(120_000);

  for (const profile of ['linux-7.3-noiommu', 'linux-7.3-noiommu-nullgroup']) {
    it(`round-trips DMA by physical address and computes 10! on ${profile}`, async () => {
      const r = await edu(`--model=${profile}`);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /identification 0x010000ed/);
      assert.match(r.out, /10! = 3628800/);
      assert.match(r.out, /physical addresses 0x[0-9a-f]+/);
      assert.match(r.out, /data intact/);
      assert.match(r.out, /opened through the cdev path \(noiommu\)/);
    });
  }

  it('round-trips DMA by IOVA behind an IOMMU (linux-7.3-iommu)', async () => {
    const r = await edu('--model=linux-7.3-iommu');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /IOVA addresses 0x[0-9a-f]+/);
    assert.match(r.out, /data intact/);
  });

  it('says it runs on the model when the machine has no edu device', async function () {
    const r = await edu();
    if (/the real kernel: an edu device is present/.test(r.out)) {
      console.log('      (this machine has a real edu device: the example ran on it)');
      assert.equal(r.code, 0, r.out);
      return;
    }
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /running on the built-in kernel model|native addon is not usable/);
    assert.match(r.out, /all checks passed/);
  });

  it('without CAP_SYS_RAWIO fails with EPERM and the capability hint, not a stack trace', async () => {
    const r = await edu('--model=unprivileged');
    assert.equal(r.code, 1);
    assert.match(r.out, /EPERM/);
    assert.match(r.out, /CAP_SYS_RAWIO/);
    assert.doesNotMatch(r.out, /\n\s+at /);
  });

  it('rejects an unknown profile', async () => {
    const r = await edu('--model=nope');
    assert.equal(r.code, 1);
    assert.match(r.out, /unknown model profile 'nope'/);
  });
});

/**
 * Ownership over time: dropped handles are released by the garbage-collection safety net, and
 * long open/close loops leave nothing behind (model counters and the JS heap).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createModelKernel } from '../../lib/model';
import { openDevice } from '../../lib/vfio/open-device';
import { DEVICE_PROFILES, describeOnModel } from './support/targets';

const EDU = '0000:00:03.0';

describeOnModel('API lifecycle [model]', () => {
  for (const profile of DEVICE_PROFILES) {
    it(`dropped, never-closed handles are released by the GC safety net (${profile})`, function () {
      this.timeout(60_000);
      const child = path.join(__dirname, 'fixtures', 'gc-child.js');
      const run = spawnSync(process.execPath, ['--expose-gc', child, profile], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      const report = JSON.parse(run.stdout) as { before: object; leaked: { fds: number }; after: object; released: number };
      assert.ok(report.leaked.fds > 0, 'the child really left things open');
      assert.deepEqual(report.after, report.before, 'fds, pinned frames and mappings are back where they started');
      assert.ok(report.released > 0);
    });
  }

  it('10,000 device open/close cycles leave the model and the heap where they were', function () {
    this.timeout(300_000);
    const child = path.join(__dirname, 'fixtures', 'cycles-child.js');
    const run = spawnSync(process.execPath, ['--expose-gc', child, '10000'], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const report = JSON.parse(run.stdout) as { before: object; after: object; heapGrowth: number };
    assert.deepEqual(report.after, report.before, 'fds, pinned frames and mappings');
    console.log(`      heap growth over 10,000 cycles: ${report.heapGrowth} bytes`);
    // A leak of one small object per cycle (a few hundred bytes) would exceed this.
    assert.ok(report.heapGrowth < 4 * 1024 * 1024, `heap grew by ${report.heapGrowth} bytes`);
  });

  it('1,000 openDevice cycles with a DMA buffer and an MSI vector leave nothing behind, on every path', function () {
    this.timeout(300_000);
    for (const profile of DEVICE_PROFILES) {
      const kernel = createModelKernel(profile);
      const probe = () => ({ fds: kernel.openFdCount, freeFrames: kernel.memory.freeFrames, mappings: kernel.space.mappings().length });
      const start = probe();
      for (let i = 0; i < 1000; i++) {
        using dev = openDevice(EDU, { kernel });
        dev.irqs.enable('msi');
        dev.allocateDma(16 * 1024).bytes[0] = i & 0xff;
      }
      assert.deepEqual(probe(), start, profile);
    }
  });
});

/**
 * Soak on the real kernel: 1,000 open/bind/attach/map/GET_PA/unmap/close cycles of the edu device
 * through the typed API and the native addon. Afterwards the process must have the fds it started
 * with, no pages pinned (VmPin in /proc/self/status, which iommufd charges for every pinned page)
 * and about the same RSS; the numbers are printed and written to the results directory.
 * NODE_VFIO_SOAK_CYCLES overrides the count.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { nativeKernel } from '../../lib/sys/native-kernel';
import { Iommufd } from '../../lib/iommu/iommufd';
import { VfioDevice } from '../../lib/vfio/device';
import { cdevOf, collectGarbage, formatSoak, soakCycle, SOAK_BUFFER_BYTES, type SoakNumbers } from '../reliability/soak-cycle';
import { requireLab, type LabEnvironment } from './lab-environment';

const WARM_UP = 50;
const RSS_NOISE = 48 * 1048576;

function statusField(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!m) throw new Error(`/proc/self/status has no ${field}`);
  return Number(m[1]) * 1024;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function numbers(pageSize: number): Promise<SoakNumbers & { lockedBytes: number }> {
  await nextTurn();
  collectGarbage();
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  return {
    fds: fs.readdirSync('/proc/self/fd').length,
    pinnedPages: statusField(status, 'VmPin') / pageSize,
    rssBytes: statusField(status, 'VmRSS'),
    lockedBytes: statusField(status, 'VmLck'),
  };
}

describe('lab: soak on the real kernel', function () {
  let lab: LabEnvironment;

  before(function () {
    lab = requireLab(this);
  });

  it('opens, maps and closes the device 1,000 times and gives back every fd, pin and byte', async function () {
    this.timeout(0);
    const cycles = Number(process.env.NODE_VFIO_SOAK_CYCLES ?? 1000);
    const kernel = nativeKernel();
    const cdev = cdevOf(kernel, lab.bdf);
    for (let i = 0; i < WARM_UP; i++) soakCycle(kernel, cdev);
    const before = await numbers(kernel.pageSize);
    // The yardstick works: while one cycle's buffer is mapped, its pages show in VmPin.
    const pinnedWhileMapped = (() => {
      const iommufd = Iommufd.open(kernel);
      try {
        VfioDevice.open(cdev, { iommufd }).allocateDma(SOAK_BUFFER_BYTES);
        return statusField(fs.readFileSync('/proc/self/status', 'utf8'), 'VmPin') / kernel.pageSize;
      } finally {
        iommufd.close();
      }
    })();
    assert.equal(
      pinnedWhileMapped - before.pinnedPages,
      Number(SOAK_BUFFER_BYTES) / kernel.pageSize,
      'VmPin counts the pages of a mapped buffer',
    );
    const started = Date.now();
    let pinnedDuring = 0;
    for (let i = 0; i < cycles; i++) {
      soakCycle(kernel, cdev);
      if (i % 100 === 99) {
        await nextTurn();
        pinnedDuring = Math.max(pinnedDuring, (await numbers(kernel.pageSize)).pinnedPages);
      }
    }
    const seconds = (Date.now() - started) / 1000;
    const after = await numbers(kernel.pageSize);
    const line = `${formatSoak(`Linux ${lab.mode}`, cycles, before, after, seconds)}; VmLck ${before.lockedBytes} → ${after.lockedBytes} bytes`;
    console.log(`      ${line}`);
    fs.mkdirSync(path.join(lab.resultsDir, 'soak'), { recursive: true });
    fs.writeFileSync(
      path.join(lab.resultsDir, 'soak', `soak-${lab.mode}.json`),
      JSON.stringify({ mode: lab.mode, cycles, seconds, before, after, pinnedDuring, pinnedWhileMapped }, null, 2),
    );
    assert.equal(after.fds, before.fds, 'fds left open');
    assert.equal(after.pinnedPages, before.pinnedPages, 'pages still pinned');
    assert.equal(after.lockedBytes, before.lockedBytes, 'locked memory still charged');
    assert.ok(after.rssBytes - before.rssBytes < RSS_NOISE, `RSS grew by ${((after.rssBytes - before.rssBytes) / 1048576).toFixed(1)} MiB`);
  });
});

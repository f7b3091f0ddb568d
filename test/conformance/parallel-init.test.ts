/**
 * The parallel init's two runners (lib/selftest/parallel-init.ts). The worker-thread one runs on
 * the native kernel of this host, which has no VFIO device: units at paths that do not exist must
 * each come back from a worker of their own with the failed step and its errno — the addon loads
 * in a worker, the start and end barriers release every worker, and a worker's result reaches the
 * main thread. The concurrent one runs on the lab's multi machine in the model, where the race for
 * VFIO_SET_IOMMU on one legacy container has exactly one winner.
 */
import assert from 'node:assert/strict';
import { createModelKernel } from '../../lib/model';
import { nativeKernel } from '../../lib/sys/native-kernel';
import { O_CLOEXEC, O_RDWR } from '../../lib/sys/constants';
import * as V from '../../lib/uapi/vfio';
import { initConcurrently, initInWorkers, type InitUnit } from '../../lib/selftest/parallel-init';

describe('parallel init (vfio_pci_device_init_perf_test)', () => {
  it('runs each unit in a worker thread of its own on the native kernel and reports each failure with its errno', async function () {
    this.timeout(20_000);
    const units: InitUnit[] = [
      { kind: 'cdev', cdevPath: '/nonexistent/vfio/devices/vfio0', bdf: '0000:00:03.0' },
      { kind: 'cdev', cdevPath: '/nonexistent/vfio/devices/vfio1', bdf: '0000:00:04.0' },
      { kind: 'cdev', cdevPath: '/nonexistent/vfio/devices/vfio2', bdf: '0000:00:05.0' },
    ];
    const fdsBefore = nativeKernel().readdir('/proc/self/fd').length;
    const results = await initInWorkers(units, { kind: 'cdev', iommufd: -1, ioasId: 0 });
    assert.deepEqual(
      results.map((r) => r.error),
      units.map((u) => `open ${u.kind === 'cdev' ? u.cdevPath : ''}: ENOENT`),
    );
    for (const r of results) assert.ok(r.endMs >= r.startMs && r.startMs > 0, `${r.unit}: times ${r.startMs}..${r.endMs}`);
    assert.equal(nativeKernel().readdir('/proc/self/fd').length, fdsBefore, 'no fd left open by the workers');
  });

  it('on the model, racing units share one legacy container: one SET_IOMMU wins, the others are EINVAL', async () => {
    const kernel = createModelKernel('lab-multi-iommu');
    const container = kernel.open('/dev/vfio/vfio', O_RDWR | O_CLOEXEC);
    const units: InitUnit[] = [
      { kind: 'group', groupPath: '/dev/vfio/5', bdfs: ['0000:00:05.0', '0000:00:05.1'] },
      { kind: 'group', groupPath: '/dev/vfio/8', bdfs: ['0000:01:00.0'] },
    ];
    const results = await initConcurrently(kernel, units, { kind: 'group', containerFd: container, iommuType: V.VFIO_TYPE1v2_IOMMU });
    assert.deepEqual(
      results.map((r) => [r.error, r.setIommu, r.devices.map((d) => d.bdf)]),
      [
        [undefined, 'ok', ['0000:00:05.0', '0000:00:05.1']],
        [undefined, 'EINVAL', ['0000:01:00.0']],
      ],
    );
    kernel.close(container);
    assert.equal(kernel.openFdCount, 0);
  });
});

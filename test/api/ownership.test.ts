/**
 * Who keeps what open: a device holds the iommufd (or the group and container) it was opened
 * through, and an iommufd object's kernel teardown runs once, whether `close()` or the
 * garbage-collection safety net reaches it first.
 */
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createModelKernel } from '../../lib/model';
import type { Kernel } from '../../lib/sys/kernel';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../lib/sys/constants';
import { IOMMU_DESTROY, IOMMU_IOAS_UNMAP } from '../../lib/uapi/iommufd';
import { Iommufd } from '../../lib/iommu/iommufd';
import { VfioDevice } from '../../lib/vfio/device';
import { openDevice } from '../../lib/vfio/open-device';
import { safetyNetStats } from '../../lib/support/resource';
import { describeOnModel } from './support/targets';

const EDU = '0000:00:03.0';

/** The model kernel, with a count of the teardown ioctls it was asked for and of those that failed. */
function countingKernel() {
  const model = createModelKernel('linux-7.3-noiommu');
  const counts = { destroy: 0, unmap: 0, failed: 0 };
  const kernel = new Proxy(model, {
    get(target, key) {
      if (key === 'ioctl') {
        return (fd: number, request: number, arg: Uint8Array | number | null) => {
          if (request === IOMMU_DESTROY.number) counts.destroy++;
          if (request === IOMMU_IOAS_UNMAP.number) counts.unmap++;
          try {
            return target.ioctl(fd, request, arg);
          } catch (e) {
            if (request === IOMMU_DESTROY.number || request === IOMMU_IOAS_UNMAP.number) counts.failed++;
            throw e;
          }
        };
      }
      const value = Reflect.get(target, key, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as Kernel;
  const probe = () => ({ fds: model.openFdCount, freeFrames: model.memory.freeFrames });
  return { kernel, counts, probe };
}

function collectGarbage(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

async function untilReleased(gc: () => void, count: number): Promise<void> {
  for (let i = 0; i < 50 && safetyNetStats.released < count; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.ok(safetyNetStats.released >= count, 'the safety net ran');
}

describeOnModel('API ownership [model]', () => {
  it('a bound device keeps its iommufd alive after the caller closes its own handle', () => {
    const { kernel, probe } = countingKernel();
    const start = probe();
    const iommufd = Iommufd.open(kernel);
    const dev = VfioDevice.open(EDU, { iommufd, ownIommufd: true });
    iommufd.close();
    assert.equal(iommufd.closed, false, 'the device still holds the iommufd');
    const spare = iommufd.ioas();
    using dma = dev.allocateDma(8192);
    assert.ok(dma.physicalAddress() > 0n);
    spare.close();
    dev.close();
    assert.equal(iommufd.closed, true, 'the last holder closing carries out the close');
    assert.deepEqual(probe(), start);
  });

  it('a device opened through a group holds the group and the container until it closes', () => {
    const model = createModelKernel('linux-6.x-legacy-noiommu');
    const start = model.openFdCount;
    const dev = openDevice(EDU, { kernel: model });
    assert.equal(dev.backend.kind, 'group');
    using dma = dev.allocateDma(4096);
    assert.ok(dma.physicalAddress() > 0n, 'the container openDevice set up still maps DMA');
    assert.ok(model.openFdCount >= start + 3, 'device, group and container fds are open');
    dev.close();
    assert.equal(model.openFdCount, start);
  });

  it('an IOAS and its mapping are torn down once when close() comes first, nothing more when the GC follows', async () => {
    const gc = collectGarbage();
    const { kernel, counts, probe } = countingKernel();
    using iommufd = Iommufd.open(kernel);
    const start = probe();
    (() => {
      const ioas = iommufd.ioas();
      ioas.map(kernel.mmap(-1, 8192n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n));
      ioas.close();
    })();
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.deepEqual(counts, { destroy: 1, unmap: 1, failed: 0 });
    assert.equal(probe().fds, start.fds);
  });

  it('an IOAS and its mapping dropped unclosed are torn down once by the GC, and not again by their iommufd', async () => {
    const gc = collectGarbage();
    const { kernel, counts } = countingKernel();
    const iommufd = Iommufd.open(kernel);
    const releasedBefore = safetyNetStats.released;
    (() => {
      const ioas = iommufd.ioas();
      ioas.map(kernel.mmap(-1, 8192n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n));
    })();
    await untilReleased(gc, releasedBefore + 2);
    iommufd.close();
    assert.equal(counts.destroy, 1, 'IOMMU_DESTROY once');
    assert.ok(counts.unmap <= 1, 'at most one unmap, skipped when the IOAS went first');
    assert.equal(counts.failed, 0, 'no teardown ioctl aimed at an object the kernel no longer has');
  });

  it('a mapping the GC collects after its IOAS was destroyed sends no unmap', async () => {
    const gc = collectGarbage();
    const { kernel, counts } = countingKernel();
    using iommufd = Iommufd.open(kernel);
    const ioas = iommufd.ioas();
    const releasedBefore = safetyNetStats.released;
    (() => {
      ioas.map(kernel.mmap(-1, 8192n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n));
    })();
    // A new WeakRef keeps its target alive until the current job ends (the IOAS holds its
    // mappings weakly), hence the wait. The collection itself is synchronous and the safety net's
    // callback comes later: the IOAS is destroyed (with its area) in between, so the mapping's
    // teardown is no longer due when the net runs.
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    ioas.close();
    await untilReleased(gc, releasedBefore + 1);
    assert.deepEqual(counts, { destroy: 1, unmap: 0, failed: 0 });
  });
});

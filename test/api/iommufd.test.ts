import assert from 'node:assert/strict';
import { Iommufd } from '../../lib/iommu/iommufd';
import { VfioDevice } from '../../lib/vfio/device';
import { DmaBuffer } from '../../lib/dma/buffer';
import { isVfioError } from '../../lib/sys/errors';
import { MAP_ANONYMOUS, MAP_PRIVATE, MFD_CLOEXEC, PROT_READ, PROT_WRITE } from '../../lib/sys/constants';
import { iova, type Iova } from '../../lib/sys/addresses';
import { describeOnTargets, skipUnless } from './support/targets';

const KiB = 1024n;

describeOnTargets('Iommufd and Ioas', (target) => {
  /** The suite's target, the test skipped where the target has no iommufd. */
  function iommufdTarget(test: Mocha.Context): ReturnType<typeof target> {
    const t = target();
    skipUnless(test, t.traits.cdev, 'needs iommufd');
    return t;
  }

  function anonymous(t: ReturnType<typeof target>, length: bigint) {
    return t.kernel.mmap(-1, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
  }

  it('allocates IOAS objects with the lowest free id and destroys them on close', function () {
    const t = iommufdTarget(this);
    using iommufd = Iommufd.open(t.kernel);
    const a = iommufd.ioas();
    const b = iommufd.ioas();
    assert.equal(b.id, a.id + 1);
    a.close();
    const c = iommufd.ioas();
    assert.equal(c.id, a.id, 'the id of a destroyed IOAS is reused: close really destroyed it');
  });

  it('maps memory at a kernel-chosen or fixed IOVA, and unmaps it on close', function () {
    const t = iommufdTarget(this);
    using iommufd = Iommufd.open(t.kernel);
    const ioas = iommufd.ioas();
    const memory = anonymous(t, 64n * KiB);
    const auto = ioas.map(memory);
    assert.equal(auto.length, 64n * KiB);
    assert.equal(auto.iova % BigInt(t.kernel.pageSize), 0n);
    const fixed = ioas.map({ va: memory.address, length: 16n * KiB }, { iova: iova(0x4000_0000n), writable: false });
    assert.equal(fixed.iova, 0x4000_0000n);
    assert.throws(
      () => ioas.map(memory, { iova: fixed.iova }),
      (e: unknown) => isVfioError(e, 'EEXIST') && e.ioctl === 'IOMMU_IOAS_MAP',
    );
    fixed.close();
    const again = ioas.map({ va: memory.address, length: 16n * KiB }, { iova: iova(0x4000_0000n) });
    assert.equal(again.iova, 0x4000_0000n, 'closing the mapping freed its IOVA range');
    assert.equal(ioas.unmap({ iova: again.iova, length: again.length }), 16n * KiB);
    assert.equal(again.closed, true, 'an explicit unmap releases the handle of the area');
    again.close();
    t.kernel.munmap(memory);
  });

  it('maps a DmaBuffer into a second IOAS, so devices of both can reach it', function () {
    const t = iommufdTarget(this);
    using iommufd = Iommufd.open(t.kernel);
    const first = iommufd.ioas();
    const second = iommufd.ioas();
    using dma = DmaBuffer.allocate(32n * KiB, { space: first });
    const shared = second.map(dma, { iova: iova(0x20_0000n) });
    assert.equal(shared.length, dma.size);
    assert.equal(shared.iova, 0x20_0000n);
    shared.close();
  });

  it('maps a memfd with mapFile and copies an area into a second IOAS', function () {
    const t = iommufdTarget(this);
    using iommufd = Iommufd.open(t.kernel);
    const src = iommufd.ioas();
    const dst = iommufd.ioas();
    const memfd = t.kernel.memfdCreate('api-test', MFD_CLOEXEC);
    try {
      t.kernel.ftruncate(memfd, 32n * KiB);
      const fileArea = src.mapFile(memfd, 0n, 32n * KiB);
      assert.equal(fileArea.length, 32n * KiB);
      const copied = dst.copy({ ioas: src, iova: fileArea.iova, length: 16n * KiB }, { iova: iova(0x10_0000n) });
      assert.equal(copied.iova, 0x10_0000n);
      assert.equal(copied.length, 16n * KiB);
    } finally {
      t.kernel.close(memfd);
    }
  });

  it('reports IOVA ranges and restricts them with allowIovas', function () {
    const t = iommufdTarget(this);
    using iommufd = Iommufd.open(t.kernel);
    const ioas = iommufd.ioas();
    const before = ioas.ranges();
    assert.ok(before.ranges.length >= 1);
    assert.ok(before.alignment >= 1n, 'an IOAS without a domain only needs byte alignment (iopt starts at 1)');
    ioas.allowIovas([{ start: iova(0x100_0000n), last: iova(0x1ff_ffffn) }]);
    const memory = anonymous(t, 16n * KiB);
    const area = ioas.map(memory);
    assert.ok(area.iova >= 0x100_0000n && area.iova + area.length - 1n <= 0x1ff_ffffn, 'automatic IOVAs come from the allowed range');
    area.close();
    t.kernel.munmap(memory);
  });

  it('gets and sets the huge-pages option of an IOAS and the rlimit mode of the iommufd', function () {
    const t = iommufdTarget(this);
    using iommufd = Iommufd.open(t.kernel);
    const ioas = iommufd.ioas();
    assert.equal(ioas.option('huge-pages'), true);
    assert.equal(ioas.option('huge-pages', false), false);
    assert.equal(iommufd.rlimitMode(), 'process');
  });

  it('answers GET_PA per contiguous run on noiommu, and refuses before a noiommu device is attached', function () {
    const t = target();
    skipUnless(this, t.traits.cdev && t.traits.noiommu, 'needs the Linux 7.3 noiommu cdev');
    using iommufd = Iommufd.open(t.kernel);
    const ioas = iommufd.ioas();
    const memory = anonymous(t, 128n * KiB);
    const area = ioas.map(memory);
    assert.throws(
      () => ioas.getPhysicalAddress(area.iova, 4096n),
      (e: unknown) => isVfioError(e, 'EOPNOTSUPP') && e.ioctl === 'IOMMU_IOAS_NOIOMMU_GET_PA',
    );
    VfioDevice.open(t.bdf, { iommufd, attach: ioas });
    const first = ioas.getPhysicalAddress(area.iova, 4096n);
    assert.equal(first.length, 4096n, 'the answer never exceeds the cap');
    const runs = area.segments();
    assert.equal(
      runs.reduce((n, r) => n + r.length, 0n),
      area.length,
    );
    assert.equal(runs[0]!.phys, first.phys);
    for (const r of runs) {
      const check = ioas.getPhysicalAddress((r.iova + r.length - 1n) as Iova, 1n);
      assert.equal(check.phys, r.phys + r.length - 1n, 'the last byte of each run is where the run says');
    }
    assert.throws(
      () => ioas.getPhysicalAddress(iova(0xdead_0000n), 4096n),
      (e: unknown) => isVfioError(e, 'ENOENT'),
    );
    assert.throws(
      () => ioas.getPhysicalAddress(area.iova, 0n),
      (e: unknown) => isVfioError(e, 'EINVAL'),
    );
  });

  it('allocates a HWPT for a bound device and attaches the device to it', function () {
    const t = iommufdTarget(this);
    using iommufd = Iommufd.open(t.kernel);
    const ioas = iommufd.ioas();
    const dev = VfioDevice.open(t.bdf, { iommufd, attach: false });
    const hwpt = iommufd.hwpt(dev, ioas);
    assert.equal(dev.attach(hwpt), hwpt.id);
    assert.equal(dev.ioas, ioas, 'the device reaches the IOAS through the HWPT');
    if (t.traits.noiommu) {
      assert.throws(
        () => iommufd.hwInfo(dev),
        (e: unknown) => isVfioError(e, 'EOPNOTSUPP'),
      );
    } else {
      assert.ok(iommufd.hwInfo(dev).data.length > 0);
    }
    dev.detach();
    assert.equal(dev.ioas, undefined);
    hwpt.close();
  });

  it('refuses to destroy an IOAS with a device attached; closing the iommufd tears everything down', function () {
    const t = iommufdTarget(this);
    const iommufd = Iommufd.open(t.kernel);
    const ioas = iommufd.ioas();
    const dev = VfioDevice.open(t.bdf, { iommufd, attach: ioas });
    assert.throws(
      () => ioas.close(),
      (e: unknown) => isVfioError(e, 'ERR_VFIO_IN_USE') && /device/.test(e.message),
    );
    assert.equal(ioas.closed, false);
    iommufd.close();
    assert.equal(dev.closed, true);
    assert.equal(ioas.closed, true);
    assert.throws(
      () => iommufd.ioas(),
      (e: unknown) => isVfioError(e, 'EBADF'),
    );
    assert.throws(
      () => ioas.ranges(),
      (e: unknown) => isVfioError(e, 'EBADF'),
    );
  });

  it('leaves no fd, mapping or pinned page behind after 200 open/map/close cycles', function () {
    const t = iommufdTarget(this);
    const start = t.leakProbe();
    for (let i = 0; i < 200; i++) {
      using dev = VfioDevice.open(t.bdf, { iommufd: Iommufd.open(t.kernel), ownIommufd: true });
      using dma = dev.allocateDma(8n * KiB);
      dma.bytes[0] = i & 0xff;
    }
    assert.deepEqual(t.leakProbe(), start);
  });
});

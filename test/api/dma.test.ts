import assert from 'node:assert/strict';
import { openDevice } from '../../lib/vfio/open-device';
import { DmaBuffer } from '../../lib/dma/buffer';
import { Iommufd } from '../../lib/iommu/iommufd';
import { VfioDevice } from '../../lib/vfio/device';
import { isVfioError } from '../../lib/sys/errors';
import type { Iova } from '../../lib/sys/addresses';
import { describeOnTargets, skipUnless } from './support/targets';
import { EDU, eduDma } from './support/edu';

const KiB = 1024n;
const MiB = 1024n * KiB;

describeOnTargets('DmaBuffer', (target) => {
  it('allocates page-aligned memory with an ArrayBuffer view, rounded up to whole pages', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    using dma = dev.allocateDma(10_000);
    const page = BigInt(t.kernel.pageSize);
    assert.equal(dma.size, 3n * page);
    assert.equal(dma.address % page, 0n);
    assert.equal(dma.bytes.length, Number(dma.size));
    dma.bytes[0] = 0x5a;
    assert.equal(new Uint8Array(dma.buffer)[0], 0x5a);
    assert.equal(dma.addressing, t.traits.noiommu ? 'physical' : 'iova');
  });

  it('knows its physical segments on noiommu and answers physicalAddress without the kernel', function () {
    const t = target();
    skipUnless(this, t.traits.noiommu, 'physical segments exist only without an IOMMU');
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    using dma = dev.allocateDma(256n * KiB);
    const segments = dma.segments();
    assert.ok(segments.length >= 1);
    let covered = 0n;
    for (const s of segments) {
      assert.equal(s.offset, covered, 'segments are in order and leave no gap');
      covered += s.length;
    }
    assert.equal(covered, dma.size);
    for (let i = 1; i < segments.length; i++) {
      assert.notEqual(segments[i - 1]!.phys + segments[i - 1]!.length, segments[i]!.phys, 'adjacent runs are merged');
    }
    const page = BigInt(t.kernel.pageSize);
    if (dev.ioas) {
      // Every page agrees with the kernel's own answer.
      for (let off = 0n; off < dma.size; off += page) {
        assert.equal(dma.physicalAddress(off + 8n), dev.ioas.getPhysicalAddress((dma.iova! + off) as Iova, page).phys + 8n);
      }
    }
    assert.equal(dma.dmaAddress(100), dma.physicalAddress(100));
    const run = dma.physicalRun(page + 3n);
    assert.equal(run.phys, dma.physicalAddress(page + 3n));
    assert.ok(run.length > 0n && run.length <= dma.size - page - 3n);
    assert.throws(() => dma.physicalAddress(dma.size), RangeError);
    assert.throws(() => dma.physicalAddress(-1), RangeError);
  });

  it('behind an IOMMU gives IOVAs and refuses physical addresses with a clear error', function () {
    const t = target();
    skipUnless(this, !t.traits.noiommu, 'needs an IOMMU-translated device');
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    using dma = dev.allocateDma(64n * KiB);
    assert.equal(dma.dmaAddress(16), dma.iova! + 16n);
    assert.throws(
      () => dma.physicalAddress(0),
      (e: unknown) => isVfioError(e, 'ERR_VFIO_TRANSLATED') && /IOVA/.test(e.hint ?? ''),
    );
    assert.throws(
      () => dev.ioas!.getPhysicalAddress(dma.iova!, 4096n),
      (e: unknown) => isVfioError(e, 'EOPNOTSUPP') && e.ioctl === 'IOMMU_IOAS_NOIOMMU_GET_PA',
    );
  });

  for (const prefer of ['cdev', 'group'] as const) {
    it(`edu DMA reaches the buffer at dmaAddress, both directions (${prefer} path)`, async function () {
      const t = target();
      skipUnless(this, prefer === 'cdev' ? t.traits.cdev : t.traits.group, `this kernel has no ${prefer} path`);
      skipUnless(
        this,
        !(prefer === 'group' && t.traits.noiommu && !t.traits.sysAdmin),
        'the legacy noiommu path reads pagemap, which needs CAP_SYS_ADMIN',
      );
      using dev = openDevice(t.bdf, { kernel: t.kernel, prefer });
      const bar = dev.bar(0).mmap();
      dev.config.enableBusMaster();
      const [vector] = dev.irqs.enable('msi');
      using dma = dev.allocateDma(8n * KiB, { locked: true });
      const src = dma.dmaAddress(0);
      const dst = dma.dmaAddress(4096);
      const pattern = Uint8Array.from({ length: 64 }, (_, i) => (i * 7 + 3) & 0xff);
      dma.bytes.set(pattern, 0);
      dma.bytes.fill(0, 4096, 4096 + 64);
      await eduDma(bar, vector!, src, EDU.BUFFER, 64n, false);
      await eduDma(bar, vector!, EDU.BUFFER, dst, 64n, true);
      assert.deepEqual(dma.bytes.subarray(4096, 4096 + 64), pattern);
    });
  }

  it('closing the buffer unmaps it and detaches the view; closing twice is harmless', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const dma = dev.allocateDma(64n * KiB);
    const view = dma.bytes;
    const buffer = dma.buffer;
    dma.close();
    assert.equal(dma.closed, true);
    assert.equal(buffer.byteLength, 0, 'the ArrayBuffer is detached');
    assert.equal(view.length, 0);
    assert.throws(
      () => dma.bytes,
      (e: unknown) => isVfioError(e, 'EBADF'),
    );
    assert.throws(
      () => dma.physicalAddress(0),
      (e: unknown) => isVfioError(e, 'EBADF'),
    );
    dma.close();
  });

  it('refuses to unmap an IOVA range under a live DmaBuffer, and unmaps it once the buffer is closed', function () {
    const t = target();
    skipUnless(this, t.traits.cdev, 'needs the device cdev and iommufd');
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const ioas = dev.ioas!;
    const dma = dev.allocateDma(64n * KiB);
    const iova = dma.iova!;
    assert.throws(
      () => ioas.unmap({ iova, length: dma.size }),
      (e: unknown) => isVfioError(e, 'ERR_VFIO_IN_USE') && /DmaBuffer/.test(e.message),
    );
    assert.throws(
      () => ioas.unmap(),
      (e: unknown) => isVfioError(e, 'ERR_VFIO_IN_USE'),
    );
    assert.equal(dma.bytes.length, 64 * 1024, 'the buffer is untouched');
    if (t.traits.noiommu) assert.ok(dma.physicalAddress(0) > 0n);
    dma.close();
    assert.throws(
      () => ioas.unmap({ iova, length: dma.size }),
      (e: unknown) => isVfioError(e, 'ENOENT'),
      'the area went with the buffer',
    );
  });

  it('closing the IOAS owner closes the buffers mapped in it', function () {
    const t = target();
    skipUnless(this, t.traits.cdev, 'needs the device cdev and iommufd');
    const dev = openDevice(t.bdf, { kernel: t.kernel });
    const dma = dev.allocateDma(16n * KiB);
    const buffer = dma.buffer;
    dev.close();
    assert.equal(dma.closed, true);
    assert.equal(buffer.byteLength, 0);
  });

  it('maps buffers allocated before any device attached, then finds their physical runs on attach', function () {
    const t = target();
    skipUnless(this, t.traits.cdev && t.traits.noiommu, 'needs the Linux 7.3 noiommu cdev');
    using iommufd = Iommufd.open(t.kernel);
    const ioas = iommufd.ioas();
    const dma = DmaBuffer.allocate(32n * KiB, { space: ioas });
    assert.throws(
      () => dma.addressing,
      (e: unknown) => isVfioError(e, 'ERR_VFIO_NOT_ATTACHED') && /attach a device/.test(e.hint ?? ''),
    );
    VfioDevice.open(t.bdf, { iommufd, attach: ioas });
    assert.equal(dma.addressing, 'physical');
    assert.equal(
      dma.segments().reduce((n, s) => n + s.length, 0n),
      dma.size,
    );
  });

  it('backs a buffer with huge pages when reserved, and falls back only when asked', function () {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    if (!t.traits.hugePages) {
      assert.throws(
        () => dev.allocateDma(2n * MiB, { hugePage: true }),
        (e: unknown) => isVfioError(e) && /huge pages/.test(e.hint ?? ''),
      );
      using small = dev.allocateDma(2n * MiB, { hugePage: true, hugePageFallback: 'small-pages' });
      assert.equal(small.pageSize, BigInt(t.kernel.pageSize));
      return;
    }
    using dma = dev.allocateDma(3n * MiB, { hugePage: '2M' });
    assert.equal(dma.size, 4n * MiB);
    assert.equal(dma.pageSize, 2n * MiB);
    if (t.traits.noiommu && (dev.backend.kind === 'cdev' || t.traits.sysAdmin)) {
      for (const s of dma.segments()) assert.equal(s.phys % (2n * MiB), 0n, 'huge pages are 2 MiB aligned physically');
    }
  });
});

import assert from 'node:assert/strict';
import { profiles } from '../../../lib/model';
import { MAP_HUGETLB } from '../../../lib/sys/constants';
import { U64_MAX } from '../../../lib/uapi/codec';
import { IOMMU_IOAS_NOIOMMU_GET_PA, IommuIoasNoiommuGetPa } from '../../../lib/uapi/iommufd';
import { Harness, MiB, expectErrno } from '../harness';
import { harnessWithIoas } from './fixtures';

/** A noiommu IOAS with a device attached and `length` bytes of memory mapped at `iova`. */
function setup(length: bigint, flags = 0, profile: ConstructorParameters<typeof Harness>[0] = 'linux-7.3-noiommu') {
  const { h, ioas } = harnessWithIoas(profile);
  h.ctx.attachDevice(h.bind(), ioas);
  const m = h.anon(length, flags);
  const iova = h.map(ioas, m.address, length, 0x100_0000n);
  return { h, ioas, m, iova };
}

describe('IOMMU_IOAS_NOIOMMU_GET_PA (iommufd_ioas_noiommu_get_pa, iopt_get_phys)', () => {
  it('iommufd_ioas_noiommu_get_pa: no CAP_SYS_RAWIO → EPERM, checked before anything else', () => {
    const h = new Harness('unprivileged');
    expectErrno('EPERM', () => h.call(IOMMU_IOAS_NOIOMMU_GET_PA, IommuIoasNoiommuGetPa, { flags: 1, length: 0n, ioas_id: 77 }));
  });

  it('iommufd_ioas_noiommu_get_pa: flags or __reserved → EOPNOTSUPP (before the length check)', () => {
    const h = new Harness();
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_IOAS_NOIOMMU_GET_PA, IommuIoasNoiommuGetPa, { flags: 1, length: 0n }));
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_IOAS_NOIOMMU_GET_PA, IommuIoasNoiommuGetPa, { __reserved: 1, length: 0n }));
  });

  it('iommufd_ioas_noiommu_get_pa: length 0 → EINVAL; iova ≥ ULONG_MAX → EOVERFLOW; then the IOAS lookup', () => {
    const h = new Harness();
    expectErrno('EINVAL', () => h.getPa(77, 0x1000n, 0n));
    expectErrno('EOVERFLOW', () => h.getPa(77, U64_MAX, 4096n));
    expectErrno('ENOENT', () => h.getPa(77, 0x1000n, 4096n));
  });

  it('iopt_get_phys: no area at the IOVA → ENOENT', () => {
    const { h, ioas, iova } = setup(1n * MiB);
    expectErrno('ENOENT', () => h.getPa(ioas, iova + 1n * MiB, 4096n));
    expectErrno('ENOENT', () => h.getPa(ioas, iova - 1n, 4096n));
  });

  it('iopt_get_phys: an area without the noiommu storage domain → EOPNOTSUPP (no device yet, or after detach)', () => {
    const { h, ioas } = harnessWithIoas();
    const m = h.anon(1n * MiB);
    const iova = h.map(ioas, m.address, 1n * MiB);
    expectErrno('EOPNOTSUPP', () => h.getPa(ioas, iova, 4096n));
    const dev = h.bind();
    h.ctx.attachDevice(dev, ioas);
    assert.ok(h.getPa(ioas, iova, 4096n).phys > 0n);
    h.ctx.detachDevice(dev);
    expectErrno('EOPNOTSUPP', () => h.getPa(ioas, iova, 4096n));
  });

  it('iopt_get_phys: a VT-d domain is not the noiommu domain → EOPNOTSUPP', () => {
    const base = profiles['linux-7.3-iommu'];
    const { h, ioas } = harnessWithIoas({ ...base, noiommu: true });
    h.ctx.attachDevice(h.bind('0000:00:03.0', 1), ioas);
    const m = h.anon(1n * MiB);
    const iova = h.map(ioas, m.address, 1n * MiB);
    expectErrno('EOPNOTSUPP', () => h.getPa(ioas, iova, 4096n));
  });

  it('iopt_get_phys: returns the frame behind the IOVA — DMA there reaches the mapping bytes', () => {
    const { h, ioas, m, iova } = setup(64n * 1024n);
    const view = new Uint8Array(m.buffer!);
    view[0x3456] = 0xab;
    const { phys } = h.getPa(ioas, iova + 0x3456n, 1n);
    assert.equal(h.kernel.memory.dmaRead(phys, 1)[0], 0xab);
    h.kernel.memory.dmaWrite(phys, Uint8Array.of(0xcd));
    assert.equal(view[0x3456], 0xcd);
  });

  it('iopt_get_phys: one huge page is one contiguous run; the length stops at the area end', () => {
    const { h, ioas, iova } = setup(2n * MiB, MAP_HUGETLB);
    const whole = h.getPa(ioas, iova, 4n * MiB);
    assert.equal(whole.length, 2n * MiB);
    const mid = h.getPa(ioas, iova + 0x1800n, U64_MAX - 1n);
    assert.equal(mid.length, 2n * MiB - 0x1800n);
    assert.equal(mid.phys, whole.phys + 0x1800n);
  });

  it('iopt_get_phys: the length is capped by the request and starts with the rest of the page', () => {
    const { h, ioas, iova } = setup(2n * MiB, MAP_HUGETLB);
    assert.equal(h.getPa(ioas, iova, 5000n).length, 5000n);
    assert.equal(h.getPa(ioas, iova + 0x800n, 0x100n).length, 0x100n);
    assert.equal(h.getPa(ioas, iova + 0x800n, 0x800n).length, 0x800n);
    assert.equal(h.getPa(ioas, iova + 0x800n, 0x801n).length, 0x801n);
  });

  it('iopt_get_phys: never crosses into an adjacent area, even a physically contiguous one', () => {
    const { h, ioas } = harnessWithIoas();
    h.ctx.attachDevice(h.bind(), ioas);
    const m = h.anon(2n * MiB, MAP_HUGETLB);
    h.map(ioas, m.address, 1n * MiB, 0x100_0000n);
    h.map(ioas, m.address + 1n * MiB, 1n * MiB, 0x110_0000n);
    const r = h.getPa(ioas, 0x100_0000n, 2n * MiB);
    assert.equal(r.length, 1n * MiB);
    const r2 = h.getPa(ioas, 0x110_0000n, 2n * MiB);
    assert.equal(r2.phys, r.phys + 1n * MiB, 'the second area is physically adjacent');
  });

  it('iopt_get_phys: with fragmented 4 KiB frames the runs follow the frames (checked against pagemap)', () => {
    const base = profiles['linux-7.3-noiommu'];
    const { h, ioas, m, iova } = setup(256n * 1024n, 0, { ...base, memory: { ...base.memory, fragmentation: 0.7 } });
    const pages = 64;
    const pagemap = h.kernel.open('/proc/self/pagemap', 0);
    const entries = Buffer.alloc(pages * 8);
    h.kernel.pread(pagemap, entries, (m.address / 4096n) * 8n);
    const pfns = Array.from({ length: pages }, (_, i) => entries.readBigUInt64LE(i * 8) & ((1n << 55n) - 1n));
    for (let i = 0; i < pages; i++) {
      let run = 1;
      while (i + run < pages && pfns[i + run] === pfns[i]! + BigInt(run)) run++;
      const r = h.getPa(ioas, iova + BigInt(i) * 4096n, 1n << 40n);
      assert.equal(r.phys, pfns[i]! * 4096n);
      assert.equal(r.length, BigInt(run) * 4096n, `page ${i}`);
    }
  });
});

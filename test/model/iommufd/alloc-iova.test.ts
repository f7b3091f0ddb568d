import assert from 'node:assert/strict';
import { profiles } from '../../../lib/model';
import { IOMMU_IOAS_ALLOW_IOVAS, IommuIoasAllowIovas, IommuIovaRange } from '../../../lib/uapi/iommufd';
import { Harness, MiB, expectErrno } from '../harness';
import { harnessWithIoas } from './fixtures';

/** An address with nothing behind it: IOAS_MAP without a domain does not pin, so any VA works. */
const VA_1G = 0x7f00_4000_0000n;

describe('iopt_alloc_iova: automatic IOVA choice', () => {
  it('iopt_alloc_iova: never returns IOVA 0 — the search starts at PAGE_SIZE', () => {
    const { h, ioas } = harnessWithIoas();
    assert.equal(h.map(ioas, VA_1G + 0x5000n, 4096n), 0x1000n);
  });

  it('iopt_alloc_iova: alignment is roundup_pow_of_two(length) when the user VA is more aligned', () => {
    const { h, ioas } = harnessWithIoas();
    assert.equal(h.map(ioas, VA_1G, 0x10000n), 0x10000n);
    assert.equal(h.map(ioas, VA_1G, 0x3000n), 0x4000n, '0x3000 rounds up to a 0x4000 alignment');
  });

  it('iopt_alloc_iova: alignment is capped by the lowest set bit of the user VA', () => {
    const { h, ioas } = harnessWithIoas();
    assert.equal(h.map(ioas, VA_1G + 0x1000n, 0x10000n), 0x1000n);
    assert.equal(h.map(ioas, VA_1G + 0x2000n, 0x10000n), 0x12000n);
  });

  it('iopt_alloc_iova: alignment is capped at HPAGE_SIZE (2 MiB) with CONFIG_TRANSPARENT_HUGEPAGE', () => {
    const { h, ioas } = harnessWithIoas();
    assert.equal(h.map(ioas, VA_1G, 8n * MiB), 2n * MiB);
    const base = profiles['linux-7.3-noiommu'];
    const noThp = new Harness({ ...base, config: { ...base.config, TRANSPARENT_HUGEPAGE: false } });
    const ioas2 = noThp.ioasAlloc();
    assert.equal(noThp.map(ioas2, VA_1G, 8n * MiB), 0x1000n, 'without THP the cap is PAGE_SIZE');
  });

  it('iopt_alloc_iova: the offset of the user VA in its page is kept in the IOVA', () => {
    const { h, ioas } = harnessWithIoas();
    assert.equal(h.map(ioas, VA_1G + 0x1234n, 0x100n), 0x1234n);
  });

  it('iopt_alloc_iova: first fit from the bottom, skipping areas; freed holes are reused', () => {
    const { h, ioas } = harnessWithIoas();
    const a = h.map(ioas, VA_1G + 0x1000n, 0x1000n);
    const b = h.map(ioas, VA_1G + 0x1000n, 0x1000n);
    const c = h.map(ioas, VA_1G + 0x1000n, 0x1000n);
    assert.deepEqual([a, b, c], [0x1000n, 0x2000n, 0x3000n]);
    h.unmap(ioas, b, 0x1000n);
    assert.equal(h.map(ioas, VA_1G + 0x1000n, 0x1000n), 0x2000n);
  });

  it('iopt_alloc_iova: an aligned candidate must fit in the hole, else the next hole is tried', () => {
    const { h, ioas } = harnessWithIoas();
    h.map(ioas, VA_1G, 0x1000n, 0x11000n);
    // Hole [0x1000, 0x10fff] holds 0x10000 bytes only at 0x1000, which is not 64 KiB aligned.
    assert.equal(h.map(ioas, VA_1G, 0x10000n), 0x20000n);
  });

  it('__alloc_iova_check_range: a hole exactly as long as a 1-byte mapping is skipped (aligned_start >= last)', () => {
    const { h, ioas } = harnessWithIoas();
    h.map(ioas, VA_1G, 0x1000n, 0x1000n);
    h.map(ioas, VA_1G, 0x1000n, 0x2001n);
    // The one-byte hole at 0x2000 is refused; the next hole starts after 0x3000.
    assert.equal(h.map(ioas, VA_1G, 1n), 0x3001n);
  });

  it('iopt_alloc_iova: alignment below the IOAS iova_alignment → EINVAL', () => {
    const { h, ioas } = harnessWithIoas();
    h.ctx.attachDevice(h.bind(), ioas);
    const m = h.anon(1n * MiB);
    expectErrno('EINVAL', () => h.map(ioas, m.address + 0x800n, 0x1000n));
  });

  it('iopt_alloc_iova: length ≥ ULONG_MAX / 2 → EOVERFLOW', () => {
    const { h, ioas } = harnessWithIoas();
    expectErrno('EOVERFLOW', () => h.map(ioas, 0x1000n, 1n << 63n));
  });

  it('iopt_alloc_iova: allowed ranges restrict the search; no room → ENOSPC', () => {
    const { h, ioas } = harnessWithIoas();
    const mem = h.anon(4096n);
    const buf = new Uint8Array(mem.buffer!);
    IommuIovaRange.encode({ start: 0x40_0000n, last: 0x40_ffffn }, buf, 0);
    IommuIovaRange.encode({ start: 0x41_0000n, last: 0x41_ffffn }, buf, 16);
    h.call(IOMMU_IOAS_ALLOW_IOVAS, IommuIoasAllowIovas, { ioas_id: ioas, num_iovas: 2, allowed_iovas: mem.address });
    // Adjacent allowed ranges form one span: a 0x20000 mapping fits across them.
    assert.equal(h.map(ioas, VA_1G, 0x20000n), 0x40_0000n);
    expectErrno('ENOSPC', () => h.map(ioas, VA_1G, 0x1000n));
  });

  it('iopt_alloc_iova: reserved IOVA (VT-d MSI window) is never handed out', () => {
    const { h, ioas } = harnessWithIoas('linux-7.3-iommu');
    h.ctx.attachDevice(h.bind('0000:00:03.0', 1), ioas);
    const mem = h.anon(4096n);
    // Allow only a window straddling nothing but the space right below the MSI window.
    IommuIovaRange.encode({ start: 0xfed0_0000n, last: 0xfedf_ffffn }, new Uint8Array(mem.buffer!));
    h.call(IOMMU_IOAS_ALLOW_IOVAS, IommuIoasAllowIovas, { ioas_id: ioas, num_iovas: 1, allowed_iovas: mem.address });
    const m = h.anon(1n * MiB);
    assert.equal(h.map(ioas, m.address, 1n * MiB), 0xfed0_0000n);
    expectErrno('ENOSPC', () => h.map(ioas, m.address, 1n * MiB));
  });
});

/**
 * Ioas.unmap and the kernel agree on which areas exist, also when an unmap fails half-way.
 *
 * Linux's iopt_unmap_iova_range walks the areas of the range in IOVA order and unmaps each one
 * that lies fully inside it; at the first area that sticks out of the range it stops with ENOENT,
 * keeping what it already unmapped. A handle that missed that would later unmap whatever reused
 * its IOVA: on noiommu, a live DMA buffer's pinned pages. These tests run on the model and, in the
 * lab, on the real kernel, which is where the first one pins the kernel's behaviour down.
 */
import assert from 'node:assert/strict';
import { Iommufd } from '../../lib/iommu/iommufd';
import type { Ioas } from '../../lib/iommu/ioas';
import { DmaBuffer } from '../../lib/dma/buffer';
import * as io from '../../lib/ioctl/iommufd-ioctls';
import { isVfioError } from '../../lib/sys/errors';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../lib/sys/constants';
import { iova, type Iova, type UserVa } from '../../lib/sys/addresses';
import type { Kernel, Mapping } from '../../lib/sys/kernel';
import { describeOnTargets, skipUnless, type ApiTarget } from './support/targets';

const BASE = 0x4000_0000n;

describeOnTargets('Ioas.unmap keeps the handles in line with the kernel', (target) => {
  let t: ApiTarget;
  let page: bigint;
  let memory: Mapping;
  let iommufd: Iommufd;
  let ioas: Ioas;

  beforeEach(function () {
    t = target();
    skipUnless(this, t.traits.cdev, 'needs iommufd');
    page = BigInt(t.kernel.pageSize);
    memory = t.kernel.mmap(-1, 8n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
    iommufd = Iommufd.open({ kernel: t.kernel });
    ioas = iommufd.ioas();
  });

  afterEach(function () {
    iommufd?.close();
    if (memory) t.kernel.munmap(memory);
  });

  const va = (pages: bigint) => (memory.address + pages * page) as UserVa;
  const at = (pages: bigint) => iova(BASE + pages * page);
  /** Maps `pages` pages at page `first` behind the typed API's back (an area no handle owns). */
  function rawMap(kernel: Kernel, first: bigint, pages: bigint): void {
    io.ioasMap(kernel, iommufd.fd, {
      ioasId: ioas.id,
      userVa: va(first),
      length: pages * page,
      iova: at(first),
      readable: true,
      writable: true,
    });
  }
  function rawUnmap(first: bigint, pages: bigint): bigint {
    return io.ioasUnmap(t.kernel, iommufd.fd, ioas.id, { iova: at(first), length: pages * page });
  }
  /** Whether the kernel holds an area at IOVA `where` (a fixed map of one page there is EEXIST). */
  function occupied(where: Iova): boolean {
    try {
      io.ioasMap(t.kernel, iommufd.fd, { ioasId: ioas.id, userVa: va(7n), length: page, iova: where, readable: true, writable: true });
    } catch (e) {
      if (isVfioError(e, 'EEXIST')) return true;
      throw e;
    }
    io.ioasUnmap(t.kernel, iommufd.fd, ioas.id, { iova: where, length: page });
    return false;
  }

  it('the kernel unmaps the areas before one the range splits, then stops with ENOENT', function () {
    rawMap(t.kernel, 0n, 1n);
    rawMap(t.kernel, 1n, 2n);
    assert.throws(
      () => rawUnmap(0n, 2n),
      (e: unknown) => isVfioError(e, 'ENOENT'),
      'the range covers half of the second area',
    );
    assert.throws(
      () => rawUnmap(0n, 1n),
      (e: unknown) => isVfioError(e, 'ENOENT'),
      'the first area, fully covered, is gone',
    );
    assert.equal(rawUnmap(1n, 2n), 2n * page, 'the split area is intact');
  });

  it('refuses a range that covers part of a mapping before the kernel acts, so a later close cannot unmap a live DmaBuffer', function () {
    const a = ioas.map({ va: va(0n), length: page }, { iova: at(0n) });
    const b = ioas.map({ va: va(1n), length: 2n * page }, { iova: at(1n) });
    assert.throws(
      () => ioas.unmap({ iova: a.iova, length: 2n * page }),
      (e: unknown) => isVfioError(e, 'ERR_VFIO_PARTIAL_UNMAP') && /IOVA 0x/.test(e.message),
    );
    assert.equal(a.closed, false);
    assert.ok(occupied(a.iova) && occupied(b.iova), 'nothing was unmapped');
    using buffer = DmaBuffer.allocate(page, { space: ioas });
    a.close();
    assert.ok(occupied(buffer.iova!), "closing A unmapped A, not the buffer's area");
    assert.equal(occupied(a.iova), false);
    b.close();
  });

  it('after a failure it cannot foresee (an area no handle owns is split), forgets the handles of the areas the kernel removed', function () {
    const c = ioas.map({ va: va(0n), length: page }, { iova: at(0n) });
    rawMap(t.kernel, 1n, 2n);
    assert.throws(
      () => ioas.unmap({ iova: at(0n), length: 2n * page }),
      (e: unknown) => isVfioError(e, 'ENOENT'),
    );
    assert.equal(c.closed, true, "the kernel removed C's area, so its handle is gone too");
    using reuse = DmaBuffer.allocate(page, { space: ioas, iova: at(0n) });
    c.close();
    assert.ok(occupied(at(0n)), "the area that reused C's IOVA survives C's close");
    assert.equal(rawUnmap(1n, 2n), 2n * page);
    assert.equal(reuse.iova, at(0n));
  });

  it('after a failure that stops before an owned area, keeps that handle: the kernel kept its area', function () {
    rawMap(t.kernel, 0n, 2n);
    const d = ioas.map({ va: va(2n), length: page }, { iova: at(2n) });
    const e2 = ioas.map({ va: va(4n), length: page }, { iova: at(4n) });
    assert.throws(
      () => ioas.unmap({ iova: at(1n), length: 2n * page }),
      (e: unknown) => isVfioError(e, 'ENOENT'),
    );
    assert.equal(d.closed, false);
    assert.ok(occupied(d.iova), 'the handle and the kernel agree');
    d.close();
    assert.equal(occupied(d.iova), false, 'and closing the handle unmaps its area');
    assert.equal(e2.closed, false, 'a mapping outside the range is untouched');
    assert.ok(occupied(e2.iova));
    assert.equal(rawUnmap(0n, 2n), 2n * page);
  });
});

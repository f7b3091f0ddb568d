/**
 * Ioas.segments over a physically scattered mapping: the kernel's run walk (the addon's
 * ioctlRuns, one call for many GET_PA answers) gives exactly what one GET_PA per page says, and
 * what the same walk over plain `ioctl` gives (the path any kernel without ioctlRuns takes).
 */
import { withoutRunWalk } from '../../lib/ioctl/ioctl-runs';
import assert from 'node:assert/strict';
import { openDevice } from '../../lib/vfio/open-device';
import type { Kernel } from '../../lib/sys/kernel';
import { MAP_SHARED, MFD_CLOEXEC, PROT_READ, PROT_WRITE } from '../../lib/sys/constants';
import type { Iova } from '../../lib/sys/addresses';
import { PhysicalAddressLookup } from '../../lib/ioctl/iommufd-ioctls';
import { describeOnTargets, skipUnless } from './support/targets';

const BATCH = 7;

describeOnTargets('Ioas.segments over a scattered mapping', (target) => {
  it('the run walk agrees with one GET_PA per page and with the walk over plain ioctl, across batch boundaries', function () {
    const t = target();
    skipUnless(
      this,
      t.traits.noiommu && t.traits.cdev && t.traits.rawio,
      'GET_PA answers only for a noiommu cdev device, with CAP_SYS_RAWIO',
    );
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const ioas = dev.ioas!;
    const page = BigInt(t.kernel.pageSize);
    // 1100 pages; Ioas.segments walks in batches of 512 answers (a real kernel scatters these pages
    // one answer per page), the comparison below in batches of 7.
    const pages = 1100;
    const length = BigInt(pages) * page;
    // Two shmem files faulted in page by page in turns, so neighbouring pages get distant frames.
    const fds = [t.kernel.memfdCreate('runs-a', MFD_CLOEXEC), t.kernel.memfdCreate('runs-b', MFD_CLOEXEC)];
    for (const fd of fds) t.kernel.ftruncate(fd, length);
    const maps = fds.map((fd) => t.kernel.mmap(fd, length, PROT_READ | PROT_WRITE, MAP_SHARED, 0n));
    try {
      const bytes = maps.map((m) => new Uint8Array(m.buffer!));
      for (let p = 0; p < pages; p++) for (const b of bytes) b[p * t.kernel.pageSize] = 1;
      using mapping = ioas.map({ va: maps[0]!.address, length });
      const walked = ioas.segments(mapping.iova, length);
      const perPage: bigint[] = [];
      for (let p = 0n; p < BigInt(pages); p++) perPage.push(ioas.getPhysicalAddress((mapping.iova + p * page) as Iova, page).phys);
      let at = 0;
      for (const s of walked) {
        for (let off = 0n; off < s.length; off += page, at++) assert.equal(s.phys + off, perPage[at], `page ${at}`);
      }
      assert.equal(at, pages, 'the segments cover every page once');
      const answers = (kernel: Kernel) => {
        const out: bigint[][] = [];
        new PhysicalAddressLookup(BATCH).walk(kernel, dev.iommufd!.fd, ioas.id, mapping.iova, length, (iova, phys, n) =>
          out.push([iova, phys, n]),
        );
        return out;
      };
      const plain = answers(withoutRunWalk(t.kernel));
      assert.deepEqual(answers(t.kernel), plain, 'each answer the same');
      assert.ok(plain.length >= walked.length);
      // Faulted in turns, the pages are scattered: the walk took several batches and a partial one.
      assert.ok(plain.length > 3 * BATCH && plain.length % BATCH !== 0, `${plain.length} GET_PA answers for ${pages} pages`);
    } finally {
      for (const m of maps) t.kernel.munmap(m);
      for (const fd of fds) t.kernel.close(fd);
    }
  });
});

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
import { IOMMU_IOAS_NOIOMMU_GET_PA, IommuIoasNoiommuGetPa } from '../../lib/uapi/iommufd';
import { describeOnTargets, skipUnless } from './support/targets';

/** GET_PA answers per call into the addon in the comparison (raised by one while it divides their count). */
const FIRST_BATCH = 7;

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
    // one answer per page), the comparison below in batches of 7 or a few more.
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
      for (let i = 1; i < walked.length; i++) {
        assert.notEqual(
          walked[i - 1]!.phys + walked[i - 1]!.length,
          walked[i]!.phys,
          `segments ${i - 1} and ${i} are adjacent and were not joined`,
        );
      }
      const answers = (kernel: Kernel, batch: number) => {
        const out: bigint[][] = [];
        new PhysicalAddressLookup(batch).walk(kernel, dev.iommufd!.fd, ioas.id, mapping.iova, length, (iova, phys, n) =>
          out.push([iova, phys, n]),
        );
        return out;
      };
      // How many answers there are is the pages' layout (a physically adjacent pair is one answer):
      // the batch is chosen for it, so that the walk takes several full batches and a partial one.
      const count = answers(withoutRunWalk(t.kernel), FIRST_BATCH).length;
      let batch = FIRST_BATCH;
      while (count % batch === 0) batch++;
      assert.ok(count > 3 * batch, `${count} GET_PA answers for ${pages} pages: the pages were not scattered`);
      const plain = answers(withoutRunWalk(t.kernel), batch);
      assert.equal(plain.length, count, 'the answers do not depend on the batch');
      assert.deepEqual(answers(t.kernel, batch), plain, 'each answer the same');
      assert.ok(plain.length >= walked.length);
    } finally {
      for (const m of maps) t.kernel.munmap(m);
      for (const fd of fds) t.kernel.close(fd);
    }
  });
});

describe('PhysicalAddressLookup.segmentTable joins adjacent answers', () => {
  // A kernel that answers GET_PA from a script, so the join is checked where real memory rarely
  // goes: a physical run ending exactly at a 4 GiB boundary, and answers split across batches.
  function scriptedKernel(answers: [bigint, bigint][]): Kernel {
    const S = IommuIoasNoiommuGetPa;
    let next = 0;
    // Only ioctl: the walk takes the library's own loop (lib/ioctl/ioctl-runs.ts), the one the model and traced kernels use.
    const ioctl = (_fd: number, request: number, arg: Uint8Array | number | null) => {
      assert.equal(request, IOMMU_IOAS_NOIOMMU_GET_PA.number);
      const view = new DataView((arg as Uint8Array).buffer, (arg as Uint8Array).byteOffset);
      const [phys, n] = answers[next++]!;
      assert.ok(n <= view.getBigUint64(S.offsetOf('length'), true), 'the script answers within the range asked');
      view.setBigUint64(S.offsetOf('out_phys'), phys, true);
      view.setBigUint64(S.offsetOf('length'), n, true);
      return 0;
    };
    return { ioctl } as unknown as Kernel;
  }
  const page = 0x1000n;

  it('joins across the 32-bit carry and across batches, and keeps runs apart that only touch in IOVA', () => {
    const answers: [bigint, bigint][] = [
      [0xffff_e000n, page],
      [0xffff_f000n, page], // ends at 4 GiB: the next answer continues it
      [0x1_0000_0000n, 2n * page],
      [0x5000n, page], // continues neither
      [0x2_ffff_f000n, page],
      [0x3_0000_0000n, page], // a carry into a high word that is not zero
      [0x1_0000_0000n, page], // behind the last segment's start, not after its end
    ];
    const total = answers.reduce((sum, [, n]) => sum + n, 0n);
    const table = new PhysicalAddressLookup(2).segmentTable(scriptedKernel(answers), 3, 1, 0x10000n as Iova, total);
    const segments = table.toArray();
    assert.equal(table.count, 4);
    assert.deepEqual([table.iova(3), table.phys(3), table.length(3)], [0x17000n, 0x1_0000_0000n, page]);
    assert.throws(() => table.phys(4), { name: 'RangeError', message: /segment 4 is not in the table \(it has 4\)/ });
    assert.throws(() => table.length(-1), RangeError);
    // One answer per batch: every join is then one across batches (PhysicalSegmentTable.commit).
    assert.deepEqual(new PhysicalAddressLookup(1).segmentTable(scriptedKernel(answers), 3, 1, 0x10000n as Iova, total).toArray(), segments);
    assert.deepEqual(
      segments.map((s) => [s.iova, s.phys, s.length]),
      [
        [0x10000n, 0xffff_e000n, 4n * page],
        [0x14000n, 0x5000n, page],
        [0x15000n, 0x2_ffff_f000n, 2n * page],
        [0x17000n, 0x1_0000_0000n, page],
      ],
    );
  });

  it('an answer whose length is past 2^32 joins by its full length', () => {
    const big = 0x1_0000_1000n;
    const answers: [bigint, bigint][] = [
      [0x8000_0000n, big],
      [0x8000_0000n + big, page],
    ];
    const segments = new PhysicalAddressLookup().segmentTable(scriptedKernel(answers), 3, 1, 0n as Iova, big + page).toArray();
    assert.deepEqual(
      segments.map((s) => [s.iova, s.phys, s.length]),
      [[0n, 0x8000_0000n, big + page]],
    );
  });
});

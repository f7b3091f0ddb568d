/**
 * fail_nth over a typical iommufd session: for N = 1, 2, ... the Nth injection site fails, and
 * whatever step that breaks must leave no reserved-but-unpublished IDs, no pins beyond the loaded
 * areas, and nothing pinned or charged once the iommufd is closed.
 */
import assert from 'node:assert/strict';
import { profiles } from '../../../lib/model';
import type { IoPages } from '../../../lib/model/iommufd/pinned-pages';
import { IOMMU_IOAS_COPY, IommuIoasCopy } from '../../../lib/uapi/iommufd';
import { Harness, MiB, RW } from '../harness';

const base = profiles['linux-7.3-noiommu'];
const CHARGED = { ...base, process: { ...base.process, capabilities: { ...base.process.capabilities, ipcLock: false } } };

function session(h: Harness): void {
  const ioas = h.ioasAlloc();
  const other = h.ioasAlloc();
  const dev = h.bind('0000:00:03.0');
  const m = h.anon(1n * MiB);
  const a = h.map(ioas, m.address, 64n * 1024n);
  h.ctx.attachDevice(dev, ioas);
  h.map(ioas, m.address + 64n * 1024n, 16n * 1024n, 0x4000_0000n);
  h.ctx.attachDevice(h.bind('0000:00:04.0'), other);
  h.call(IOMMU_IOAS_COPY, IommuIoasCopy, { dst_ioas_id: other, src_ioas_id: ioas, flags: RW, length: 0x4000n, src_iova: a });
  h.getPa(ioas, a, 1n << 20n);
  h.unmap(ioas, 0x4000_0000n, 16n * 1024n);
  h.ctx.replaceDevice(dev, other);
}

function pinnedByAreas(h: Harness): number {
  const covered = new Map<IoPages, Set<number>>();
  for (const obj of h.ctx.objects.objects()) {
    if (obj.type !== 'ioas') continue;
    for (const { value: area } of h.ctx.getIoas(obj.id).iopt.areas) {
      if (!area.storageDomain) continue;
      let set = covered.get(area.pages);
      if (!set) covered.set(area.pages, (set = new Set()));
      for (let i = area.firstIndex; i <= area.lastIndex; i++) set.add(i);
    }
  }
  let n = 0;
  for (const set of covered.values()) n += set.size;
  return n;
}

describe('fail_nth: every injected failure unwinds completely', () => {
  it('iommufd_should_fail sites (allocations ENOMEM, lookups ENOENT, pins EFAULT, reserved regions EINVAL)', () => {
    let n = 1;
    let failures = 0;
    for (; n < 500; n++) {
      const h = new Harness(CHARGED);
      h.kernel.faults.failNth(n);
      let error: unknown = null;
      try {
        session(h);
      } catch (e) {
        error = e;
      }
      const fired = h.kernel.faults.fired;
      h.kernel.faults.failNth(0);
      if (!fired) {
        assert.equal(error, null, 'the session succeeds when no fault fires');
        break;
      }
      failures++;
      assert.ok(error, `site ${n} fired but the session did not fail`);
      assert.ok(['ENOMEM', 'ENOENT', 'EFAULT', 'EINVAL'].includes((error as { code: string }).code), String(error as Error));
      assert.equal(h.ctx.objects.size, h.ctx.objects.objects().length, `site ${n}: an ID stayed reserved`);
      assert.equal(h.kernel.locked.pinnedPages, pinnedByAreas(h), `site ${n}: pins do not match the loaded areas`);
      assert.equal(h.kernel.locked.userLockedPages, h.kernel.locked.pinnedPages, `site ${n}: RLIMIT accounting drifted`);
      h.kernel.close(h.fd);
      assert.equal(h.kernel.locked.pinnedPages, 0, `site ${n}: pages still pinned after close`);
      assert.equal(h.kernel.locked.userLockedPages, 0);
    }
    assert.ok(failures > 10, `the session passes through ${failures} injection sites`);
  });
});

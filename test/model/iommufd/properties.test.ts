/**
 * Property tests: random sequences of IOAS operations checked against a plain reference model
 * (sorted lists, linear scans) and against the invariants the kernel keeps.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IntervalTree } from '../../../lib/model/structures/interval-tree';
import { Prng } from '../../../lib/model/memory/prng';
import type { Area } from '../../../lib/model/iommufd/io-pagetable';
import type { IoPages } from '../../../lib/model/iommufd/pinned-pages';
import { U64_MAX } from '../../../lib/uapi/codec';
import { IOMMU_IOAS_COPY, IommuIoasCopy } from '../../../lib/uapi/iommufd';
import { profiles } from '../../../lib/model';
import { Harness, RW } from '../harness';
import { harnessWithIoas } from './fixtures';

const PAGE = 4096n;
/** Root with CAP_SYS_RAWIO but without CAP_IPC_LOCK, so every pin is charged to RLIMIT_MEMLOCK. */
const base = profiles['linux-7.3-noiommu'];
const CHARGED = { ...base, process: { ...base.process, capabilities: { ...base.process.capabilities, ipcLock: false } } };

interface RefArea {
  start: bigint;
  last: bigint;
}

/** iopt_alloc_iova by a linear scan over sorted areas: the reference for the tree search. */
function referenceAllocIova(areas: RefArea[], addr: bigint, length: bigint, iovaAlignment: bigint): bigint | 'EINVAL' | 'ENOSPC' {
  let align = 1n;
  while (align < length) align <<= 1n;
  if (addr !== 0n && (addr & -addr) < align) align = addr & -addr;
  if (align >= 2n << 20n) align = 2n << 20n;
  if (align < iovaAlignment) return 'EINVAL';
  const pageOffset = addr % PAGE;
  const fit = (start: bigint, last: bigint): bigint | null => {
    const a = ((start + align - 1n) & ~(align - 1n)) | pageOffset;
    if (a >= last || last - a < length - 1n) return null;
    return a;
  };
  const spanStart = fit(PAGE, U64_MAX - PAGE);
  if (spanStart === null) return 'ENOSPC';
  const sorted = [...areas].sort((x, y) => (x.start < y.start ? -1 : 1));
  let cur = spanStart;
  for (const a of sorted) {
    if (a.last < cur) continue;
    if (a.start > cur) {
      const r = fit(cur, a.start - 1n);
      if (r !== null) return r;
    }
    cur = a.last + 1n;
  }
  const r = fit(cur, U64_MAX - PAGE);
  return r ?? 'ENOSPC';
}

/**
 * iopt_get_phys page by page, as the kernel loop walks it, reading the frames the area's pages
 * are pinned to (independent of the translation the model records for GET_PA).
 */
function referenceGetPhys(area: Area, iova: bigint, maxLength: bigint): { phys: bigint; length: bigint } {
  const physOf = (at: bigint) => {
    const byte = at - area.iova + BigInt(area.pageOffset);
    return BigInt(area.pages.frame(area.firstIndex + Number(byte / PAGE))) * PAGE + (byte % PAGE);
  };
  const phys = physOf(iova);
  let length = PAGE - (iova % PAGE);
  if (area.last - iova + 1n < length) length = area.last - iova + 1n;
  let cur = iova;
  let curPhys = phys;
  while (cur < area.last) {
    if (length >= maxLength) break;
    const next = cur + PAGE;
    if (next > area.last) break;
    const nextPhys = physOf(next);
    if (nextPhys === 0n || nextPhys !== curPhys + PAGE) break;
    cur = next;
    curPhys += PAGE;
    length += PAGE;
  }
  if (length > maxLength) length = maxLength;
  return { phys, length };
}

type Op =
  | { kind: 'mapFixed'; slot: number; pages: number; bufPage: number }
  | { kind: 'mapAuto'; pages: number; bufPage: number; subPage: number }
  | { kind: 'unmap'; slot: number; pages: number }
  | { kind: 'unmapArea'; pick: number }
  | { kind: 'copy'; pick: number }
  | { kind: 'getPa'; pick: number; offset: number; cap: number }
  | { kind: 'attach' }
  | { kind: 'detach' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('mapFixed' as const),
    slot: fc.integer({ min: 1, max: 64 }),
    pages: fc.integer({ min: 1, max: 6 }),
    bufPage: fc.integer({ min: 0, max: 8 }),
  }),
  fc.record({
    kind: fc.constant('mapAuto' as const),
    pages: fc.integer({ min: 1, max: 6 }),
    bufPage: fc.integer({ min: 0, max: 8 }),
    subPage: fc.constantFrom(0, 0, 0x10, 0x800),
  }),
  fc.record({ kind: fc.constant('unmap' as const), slot: fc.integer({ min: 0, max: 64 }), pages: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constant('unmapArea' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('copy' as const), pick: fc.nat() }),
  fc.record({
    kind: fc.constant('getPa' as const),
    pick: fc.nat(),
    offset: fc.nat({ max: 6 * 4096 }),
    cap: fc.integer({ min: 1, max: 40000 }),
  }),
  fc.constant({ kind: 'attach' as const }),
  fc.constant({ kind: 'detach' as const }),
);

function errCode(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

describe('IOAS properties (fast-check against a reference model)', () => {
  it('random map/unmap/copy/get_pa/attach sequences keep the kernel invariants', function () {
    this.timeout(120_000);
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 3 }),
        fc.constantFrom(0.5, 0.7, 0.95),
        (ops, fragSeed, fragmentation) => {
          // From mostly contiguous frames to scattered ones: areas of one run and of many.
          const { h, ioas } = harnessWithIoas({ ...CHARGED, memory: { ...CHARGED.memory, fragmentation } });
          const other = h.ioasAlloc();
          const dev = h.bind('0000:00:03.0');
          h.ctx.attachDevice(h.bind('0000:00:04.0'), other);
          const buf = h.anon(16n * PAGE * BigInt(fragSeed + 1));
          const ref: RefArea[] = [];
          let attached = false;
          const iopt = () => h.ctx.getIoas(ioas).iopt;
          for (const op of ops) {
            switch (op.kind) {
              case 'mapFixed': {
                const iova = BigInt(op.slot) * PAGE;
                const length = BigInt(op.pages) * PAGE;
                const overlap = ref.some((a) => a.start <= iova + length - 1n && a.last >= iova);
                const code = errCode(() => h.map(ioas, buf.address + BigInt(op.bufPage) * PAGE, length, iova));
                if (overlap) assert.equal(code, 'EEXIST');
                else if (code === 'ENOMEM') break;
                else {
                  assert.equal(code, null);
                  ref.push({ start: iova, last: iova + length - 1n });
                }
                break;
              }
              case 'mapAuto': {
                const length = BigInt(op.pages) * PAGE - (op.subPage ? BigInt(op.subPage) : 0n);
                const addr = buf.address + BigInt(op.bufPage) * PAGE + BigInt(op.subPage);
                // With a domain, an unaligned length fails before any IOVA is chosen.
                const expected: bigint | string =
                  attached && length % PAGE !== 0n ? 'EINVAL' : referenceAllocIova(ref, addr, length, iopt().iovaAlignment);
                let got: bigint | string;
                try {
                  got = h.map(ioas, addr, length);
                } catch (e) {
                  got = (e as { code: string }).code;
                }
                if (got === 'ENOMEM') break;
                assert.equal(got, expected);
                if (typeof got === 'bigint') ref.push({ start: got, last: got + length - 1n });
                break;
              }
              case 'unmap': {
                const start = BigInt(op.slot) * PAGE;
                const last = start + BigInt(op.pages) * PAGE - 1n;
                const hit = ref.filter((a) => a.start <= last && a.last >= start).sort((x, y) => (x.start < y.start ? -1 : 1));
                const code = errCode(() => h.unmap(ioas, start, last - start + 1n));
                const firstBad = hit.findIndex((a) => a.start < start || a.last > last);
                if (hit.length === 0) assert.equal(code, 'ENOENT');
                else if (firstBad >= 0) {
                  assert.equal(code, 'ENOENT');
                  // Areas before the one sticking out were unmapped already.
                  for (const a of hit.slice(0, firstBad)) ref.splice(ref.indexOf(a), 1);
                } else {
                  assert.equal(code, null);
                  for (const a of hit) ref.splice(ref.indexOf(a), 1);
                }
                break;
              }
              case 'unmapArea': {
                if (ref.length === 0) break;
                const a = ref[op.pick % ref.length]!;
                assert.equal(h.unmap(ioas, a.start, a.last - a.start + 1n), a.last - a.start + 1n);
                ref.splice(ref.indexOf(a), 1);
                break;
              }
              case 'copy': {
                if (ref.length === 0) break;
                const a = ref[op.pick % ref.length]!;
                const code = errCode(() =>
                  h.call(IOMMU_IOAS_COPY, IommuIoasCopy, {
                    dst_ioas_id: other,
                    src_ioas_id: ioas,
                    flags: RW,
                    length: a.last - a.start + 1n,
                    src_iova: a.start,
                  }),
                );
                assert.ok(code === null || code === 'ENOMEM' || code === 'EINVAL' || code === 'ENOSPC', `copy: ${code}`);
                break;
              }
              case 'getPa': {
                if (ref.length === 0) break;
                const a = ref[op.pick % ref.length]!;
                const iova = a.start + BigInt(op.offset) > a.last ? a.start : a.start + BigInt(op.offset);
                const cap = BigInt(op.cap);
                let r: { phys: bigint; length: bigint } | string;
                try {
                  r = h.getPa(ioas, iova, cap);
                } catch (e) {
                  r = (e as { code: string }).code;
                }
                if (!attached) assert.equal(r, 'EOPNOTSUPP');
                else {
                  assert.ok(typeof r !== 'string', `get_pa: ${typeof r === 'string' ? r : ''}`);
                  assert.ok(r.length >= 1n && r.length <= cap, 'capped');
                  assert.ok(r.length <= a.last - iova + 1n, 'never crosses the area end');
                  assert.deepEqual(r, referenceGetPhys(iopt().areas.findValue(iova)!, iova, cap));
                }
                break;
              }
              case 'attach':
                if (!attached && errCode(() => h.ctx.attachDevice(dev, ioas)) === null) attached = true;
                break;
              case 'detach':
                h.ctx.detachDevice(dev);
                attached = false;
                break;
            }
            // Invariants after every step.
            iopt().checkInvariants();
            h.ctx.getIoas(other).iopt.checkInvariants();
            const areas = [...iopt().areas].map((n) => n.value);
            assert.deepEqual(
              areas.map((x) => [x.iova, x.last]),
              [...ref].sort((x, y) => (x.start < y.start ? -1 : 1)).map((x) => [x.start, x.last]),
            );
            // Pinned pages = per IoPages, the pages covered by at least one loaded area (both IOASes).
            const covered = new Map<IoPages, Set<number>>();
            for (const id of [ioas, other]) {
              for (const { value: x } of h.ctx.getIoas(id).iopt.areas) {
                if (!x.storageDomain) continue;
                let set = covered.get(x.pages);
                if (!set) covered.set(x.pages, (set = new Set()));
                for (let i = x.firstIndex; i <= x.lastIndex; i++) set.add(i);
              }
            }
            let expectedPinned = 0;
            for (const [pages, set] of covered) {
              assert.equal(pages.npinned, set.size);
              expectedPinned += set.size;
            }
            assert.equal(h.kernel.locked.pinnedPages, expectedPinned);
            assert.equal(h.kernel.locked.userLockedPages, expectedPinned, 'user-mode RLIMIT accounting matches the pins');
          }
          h.kernel.close(h.fd);
          assert.equal(h.kernel.locked.pinnedPages, 0);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('xa_alloc: IDs are always the lowest free number from 1, whatever the order of destroys', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant(-1), fc.nat({ max: 20 })), { maxLength: 80 }), (ops) => {
        const h = new Harness();
        const live = new Set<number>();
        for (const op of ops) {
          if (op === -1) {
            let lowest = 1;
            while (live.has(lowest)) lowest++;
            assert.equal(h.ioasAlloc(), lowest);
            live.add(lowest);
          } else if (live.size > 0) {
            const id = [...live][op % live.size]!;
            h.destroy(id);
            live.delete(id);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a failed command never leaks an ID (an attach that fails to pin aborts its automatic HWPT)', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { maxLength: 20 }), (fails) => {
        const { h, ioas } = harnessWithIoas();
        const bad = h.ioasAlloc();
        h.map(bad, 0x10_0000n, 4096n);
        fails.forEach((fail, i) => {
          let lowest = 1;
          while (h.ctx.objects.lookup(lowest)) lowest++;
          const dev = h.bind(`dev${i}`);
          assert.equal(dev, lowest);
          if (fail) assert.throws(() => h.ctx.attachDevice(dev, bad), { code: 'EFAULT' });
          else h.ctx.attachDevice(dev, ioas);
        });
      }),
      { numRuns: 50 },
    );
  });
});

describe('IntervalTree (the area/VMA index)', () => {
  it('random inserts/removes keep the tree invariants and hole summaries and agree with a linear scan', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: 300 }), fc.integer({ min: 1, max: 6 }), fc.boolean()), { maxLength: 200 }),
        fc.nat({ max: 300 }),
        fc.integer({ min: 1, max: 12 }),
        (ops, probe, minSize) => {
          const tree = new IntervalTree<number>();
          const ref: [number, number][] = [];
          for (const [start, len, insert] of ops) {
            const last = start + len - 1;
            if (insert) {
              if (ref.some(([s, l]) => s <= last && l >= start)) continue;
              tree.insert(BigInt(start), BigInt(last), start);
              ref.push([start, last]);
            } else {
              const i = ref.findIndex(([s]) => s === start);
              assert.equal(tree.remove(BigInt(start)), i >= 0);
              if (i >= 0) ref.splice(i, 1);
            }
          }
          tree.checkInvariants();
          ref.sort((a, b) => a[0] - b[0]);
          assert.equal(tree.size, ref.length);
          const containing = ref.find(([s, l]) => s <= probe && probe <= l);
          assert.equal(tree.find(BigInt(probe))?.value, containing?.[0]);
          // Holes of at least minSize in [0, 400], both directions, against a scan.
          const holes: [number, number][] = [];
          let cur = 0;
          for (const [s, l] of ref) {
            if (s > cur && s - cur >= minSize) holes.push([cur, s - 1]);
            cur = Math.max(cur, l + 1);
          }
          if (400 - cur + 1 >= minSize && cur <= 400) holes.push([cur, 400]);
          const asc = [...tree.holesAscending(0n, 400n, BigInt(minSize))].map((g) => [Number(g.start), Number(g.last)]);
          assert.deepEqual(asc, holes);
          const desc = [...tree.holesDescending(0n, 400n, BigInt(minSize))].map((g) => [Number(g.start), Number(g.last)]);
          assert.deepEqual(desc, [...holes].reverse());
        },
      ),
      { numRuns: 300 },
    );
  });

  it('at scale (tens of thousands of intervals, three levels): lookups and holes agree with a sorted array', function () {
    this.timeout(60_000);
    const rng = new Prng(42);
    const tree = new IntervalTree<number>();
    const ref = new Map<number, number>();
    // Keys above 2^53 exercise the exact tie-break behind the double keys.
    const base = 1n << 60n;
    const key = (slot: number) => base + BigInt(slot) * 16n;
    for (let round = 0; round < 60000; round++) {
      const slot = rng.below(40000);
      if (ref.has(slot) && rng.next() < 0.4) {
        assert.equal(tree.remove(key(slot)), true);
        ref.delete(slot);
      } else if (!ref.has(slot)) {
        const len = 1 + rng.below(15);
        tree.insert(key(slot), key(slot) + BigInt(len) - 1n, slot);
        ref.set(slot, len);
      }
    }
    tree.checkInvariants();
    const sorted = [...ref.keys()].sort((a, b) => a - b);
    assert.deepEqual(
      [...tree].map((n) => n.value),
      sorted,
    );
    for (let q = 0; q < 3000; q++) {
      const slot = rng.below(40000);
      const point = key(slot) + BigInt(rng.below(16));
      const containing = ref.has(slot) && point <= key(slot) + BigInt(ref.get(slot)!) - 1n ? slot : undefined;
      assert.equal(tree.find(point)?.value, containing);
      const nextSlot = sorted.find((x) => x > slot);
      assert.equal(tree.next(key(slot))?.value, nextSlot);
      const prevSlot = [...sorted].reverse().find((x) => x < slot);
      assert.equal(tree.prev(key(slot))?.value, prevSlot);
    }
    // The first hole of at least 20 units (16 bytes per slot) above a random point, against a scan.
    for (let q = 0; q < 200; q++) {
      const lo = key(rng.below(40000));
      const minSize = BigInt(16 + rng.below(200));
      const hi = key(40000) + 10000n;
      const got = tree.holesAscending(lo, hi, minSize).next().value as { start: bigint; last: bigint } | undefined;
      let cur = lo;
      let expected: { start: bigint; last: bigint } | undefined;
      for (const s of sorted) {
        const st = key(s);
        const la = st + BigInt(ref.get(s)!) - 1n;
        if (la < cur) continue;
        if (st > cur && st - cur >= minSize) {
          expected = { start: cur, last: st - 1n };
          break;
        }
        if (la + 1n > cur) cur = la + 1n;
      }
      if (!expected && hi - cur + 1n >= minSize) expected = { start: cur, last: hi };
      assert.deepEqual(got, expected);
    }
  });
});

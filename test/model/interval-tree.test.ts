/**
 * The pooled B+ tree behind IOAS areas and process mappings (lib/model/structures/interval-tree.ts),
 * against a sorted array: random inserts, removes and tag updates at several fanouts (small ones
 * make deep trees out of a few dozen intervals), keys below and above 2^53 (where the double
 * keys tie and the exact bigints decide), and the shape the tree keeps under churn.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IntervalTree } from '../../lib/model/structures/interval-tree';
import { Prng } from '../../lib/model/memory/prng';
import { U64_MAX } from '../../lib/uapi/codec';

interface Ref {
  start: bigint;
  last: bigint;
  value: number;
  tags: [number, number];
}

/** Everything the tree answers, checked against a linear scan of `ref` (sorted by start). */
function checkAgainst(tree: IntervalTree<number>, ref: Ref[], probes: bigint[]): void {
  tree.checkInvariants();
  assert.equal(tree.size, ref.length);
  assert.deepEqual(
    [...tree].map((n) => [n.start, n.last, n.value]),
    ref.map((r) => [r.start, r.last, r.value]),
  );
  assert.equal(tree.first()?.value, ref[0]?.value);
  assert.equal(tree.lastNode()?.value, ref[ref.length - 1]?.value);
  for (const p of probes) {
    const containing = ref.find((r) => r.start <= p && p <= r.last);
    assert.equal(tree.find(p)?.value, containing?.value);
    assert.equal(tree.findValue(p), containing?.value);
    const slot = tree.findSlot(p);
    if (!containing) assert.equal(slot, -1);
    else {
      assert.equal(tree.valueAt(slot), containing.value);
      assert.equal(tree.startNOf(slot), Number(containing.start));
      assert.equal(tree.lastNOf(slot), Number(containing.last));
      assert.ok(Object.is(tree.tagOf(slot, 0), containing.tags[0]));
      assert.ok(Object.is(tree.tagOf(slot, 1), containing.tags[1]));
    }
    const hi = p + 40n > U64_MAX ? U64_MAX : p + 40n;
    const overlapping = ref.filter((r) => r.start <= hi && r.last >= p);
    assert.equal(tree.firstOverlap(p, hi)?.value, overlapping[0]?.value);
    assert.equal(tree.lastOverlap(p, hi)?.value, overlapping[overlapping.length - 1]?.value);
    assert.deepEqual(
      [...tree.overlapping(p, hi)].map((n) => n.value),
      overlapping.map((r) => r.value),
    );
    assert.equal(tree.next(p)?.value, ref.find((r) => r.start > p)?.value);
    assert.equal(tree.prev(p)?.value, [...ref].reverse().find((r) => r.start < p)?.value);
  }
}

/** Maximal holes of at least minSize inside [lo, hi], ascending, by a scan. */
function scanHoles(ref: Ref[], lo: bigint, hi: bigint, minSize: bigint): { start: bigint; last: bigint }[] {
  const out: { start: bigint; last: bigint }[] = [];
  let cur = lo;
  for (const r of ref) {
    if (r.last < cur) continue;
    if (r.start > hi) break;
    if (r.start > cur && r.start - cur >= minSize) out.push({ start: cur, last: r.start - 1n });
    if (r.last >= hi) return out;
    cur = r.last + 1n;
  }
  if (hi - cur + 1n >= minSize) out.push({ start: cur, last: hi });
  return out;
}

type TreeOp =
  | { insert: true; slot: number; len: number }
  | { insert: false; slot: number }
  | { tag: number; value: number }
  | { sweepFrom: number; count: number };

const opArb: fc.Arbitrary<TreeOp> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ insert: fc.constant(true as const), slot: fc.nat({ max: 120 }), len: fc.integer({ min: 1, max: 5 }) }),
  },
  { weight: 3, arbitrary: fc.record({ insert: fc.constant(false as const), slot: fc.nat({ max: 120 }) }) },
  { weight: 1, arbitrary: fc.record({ tag: fc.nat({ max: 120 }), value: fc.double({ noNaN: true }) }) },
  // Removing a run of neighbours empties and underfills nodes, so merges happen.
  { weight: 1, arbitrary: fc.record({ sweepFrom: fc.nat({ max: 120 }), count: fc.integer({ min: 1, max: 30 }) }) },
);

describe('IntervalTree (pooled B+ tree of disjoint intervals)', () => {
  for (const fanout of [4, 8, 32]) {
    it(`fanout ${fanout}: random inserts, removes and tags agree with a sorted array, below and above 2^53`, () => {
      fc.assert(
        fc.property(
          fc.array(opArb, { maxLength: 200 }),
          fc.constantFrom(0n, 1n << 60n, U64_MAX - 2000n),
          fc.array(fc.nat({ max: 700 }), { minLength: 1, maxLength: 8 }),
          fc.integer({ min: 1, max: 30 }),
          (ops, base, probeOffsets, minSize) => {
            const tree = new IntervalTree<number>({ fanout, tags: 2 });
            let ref: Ref[] = [];
            // Units of 5 keep neighbours apart by a gap of at least one, so holes come in many sizes.
            const key = (slot: number) => base + BigInt(slot) * 5n;
            for (const op of ops) {
              if ('sweepFrom' in op) {
                const doomed = ref.filter((r) => r.start >= key(op.sweepFrom)).slice(0, op.count);
                for (const r of doomed) assert.equal(tree.remove(r.start), true);
                ref = ref.filter((r) => !doomed.includes(r));
              } else if ('tag' in op) {
                const r = ref.find((x) => x.start === key(op.tag));
                assert.equal(tree.setTag(key(op.tag), 1, op.value), r !== undefined);
                if (r) r.tags[1] = op.value;
              } else if (op.insert) {
                const start = key(op.slot);
                const last = start + BigInt(op.len) - 1n;
                if (ref.some((r) => r.start <= last && r.last >= start)) continue;
                tree.insert(start, last, op.slot);
                assert.equal(tree.setTag(start, 0, op.slot * 2), true);
                ref.push({ start, last, value: op.slot, tags: [op.slot * 2, NaN] });
                ref.sort((a, b) => (a.start < b.start ? -1 : 1));
              } else {
                const had = ref.some((r) => r.start === key(op.slot));
                assert.equal(tree.remove(key(op.slot)), had);
                ref = ref.filter((r) => r.start !== key(op.slot));
              }
            }
            checkAgainst(
              tree,
              ref,
              probeOffsets.map((o) => base + BigInt(o)),
            );
            const hi = base + 700n;
            const holes = scanHoles(ref, base, hi, BigInt(minSize));
            assert.deepEqual([...tree.holesAscending(base, hi, BigInt(minSize))], holes);
            assert.deepEqual([...tree.holesDescending(base, hi, BigInt(minSize))], [...holes].reverse());
          },
        ),
        { numRuns: 150 },
      );
    });
  }

  for (const fanout of [8, 16, 32]) {
    it(`fanout ${fanout}: thinning out a large tree merges nodes and keeps every answer right`, () => {
      const rng = new Prng(fanout);
      const tree = new IntervalTree<number>({ fanout, tags: 2 });
      const slots = rng.shuffle(Array.from({ length: 3000 }, (_, i) => i));
      for (const s of slots) {
        tree.insert(BigInt(s) * 16n, BigInt(s) * 16n + 7n, s);
        tree.setTag(BigInt(s) * 16n, 0, s + 0.5);
      }
      const before = tree.shape();
      const live = new Set(slots);
      for (let round = 0; round < 10; round++) {
        // Remove 250 at random, and a run of neighbours.
        for (let i = 0; i < 250; i++) {
          const s = rng.below(3000);
          assert.equal(tree.remove(BigInt(s) * 16n), live.delete(s));
        }
        const from = rng.below(3000);
        for (let s = from; s < from + 60; s++) assert.equal(tree.remove(BigInt(s) * 16n), live.delete(s));
        tree.checkInvariants();
        const sorted = [...live].sort((a, b) => a - b);
        assert.deepEqual(
          [...tree].map((n) => n.value),
          sorted,
        );
        for (let q = 0; q < 200; q++) {
          const s = rng.below(3000);
          const slot = tree.findSlot(BigInt(s) * 16n + 3n);
          if (live.has(s)) {
            assert.equal(tree.valueAt(slot), s);
            assert.equal(tree.tagOf(slot, 0), s + 0.5, 'tags move with their entries');
            assert.ok(Number.isNaN(tree.tagOf(slot, 1)));
          } else assert.equal(slot, -1);
        }
      }
      // Merging keeps leaves about a third full on average here; dropping only empty leaves
      // would leave them at about a quarter.
      const after = tree.shape();
      assert.ok(live.size / after.leaves >= fanout * 0.3, `${before.leaves} leaves for 3000 entries, ${after.leaves} for ${live.size}`);
    });
  }

  it('keys that round to the same double (above 2^53) are told apart exactly', () => {
    const tree = new IntervalTree<string>({ fanout: 4, tags: 1 });
    const base = (1n << 62n) + 1n;
    // Neighbours one apart: all of them share a double.
    for (let i = 0n; i < 40n; i++) tree.insert(base + 2n * i, base + 2n * i, `k${i}`);
    tree.checkInvariants();
    for (let i = 0n; i < 40n; i++) {
      assert.equal(tree.findValue(base + 2n * i), `k${i}`);
      assert.equal(tree.findValue(base + 2n * i + 1n), undefined, 'the hole after each key');
      assert.equal(tree.next(base + 2n * i)?.value, i < 39n ? `k${i + 1n}` : undefined);
    }
    assert.equal(tree.findValue(base - 1n), undefined);
    assert.equal(tree.remove(base + 21n), false, 'no entry starts there');
    assert.equal(tree.remove(base + 20n), true);
    assert.equal(tree.findValue(base + 20n), undefined);
    tree.checkInvariants();
  });

  it('the last possible interval, ending at ULONG_MAX, is found and removed', () => {
    const tree = new IntervalTree<number>();
    tree.insert(U64_MAX - 4095n, U64_MAX, 1);
    tree.insert(0n, 4095n, 0);
    assert.equal(tree.findValue(U64_MAX), 1);
    assert.equal(tree.lastOverlap(0n, U64_MAX)?.value, 1);
    assert.deepEqual([...tree.holesDescending(0n, U64_MAX, 1n << 63n)], [{ start: 4096n, last: U64_MAX - 4096n }]);
    assert.equal(tree.remove(U64_MAX - 4095n), true);
    tree.checkInvariants();
  });

  it('iteration survives removing each entry as it is yielded (unmap-all, domain removal)', () => {
    const tree = new IntervalTree<number>({ fanout: 4 });
    for (let i = 0; i < 200; i++) tree.insert(BigInt(i * 10), BigInt(i * 10 + 3), i);
    const seen: number[] = [];
    for (const n of tree) {
      seen.push(n.value);
      assert.equal(tree.remove(n.start), true);
    }
    assert.deepEqual(
      seen,
      Array.from({ length: 200 }, (_, i) => i),
    );
    assert.equal(tree.size, 0);
    assert.equal(tree.first(), undefined);
    tree.checkInvariants();
    // The emptied tree is reusable.
    tree.insert(5n, 6n, 7);
    assert.equal(tree.findValue(6n), 7);
  });

  it('sequential inserts fill nodes; churn between long-lived entries does not spread them thin', () => {
    const tree = new IntervalTree<number>();
    for (let i = 0; i < 10_000; i++) tree.insert(BigInt(i) * 8192n, BigInt(i) * 8192n + 4095n, i);
    const filled = tree.shape();
    // 31 entries per leaf when appended in order (a half-split policy would leave 16).
    assert.ok(filled.leaves <= Math.ceil(10_000 / 31) + 1, `${filled.leaves} leaves after ascending inserts`);
    const rng = new Prng(7);
    for (let round = 0; round < 30; round++) {
      const slots = Array.from({ length: 2000 }, () => rng.below(10_000));
      const added = new Set<number>();
      for (const s of slots) {
        if (added.has(s)) continue;
        tree.insert(BigInt(s) * 8192n + 4096n, BigInt(s) * 8192n + 8191n, -s);
        added.add(s);
      }
      for (const s of added) assert.equal(tree.remove(BigInt(s) * 8192n + 4096n), true);
    }
    tree.checkInvariants();
    assert.equal(tree.size, 10_000);
    assert.deepEqual(
      [...tree].map((n) => n.value),
      Array.from({ length: 10_000 }, (_, i) => i),
    );
    for (let q = 0; q < 500; q++) {
      const s = rng.below(10_000);
      assert.equal(tree.findValue(BigInt(s) * 8192n + 100n), s);
      assert.equal(tree.findValue(BigInt(s) * 8192n + 5000n), undefined);
    }
    const after = tree.shape();
    // Merging keeps leaves at least about a quarter full: far fewer than one leaf per entry.
    assert.ok(after.leaves <= Math.ceil(10_000 / 8), `${after.leaves} leaves after churn`);
    assert.ok(after.height <= 3, `height ${after.height}`);
  });

  it('a fanout below 4 or more than 4 tags is refused; setTag on a tree without tags throws', () => {
    assert.throws(() => new IntervalTree({ fanout: 3 }), RangeError);
    assert.throws(() => new IntervalTree({ tags: 5 }), RangeError);
    const tree = new IntervalTree<number>();
    tree.insert(1n, 2n, 0);
    assert.throws(() => tree.setTag(1n, 0, 1), RangeError);
    assert.throws(() => tree.insert(3n, 2n, 0), RangeError);
    assert.throws(() => tree.insert(1n, 1n, 0), /duplicate start/);
  });
});

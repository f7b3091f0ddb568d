/**
 * Bus-address runs: one way to build descriptors in both modes. On noiommu they are the buffer's
 * physical runs (as many as its pages are scattered); behind an IOMMU one IOVA run.
 */
import assert from 'node:assert/strict';
import { DmaBuffer } from '../../lib/dma/buffer';
import { openDevice } from '../../lib/vfio/open-device';
import { describeOnTargets } from './support/targets';

describeOnTargets('DmaBuffer bus-address runs', (target) => {
  it('cover exactly the range asked for, in order, each contiguous for the device', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    using buffer = DmaBuffer.allocate(8 * 4096, { space: dev.dmaSpace });
    const runs = buffer.busRuns(100n, 5n * 4096n);
    assert.equal(
      runs.reduce((n, r) => n + r.length, 0n),
      5n * 4096n,
    );
    let at = 100n;
    for (const r of runs) {
      assert.equal(r.offset, at);
      assert.equal(r.address, buffer.dmaAddress(r.offset), 'a run starts where dmaAddress says');
      assert.equal(buffer.dmaAddress(r.offset + r.length - 1n), r.address + r.length - 1n, 'and is contiguous to its last byte');
      at += r.length;
    }
    if (buffer.addressing === 'iova') assert.equal(runs.length, 1, 'IOVAs are contiguous');
    else
      assert.deepEqual(
        runs.map((r) => r.length),
        runsOfSegments(buffer, 100n, 5n * 4096n),
      );
    const first = buffer.busRun(100n);
    assert.equal(first.address, runs[0]!.address);
    if (buffer.addressing === 'iova') assert.equal(first.length, buffer.size - 100n, 'behind an IOMMU the rest of the buffer is one run');
    for (let i = 1; i < runs.length; i++) {
      assert.notEqual(runs[i]!.address, runs[i - 1]!.address + runs[i - 1]!.length, 'runs are as long as contiguity allows');
    }
  });

  it('refuse ranges outside the buffer and values of the wrong type', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    using buffer = DmaBuffer.allocate(4096, { space: dev.dmaSpace });
    assert.throws(() => buffer.busRuns(4000n, 200n), RangeError);
    assert.throws(() => buffer.busRuns(-1), RangeError);
    assert.throws(() => buffer.busRun(4096n), RangeError);
    assert.throws(() => buffer.busRuns(0, '1' as unknown as number), TypeError);
  });
});

/** The physical segments clipped to [start, start + length), as lengths. */
function runsOfSegments(buffer: DmaBuffer, start: bigint, length: bigint): bigint[] {
  const out: bigint[] = [];
  for (const s of buffer.segments()) {
    const from = s.offset > start ? s.offset : start;
    const to = s.offset + s.length < start + length ? s.offset + s.length : start + length;
    if (to > from) out.push(to - from);
  }
  return out;
}

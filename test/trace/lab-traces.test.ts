/**
 * Traces recorded on the real kernel in the lab (test/lab/trace-replay-suite.ts writes them into
 * the run's results directory; checked in here as test/trace/fixtures/lab-*.jsonl) replay on the
 * model of the lab machine each was recorded on, one case per file: the model must keep answering
 * every call the way the real Linux 7.3 kernel and QEMU device did.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { assertTraceReplays, formatDivergence, readTrace, replayTrace, type TraceFile, type TraceRecord } from '../../lib/trace';
import { labReplaySetup, labTraceFileName, labTraceProfile, parseLabTraceFileName } from './lab-trace-profiles';

const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'test', 'trace', 'fixtures');
const files = fs
  .readdirSync(FIXTURES)
  .filter((f) => f.startsWith('lab-') && f.endsWith('.jsonl'))
  .sort();

describe('traces recorded in the lab replay on the model of their lab machine', function () {
  this.timeout(120_000);

  for (const name of files) {
    const { machine, mode, kernel } = parseLabTraceFileName(name);
    const profile = labTraceProfile(machine, mode, kernel);
    it(`${name}: recorded on the real kernel, replays on ${profile.name} with 0 divergences`, async () => {
      const file = path.join(FIXTURES, name);
      assert.equal(readTrace(file).header.kind, 'native', 'a lab trace is recorded on the real kernel');
      const { kernel: model, options } = labReplaySetup(machine, mode, kernel);
      await assertTraceReplays(file, () => model, options);
    });
  }

  it('an interrupt count QEMU delivered in two reads that the model delivers in one replays; one more read than interrupts does not', async () => {
    // In the lab, a CQ's MSI-X message of a command whose entry the driver had already polled can
    // come after the driver's next read: on CI the trace read 1 and then 1 again where the model,
    // on the replay clock, had both interrupts there for the first read.
    const trace = readTrace(path.join(FIXTURES, 'lab-nvme-noiommu-group.jsonl'));
    const rs = trace.records;
    const two = rs.findIndex((r, k) => r.call === 'eventfd-read' && r.ret === '0x2' && rs[k - 1]?.call === 'wait');
    assert.ok(two > 0, 'the trace has a wait that ended with two interrupts');
    const renumber = (records: TraceRecord[]): TraceFile => ({ header: trace.header, records: records.map((r, i) => ({ ...r, i })) });
    const one = { ...rs[two]!, ret: '0x1' };
    const split = renumber([...rs.slice(0, two), one, one, ...rs.slice(two + 1)]);
    const replay = (t: TraceFile, waitTimeoutMs?: number) => {
      const { kernel: model, options } = labReplaySetup('nvme', 'noiommu', 'group');
      return replayTrace(t, model, { ...options, ...(waitTimeoutMs ? { waitTimeoutMs } : {}) });
    };
    const ok = await replay(split);
    assert.equal(ok.divergence, null, ok.divergence ? formatDivergence(ok.divergence).join('\n') : '');
    // A third read of an interrupt neither kernel raised is still a divergence, at that read.
    const extra = renumber([...rs.slice(0, two), one, one, one, ...rs.slice(two + 1)]);
    const caught = await replay(extra, 200);
    assert.equal(caught.divergence?.index, two + 2, caught.divergence ? formatDivergence(caught.divergence).join('\n') : 'no divergence');
    assert.match(caught.divergence!.what, /no event within 200 ms where the trace read 0x1/);
  });

  it('names a lab trace by machine, mode and kernel, and refuses any other name', () => {
    assert.deepEqual(parseLabTraceFileName(labTraceFileName('nvme', 'iommu', 'group')), {
      machine: 'nvme',
      mode: 'iommu',
      kernel: 'group',
    });
    assert.throws(() => parseLabTraceFileName('lab-edu-noiommu.jsonl'), RangeError);
    assert.equal(labTraceProfile('edu', 'noiommu', 'nullgroup').config.VFIO_GROUP, false);
    assert.equal(labTraceProfile('edu', 'iommu', 'group').name, 'lab-edu-iommu');
  });
});

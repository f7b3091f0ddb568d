/**
 * Traces recorded on the real kernel in the lab (test/lab/trace-replay-suite.ts writes them into
 * the run's results directory; checked in here as test/trace/fixtures/lab-*.jsonl) replay on the
 * model of the lab machine each was recorded on, one case per file: the model must keep answering
 * every call the way the real Linux 7.3 kernel and QEMU device did.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { assertTraceReplays, readTrace } from '../../lib/trace';
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

/**
 * Driver fuzzing against the NVMe model's fault points (model only: the faults are injected): a
 * bounded campaign of random fault schedules from a fixed seed, each run through the scripted
 * workload with the sweep's rules; a failing schedule is shrunk to the smallest that still fails
 * (tools/fuzz/fault-schedules.ts, on the differential fuzzer's shrinker).
 */
import assert from 'node:assert/strict';
import { fuzzFaultSchedules } from '../../tools/fuzz/fault-schedules';
import { shrinkAsync } from '../../tools/fuzz/shrink';
import { runNvmeWorkload, type NvmeFaultName, type ScheduledFault } from './nvme-fault-workload';

const SEED = Number(process.env.NVME_FAULT_FUZZ_SEED ?? 20);
const SCHEDULES = Number(process.env.NVME_FAULT_FUZZ_SCHEDULES ?? 16);

describe('NVMe driver fuzzing with random fault schedules (model only: injected device faults)', function () {
  this.timeout(120_000);

  it(`a campaign of ${SCHEDULES} random schedules (seed ${SEED}, up to 3 faults each) breaks no rule; failures would be shrunk`, async () => {
    const clean = await runNvmeWorkload([], 5_000);
    assert.deepEqual(clean.problems, []);
    const result = await fuzzFaultSchedules<NvmeFaultName>({
      seed: SEED,
      schedules: SCHEDULES,
      maxFaults: 3,
      points: clean.occurrences,
      run: async (schedule) => (await runNvmeWorkload(schedule)).problems,
    });
    console.log(
      `      nvme driver fuzz: seed ${SEED}, ${result.schedules} schedules, ${result.faultsArmed} faults armed, ${result.failures.length} failing`,
    );
    assert.deepEqual(
      result.failures.map((f) => ({ shrunk: f.shrunk, problems: f.problems })),
      [],
    );
  });

  it('the shrinker reduces a failing schedule to the faults that matter (a stricter rule: at most one controller reset)', async () => {
    const schedule: ScheduledFault[] = [
      { point: 'lost-interrupt', nth: 3 },
      { point: 'fatal-status', nth: 8 },
      { point: 'io-status', nth: 2 },
      { point: 'spurious-interrupt', nth: 5 },
      { point: 'controller-reset', nth: 11 },
      { point: 'slow-completion', nth: 4 },
    ];
    const tooManyResets = async (s: readonly ScheduledFault[]) => (await runNvmeWorkload(s, 5_000)).resets > 1;
    assert.ok(await tooManyResets(schedule), 'the full schedule resets the controller twice');
    const { items, tries } = await shrinkAsync(schedule, tooManyResets, 100);
    assert.deepEqual(items, [
      { point: 'fatal-status', nth: 8 },
      { point: 'controller-reset', nth: 11 },
    ]);
    assert.ok(tries > 1);
  });
});

/**
 * The scripted workload the NVMe fault sweep and the driver fuzzer run against a fresh NVMe model
 * with faults armed: bring the controller up, write, read back, flush, write zeroes, read, shut
 * down, close. Whatever the faults did, a run must end with every command settled as success or a
 * typed error (no hang), no successful read returning data other than what was written, no DMA
 * the host refused (what a driver freeing a buffer under a live command causes behind an IOMMU),
 * and the kernel holding exactly what it held before the run (fds, mappings, pinned pages, DMA
 * buffers' frames) once the device is closed.
 */
import { DmaBuffer, openDevice } from '../../lib';
import { createModelKernel } from '../../lib/model';
import { NvmeController } from '../../lib/devices/nvme';
import { NvmeCommandError, NvmeControllerError, NvmeTimeoutError } from '../../examples/nvme/errors';
import { NvmeDriver } from '../../examples/nvme/nvme-driver';
import { census, censusDifference } from '../reliability/census';
import type { ScheduledFault as FaultAt } from '../../tools/fuzz/fault-schedules';

export type NvmeFaultName = NvmeController['faults']['names'][number];

/** One armed fault: the point and the occurrence (counted over the whole run) it fires at. */
export type ScheduledFault = FaultAt<NvmeFaultName>;

export interface WorkloadResult {
  /** What broke a rule, empty when the run was robust. */
  readonly problems: readonly string[];
  /** Each operation's outcome: 'ok' or the error class. */
  readonly outcomes: readonly string[];
  readonly resets: number;
  readonly fired: number;
  /** Occurrences of every point in this run (a clean run gives the sweep's steps). */
  readonly occurrences: ReadonlyMap<NvmeFaultName, number>;
}

const BDF = '0000:00:04.0';
/**
 * The driver's command timeout for runs whose faults need one to fire (a lost completion): short,
 * so those cost little wall time. Runs that need no timeout (the clean run counting the steps)
 * pass a long one, so a loaded machine cannot reset the controller where no fault was armed.
 */
export const SHORT_TIMEOUT_MS = 30;
/** A run still going after this is a hang. */
const HANG_MS = 5_000;

const typed = (e: unknown) => e instanceof NvmeCommandError || e instanceof NvmeTimeoutError || e instanceof NvmeControllerError;

export async function runNvmeWorkload(
  schedule: readonly ScheduledFault[],
  timeoutMs = SHORT_TIMEOUT_MS,
  mode: 'noiommu' | 'iommu' = 'iommu',
): Promise<WorkloadResult> {
  const model = new NvmeController();
  const kernel = createModelKernel({ base: `linux-7.3-${mode}`, withoutBaseDevices: true, devices: [{ address: BDF, model }] });
  const before = census(kernel);
  for (const f of schedule) model.faults.arm(f.point, { nth: f.nth });
  const problems: string[] = [];
  const outcomes: string[] = [];
  let resets = 0;
  const outcome = async (what: string, op: () => Promise<unknown>): Promise<boolean> => {
    try {
      await op();
      outcomes.push(`${what}:ok`);
      return true;
    } catch (e) {
      outcomes.push(`${what}:${(e as Error).name}`);
      if (!typed(e)) problems.push(`${what} failed with an untyped error: ${(e as Error).stack ?? String(e)}`);
      return false;
    }
  };
  const session = async () => {
    const device = openDevice(BDF, { kernel });
    try {
      let nvme: NvmeDriver | undefined;
      if (
        !(await outcome('open', async () => {
          nvme = await NvmeDriver.open(device, { ioQueues: 1, queueDepth: 8, commandTimeoutMs: timeoutMs });
        }))
      )
        return;
      const driver = nvme!;
      try {
        using buffer = DmaBuffer.allocate(3 * 4096, { space: device.dmaSpace });
        const pattern = new Uint8Array(4096).map((_, i) => (i * 31 + 7) & 0xff);
        buffer.bytes.set(pattern, 0);
        const wrote = await outcome('write', () => driver.write(1, 16, 8, buffer, 0));
        const read = await outcome('read', () => driver.read(1, 16, 8, buffer, 4096));
        if (wrote && read && !Buffer.from(buffer.bytes.subarray(4096, 8192)).equals(pattern))
          problems.push('a successful read after a successful write returned other data');
        await outcome('flush', () => driver.flush(1));
        await outcome('write-zeroes', () => driver.writeZeroes(1, 16, 8));
        const reread = await outcome('read-zeroes', () => driver.read(1, 16, 8, buffer, 8192));
        if (reread && outcomes.includes('write-zeroes:ok') && buffer.bytes.subarray(8192).some((b) => b !== 0))
          problems.push('a successful read after Write Zeroes returned non-zero data');
        await outcome('shutdown', () => driver.shutdown());
      } finally {
        resets = driver.resets;
        driver.close();
      }
    } finally {
      device.close();
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const hung = await Promise.race([
    session().then(
      () => false,
      (e: unknown) => {
        problems.push(`the session threw: ${(e as Error).stack ?? String(e)}`);
        return false;
      },
    ),
    new Promise<boolean>((r) => {
      timer = setTimeout(() => r(true), HANG_MS);
    }),
  ]);
  clearTimeout(timer);
  if (hung) problems.push(`the run did not finish within ${HANG_MS} ms (${outcomes.join(' ')})`);
  // Let late device work (a slow completion) run: it must find nothing of the host's to touch.
  await new Promise((r) => setTimeout(r, 1));
  const refused = model.events.filter((e) => e.kind === 'dma-fault' || e.kind === 'model-error');
  for (const e of refused) problems.push(`device ${e.kind}: ${e.message}`);
  if (!hung) for (const d of censusDifference(before, census(kernel))) problems.push(`leak: ${d}`);
  const occurrences = new Map<NvmeFaultName, number>();
  for (const name of model.faults.names) occurrences.set(name, model.faults.occurrences(name));
  return { problems, outcomes, resets, fired: model.events.filter((e) => e.kind === 'fault-injected').length, occurrences };
}

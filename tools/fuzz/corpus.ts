/**
 * Recorded lab traces: what the real Linux 7.3 kernel answered to fuzz programs, with the kernel
 * release, lab mode and device address it ran with. The lab writes one file per mode; a few of
 * them are checked in (test/reliability/lab-traces) so every model test run compares against
 * real-kernel answers without booting QEMU.
 */
import type { LabKernelBuild, LabMachineName, LabMode } from './lab-model';
import { formatRun } from './differential';
import type { RecordedRun } from './campaign';
import type { FuzzProgram } from './program';
import { compareTraces, type Trace, type TraceDifference } from './trace';

export interface LabTraceFile {
  readonly format: 1;
  /** `uname -r` of the lab guest. */
  readonly kernelRelease: string;
  readonly mode: LabMode;
  readonly labKernel: LabKernelBuild;
  /** The lab machine (absent in the first recordings, which all ran on 'edu'). */
  readonly machine?: LabMachineName;
  readonly bdf: string;
  readonly pageSize: number;
  readonly recordedAt: string;
  readonly runs: readonly RecordedRun[];
}

export interface CorpusMismatch {
  readonly seed: number;
  readonly difference: TraceDifference;
  /** The program up to the first difference, both kernels' answers beside each operation. */
  readonly report: string;
}

export function parseLabTraceFile(text: string, origin: string): LabTraceFile {
  const f = JSON.parse(text) as Partial<LabTraceFile>;
  if (
    f.format !== 1 ||
    !Array.isArray(f.runs) ||
    (f.mode !== 'noiommu' && f.mode !== 'iommu') ||
    (f.labKernel !== 'group' && f.labKernel !== 'nullgroup') ||
    typeof f.bdf !== 'string' ||
    typeof f.pageSize !== 'number' ||
    (f.machine !== undefined && f.machine !== 'edu' && f.machine !== 'nvme' && f.machine !== 'multi')
  ) {
    throw new Error(`${origin} is not a lab trace file (format 1 with mode, bdf, pageSize and runs)`);
  }
  return f as LabTraceFile;
}

/** Replays every recorded program on the model (`run`) and lists the runs whose answers differ. */
export function replayLabTraces(file: LabTraceFile, run: (program: FuzzProgram) => Trace): CorpusMismatch[] {
  const mismatches: CorpusMismatch[] = [];
  for (const recorded of file.runs) {
    const program: FuzzProgram = { seed: recorded.seed, ops: recorded.ops };
    const reference: Trace = { kernel: `Linux ${file.kernelRelease} (${file.machine ?? 'edu'}, ${file.mode})`, entries: recorded.entries };
    const actual = run(program);
    const difference = compareTraces(reference, actual);
    if (!difference) continue;
    const prefix: FuzzProgram = { ops: recorded.ops.slice(0, difference.index + 1) };
    mismatches.push({
      seed: recorded.seed,
      difference,
      report:
        `seed ${recorded.seed} (${file.machine ?? 'edu'} ${file.bdf}, ${file.mode}), operation ${difference.index}: ${difference.what}\n` +
        formatRun(
          prefix,
          [
            { label: 'kernel', trace: reference },
            { label: 'model', trace: actual },
          ],
          difference.index,
        ),
    });
  }
  return mismatches;
}

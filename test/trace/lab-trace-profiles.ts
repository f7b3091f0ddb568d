/**
 * Which model machine a trace recorded in the lab replays on. The lab test
 * (test/lab/trace-replay-suite.ts) writes each trace as `lab-<machine>-<mode>-<kernel>.jsonl`
 * into the run's results directory; checked in under test/trace/fixtures they keep that name, and
 * the name alone says which machine the trace came from: the lab-<machine>-<mode> preset, with
 * the group interface compiled out for the nullgroup kernel (scripts/lab/kernel/nullgroup.config).
 */
import { createModelKernel, ModelClock, profiles, type ModelKernel, type Profile } from '../../lib/model';
import type { ReplayOptions } from '../../lib/trace';

export type LabTraceMachine = 'edu' | 'nvme';
export type LabTraceMode = 'noiommu' | 'iommu';
export type LabTraceKernel = 'group' | 'nullgroup';

/** The model of the lab machine a trace was recorded on. */
export function labTraceProfile(machine: LabTraceMachine, mode: LabTraceMode, kernel: LabTraceKernel): Profile {
  const preset = withQemuEduTiming(profiles[`lab-${machine}-${mode}`]);
  if (kernel === 'group') return preset;
  return {
    ...preset,
    name: `${preset.name}-nullgroup`,
    config: { ...preset.config, VFIO_GROUP: false, VFIO_CONTAINER: false, IOMMUFD_VFIO_CONTAINER: false },
  };
}

/**
 * Replay follows the recorded clock, so edu must take as long as QEMU's does: a factorial at once
 * (its own thread), a DMA 100 ms of virtual time later (edu's dma_timer).
 */
function withQemuEduTiming(p: Profile): Profile {
  const timed = { mode: 'delay', ms: 100 } as const;
  return { ...p, pci: p.pci.map((f) => (f.device === 'edu' ? { ...f, options: { ...f.options, dma_timing: timed } } : f)) };
}

/**
 * The model a lab trace replays on, with the options that make it: the lab machine's preset on a
 * manual clock that replay moves to each record's time (so edu has done what QEMU's had).
 */
export function labReplaySetup(
  machine: LabTraceMachine,
  mode: LabTraceMode,
  kernel: LabTraceKernel,
): { kernel: ModelKernel; options: ReplayOptions } {
  const clock = new ModelClock('manual');
  return {
    kernel: createModelKernel({ base: labTraceProfile(machine, mode, kernel), withoutBaseDevices: false, clock }),
    options: { clock },
  };
}

/** The file name the lab writes a trace under. */
export function labTraceFileName(machine: LabTraceMachine, mode: LabTraceMode, kernel: LabTraceKernel): string {
  return `lab-${machine}-${mode}-${kernel}.jsonl`;
}

const NAME = /^lab-(edu|nvme)-(noiommu|iommu)-(group|nullgroup)\.jsonl$/;

/** The machine, mode and kernel a lab trace's file name names; a RangeError for any other name. */
export function parseLabTraceFileName(name: string): { machine: LabTraceMachine; mode: LabTraceMode; kernel: LabTraceKernel } {
  const m = NAME.exec(name);
  if (!m) throw new RangeError(`'${name}' is not a lab trace name (lab-<edu|nvme>-<noiommu|iommu>-<group|nullgroup>.jsonl)`);
  return { machine: m[1] as LabTraceMachine, mode: m[2] as LabTraceMode, kernel: m[3] as LabTraceKernel };
}

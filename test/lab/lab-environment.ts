/**
 * What the lab guest tells a test about the machine it runs on. scripts/lab/run.sh boots a real
 * Linux 7.3 kernel under QEMU and runs the test command there with these variables set; outside
 * the lab none of them is, and lab tests skip.
 */
import path from 'node:path';

export type LabMode = 'noiommu' | 'iommu';
/** The kernel build: 'group' has the legacy group/container interface beside the cdev, 'nullgroup' only the cdev. */
export type LabKernel = 'group' | 'nullgroup';
/** The lab machine (scripts/lab/common.sh): which devices the guest has. */
export type LabMachine = 'edu' | 'nvme' | 'multi' | 'sriov' | 'hotplug' | 'nvme-port';

export interface LabEnvironment {
  /** noiommu: vfio.enable_unsafe_noiommu_mode=1, no IOMMU; iommu: QEMU's intel-iommu translates DMA. */
  readonly mode: LabMode;
  readonly kernel: LabKernel;
  readonly machine: LabMachine;
  /** PCI address of the machine's first device bound to vfio-pci by the guest's init (edu: 0000:00:03.0). */
  readonly bdf: string;
  /** Every device the guest's init bound to vfio-pci, in bus order. */
  readonly bdfs: readonly string[];
  /** sysfs directory of the first device. */
  readonly sysfsDevice: string;
  /** A writable directory that is copied back to the host (the run's results directory). */
  readonly resultsDir: string;
  /** Guest uptime (seconds) when the test command was launched, to measure start-up costs. */
  readonly commandStartUptime: number;
}

const MODES: readonly LabMode[] = ['noiommu', 'iommu'];
const KERNELS: readonly LabKernel[] = ['group', 'nullgroup'];
const MACHINES: readonly LabMachine[] = ['edu', 'nvme', 'multi', 'sriov', 'hotplug', 'nvme-port'];
const BDF = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

/** The lab environment, or a reason why this process is not running inside the lab guest. */
export function labEnvironment(env: NodeJS.ProcessEnv = process.env): LabEnvironment | { readonly notInLab: string } {
  const mode = env.NODE_VFIO_LAB_MODE;
  if (mode === undefined) return { notInLab: 'not inside the QEMU lab (NODE_VFIO_LAB_MODE is unset; run `npm run test:lab`)' };
  if (!MODES.includes(mode as LabMode)) return { notInLab: `NODE_VFIO_LAB_MODE='${mode}' is neither noiommu nor iommu` };
  const kernel = env.NODE_VFIO_LAB_KERNEL ?? 'group';
  if (!KERNELS.includes(kernel as LabKernel)) return { notInLab: `NODE_VFIO_LAB_KERNEL='${kernel}' is neither group nor nullgroup` };
  const machine = env.NODE_VFIO_LAB_MACHINE ?? 'edu';
  if (!MACHINES.includes(machine as LabMachine))
    return { notInLab: `NODE_VFIO_LAB_MACHINE='${machine}' is none of ${MACHINES.join(', ')}` };
  const bdf = env.NODE_VFIO_BDF;
  if (bdf === undefined || !BDF.test(bdf)) {
    return { notInLab: `NODE_VFIO_BDF='${bdf ?? ''}' is not a PCI address` };
  }
  const bdfs = (env.NODE_VFIO_BDFS ?? bdf).split(' ').filter(Boolean);
  const notBdf = bdfs.find((b) => !BDF.test(b));
  if (notBdf !== undefined) return { notInLab: `NODE_VFIO_BDFS has '${notBdf}', not a PCI address` };
  return {
    mode: mode as LabMode,
    kernel: kernel as LabKernel,
    machine: machine as LabMachine,
    bdf,
    bdfs,
    sysfsDevice: path.join('/sys/bus/pci/devices', bdf),
    resultsDir: env.NODE_VFIO_LAB_RESULTS ?? '/tmp',
    commandStartUptime: Number(env.NODE_VFIO_LAB_COMMAND_START ?? 'NaN'),
  };
}

/**
 * For a mocha `before` hook: returns the lab environment, or skips the whole suite with the
 * reason printed when the tests are not running inside the lab guest.
 */
export function requireLab(context: Mocha.Context): LabEnvironment {
  const lab = labEnvironment();
  if ('notInLab' in lab) {
    console.log(`    skipped: ${lab.notInLab}`);
    context.skip();
  }
  return lab as LabEnvironment;
}

/** A non-negative whole number from the environment (a lab knob such as NODE_VFIO_FUZZ_SEEDS), or `fallback`. */
export function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${name}='${v}' is not a non-negative integer`);
  return n;
}

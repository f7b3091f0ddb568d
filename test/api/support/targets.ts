/**
 * Where the API tests run: every relevant model profile, and the real kernel when the tests run
 * inside the QEMU lab. A test suite is written once against `ApiTarget` and mocha runs it once
 * per target, the way the conformance cases run on every mode.
 */
import fs from 'node:fs';
import type { Kernel } from '../../../lib/sys/kernel';
import { labEnvironment } from '../../lab/lab-environment';
import { createModelKernel, hasIommufdNoiommu, profiles, type ProfileName } from '../../../lib/model';

/** What a target machine is expected to offer, so tests can assert (or skip) accordingly. */
export interface TargetTraits {
  /** Devices have no IOMMU: DMA uses physical addresses. */
  readonly noiommu: boolean;
  /** The device has a VFIO cdev and /dev/iommu exists (7.3 noiommu, or any IOMMU with cdev). */
  readonly cdev: boolean;
  /** The legacy group/container interface exists. */
  readonly group: boolean;
  /** CAP_SYS_RAWIO (noiommu cdev open, GET_PA). */
  readonly rawio: boolean;
  /** CAP_SYS_ADMIN (pagemap frame numbers). */
  readonly sysAdmin: boolean;
  /** 2 MiB huge pages are reserved. */
  readonly hugePages: boolean;
}

export interface ApiTarget {
  readonly name: string;
  /** A kernel for one test (a fresh simulated host on the model; the one real kernel in the lab). */
  readonly kernel: Kernel;
  /** The edu device, bound to vfio-pci. */
  readonly bdf: string;
  readonly traits: TargetTraits;
  /** Counters that must come back to where they were once everything is closed. */
  leakProbe(): Record<string, number | bigint>;
}

interface TargetFactory {
  readonly name: string;
  /** Why this target cannot run here, or undefined when it can. */
  unavailable(): string | undefined;
  /** A fresh target for one test. */
  create(): ApiTarget;
}

function nativeFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

const labTarget: TargetFactory = {
  name: 'lab (real Linux 7.3)',
  unavailable() {
    const lab = labEnvironment();
    return 'notInLab' in lab ? lab.notInLab : undefined;
  },
  create() {
    const lab = labEnvironment();
    if ('notInLab' in lab) throw new Error(lab.notInLab);
    // Loaded here only: outside the lab the addon may be missing, and the model must not need it.
    const { nativeKernel } = require('../../../lib/sys/native-kernel') as typeof import('../../../lib/sys/native-kernel');
    const kernel = nativeKernel();
    let hugePages = false;
    try {
      hugePages = Number(fs.readFileSync('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages', 'utf8')) > 0;
    } catch {
      hugePages = false;
    }
    const caps = kernel.capabilities();
    return {
      name: `lab ${lab.mode}/${lab.kernel}`,
      kernel,
      bdf: lab.bdf,
      traits: {
        noiommu: lab.mode === 'noiommu',
        cdev: true,
        group: lab.kernel === 'group',
        rawio: caps.sysRawio,
        sysAdmin: caps.sysAdmin,
        hugePages,
      },
      leakProbe: () => ({ fds: nativeFdCount() }),
    };
  },
};

/** A model profile as a target: a freshly booted simulated host per test. */
export function modelTarget(profileName: ProfileName): TargetFactory {
  const profile = profiles[profileName];
  const edu = profile.pci.find((d) => d.device === 'edu');
  const noiommu = profile.iommu === null;
  const config = profile.config;
  const caps = profile.process.capabilities;
  const traits: TargetTraits = {
    noiommu,
    cdev: config.IOMMUFD && config.VFIO_DEVICE_CDEV && (!noiommu || hasIommufdNoiommu(profile)),
    group: config.VFIO_GROUP && (config.VFIO_CONTAINER || config.IOMMUFD_VFIO_CONTAINER),
    rawio: caps.sysRawio,
    sysAdmin: caps.sysAdmin,
    hugePages: profile.memory.hugepages['2M'] > 0,
  };
  return {
    name: `model ${profileName}`,
    unavailable: () => (edu ? undefined : `profile ${profileName} has no edu device`),
    create() {
      const kernel = createModelKernel(profileName);
      return {
        name: `model ${profileName}`,
        kernel,
        bdf: edu!.address,
        traits,
        leakProbe: () => ({ fds: kernel.openFdCount, freeFrames: kernel.memory.freeFrames, mappings: kernel.space.mappings().length }),
      };
    },
  };
}

/**
 * The profiles where a driver can open edu: every machine kind the project cares about. The
 * 'unprivileged' profile cannot (no CAP_SYS_RAWIO for a noiommu device); its errors have their
 * own suite.
 */
export const DEVICE_PROFILES: readonly ProfileName[] = [
  'linux-7.3-noiommu',
  'linux-7.3-iommu',
  'linux-7.3-noiommu-nullgroup',
  'linux-6.x-legacy-noiommu',
];

const factories: TargetFactory[] = [...DEVICE_PROFILES.map(modelTarget), labTarget];

/** Adds a target kind (the model registers its profiles here). */
export function registerTarget(factory: TargetFactory): void {
  factories.push(factory);
}

/** The target-name prefixes NODE_VFIO_API_TARGETS selects (comma-separated), or undefined for all. */
function selectedTargets(): string[] | undefined {
  return process.env.NODE_VFIO_API_TARGETS?.split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}

/**
 * Declares a suite that only ever runs on model kernels it builds itself, unless NODE_VFIO_API_TARGETS
 * leaves the model out: the lab then does not repeat model-only suites under emulation (where the
 * 10,000-cycle soak alone took 220 s).
 */
export function describeOnModel(title: string, body: (this: Mocha.Suite) => void): void {
  const only = selectedTargets();
  if (only && !only.some((prefix) => 'model'.startsWith(prefix))) return;
  describe(title, body);
}

/**
 * Declares `body` once per target, as `title [target]`. `target()` returns the target of the
 * running test (fresh for each test); an unavailable target skips its suite with the reason.
 */
export function describeOnTargets(title: string, body: (target: () => ApiTarget) => void): void {
  // NODE_VFIO_API_TARGETS=lab (comma-separated name prefixes) declares only those targets: the lab
  // runs these suites on the real kernel without repeating the model targets under emulation.
  const only = selectedTargets();
  for (const factory of factories) {
    if (only && !only.some((prefix) => factory.name.startsWith(prefix))) continue;
    describe(`${title} [${factory.name}]`, function () {
      let current: ApiTarget | undefined;
      before(function () {
        const reason = factory.unavailable();
        if (reason !== undefined) {
          console.log(`      skipped: ${reason}`);
          this.skip();
        }
      });
      beforeEach(function () {
        current = factory.create();
      });
      afterEach(() => {
        current = undefined;
      });
      body(() => {
        if (!current) throw new Error('describeOnTargets: no target outside a test');
        return current;
      });
    });
  }
}

export type { TargetFactory };

/** Skips the running test, printing why, unless `condition` holds. */
export function skipUnless(context: Mocha.Context, condition: boolean, reason: string): void {
  if (condition) return;
  console.log(`      skipped: ${reason}`);
  context.skip();
}

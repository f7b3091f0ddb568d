/**
 * Runs cases: checks what each needs, gives it a fresh fixture over a fd-tracking kernel, tears
 * the fixture down, and fails the case if anything it opened is still open afterwards (the leak is
 * then closed so that the next case starts clean).
 */
import type { Kernel } from '../sys/kernel';
import type { ConformanceCase, KnownCommandNeed, Need } from './case';
import { CaseContext } from './context';
import { isEdu, type Environment } from './environment';
import { CaseFailed, CaseSkipped } from './outcome';
import { TrackedKernel } from './tracked-kernel';
import type { CaseResult } from './types';

/** A command newer than the kernel: without a probe (no /dev/iommu) the case's own needs decide. */
function missingCommand(env: Environment, need: KnownCommandNeed): string | null {
  const name = need.slice('command:'.length);
  const probe = env.iommufdCommands;
  if (!probe.probed || probe.known.has(name)) return null;
  return `needs ${name}, which this kernel does not know (a zero-size call is ENOTTY: the command is newer than this kernel)`;
}

/**
 * Why the environment cannot run a case, or null when it can.
 *
 * @category Conformance suite
 */
export function missingNeed(env: Environment, needs: readonly Need[] = []): string | null {
  for (const need of needs) {
    switch (need) {
      case 'device':
        if (!env.device) return 'needs a VFIO device bound to vfio-pci, and there is none';
        if (env.mode === 'noiommu' && !env.capabilities.sysRawio) {
          return 'opening a noiommu device needs CAP_SYS_RAWIO, which this process lacks';
        }
        break;
      case 'edu':
        if (!isEdu(env.device)) return "needs QEMU's edu device (1234:11e8) as the device under test";
        break;
      case 'group-interface':
        if (!env.device?.groupPath) return 'needs the legacy VFIO group node (kernel built with CONFIG_VFIO_GROUP)';
        break;
      case 'no-group-interface':
        if (env.device?.groupPath) return `needs a kernel without the group interface, but ${env.device.groupPath} exists`;
        break;
      case 'container':
        if (!env.hasContainer) return 'needs /dev/vfio/vfio (kernel built with CONFIG_VFIO_CONTAINER)';
        break;
      case 'sys-rawio':
        if (!env.capabilities.sysRawio) return 'needs CAP_SYS_RAWIO, which this process lacks';
        break;
      case 'without-sys-rawio':
        if (env.capabilities.sysRawio) {
          return "needs a process without CAP_SYS_RAWIO (run it with the unprivileged runner, or on the model's unprivileged profile)";
        }
        break;
      case 'msix':
      case 'function-reset':
      case 'bus-reset': {
        const missing = missingDeviceFact(env, need);
        if (missing) return missing;
        break;
      }
      case 'several-devices':
        if (env.devices.length < 2) {
          return `needs several functions bound to vfio-pci, and there ${env.devices.length === 1 ? 'is one' : 'are none'}`;
        }
        break;
      default: {
        const missing = missingCommand(env, need);
        if (missing) return missing;
      }
    }
  }
  return null;
}

/** Why the device under test lacks what a device-fact need asks for, or null when it has it. */
function missingDeviceFact(env: Environment, need: 'msix' | 'function-reset' | 'bus-reset'): string | null {
  const facts = env.facts;
  if (!facts) return 'needs a VFIO device bound to vfio-pci, and there is none';
  if (!facts.probed) return `needs to know what the device reports, but ${facts.reason}`;
  switch (need) {
    case 'msix':
      return facts.msixVectors > 0 ? null : 'needs a device with MSI-X (GET_IRQ_INFO counts no MSI-X vector)';
    case 'function-reset':
      return facts.functionReset ? null : 'needs a device with a reset method (GET_INFO reports no VFIO_DEVICE_FLAGS_RESET)';
    case 'bus-reset':
      return facts.busReset ? null : 'needs a device a slot or bus reset reaches (GET_PCI_HOT_RESET_INFO answers ENODEV)';
  }
}

/**
 * Runs one case: skips it when a need is missing, else runs it on a fresh fixture over an
 * fd-tracking kernel, tears the fixture down, and fails it if any fd or mapping it opened is still
 * open afterwards.
 *
 * @category Conformance suite
 */
export async function runCase(env: Environment, c: ConformanceCase): Promise<CaseResult> {
  const started = Date.now();
  const base = { id: c.id, title: c.title };
  const missing = missingNeed(env, c.needs);
  if (missing) return { ...base, status: 'skip', reason: missing, durationMs: 0, log: [] };

  const tracked = new TrackedKernel(env.kernel);
  const t = new CaseContext(tracked, { ...env, kernel: tracked });
  const before = fdCensus(env.kernel);
  let failure: Error | null = null;
  let skipped: string | null = null;
  try {
    await c.run(t);
  } catch (e) {
    if (e instanceof CaseSkipped) skipped = e.reason;
    else failure = e instanceof Error ? e : new Error(String(e));
  }
  try {
    t.teardown();
  } catch (e) {
    failure ??= e as Error;
  }
  const leaked = tracked.releaseAll();
  if (!failure && (leaked.fds.length || leaked.mappings.length)) {
    const what = [
      ...leaked.fds.map((h) => `fd ${h.fd} (${h.origin})`),
      ...leaked.mappings.map((m) => `mapping at 0x${m.address.toString(16)}`),
    ];
    failure = new CaseFailed(`the case left open: ${what.join(', ')}`);
  }
  const strays = strayFds(before, fdCensus(env.kernel));
  if (!failure && strays.length) failure = new CaseFailed(`fds appeared in /proc/self/fd and stayed open: ${strays.join(', ')}`);

  const durationMs = Date.now() - started;
  if (failure) {
    const result: CaseResult = { ...base, status: 'fail', reason: failure.message, durationMs, log: t.log };
    return failure instanceof CaseFailed || !failure.stack ? result : { ...result, stack: failure.stack };
  }
  if (skipped !== null) return { ...base, status: 'skip', reason: skipped, durationMs, log: t.log };
  return { ...base, status: 'pass', durationMs, log: t.log };
}

/**
 * Runs cases one after another with runCase, handing each result to `onResult` as it arrives.
 *
 * @category Conformance suite
 */
export async function runCases(
  env: Environment,
  cases: readonly ConformanceCase[],
  onResult?: (r: CaseResult) => void,
): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases) {
    const r = await runCase(env, c);
    results.push(r);
    onResult?.(r);
  }
  return results;
}

/**
 * The process's open fds that refer to VFIO, iommufd or anonymous-inode files (eventfds, fault
 * queues), by number, where /proc/self/fd is readable. It catches fds opened behind the tracking
 * kernel's back (by a library call that received the untracked kernel, or by the kernel itself).
 */
function fdCensus(kernel: Kernel): Map<string, string> | null {
  const dir = '/proc/self/fd';
  try {
    if (!kernel.exists(dir)) return null;
    const census = new Map<string, string>();
    for (const name of kernel.readdir(dir)) {
      let target: string;
      try {
        target = kernel.readlink(`${dir}/${name}`);
      } catch {
        continue;
      }
      if (/^\/dev\/(vfio|iommu)|^anon_inode:/.test(target)) census.set(name, target);
    }
    return census;
  } catch {
    return null;
  }
}

function strayFds(before: Map<string, string> | null, after: Map<string, string> | null): string[] {
  if (!before || !after) return [];
  return [...after].filter(([fd, target]) => before.get(fd) !== target).map(([fd, target]) => `${fd} -> ${target}`);
}

/**
 * Shared pieces of the API benchmarks: timing, finding a device on the real kernel, and the C
 * baseline (bench/c/ioctl-loop.c, run with an fd this process set up). Benchmarks print ratios against a baseline
 * measured in the same run; nothing asserts on time.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Kernel } from '../lib/sys/kernel';
import { PciDevice } from '../lib/pci/pci-device';
import type { VfioDevice } from '../lib/vfio/device';
import { openDevice } from '../lib/vfio/open-device';
import { addonStatus, type NativeAddon } from '../lib/sys/addon';
import { runIoctlLoop, timeLoopsInTurns, type IoctlLoopOptions, type IoctlLoopResult } from './native-c';

export interface Timing {
  readonly name: string;
  readonly iterations: number;
  readonly nsPerOp: number;
}

/** The addon itself, for timing the layers below NativeKernel. */
export function rawAddon(): NativeAddon {
  const status = addonStatus();
  if (!status.available) throw new Error(`the addon is not available: ${status.reason}`);
  return status.addon;
}

/** Times one call of `fn` (for operations too long to loop); returns ns. */
export function once(name: string, fn: () => void): Timing {
  const start = process.hrtime.bigint();
  fn();
  return { name, iterations: 1, nsPerOp: Number(process.hrtime.bigint() - start) };
}

/** Prints timings as a table with each one's ratio to `baseline`. */
export function report(title: string, baseline: Timing, others: readonly Timing[]): void {
  console.log(`\n${title}`);
  for (const t of [baseline, ...others]) {
    const ratio = t.nsPerOp / baseline.nsPerOp;
    console.log(`  ${t.name.padEnd(58)} ${formatNs(t.nsPerOp).padStart(11)}  ${ratio.toFixed(2)}x ${t === baseline ? '(baseline)' : ''}`);
  }
}

/** A loop to time: `run(i)` is one call. */
export interface Row {
  readonly name: string;
  readonly run: (i: number) => void;
}

/**
 * The command line of a looping benchmark: iterations per round (argv[2]) and rounds (argv[3]),
 * each with the benchmark's own default.
 */
export function loopArguments(defaults: { readonly iterations: number; readonly rounds: number }): { iterations: number; rounds: number } {
  return { iterations: Number(process.argv[2] ?? defaults.iterations), rounds: Number(process.argv[3] ?? defaults.rounds) };
}

/**
 * The two bottom rows of an ioctl measured layer by layer, both issuing one pre-packed struct:
 * the addon's ioctl handed the struct's ArrayBuffer (as NativeKernel does for a struct that
 * fills it) and NativeKernel.ioctl. `reset` restores before each call what the kernel writes back.
 */
export function prePackedRows(
  kernel: Kernel,
  fd: number,
  request: number,
  packed: Uint8Array,
  reset: () => void,
): [raw: Row, viaKernel: Row] {
  const addon = rawAddon();
  const buffer = packed.buffer as ArrayBuffer;
  const raw: Row = {
    name: 'addon.ioctl, pre-packed struct (no NativeKernel)',
    run: () => {
      reset();
      addon.ioctl(fd, request, buffer);
    },
  };
  const viaKernel: Row = {
    name: 'NativeKernel.ioctl, pre-packed struct',
    run: () => {
      reset();
      kernel.ioctl(fd, request, packed);
    },
  };
  return [raw, viaKernel];
}

/** One call measured layer by layer, from the syscall up to the typed API (see benchLayers). */
export interface CallLayers {
  readonly title: string;
  readonly iterations: number;
  /** The same ioctl looped in C (bench/c/ioctl-loop.c). */
  readonly c: { readonly name: string; readonly options: IoctlLoopOptions };
  /** From the addon's ioctl up to the typed API, bottom first; each row includes the ones before it. */
  readonly layers: readonly Row[];
  /** The layer the goal is about. */
  readonly goal: Row;
  /** Rows off the call path (cached answers, another ioctl), for comparison. */
  readonly aside?: readonly Row[];
  /** Rounds of the turns (default 5). */
  readonly rounds?: number;
}

/** The ratio to C the typed API should stay under (issue 7). */
export const CALL_OVERHEAD_GOAL = 1.15;

/**
 * Times a call layer by layer in the same run and prints every layer with its cost, its ratio
 * to C and what it adds to the row before it, then the goal and what rules it in or out.
 *
 * Besides the layers, three floors are measured in the same turns: the timing loop alone (it is
 * in every JS row), an empty addon call (crossing into C++ and back: the least any N-API call
 * costs) and getuid(), a syscall that does nothing, from C and from Node's own binding (what a
 * syscall costs more in a Node process, with no addon involved). Each round runs the C program
 * once (which times both its ioctl and getuid) and every row once; each result is its best round.
 */
export function benchLayers(r: CallLayers): void {
  const addon = rawAddon();
  const harness: Row = { name: 'timing loop around an empty function', run: () => {} };
  const napiFloor: Row = {
    name: 'empty N-API call (addon.emptyCall)',
    run: () => {
      addon.emptyCall();
    },
  };
  const nodeGetuid: Row = {
    name: 'getuid() from Node (process.getuid, no addon)',
    run: () => {
      process.getuid?.();
    },
  };
  const rows = [harness, napiFloor, nodeGetuid, ...r.layers, ...(r.aside ?? [])];
  let cBest: IoctlLoopResult | null = null;
  let cFailure: string | null = null;
  const runC = (): void => {
    if (cFailure !== null) return;
    try {
      const result = runIoctlLoop({ ...r.c.options, iterations: r.iterations, timeGetuid: true });
      if (result.failures > 0) cFailure = `${result.failures} of ${result.iterations} calls failed (errno ${result.errno})`;
      else if (cBest === null || result.nsPerOp < cBest.nsPerOp) cBest = result;
    } catch (e) {
      cFailure = `unavailable (${(e as Error).message.split('\n')[0]})`;
    }
  };
  const ns = timeLoopsInTurns(
    r.iterations,
    rows.map((row) => (i: number) => {
      row.run(i);
      return 0;
    }),
    r.rounds ?? 5,
    runC,
  );
  const timing = new Map(rows.map((row, i) => [row, { name: row.name, iterations: r.iterations, nsPerOp: ns[i]! }]));
  const t = (row: Row): Timing => timing.get(row)!;

  console.log(`\n${r.title}`);
  console.log(`  machine: ${machineNote()}`);
  const c = cFailure === null ? (cBest as IoctlLoopResult | null) : null;
  if (c === null) console.log(`  C baseline: ${cFailure ?? 'not run'}; ratios are to the addon's ioctl instead`);
  const baseline: Timing = c ? { name: r.c.name, iterations: r.iterations, nsPerOp: c.nsPerOp } : t(r.layers[0]!);
  console.log(`  ${'layer'.padEnd(58)} ${'per call'.padStart(9)} ${'x C'.padStart(6)}  adds`);
  const line = (name: string, nsPerOp: number, adds: string) =>
    console.log(
      `  ${name.padEnd(58)} ${formatNs(nsPerOp).padStart(9)} ${`${(nsPerOp / baseline.nsPerOp).toFixed(2)}x`.padStart(6)}  ${adds}`,
    );
  if (c) line(r.c.name, c.nsPerOp, '(baseline)');
  line(harness.name, t(harness).nsPerOp, 'in every JS row');
  line(napiFloor.name, t(napiFloor).nsPerOp, 'crossing into C++ and back');
  if (c && c.getuidNsPerOp >= 0) line('getuid() from C (a syscall that does nothing)', c.getuidNsPerOp, '');
  line(
    nodeGetuid.name,
    t(nodeGetuid).nsPerOp,
    c && c.getuidNsPerOp >= 0 ? `${signedNs(t(nodeGetuid).nsPerOp - c.getuidNsPerOp)} over C's getuid` : '',
  );
  let below: Timing | null = c ? baseline : null;
  for (const layer of r.layers) {
    const now = t(layer);
    line(
      layer.name,
      now.nsPerOp,
      below ? `${signedNs(now.nsPerOp - below.nsPerOp)} over ${below === baseline && c ? 'C' : 'the row above'}` : '',
    );
    below = now;
  }
  for (const row of r.aside ?? []) line(row.name, t(row).nsPerOp, 'off the call path');

  const goalRatio = t(r.goal).nsPerOp / baseline.nsPerOp;
  const withoutLoop = (t(r.goal).nsPerOp - t(harness).nsPerOp) / baseline.nsPerOp;
  console.log(
    `  goal: ${r.goal.name} <= ${CALL_OVERHEAD_GOAL}x C: ${goalRatio <= CALL_OVERHEAD_GOAL ? 'met' : 'not met'} ` +
      `(${goalRatio.toFixed(2)}x; ${withoutLoop.toFixed(2)}x with the timing loop taken out)`,
  );
  if (!c) return;
  const budget = (CALL_OVERHEAD_GOAL - 1) * c.nsPerOp;
  const crossing = t(napiFloor).nsPerOp - t(harness).nsPerOp;
  const share = crossing / c.nsPerOp;
  console.log(
    `  N-API floor: an empty addon call costs ${formatNs(crossing)} (timing loop taken out) = ${(share * 100).toFixed(0)}% ` +
      `of the C ioctl; the goal leaves ${formatNs(budget)} (${((CALL_OVERHEAD_GOAL - 1) * 100).toFixed(0)}%) for everything above the syscall: ` +
      (share > CALL_OVERHEAD_GOAL - 1
        ? 'the crossing alone is more, so the goal is out of reach through N-API on this machine'
        : "the crossing fits; argument handling, the JS layers and the syscall's extra cost in a Node process share the rest"),
  );
  if (c.getuidNsPerOp >= 0) {
    const extra = t(nodeGetuid).nsPerOp - t(harness).nsPerOp - c.getuidNsPerOp;
    console.log(
      `  syscall in Node: getuid() costs ${signedNs(extra)} more from Node's own binding than from C ` +
        `(${((extra / c.nsPerOp) * 100).toFixed(0)}% of the C ioctl), with no addon involved`,
    );
  }
}

function signedNs(ns: number): string {
  return ns < 0 ? `-${formatNs(-ns)}` : `+${formatNs(ns)}`;
}

/** What the numbers depend on: where they were taken and how busy the machine was. */
export function machineNote(): string {
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const lab = process.env.NODE_VFIO_LAB_MODE ? `lab guest (${process.env.NODE_VFIO_LAB_MODE}, QEMU)` : 'host';
  return `${lab}, ${os.cpus().length} CPUs, load average ${load}, Linux ${os.release()}, node ${process.version}`;
}

export function formatNs(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} us`;
  return `${ns.toFixed(0)} ns`;
}

/**
 * The device to benchmark: $VFIO_BENCH_DEVICE, else the first device bound to vfio-pci.
 * Returns null (after printing why) when the machine has none.
 */
function benchDevice(kernel: Kernel): string | null {
  const wanted = process.env.VFIO_BENCH_DEVICE;
  if (wanted) return wanted;
  let devices: PciDevice[] = [];
  try {
    devices = PciDevice.list({ driver: 'vfio-pci' }, kernel);
  } catch {
    devices = [];
  }
  if (devices.length === 0) {
    console.log('skipped: no device (no PCI device is bound to vfio-pci; set VFIO_BENCH_DEVICE or run in the lab)');
    return null;
  }
  return devices[0]!.bdf;
}

/** The device to benchmark (see benchDevice), opened on `kernel` the way openDevice chooses; null when there is none. */
export function openBenchDevice(kernel: Kernel): VfioDevice | null {
  const bdf = benchDevice(kernel);
  return bdf === null ? null : openDevice(bdf, { kernel });
}

/** Whether `device` is on the Linux 7.3 noiommu cdev path (GET_PA exists); prints why it is skipped otherwise. */
export function onNoiommuCdev(device: VfioDevice): boolean {
  if (device.backend.noiommu && device.backend.kind === 'cdev') return true;
  console.log(`skipped: ${device.bdf} is not on the Linux 7.3 noiommu cdev path (${device.backend.reason})`);
  return false;
}

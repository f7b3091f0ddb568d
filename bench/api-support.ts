/**
 * Shared pieces of the API benchmarks: timing, finding a device on the real kernel, and the C
 * baseline (bench/c/ioctl-loop.c, run with an fd this process set up). Benchmarks print ratios against a baseline
 * measured in the same run; nothing asserts on time.
 */
import type { Kernel } from '../lib/sys/kernel';
import { PciDevice } from '../lib/sysfs';
import { bestOf, runIoctlLoop, timeLoop, type IoctlLoopOptions } from './native-c';

export interface Timing {
  readonly name: string;
  readonly iterations: number;
  readonly nsPerOp: number;
}

/** ns per call of `fn`: the best of 5 runs of `iterations` calls (bench/native-c.ts timeLoop). */
export function measure(name: string, iterations: number, fn: (i: number) => void): Timing {
  return { name, iterations, nsPerOp: timeLoop(iterations, (i) => { fn(i); return 0; }) };
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

export function formatNs(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} us`;
  return `${ns.toFixed(0)} ns`;
}

/**
 * The device to benchmark: $VFIO_BENCH_DEVICE, else the first device bound to vfio-pci.
 * Returns null (after printing why) when the machine has none.
 */
export function benchDevice(kernel: Kernel): string | null {
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

/**
 * The same ioctl from C (bench/c/ioctl-loop.c through bench/native-c.ts), on an fd of this
 * process, best of 3 runs; null with the reason printed when the C compiler or program fails.
 */
export function cBaseline(name: string, options: IoctlLoopOptions): Timing | null {
  try {
    const r = bestOf(3, () => runIoctlLoop(options));
    if (r.failures > 0) {
      console.log(`  C baseline: ${r.failures} of ${r.iterations} calls failed (errno ${r.errno})`);
      return null;
    }
    return { name, iterations: r.iterations, nsPerOp: r.nsPerOp };
  } catch (e) {
    console.log(`  C baseline: unavailable (${(e as Error).message.split('\n')[0]})`);
    return null;
  }
}

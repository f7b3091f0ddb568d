/**
 * Shared pieces of the API benchmarks: timing, finding a device on the real kernel, and the C
 * baseline (bench/c/ioctl-loop, when it is there). Benchmarks print ratios against a baseline
 * measured in the same run; nothing asserts on time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Kernel } from '../lib/sys/kernel';
import { PciDevice } from '../lib/sysfs';

export interface Timing {
  readonly name: string;
  readonly iterations: number;
  readonly nsPerOp: number;
}

/** Runs `fn` `iterations` times after a warm-up of a tenth as many; returns ns per call. */
export function measure(name: string, iterations: number, fn: (i: number) => void): Timing {
  const warm = Math.max(1, Math.floor(iterations / 10));
  for (let i = 0; i < warm; i++) fn(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(i);
  const ns = Number(process.hrtime.bigint() - start);
  return { name, iterations, nsPerOp: ns / iterations };
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
 * Runs the C baseline bench/c/ioctl-loop with `args` (building it from ioctl-loop.c with cc when
 * needed) and returns its ns/op, or null with the reason printed.
 */
export function cBaseline(name: string, args: readonly string[]): Timing | null {
  const root = path.resolve(__dirname, '..', '..');
  const source = path.join(root, 'bench', 'c', 'ioctl-loop.c');
  const binary = path.join(root, 'build', 'bench', 'ioctl-loop');
  if (!fs.existsSync(source)) {
    console.log(`  C baseline: unavailable (no ${path.relative(root, source)})`);
    return null;
  }
  try {
    if (!fs.existsSync(binary) || fs.statSync(binary).mtimeMs < fs.statSync(source).mtimeMs) {
      fs.mkdirSync(path.dirname(binary), { recursive: true });
      execFileSync('cc', ['-O2', '-o', binary, source], { stdio: 'pipe' });
    }
    const out = execFileSync(binary, args, { encoding: 'utf8' });
    const m = /([0-9.]+)\s*ns\/op/.exec(out);
    if (!m) {
      console.log(`  C baseline: could not find "ns/op" in its output: ${out.trim()}`);
      return null;
    }
    return { name, iterations: 0, nsPerOp: Number(m[1]) };
  } catch (e) {
    console.log(`  C baseline: failed (${(e as Error).message.split('\n')[0]})`);
    return null;
  }
}

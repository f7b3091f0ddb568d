/**
 * Cost of an exact-width 32-bit MMIO read through the native addon, compared with a volatile
 * load in C on the same kind of mapping (anonymous memory here; a BAR in the lab, where the
 * device's own latency dominates both). Prints; asserts nothing.
 *
 *   npm run bench:native-mmio [-- ITERATIONS]
 */
import { addonStatus } from '../lib/sys/addon';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../lib/sys/constants';
import { nativeKernel, type NativeMapping } from '../lib/sys/native';
import { Mmio } from '../lib/mmio';
import { bestOf, runC, timeLoop } from './native-c';

const iterations = Number(process.argv[2] ?? 2_000_000);
const LENGTH = 4096;
const MASK = LENGTH - 4;

function main(): void {
  const status = addonStatus();
  if (!status.available) {
    console.log(`native-mmio: skipped, the addon is not available (${status.reason})`);
    return;
  }
  const kernel = nativeKernel();
  const mapping = kernel.mmap(-1, BigInt(LENGTH), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n) as NativeMapping;
  for (let offset = 0; offset < LENGTH; offset += 4) kernel.mmioWrite(mapping, offset, 32, offset);
  const mmio = new Mmio(kernel, mapping, 'bench mapping', 0n);
  const addon = status.addon;
  const view = new DataView(mapping.buffer!);

  const rows: [string, number][] = [];
  rows.push(['C volatile load (bench/c/mmio-loop.c)', bestOf(5, () => runC<{ nsPerOp: number }>('mmio-loop', [String(iterations * 4), String(LENGTH)])).nsPerOp]);
  rows.push(['addon read32(handle, offset)', timeLoop(iterations, (i) => addon.read32(mapping.handle, (i * 4) & MASK))]);
  rows.push(['NativeKernel.mmioRead(mapping, offset, 32)', timeLoop(iterations, (i) => kernel.mmioRead(mapping, (i * 4) & MASK, 32))]);
  rows.push(['Mmio.read32(offset) (typed API)', timeLoop(iterations, (i) => mmio.read32((i * 4) & MASK))]);
  rows.push(['DataView.getUint32 (plain memory, not exact-width)', timeLoop(iterations, (i) => view.getUint32((i * 4) & MASK, true))]);
  mmio.close();

  const c = rows[0]![1];
  console.log(`native-mmio: 32-bit reads of a ${LENGTH}-byte anonymous mapping, best of 5 × ${iterations} iterations (node ${process.version})`);
  for (const [name, ns] of rows) {
    console.log(`  ${name.padEnd(52)} ${ns.toFixed(2).padStart(8)} ns/op  ${(ns / c).toFixed(1).padStart(6)}× C`);
  }
}

main();

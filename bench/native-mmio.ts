/**
 * Cost of a 32-bit MMIO read through the typed API (`Mmio.read32`) against the same volatile load
 * in C, on the same memory: a memfd page mapped through the addon here and by the C program there
 * (a BAR in the lab, where the device's own latency dominates both). Also shows the route through
 * the kernel's exact-width accessor (one addon call per access), which simulated BARs, read-only
 * mappings and refused accesses take. Prints; asserts nothing.
 *
 *   npm run bench:native-mmio [-- ITERATIONS]
 */
import { addonStatus } from '../lib/sys/addon';
import { MAP_SHARED, MFD_CLOEXEC, PROT_READ, PROT_WRITE } from '../lib/sys/constants';
import { nativeKernel, type NativeKernel, type NativeMapping } from '../lib/sys/native-kernel';
import { Mmio } from '../lib/vfio/mmio';
import { runMmioLoop, timeWholeLoop } from './native-c';

const iterations = Number(process.argv[2] ?? 20_000_000);
const LENGTH = 4096;
const MASK = LENGTH - 4;
const ROUNDS = 5;

// One hand-written loop per route, each with its own call site, so V8 optimizes each as a driver's
// polling loop would be (a shared loop taking a callback would measure a megamorphic call instead).
function loopMmio(mmio: Mmio, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum = (sum + mmio.read32((i * 4) & MASK)) | 0;
  return sum;
}

function loopKernel(kernel: NativeKernel, mapping: NativeMapping, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum = (sum + kernel.mmioRead(mapping, (i * 4) & MASK, 32)) | 0;
  return sum;
}

function loopAddon(read32: (handle: number, offset: number) => number, handle: number, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum = (sum + read32(handle, (i * 4) & MASK)) | 0;
  return sum;
}

function main(): void {
  const status = addonStatus();
  if (!status.available) {
    console.log(`native-mmio: skipped, the addon is not available (${status.reason})`);
    return;
  }
  const kernel = nativeKernel();
  const fd = kernel.memfdCreate('node-vfio-bench-mmio', MFD_CLOEXEC);
  kernel.ftruncate(fd, BigInt(LENGTH));
  const mapping = kernel.mmap(fd, BigInt(LENGTH), PROT_READ | PROT_WRITE, MAP_SHARED, 0n);
  for (let offset = 0; offset < LENGTH; offset += 4) kernel.mmioWrite(mapping, offset, 32, offset);
  const mmio = new Mmio(kernel, mapping, 'bench mapping', 0n);
  const { read32 } = status.addon;

  // The C program maps the same memfd, so it loads from the very pages mmio reads.
  const c = runMmioLoop(iterations, LENGTH, fd, ROUNDS);
  const rows: [string, number][] = [
    ['C: volatile load inlined in the loop (baseline)', c.inlineNsPerOp],
    ['C: volatile load in an out-of-line read32()', c.callNsPerOp],
    [`Mmio.read32 (typed API; direct: ${mmio.direct})`, timeWholeLoop(iterations, (n) => loopMmio(mmio, n), ROUNDS)],
    ['NativeKernel.mmioRead(mapping, offset, 32)', timeWholeLoop(iterations / 10, (n) => loopKernel(kernel, mapping, n), ROUNDS)],
    ['addon read32(handle, offset) (one N-API call)', timeWholeLoop(iterations / 10, (n) => loopAddon(read32, mapping.handle, n), ROUNDS)],
  ];
  mmio.close();
  kernel.close(fd);

  const baseline = c.inlineNsPerOp;
  console.log(
    `native-mmio: 32-bit reads of a ${LENGTH}-byte memfd page, best of ${ROUNDS} × ${iterations} reads (node ${process.version})`,
  );
  for (const [name, ns] of rows) {
    console.log(`  ${name.padEnd(52)} ${ns.toFixed(2).padStart(8)} ns/op  ${(ns / baseline).toFixed(2).padStart(7)}× C`);
  }
  const ratio = rows[2]![1] / baseline;
  console.log(`  goal: Mmio.read32 ≤ 2× the inlined C loop — ${ratio <= 2 ? 'met' : 'NOT met'} (${ratio.toFixed(2)}×)`);
}

main();

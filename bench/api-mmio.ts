/**
 * `Mmio.read32` on a real device's BAR against the same volatile load looped in C on the same
 * BAR (the C program maps BAR0 through the very device fd this process opened), in the same run.
 * On a BAR every load is a bus transaction (a trap into QEMU's device model in the lab), so this
 * shows what the typed API adds to a driver's register access where it matters; bench/native-mmio
 * shows the same on plain memory, where only the accessor's own cost is left.
 *
 *   node dist/bench/api-mmio.js [iterations]     (needs a device bound to vfio-pci: the lab)
 */
import { nativeKernel, type NativeKernel } from '../lib/sys/native-kernel';
import type { Mapping } from '../lib/sys/kernel';
import type { Mmio } from '../lib/vfio/mmio';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../lib/sys/constants';
import { formatNs, openBenchDevice } from './api-support';
import { runMmioLoop, timeWholeLoop } from './native-c';

const ROUNDS = 5;
/** BAR0 offset read in every loop: edu's identification register, a read without side effects. */
const REGISTER = 0;

function loopMmio(mmio: Mmio, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum = (sum + mmio.read32(REGISTER)) | 0;
  return sum;
}

function loopKernel(kernel: NativeKernel, mapping: Mapping, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum = (sum + kernel.mmioRead(mapping, REGISTER, 32)) | 0;
  return sum;
}

function main(): void {
  const iterations = Number(process.argv[2] ?? 100_000);
  const kernel = nativeKernel();
  using device = openBenchDevice(kernel);
  if (device === null) return;
  const bar = device.bar(0);
  if (bar.info.offset !== 0n) throw new Error(`BAR0's region offset is 0x${bar.info.offset.toString(16)}, the C baseline maps offset 0`);
  const mmio = bar.mmap(0n, BigInt(kernel.pageSize));
  // A second mapping of the same page for the kernel-accessor row, made the way any caller would.
  const mapping = kernel.mmap(device.fd, BigInt(kernel.pageSize), PROT_READ | PROT_WRITE, MAP_SHARED, 0n);

  // LENGTH 4: every C load is at BAR0 + 0, the register the JS loops read.
  const c = runMmioLoop(iterations, 4, device.fd, ROUNDS);
  const rows: [string, number][] = [
    ['C: volatile load inlined in the loop (baseline)', c.inlineNsPerOp],
    ['C: volatile load in an out-of-line read32()', c.callNsPerOp],
    [`Mmio.read32 (typed API; direct: ${mmio.direct})`, timeWholeLoop(iterations, (n) => loopMmio(mmio, n), ROUNDS)],
    ['NativeKernel.mmioRead (one addon call per load)', timeWholeLoop(iterations, (n) => loopKernel(kernel, mapping, n), ROUNDS)],
  ];
  const id = mmio.read32(REGISTER);
  mmio.close();
  kernel.munmap(mapping);
  console.log(
    `api-mmio: 32-bit reads of BAR0+0x${REGISTER.toString(16)} of ${device.bdf} (reads 0x${id.toString(16)}), best of ${ROUNDS} × ${iterations}, backend ${device.backend.kind}${device.backend.noiommu ? ' (noiommu)' : ''}`,
  );
  const baseline = c.inlineNsPerOp;
  for (const [name, ns] of rows) console.log(`  ${name.padEnd(52)} ${formatNs(ns).padStart(11)}  ${(ns / baseline).toFixed(2)}x C`);
  const ratio = rows[2]![1] / baseline;
  console.log(`  goal: Mmio.read32 ≤ 2× the C loop on the same mapping — ${ratio <= 2 ? 'met' : 'NOT met'} (${ratio.toFixed(2)}×)`);
}

main();

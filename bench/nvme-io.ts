/**
 * NVMe I/O through the example driver (examples/nvme): 4 KiB random reads and writes at queue
 * depth 1 and 32, completions polled, one I/O queue; IOPS and p50/p99 latency. The I/O path is
 * the driver's allocation-free `submit` (doorbells through the mapped BAR, PRPs from the buffer's
 * cached bus addresses, one callback per slot made before the run).
 *
 *   npm run build && node dist/bench/nvme-io.js [--model[=noiommu|iommu]] [--seconds=S] [--spin=µs] [--json]
 *
 * It runs on the NVMe controller bound to vfio-pci in NODE_VFIO_BDF (the lab's nvme machine:
 * `NODE_VFIO_LAB_ACCEL=tcg bash scripts/lab/run.sh <mode> --machine nvme -- node dist/bench/nvme-io.js`),
 * or on the model when there is none. It writes the blocks it reads: run it on a scratch device.
 */
import { DmaBuffer, PciDevice, nativeKernel, openDevice, type Kernel } from '../lib';
import { createModelKernel } from '../lib/model';
import { NvmeController } from '../lib/devices/nvme';
import { NvmeDriver } from '../examples/nvme/nvme-driver';

const BDF = '0000:00:04.0';
const IO_BYTES = 4096;

interface Args { model?: 'noiommu' | 'iommu'; seconds: number; spin: number; json: boolean }

function parse(argv: string[]): Args {
  const a: Args = { seconds: 2, spin: 0, json: false };
  for (const arg of argv) {
    if (arg === '--model') a.model = 'noiommu';
    else if (arg === '--model=noiommu' || arg === '--model=iommu') a.model = arg.slice(8) as 'noiommu' | 'iommu';
    else if (arg.startsWith('--seconds=')) a.seconds = Number(arg.slice(10));
    else if (arg.startsWith('--spin=')) a.spin = Number(arg.slice(7));
    else if (arg === '--json') a.json = true;
    else throw new Error(`unknown argument '${arg}'`);
  }
  return a;
}

function target(a: Args): { kernel: Kernel; bdf: string; what: string } {
  const model = (mode: 'noiommu' | 'iommu') => ({
    kernel: createModelKernel({ base: `linux-7.3-${mode}`, withoutBaseDevices: true, devices: [{ address: BDF, model: new NvmeController() }] }),
    bdf: BDF, what: `model (${mode})`,
  });
  if (a.model) return model(a.model);
  const bdf = process.env.NODE_VFIO_BDF;
  if (bdf) {
    const kernel = nativeKernel();
    if (PciDevice.get(bdf, kernel).driver === 'vfio-pci') return { kernel, bdf, what: `${bdf} (${process.env.NODE_VFIO_LAB_MODE ?? 'real kernel'})` };
  }
  return model('noiommu');
}

export interface NvmeBenchRow {
  readonly workload: string;
  readonly queueDepth: number;
  readonly iops: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

/** Keeps `depth` I/Os in flight for `seconds`, each completion submitting the next. */
async function workload(nvme: NvmeDriver, buffer: DmaBuffer, blocks: number, write: boolean, depth: number, seconds: number): Promise<NvmeBenchRow> {
  const maxSamples = 4_000_000;
  const latencies = new Float64Array(maxSamples);
  const started = new Float64Array(depth);
  let samples = 0, completed = 0, failures = 0;
  let measuring = false, stopping = false, inFlight = 0;
  let seed = 0x9e3779b9;
  const nextLba = () => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
    return (seed % blocks) * (IO_BYTES / 512);
  };
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => { finished = resolve; });
  const callbacks: ((status: number) => void)[] = [];
  const submit = (slot: number) => {
    started[slot] = performance.now();
    if (!nvme.submit(1, write, 1, nextLba(), IO_BYTES / 512, buffer, slot * IO_BYTES, IO_BYTES, callbacks[slot]!)) throw new Error('queue full');
    inFlight++;
  };
  for (let slot = 0; slot < depth; slot++) {
    callbacks.push((status: number) => {
      inFlight--;
      if (status !== 0) failures++;
      if (measuring) {
        completed++;
        if (samples < maxSamples) latencies[samples++] = performance.now() - started[slot]!;
      }
      if (!stopping) submit(slot);
      else if (inFlight === 0) finished();
    });
  }
  for (let slot = 0; slot < depth; slot++) submit(slot);
  await new Promise((r) => setTimeout(r, Math.min(500, seconds * 200)));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const elapsed = performance.now() - t0;
  measuring = false;
  stopping = true;
  await done;
  if (failures) throw new Error(`${failures} I/Os failed`);
  const sorted = latencies.subarray(0, samples).sort();
  const at = (q: number) => (sorted[Math.min(samples - 1, Math.floor(q * samples))] ?? NaN) * 1000;
  return { workload: write ? 'randwrite' : 'randread', queueDepth: depth, iops: completed / (elapsed / 1000), p50Us: at(0.5), p99Us: at(0.99) };
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  const { kernel, bdf, what } = target(a);
  using device = openDevice(bdf, { kernel });
  using nvme = await NvmeDriver.open(device, { ioQueues: 1, queueDepth: 64, completion: 'poll', pollSpinMicroseconds: a.spin });
  const ns = nvme.namespaces[0];
  if (!ns) throw new Error('no namespace');
  const blocks = Number(ns.blocks) / (IO_BYTES / ns.blockSize);
  using buffer = DmaBuffer.allocate(32 * IO_BYTES, { space: device.dmaSpace });
  buffer.bytes.fill(0xa5);
  const rows: NvmeBenchRow[] = [];
  for (const write of [false, true]) {
    for (const depth of [1, 32]) rows.push(await workload(nvme, buffer, blocks, write, depth, a.seconds));
  }
  await nvme.shutdown();
  if (a.json) { console.log(JSON.stringify({ target: what, rows })); return; }
  console.log(`nvme bench: TypeScript driver on ${what}, 4 KiB random I/O, polled, ${a.seconds} s per row${a.spin ? `, spin ${a.spin} µs` : ''}`);
  for (const r of rows) {
    console.log(`  ${r.workload.padEnd(9)} QD${String(r.queueDepth).padEnd(2)} ${Math.round(r.iops).toString().padStart(8)} IOPS   p50 ${r.p50Us.toFixed(1).padStart(8)} µs   p99 ${r.p99Us.toFixed(1).padStart(8)} µs`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});

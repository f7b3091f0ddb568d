/**
 * NVMe I/O through the example driver (examples/nvme): 4 KiB random reads and writes at queue
 * depth 1 and 32, completions polled, one I/O queue; IOPS and p50/p99 latency. The I/O path is
 * the driver's allocation-free `submit` (doorbells through the mapped BAR, PRPs from the buffer's
 * cached bus addresses, one callback per slot made before the run).
 *
 * On a real kernel the same loop runs in C as well (bench/c/nvme-io.c), on the same controller
 * in the same boot, each C row right after the TypeScript row of the same workload: this process creates a second I/O queue pair whose rings and data slots live
 * in a memfd mapped for DMA, and the C program maps that memfd and BAR0 and drives the queue.
 * The ratios TypeScript/C are printed (goals: IOPS ≥ 0.9× at QD32, p50 ≤ 1.2× at QD1). The C loop
 * runs twice per round: spinning plainly, as the driver's poll loop does, and with the CPU's
 * spin-wait hint (PAUSE) after each empty poll (`--c-spin`), because under the lab's emulation
 * that hint alone moves C's numbers (with a tail doorbell per command it took C from 38-56k to
 * 75-91k IOPS at QD32; it always costs C latency at QD1): the TypeScript row is compared with both.
 *
 *   npm run build && node dist/bench/nvme-io.js [--model[=noiommu|iommu]] [--seconds=S] [--spin=µs]
 *       [--turn=µs] [--rounds=N] [--warm-up=S] [--depths=1,32] [--c-spin=plain,pause] [--no-raw] [--json]
 *
 * It runs on the NVMe controller bound to vfio-pci in NODE_VFIO_BDF (the lab's nvme machine:
 * `NODE_VFIO_LAB_ACCEL=tcg bash scripts/lab/run.sh <mode> --machine nvme -- node dist/bench/nvme-io.js`),
 * or on the model when there is none. It writes the blocks it reads: run it on a scratch device.
 */
import { DmaBuffer, PciDevice, nativeKernel, openDevice, type Kernel, type VfioDevice } from '../lib';
// The module's binding: the global `performance` is a lazy accessor in Node 20, run on every use (it showed in the poll loop's profile).
import { performance } from 'node:perf_hooks';
import { MAP_SHARED, MFD_CLOEXEC, PROT_READ, PROT_WRITE } from '../lib/sys/constants';
import { runC } from './native-c';
import { rawLoop } from './nvme-raw-loop';
import { randomLbas } from './nvme-lbas';
import { createModelKernel } from '../lib/model';
import { NvmeController } from '../lib/devices/nvme';
import { NvmeDriver } from '../examples/nvme/nvme-driver';

const BDF = '0000:00:04.0';
const IO_BYTES = 4096;

interface Args {
  model?: 'noiommu' | 'iommu';
  seconds: number;
  /** µs; undefined: the default for the target (see main). */
  spin?: number;
  /** µs: the driver's pollTurnMicroseconds; undefined: the default for the target (see main). */
  turn?: number;
  rounds: number;
  /** Seconds of each workload run unmeasured before the rows. */
  warmUp: number;
  /** Queue depths to run (default 1 and 32), each for reads and writes. */
  depths: number[];
  /** How the C loop spins between polls that found nothing, one C row per kind and round. */
  cSpins: CSpin[];
  /** Also the C loop transliterated to TypeScript without the driver (bench/nvme-raw-loop.ts). */
  raw: boolean;
  json: boolean;
}

/** bench/c/nvme-io.c's SPIN argument. */
type CSpin = 'plain' | 'pause';
const C_SPINS: readonly CSpin[] = ['plain', 'pause'];
/** The row names: C spinning as the driver does, C+p with a PAUSE after each empty poll. */
const C_ROW_NAMES: Record<CSpin, string> = { plain: 'C', pause: 'C+p' };

function parse(argv: string[]): Args {
  const a: Args = { seconds: 1, rounds: 9, warmUp: 2, depths: [1, 32], cSpins: [...C_SPINS], raw: true, json: false };
  for (const arg of argv) {
    if (arg === '--model') a.model = 'noiommu';
    else if (arg === '--model=noiommu' || arg === '--model=iommu') a.model = arg.slice(8) as 'noiommu' | 'iommu';
    else if (arg.startsWith('--seconds=')) a.seconds = Number(arg.slice(10));
    else if (arg.startsWith('--spin=')) a.spin = Number(arg.slice(7));
    else if (arg.startsWith('--turn=')) a.turn = Number(arg.slice(7));
    else if (arg.startsWith('--rounds=')) a.rounds = Number(arg.slice(9));
    else if (arg.startsWith('--warm-up=')) a.warmUp = Number(arg.slice(10));
    else if (arg.startsWith('--depths=')) a.depths = arg.slice(9).split(',').map(Number);
    else if (arg.startsWith('--c-spin=')) {
      a.cSpins = arg.slice(9).split(',') as CSpin[];
      for (const spin of a.cSpins)
        if (!C_SPINS.includes(spin)) throw new Error(`--c-spin: each kind must be one of ${C_SPINS.join(', ')}, not '${spin}'`);
    } else if (arg === '--json') a.json = true;
    else if (arg === '--no-raw') a.raw = false;
    else throw new Error(`unknown argument '${arg}'`);
  }
  if (!Number.isInteger(a.rounds) || a.rounds < 1) throw new Error(`--rounds must be a positive integer, not ${a.rounds}`);
  for (const depth of a.depths)
    if (!Number.isInteger(depth) || depth < 1 || depth > 32)
      throw new Error(`--depths: each queue depth must be 1..32 (the bench has 32 data slots), not ${depth}`);
  if (!(a.warmUp >= 0)) throw new Error(`--warm-up must be 0 or more seconds, not ${a.warmUp}`);
  if (!(a.seconds > 0)) throw new Error(`--seconds must be positive, not ${a.seconds}`);
  if (a.spin !== undefined && !(a.spin >= 0)) throw new Error(`--spin must be 0 or more µs, not ${a.spin}`);
  if (a.turn !== undefined && !(a.turn >= 0)) throw new Error(`--turn must be 0 or more µs, not ${a.turn}`);
  return a;
}

function target(a: Args): { kernel: Kernel; bdf: string; what: string; real: boolean } {
  const model = (mode: 'noiommu' | 'iommu') => ({
    kernel: createModelKernel({
      base: `linux-7.3-${mode}`,
      withoutBaseDevices: true,
      devices: [{ address: BDF, model: new NvmeController() }],
    }),
    bdf: BDF,
    what: `model (${mode})`,
    real: false,
  });
  if (a.model) return model(a.model);
  const bdf = process.env.NODE_VFIO_BDF;
  if (bdf) {
    const kernel = nativeKernel();
    if (PciDevice.get(bdf, kernel).driver === 'vfio-pci')
      return { kernel, bdf, what: `${bdf} (${process.env.NODE_VFIO_LAB_MODE ?? 'real kernel'})`, real: true };
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
async function workload(
  nvme: NvmeDriver,
  buffer: DmaBuffer,
  blocks: number,
  write: boolean,
  depth: number,
  seconds: number,
): Promise<NvmeBenchRow> {
  const maxSamples = 4_000_000;
  const latencies = new Float64Array(maxSamples);
  const started = new Float64Array(depth);
  let samples = 0,
    completed = 0,
    failures = 0;
  let measuring = false,
    stopping = false,
    inFlight = 0;
  const nextLba = randomLbas(blocks, IO_BYTES / 512);
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const callbacks: ((status: number) => void)[] = [];
  // One clock read per I/O, as in the C loop: the time a completion is seen ends its I/O's
  // latency and starts the latency of the I/O submitted in its place.
  const submit = (slot: number, at: number) => {
    started[slot] = at;
    if (!nvme.submit(1, write, 1, nextLba(), IO_BYTES / 512, buffer, slot * IO_BYTES, IO_BYTES, callbacks[slot]!))
      throw new Error('queue full');
    inFlight++;
  };
  for (let slot = 0; slot < depth; slot++) {
    callbacks.push((status: number) => {
      const now = performance.now();
      inFlight--;
      if (status !== 0) failures++;
      if (measuring) {
        completed++;
        if (samples < maxSamples) latencies[samples++] = now - started[slot]!;
      }
      if (!stopping) submit(slot, now);
      else if (inFlight === 0) finished();
    });
  }
  for (let slot = 0; slot < depth; slot++) submit(slot, performance.now());
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
  return {
    workload: write ? 'randwrite' : 'randread',
    queueDepth: depth,
    iops: completed / (elapsed / 1000),
    p50Us: at(0.5),
    p99Us: at(0.99),
  };
}

const C_QUEUE = 2;
const C_DEPTH = 64;
const PAGE = 4096;

/**
 * The C loop on queue pair 2 of the same controller: rings (page 0 SQ, page 1 CQ) and 32 data
 * slots in a memfd this process maps for DMA; the C program maps the memfd and BAR0 itself.
 */
async function cRows(
  kernel: Kernel,
  device: VfioDevice,
  nvme: NvmeDriver,
  blocks: number,
  seconds: number,
  rounds: number,
  depths: number[],
  spins: readonly CSpin[],
  withRaw: boolean,
  between: (write: boolean, depth: number) => Promise<void>,
): Promise<{ c: Record<CSpin, NvmeBenchRow[]>; raw: NvmeBenchRow[] }> {
  const ioas = device.ioas;
  if (!ioas) throw new Error('the C comparison needs the device attached to an IOAS (the cdev path)');
  const size = BigInt((2 + 32) * PAGE);
  const memfd = kernel.memfdCreate('nvme-bench', MFD_CLOEXEC);
  kernel.ftruncate(memfd, size);
  const memory = kernel.mmap(memfd, size, PROT_READ | PROT_WRITE, MAP_SHARED, 0n);
  try {
    new Uint8Array(memory.buffer!).fill(0);
    using mapping = ioas.map({ va: memory.address, length: size });
    const bus = (offset: number): bigint => {
      if (!device.backend.noiommu) return mapping.iova + BigInt(offset);
      for (const s of mapping.segments()) {
        const within = BigInt(offset) - (s.iova - mapping.iova);
        if (within >= 0n && within < s.length) return s.phys + within;
      }
      throw new Error(`no physical run covers offset ${offset}`);
    };
    const slots = Array.from({ length: 32 }, (_, i) => `0x${bus((2 + i) * PAGE).toString(16)}`).join(',');
    console.log(
      `  C: queue pair ${C_QUEUE} in a memfd: SQ at 0x${bus(0).toString(16)}, CQ at 0x${bus(PAGE).toString(16)} (${device.backend.noiommu ? 'physical' : 'IOVA'})`,
    );
    const bar0 = device.bar(0);
    using bar = bar0.mmap();
    const rows: Record<CSpin, NvmeBenchRow[]> = { plain: [], pause: [] };
    const raw: NvmeBenchRow[] = [];
    const rings = new Uint8Array(memory.buffer!, 0, 2 * PAGE);
    // A fresh queue pair per run: each loop starts at index 0 with phase 1.
    const withQueuePair = async <T>(run: () => T): Promise<T> => {
      rings.fill(0);
      await nvme.adminCommand({ opcode: 0x05, cdw10: ((C_DEPTH - 1) << 16) | C_QUEUE, cdw11: 1, prp1: Number(bus(PAGE)) });
      await nvme.adminCommand({
        opcode: 0x01,
        cdw10: ((C_DEPTH - 1) << 16) | C_QUEUE,
        cdw11: ((C_QUEUE << 16) | 1) >>> 0,
        prp1: Number(bus(0)),
      });
      try {
        return run();
      } finally {
        await nvme.adminCommand({ opcode: 0x00, cdw10: C_QUEUE });
        await nvme.adminCommand({ opcode: 0x04, cdw10: C_QUEUE });
      }
    };
    const layout = {
      bar,
      memory: new Uint8Array(memory.buffer!),
      sqOffset: 0,
      cqOffset: PAGE,
      depth: C_DEPTH,
      queueId: C_QUEUE,
      slots: Array.from({ length: 32 }, (_, i) => Number(bus((2 + i) * PAGE))),
    };
    for (const write of [false, true]) {
      for (const depth of depths) {
        for (let round = 0; round < rounds; round++) {
          // The TypeScript row of the same workload right before, so both see the same machine.
          await between(write, depth);
          for (const spin of spins) {
            const r = await withQueuePair(() =>
              runC<{ iops: number; p50Us: number; p99Us: number }>(
                'nvme-io',
                [
                  `0x${bar0.info.offset.toString(16)}`,
                  String(bar0.size),
                  '0',
                  String(PAGE),
                  String(C_DEPTH),
                  String(C_QUEUE),
                  String(2 * PAGE),
                  slots,
                  String(blocks),
                  String(depth),
                  write ? '1' : '0',
                  String(seconds),
                  String(size),
                  spin,
                ],
                [memfd, device.fd],
              ),
            );
            rows[spin].push({
              workload: write ? 'randwrite' : 'randread',
              queueDepth: depth,
              iops: r.iops,
              p50Us: r.p50Us,
              p99Us: r.p99Us,
            });
          }
          if (withRaw) {
            const t = await withQueuePair(() => rawLoop(layout, blocks, depth, write, seconds));
            if (t.failures) throw new Error(`the TypeScript raw loop saw ${t.failures} failed I/Os`);
            raw.push({ workload: write ? 'randwrite' : 'randread', queueDepth: depth, iops: t.iops, p50Us: t.p50Us, p99Us: t.p99Us });
          }
        }
      }
    }
    return { c: rows, raw };
  } finally {
    kernel.munmap(memory);
    kernel.close(memfd);
  }
}

/** The middle value (the lower middle of an even count). */
function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN;
}

/** Busy-polling for a real controller; none for the model, whose controller runs on this event loop (a spin would only delay it). */
const REAL_DEVICE_SPIN_US = 1000;
/**
 * Poll turns for a real controller: this process's event loop has nothing to do but end each
 * row, and at the driver's default 2 ms turns the lab's emulated CPU spent 5 % of every row
 * between turns (about 100 µs per yield, measured) while the C loop never yields. 20 ms turns
 * leave 0.5 %; `--turn=2000` shows the default.
 */
const REAL_DEVICE_TURN_US = 20_000;

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  const { kernel, bdf, what, real } = target(a);
  const spin = a.spin ?? (real ? REAL_DEVICE_SPIN_US : 0);
  const turn = a.turn ?? (real ? REAL_DEVICE_TURN_US : undefined);
  using device = openDevice(bdf, { kernel });
  using nvme = await NvmeDriver.open(device, {
    ioQueues: 1,
    queueDepth: 64,
    completion: 'poll',
    pollSpinMicroseconds: spin,
    ...(turn !== undefined ? { pollTurnMicroseconds: turn } : {}),
  });
  const ns = nvme.namespaces[0];
  if (!ns) throw new Error('no namespace');
  const blocks = Number(ns.blocks) / (IO_BYTES / ns.blockSize);
  using buffer = DmaBuffer.allocate(32 * IO_BYTES, { space: device.dmaSpace });
  buffer.bytes.fill(0xa5);
  const rows: NvmeBenchRow[] = [];
  const tsRow = async (write: boolean, depth: number) => {
    rows.push(await workload(nvme, buffer, blocks, write, depth, a.seconds));
  };
  // Every workload once, unmeasured, before any row: under the lab's emulation V8's optimizing
  // compiler needs seconds to settle the I/O path (the first rounds of a cold process were up to
  // 2x slower than the last), and a cold JIT is not what a driver's steady state pays.
  if (a.warmUp > 0)
    for (const write of [false, true]) for (const depth of a.depths) await workload(nvme, buffer, blocks, write, depth, a.warmUp);
  let c: Record<CSpin, NvmeBenchRow[]> = { plain: [], pause: [] };
  let raw: NvmeBenchRow[] = [];
  if (real) ({ c, raw } = await cRows(kernel, device, nvme, blocks, a.seconds, a.rounds, a.depths, a.cSpins, a.raw, tsRow));
  else for (const write of [false, true]) for (const depth of a.depths) for (let r = 0; r < a.rounds; r++) await tsRow(write, depth);
  await nvme.shutdown();
  if (a.json) {
    console.log(JSON.stringify({ target: what, spinUs: spin, turnUs: turn ?? null, rounds: a.rounds, rows, c, raw }));
    return;
  }
  console.log(
    `nvme bench: ${what}, 4 KiB random I/O, polled (spin ${spin} µs${turn !== undefined ? `, turns up to ${turn / 1000} ms` : ''}), ${a.seconds} s per row, ${a.rounds} round(s) per workload` +
      (real ? ', TypeScript and C alternating' : ''),
  );
  const line = (who: string, r: NvmeBenchRow) =>
    `  ${who.padEnd(3)} ${r.workload.padEnd(9)} QD${String(r.queueDepth).padEnd(2)} ${Math.round(r.iops).toString().padStart(8)} IOPS   p50 ${r.p50Us.toFixed(1).padStart(8)} µs   p99 ${r.p99Us.toFixed(1).padStart(8)} µs`;
  const medianRow = (list: NvmeBenchRow[]): NvmeBenchRow => ({
    workload: list[0]!.workload,
    queueDepth: list[0]!.queueDepth,
    iops: median(list.map((r) => r.iops)),
    p50Us: median(list.map((r) => r.p50Us)),
    p99Us: median(list.map((r) => r.p99Us)),
  });
  for (let w = 0; w < rows.length / a.rounds; w++) {
    const ts = rows.slice(w * a.rounds, (w + 1) * a.rounds);
    console.log(line('TS', medianRow(ts)));
    const list = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');
    for (const spin of a.cSpins) {
      const base = c[spin].slice(w * a.rounds, (w + 1) * a.rounds);
      if (base.length !== ts.length) continue;
      const who = C_ROW_NAMES[spin];
      console.log(line(who, medianRow(base)));
      // Each round's TypeScript and C rows ran back to back: their ratio is the one that least
      // depends on how fast the emulated machine happened to be; the median of those is reported.
      const iops = ts.map((r, i) => r.iops / base[i]!.iops);
      const p50 = ts.map((r, i) => r.p50Us / base[i]!.p50Us);
      console.log(
        `      TS/${who}: IOPS ${median(iops).toFixed(2)}x, p50 ${median(p50).toFixed(2)}x (median of ${a.rounds}; rounds: IOPS ${list(iops)}, p50 ${list(p50)})`,
      );
    }
    // The raw loop spins as the plain C loop does: what JavaScript itself costs is measured against that one.
    const rawBase = a.cSpins.includes('plain') ? 'plain' : a.cSpins[0]!;
    const plain = c[rawBase].slice(w * a.rounds, (w + 1) * a.rounds);
    const loop = raw.slice(w * a.rounds, (w + 1) * a.rounds);
    if (loop.length !== ts.length || plain.length !== ts.length) continue;
    console.log(line('raw', medianRow(loop)));
    const rawIops = loop.map((r, i) => r.iops / plain[i]!.iops);
    const rawP50 = loop.map((r, i) => r.p50Us / plain[i]!.p50Us);
    console.log(
      `      raw/${C_ROW_NAMES[rawBase]} (JavaScript's own cost here): IOPS ${median(rawIops).toFixed(2)}x, p50 ${median(rawP50).toFixed(2)}x; TS/raw (the driver's): IOPS ${median(ts.map((r, i) => r.iops / loop[i]!.iops)).toFixed(2)}x`,
    );
  }
  if (!real) console.log('  (the C baseline runs on a real kernel only: the model is not reachable from another process)');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});

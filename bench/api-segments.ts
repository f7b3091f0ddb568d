/**
 * Physical segments of a 256 MiB buffer three ways: IOMMU_IOAS_NOIOMMU_GET_PA one call per
 * contiguous run (Ioas.segments, what DmaBuffer does once at map time), one bulk pread of
 * /proc/self/pagemap (the legacy path), and DPDK's method, open/pread/close of pagemap per page
 * (the baseline). Needs a device on the 7.3 noiommu cdev path for the first, CAP_SYS_ADMIN for
 * the others. Run: node dist/bench/api-segments.js [MiB]
 */
import { withoutRunWalk } from '../lib/ioctl/ioctl-runs';
import { nativeKernel, type NativeKernel } from '../lib/sys/native-kernel';
import { MAP_SHARED, MFD_CLOEXEC, O_CLOEXEC, O_RDONLY, PROT_READ, PROT_WRITE } from '../lib/sys/constants';
import { PAGEMAP_PATH, readPhysicalSegments } from '../lib/dma/pagemap';
import { onNoiommuCdev, once, openBenchDevice, report, type Timing } from './api-support';
import { runC } from './native-c';
import * as I from '../lib/uapi/iommufd';
import type { Ioas } from '../lib/iommu/ioas';
import { PhysicalAddressLookup } from '../lib/ioctl/iommufd-ioctls';
import type { Iova } from '../lib/sys/addresses';

function main(): void {
  const mib = BigInt(process.argv[2] ?? 256);
  const length = mib << 20n;
  const kernel = nativeKernel();
  using device = openBenchDevice(kernel);
  if (device === null || !onNoiommuCdev(device)) return;
  if (!kernel.capabilities().sysAdmin) {
    console.log('skipped: reading frame numbers from /proc/self/pagemap needs CAP_SYS_ADMIN');
    return;
  }
  // First, while the process is small: under the lab's emulation a kernel walk made after the
  // 256 MiB buffer below has been set up runs up to twice as slow for this process, but not for the
  // C child, which would charge the emulator's state to the typed API.
  compareScattered(kernel, device.ioas!, device.iommufd!.fd, 16n << 20n);
  let dmaSegments = 0;
  let buffer!: ReturnType<typeof device.allocateDma>;
  const allocate = once(`DmaBuffer.allocate(${mib} MiB): map + segment table`, () => {
    buffer = device.allocateDma(length, { locked: true });
    dmaSegments = buffer.segments().length;
  });
  using dma = buffer;
  const ioas = device.ioas!;
  const getPa = once('Ioas.segments: one GET_PA per contiguous run', () => ioas.segments(dma.iova!, length));
  let bulkSegments = 0;
  const bulk = once('/proc/self/pagemap, one bulk pread', () => {
    bulkSegments = readPhysicalSegments(kernel, dma.address, length).length;
  });
  const pageSize = BigInt(kernel.pageSize);
  const entry = Buffer.alloc(8);
  const perPage = once('/proc/self/pagemap, open/pread/close per page (DPDK)', () => {
    for (let va = dma.address; va < dma.address + length; va += pageSize) {
      const fd = kernel.open(PAGEMAP_PATH, O_RDONLY | O_CLOEXEC);
      kernel.pread(fd, entry, (va / pageSize) * 8n);
      kernel.close(fd);
    }
  });
  const results: Timing[] = [getPa, bulk, allocate];
  report(`physical segments of ${mib} MiB (${dmaSegments} runs via GET_PA, ${bulkSegments} via pagemap)`, perPage, results);
  compareWithC(kernel, ioas, device.iommufd!.fd, dma.iova!, length, 'the same walk');
}

/**
 * The same comparison on a buffer whose pages are not physically adjacent, so the walk makes one
 * GET_PA per page: two shmem buffers are faulted in page by page in turns, which interleaves
 * their frames. This is where the per-call cost of the typed API shows.
 */
function compareScattered(kernel: NativeKernel, ioas: Ioas, iommufd: number, length: bigint): void {
  // memfd (shmem) pages, not anonymous memory: transparent huge pages would hand each buffer
  // 2 MiB runs however the faults are ordered.
  const fds = [kernel.memfdCreate('bench-scattered-a', MFD_CLOEXEC), kernel.memfdCreate('bench-scattered-b', MFD_CLOEXEC)];
  for (const fd of fds) kernel.ftruncate(fd, length);
  const a = kernel.mmap(fds[0]!, length, PROT_READ | PROT_WRITE, MAP_SHARED, 0n);
  const b = kernel.mmap(fds[1]!, length, PROT_READ | PROT_WRITE, MAP_SHARED, 0n);
  try {
    const pages = Number(length) / kernel.pageSize;
    const bytesA = new Uint8Array(a.buffer!);
    const bytesB = new Uint8Array(b.buffer!);
    for (let page = 0; page < pages; page++) {
      bytesA[page * kernel.pageSize] = 1;
      bytesB[page * kernel.pageSize] = 1;
    }
    using mapping = ioas.map({ va: a.address, length });
    compareWithC(kernel, ioas, iommufd, mapping.iova, length, `${length >> 20n} MiB faulted in alternately with another buffer`);
  } finally {
    kernel.munmap(a);
    kernel.munmap(b);
    for (const fd of fds) kernel.close(fd);
  }
}

/**
 * The GET_PA walk of the typed API (Ioas.segmentTable; Ioas.segments, which then makes an object
 * per segment) against the same walk in C (bench/c/get-pa-walk.c) on the same iommufd, both
 * collecting the joined segments into a table. They alternate, five rounds of three walks each (the C program makes its three in one run), and each keeps its best: under the
 * lab's emulation the same walk varies by 1.5x from one second to the next, and alternating puts
 * both sides in the same moments. The typed API warms up first: V8's optimizing compiler needs
 * more than a few walks under emulation, and a cold JIT is not what a driver's steady state pays.
 */
function compareWithC(kernel: NativeKernel, ioas: Ioas, iommufd: number, iova: Iova, length: bigint, what: string): void {
  const ROUNDS = 5;
  const WARM_UP = 10;
  const WALKS_PER_ROUND = 3;
  const S = I.IommuIoasNoiommuGetPa;
  const cArgs = [
    String(I.IOMMU_IOAS_NOIOMMU_GET_PA.number),
    String(S.size),
    String(S.offsetOf('size')),
    String(S.offsetOf('ioas_id')),
    String(S.offsetOf('iova')),
    String(S.offsetOf('length')),
    String(S.offsetOf('out_phys')),
    String(ioas.id),
    String(iova),
    String(length),
    String(WALKS_PER_ROUND),
  ];
  let segments = 0;
  let js = Infinity;
  let tableNs = Infinity;
  type CWalk = { nsPerWalk: number; runs: number; calls: number };
  let c: CWalk | undefined;
  // The walk as it was before the addon's ioctlRuns: one crossing per GET_PA answer.
  const perAnswer = new PhysicalAddressLookup();
  const oneCallPerAnswer = withoutRunWalk(kernel);
  const walkPerAnswer = () => {
    const runs: { iova: Iova; phys: bigint; length: bigint }[] = [];
    perAnswer.walk(oneCallPerAnswer, iommufd, ioas.id, iova, length, (at, phys, n) => {
      const last = runs[runs.length - 1];
      if (last && last.phys + last.length === phys) runs[runs.length - 1] = { iova: last.iova, phys: last.phys, length: last.length + n };
      else runs.push({ iova: at, phys, length: n });
    });
  };
  let plain = Infinity;
  for (let round = 0; round < WARM_UP; round++) {
    ioas.segments(iova, length);
    ioas.segmentTable(iova, length);
    walkPerAnswer();
  }
  // Best of WALKS_PER_ROUND back-to-back walks, as the C program takes the best of its walks: a
  // minimum over more samples is lower under noise, so both sides take as many.
  const best = (walk: () => void): number => {
    let fastest = Infinity;
    for (let i = 0; i < WALKS_PER_ROUND; i++) {
      const start = process.hrtime.bigint();
      walk();
      fastest = Math.min(fastest, Number(process.hrtime.bigint() - start));
    }
    return fastest;
  };
  for (let round = 0; round < ROUNDS; round++) {
    segments = ioas.segments(iova, length).length;
    js = Math.min(
      js,
      best(() => ioas.segments(iova, length)),
    );
    const table = ioas.segmentTable(iova, length);
    if (table.count !== segments) throw new Error(`Ioas.segmentTable found ${table.count} segments, Ioas.segments ${segments}`);
    tableNs = Math.min(
      tableNs,
      best(() => ioas.segmentTable(iova, length)),
    );
    plain = Math.min(plain, best(walkPerAnswer));
    try {
      const run = runC<CWalk>('get-pa-walk', cArgs, [iommufd]);
      if (!c || run.nsPerWalk < c.nsPerWalk) c = run;
    } catch (e) {
      console.log(`  C walk: unavailable (${(e as Error).message.split('\n')[0]})`);
      return;
    }
  }
  if (!c) return;
  if (c.runs !== segments) console.log(`  note: C found ${c.runs} segments, Ioas.segments ${segments}`);
  report(
    `${what}: ${segments} segments in ${c.calls} GET_PA calls, best of ${ROUNDS} alternating rounds`,
    { name: 'C loop: GET_PA per run on the same iommufd', iterations: c.calls, nsPerOp: c.nsPerWalk },
    [
      { name: 'Ioas.segmentTable (the addon walks: ioctlRuns)', iterations: c.calls, nsPerOp: tableNs },
      { name: 'Ioas.segments (the same, then an object each)', iterations: c.calls, nsPerOp: js },
      { name: 'the same with one addon call per GET_PA', iterations: c.calls, nsPerOp: plain },
    ],
  );
  const ratio = tableNs / c.nsPerWalk;
  console.log(`  goal: the walk (Ioas.segmentTable) <= 1.1x the C walk: ${ratio <= 1.1 ? 'met' : 'not met'} (${ratio.toFixed(2)}x)`);
}

main();

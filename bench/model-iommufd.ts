/**
 * Cost of the model's iommufd IOAS operations as the number of areas grows: IOMMU_IOAS_MAP (fixed
 * and automatic IOVA), IOMMU_IOAS_UNMAP and IOMMU_IOAS_NOIOMMU_GET_PA through the whole syscall
 * path (ModelKernel.ioctl, dispatch, struct decode, the area tree) with the struct bytes a driver
 * would pass, at 1k and at 100k areas, with the ratio between them (the goal is ≤ 3×: O(log n)
 * structures) and GET_PA calls per second (goal ≥ 1M/s at both sizes).
 *
 * Costs are CPU time of this process (process.cpuUsage), which holds up better than wall time on
 * a shared, busy machine; it still includes the cache and TLB misses a large IOAS costs at random
 * IOVAs, and the collection of the garbage the operations themselves create. Each figure is the
 * median of several rounds over the same IOAS, and the rounds of the two sizes alternate, so a
 * burst of load from elsewhere on the machine lands on both sides of a ratio rather than on one.
 * Before every timed phase a full collection clears what setting up created (the other kernel,
 * the 100k-area build, the bench's IOVA tables), so a phase is not billed for collecting or
 * promoting someone else's objects.
 *
 * The areas all map the same user page (the kernel allows that; each area pins it once), so a
 * 100k-area IOAS needs no more memory than its bookkeeping. Prints, does not assert.
 *
 *   npm run build && node dist/bench/model-iommufd.js
 */
import os from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createModelKernel } from '../lib/model';
import { MAP_ANONYMOUS, MAP_PRIVATE, O_RDWR, PROT_READ, PROT_WRITE } from '../lib/sys/constants';
import {
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_NOIOMMU_GET_PA,
  IOMMU_IOAS_UNMAP,
  IommuIoasAlloc,
  IommuIoasMap,
  IommuIoasNoiommuGetPa,
  IommuIoasUnmap,
} from '../lib/uapi/iommufd';
import { cpuNow, median } from './cpu-time';

const PAGE = 4096n;
/** Areas sit every 2 pages, leaving holes so automatic allocation has to search. */
const STRIDE = 2n * PAGE;
const BASE = 0x1_0000_0000n;
const ROUNDS = 7;
/** Maps issued before they are unmapped again, at either size. */
const MAP_BATCH = 1000;
const GET_PA_LENGTH = 1n << 30n;

// A full collection on demand, without asking for a node flag on the command line.
v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

interface Costs {
  readonly areas: number;
  readonly mapNs: number;
  readonly unmapNs: number;
  readonly getPaNs: number;
  readonly autoMapNs: number;
}

/** One kernel with an IOAS of `areas` areas, measured a round at a time. */
function subject(areas: number, ops: number): { round(): void; costs(): Costs; close(): void } {
  const k = createModelKernel('linux-7.3-noiommu');
  const fd = k.open('/dev/iommu', O_RDWR);
  const ctx = k.iommufdOf(fd);
  const alloc = IommuIoasAlloc.encode({ size: IommuIoasAlloc.size });
  k.ioctl(fd, IOMMU_IOAS_ALLOC.number, alloc);
  const ioas = IommuIoasAlloc.get(alloc, 'out_ioas_id');
  ctx.attachDevice(ctx.bindDevice({ name: 'bench', iommu: null, iommuGroup: 0 }), ioas);
  const page = k.mmap(-1, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
  const rw = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

  // The loops update arguments through the codec's views of the argument memory (a store each,
  // no allocation), so they time the model rather than the typed API's wrappers.
  const map = IommuIoasMap.allocate();
  map.$assign({ size: IommuIoasMap.size, ioas_id: ioas, flags: rw | IOMMU_IOAS_MAP_FIXED_IOVA, user_va: page.address, length: PAGE });
  for (let i = 0; i < areas; i++) {
    map.iova = BASE + BigInt(i) * STRIDE;
    k.ioctl(fd, IOMMU_IOAS_MAP.number, map.$bytes);
  }
  const unmap = IommuIoasUnmap.allocate();
  unmap.$assign({ size: IommuIoasUnmap.size, ioas_id: ioas, length: PAGE });
  const auto = IommuIoasMap.allocate();
  auto.$assign({ size: IommuIoasMap.size, ioas_id: ioas, flags: rw, user_va: page.address, length: PAGE });
  const q = IommuIoasNoiommuGetPa.allocate();
  q.$assign({ size: IommuIoasNoiommuGetPa.size, ioas_id: ioas, length: GET_PA_LENGTH });

  // Map/unmap go to free slots spread over the whole IOAS (between existing areas), MAP_BATCH
  // maps then their unmaps, so at either size the same number of extra mappings is alive at once
  // (with bigger batches at 100k areas the 100k figure would also pay for promoting and
  // collecting longer-lived objects, which has nothing to do with the number of areas). Each
  // batch takes the next slots of a stride through all areas; GET_PA goes to random-looking IOVAs
  // inside areas, across all of them.
  const mapRounds = Math.ceil(ops / MAP_BATCH);
  const slots = Array.from({ length: mapRounds * MAP_BATCH }, (_, i) => BASE + BigInt((i * 7919) % areas) * STRIDE + PAGE);
  const getPaOps = ops * 10;
  const iovas = Array.from({ length: getPaOps }, (_, i) => BASE + BigInt((i * 104729) % areas) * STRIDE + 0x10n);
  const autoIovas = new Array<bigint>(ops);

  const mapNs: number[] = [];
  const unmapNs: number[] = [];
  const autoMapNs: number[] = [];
  const getPaNs: number[] = [];
  const round = (): void => {
    collectGarbage();
    let mapTime = 0;
    let unmapTime = 0;
    for (let r = 0; r < mapRounds; r++) {
      const from = r * MAP_BATCH;
      let t = cpuNow();
      for (let i = from; i < from + MAP_BATCH; i++) {
        map.iova = slots[i]!;
        k.ioctl(fd, IOMMU_IOAS_MAP.number, map.$bytes);
      }
      mapTime += cpuNow() - t;
      t = cpuNow();
      for (let i = from; i < from + MAP_BATCH; i++) {
        unmap.iova = slots[i]!;
        k.ioctl(fd, IOMMU_IOAS_UNMAP.number, unmap.$bytes);
      }
      unmapTime += cpuNow() - t;
    }
    mapNs.push(mapTime / slots.length);
    unmapNs.push(unmapTime / slots.length);

    // Automatic IOVA: the bottom of the space is free, so this measures the search plus insert.
    collectGarbage();
    let t = cpuNow();
    for (let i = 0; i < ops; i++) {
      k.ioctl(fd, IOMMU_IOAS_MAP.number, auto.$bytes);
      autoIovas[i] = auto.iova;
    }
    autoMapNs.push((cpuNow() - t) / ops);
    for (const iova of autoIovas) {
      unmap.iova = iova;
      k.ioctl(fd, IOMMU_IOAS_UNMAP.number, unmap.$bytes);
    }

    collectGarbage();
    t = cpuNow();
    for (const iova of iovas) {
      q.iova = iova;
      q.length = GET_PA_LENGTH;
      k.ioctl(fd, IOMMU_IOAS_NOIOMMU_GET_PA.number, q.$bytes);
    }
    getPaNs.push((cpuNow() - t) / getPaOps);
  };
  return {
    round,
    costs: () => ({ areas, mapNs: median(mapNs), unmapNs: median(unmapNs), getPaNs: median(getPaNs), autoMapNs: median(autoMapNs) }),
    close: () => k.close(fd),
  };
}

function main(): void {
  // Warm up the JIT on a small table first.
  const warmUp = subject(1000, 2000);
  warmUp.round();
  warmUp.close();
  const smallSubject = subject(1000, 20000);
  const largeSubject = subject(100_000, 20000);
  for (let r = 0; r < ROUNDS; r++) {
    smallSubject.round();
    largeSubject.round();
  }
  const small = smallSubject.costs();
  const large = largeSubject.costs();
  smallSubject.close();
  largeSubject.close();
  const row = (c: Costs) =>
    `${String(c.areas).padStart(7)} areas: map ${c.mapNs.toFixed(0).padStart(6)} ns  auto-map ${c.autoMapNs.toFixed(0).padStart(6)} ns  unmap ${c.unmapNs.toFixed(0).padStart(6)} ns  GET_PA ${c.getPaNs.toFixed(0).padStart(5)} ns`;
  console.log(
    `model iommufd: per-op CPU time through ModelKernel.ioctl, median of ${ROUNDS} rounds (load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} CPUs)`,
  );
  console.log(row(small));
  console.log(row(large));
  const ratio = (a: number, b: number) => (b / a).toFixed(2);
  console.log(
    `ratio 100k/1k: map ${ratio(small.mapNs, large.mapNs)}x  auto-map ${ratio(small.autoMapNs, large.autoMapNs)}x  unmap ${ratio(small.unmapNs, large.unmapNs)}x  GET_PA ${ratio(small.getPaNs, large.getPaNs)}x  (goal ≤ 3x)`,
  );
  console.log(
    `GET_PA throughput: ${(1e9 / small.getPaNs / 1e6).toFixed(2)} M ops/s at 1k areas, ${(1e9 / large.getPaNs / 1e6).toFixed(2)} M ops/s at 100k (goal ≥ 1 M/s)`,
  );
}

main();

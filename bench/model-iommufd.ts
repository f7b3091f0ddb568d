/**
 * Cost of the model's iommufd IOAS operations as the number of areas grows: IOMMU_IOAS_MAP,
 * IOMMU_IOAS_UNMAP and IOMMU_IOAS_NOIOMMU_GET_PA through the whole syscall path (ModelKernel.ioctl,
 * dispatch, struct decode, the area tree), at 1k and at 100k areas, with the ratio between them
 * (the goal is ≤ 3×: O(log n) structures), and GET_PA calls per second (goal ≥ 1M/s).
 *
 * Costs are CPU time of this process (process.cpuUsage), which holds up better than wall time on a
 * shared, busy machine; it still includes the cache misses a large tree costs.
 *
 * The areas all map the same user page (the kernel allows that; each area pins it once), so a
 * 100k-area IOAS needs no more memory than its bookkeeping. Prints, does not assert.
 *
 *   npm run build && node dist/bench/model-iommufd.js
 */
import os from 'node:os';
import { createModelKernel } from '../lib/model';
import { MAP_ANONYMOUS, MAP_PRIVATE, O_RDWR, PROT_READ, PROT_WRITE } from '../lib/sys/constants';
import {
  IOMMU_IOAS_ALLOC, IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_NOIOMMU_GET_PA, IOMMU_IOAS_UNMAP, IommuIoasAlloc, IommuIoasMap, IommuIoasNoiommuGetPa, IommuIoasUnmap,
} from '../lib/uapi/iommufd';

const PAGE = 4096n;
/** Areas sit every 2 pages, leaving holes so automatic allocation has to search. */
const STRIDE = 2n * PAGE;
const BASE = 0x1_0000_0000n;

/** CPU time of this process in nanoseconds. */
function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

interface Costs {
  readonly areas: number;
  readonly mapNs: number;
  readonly unmapNs: number;
  readonly getPaNs: number;
  readonly autoMapNs: number;
}

function measure(areas: number, ops: number): Costs {
  const k = createModelKernel('linux-7.3-noiommu');
  const fd = k.open('/dev/iommu', O_RDWR);
  const ctx = k.iommufdOf(fd);
  const alloc = IommuIoasAlloc.encode({ size: IommuIoasAlloc.size });
  k.ioctl(fd, IOMMU_IOAS_ALLOC.number, alloc);
  const ioas = IommuIoasAlloc.get(alloc, 'out_ioas_id');
  ctx.attachDevice(ctx.bindDevice({ name: 'bench', iommu: null, iommuGroup: 0 }), ioas);
  const page = k.mmap(-1, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
  const rw = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

  const map = IommuIoasMap.encode({ size: IommuIoasMap.size, ioas_id: ioas, flags: rw | IOMMU_IOAS_MAP_FIXED_IOVA, user_va: page.address, length: PAGE });
  // Arguments are updated through DataViews at the codec's offsets, so the loops time the model
  // rather than the typed API's struct packing.
  const mapView = new DataView(map.buffer, map.byteOffset, map.byteLength);
  const setIova = (iova: bigint) => mapView.setBigUint64(IommuIoasMap.offsetOf('iova'), iova, true);
  for (let i = 0; i < areas; i++) {
    setIova(BASE + BigInt(i) * STRIDE);
    k.ioctl(fd, IOMMU_IOAS_MAP.number, map);
  }

  // Map and unmap at spread-out free slots between existing areas.
  const unmap = IommuIoasUnmap.encode({ size: IommuIoasUnmap.size, ioas_id: ioas, length: PAGE });
  const unmapView = new DataView(unmap.buffer, unmap.byteOffset, unmap.byteLength);
  const setUnmapIova = (iova: bigint) => unmapView.setBigUint64(IommuIoasUnmap.offsetOf('iova'), iova, true);
  const batch = Math.min(ops, areas);
  const slots = Array.from({ length: batch }, (_, i) => BASE + BigInt((i * 7919) % areas) * STRIDE + PAGE);
  let mapTime = 0;
  let unmapTime = 0;
  for (let done = 0; done < ops; done += batch) {
    let t = cpuNow();
    for (const iova of slots) {
      setIova(iova);
      k.ioctl(fd, IOMMU_IOAS_MAP.number, map);
    }
    mapTime += cpuNow() - t;
    t = cpuNow();
    for (const iova of slots) {
      setUnmapIova(iova);
      k.ioctl(fd, IOMMU_IOAS_UNMAP.number, unmap);
    }
    unmapTime += cpuNow() - t;
  }
  const rounds = Math.ceil(ops / batch) * batch;
  const mapNs = mapTime / rounds;
  const unmapNs = unmapTime / rounds;

  // Automatic IOVA: the bottom of the space is free, so this measures the search plus insert.
  const auto = IommuIoasMap.encode({ size: IommuIoasMap.size, ioas_id: ioas, flags: rw, user_va: page.address, length: PAGE });
  const autoIovas: bigint[] = [];
  let t = cpuNow();
  for (let i = 0; i < ops; i++) {
    k.ioctl(fd, IOMMU_IOAS_MAP.number, auto);
    autoIovas.push(IommuIoasMap.get(auto, 'iova'));
  }
  const autoMapNs = (cpuNow() - t) / ops;
  for (const iova of autoIovas) {
    setUnmapIova(iova);
    k.ioctl(fd, IOMMU_IOAS_UNMAP.number, unmap);
  }

  const q = IommuIoasNoiommuGetPa.encode({ size: IommuIoasNoiommuGetPa.size, ioas_id: ioas, length: 1n << 30n });
  const getPaOps = ops * 10;
  const iovas = Array.from({ length: getPaOps }, (_, i) => BASE + BigInt((i * 104729) % areas) * STRIDE + 0x10n);
  const qView = new DataView(q.buffer, q.byteOffset, q.byteLength);
  const iovaAt = IommuIoasNoiommuGetPa.offsetOf('iova');
  const lengthAt = IommuIoasNoiommuGetPa.offsetOf('length');
  t = cpuNow();
  for (const iova of iovas) {
    qView.setBigUint64(iovaAt, iova, true);
    qView.setBigUint64(lengthAt, 1n << 30n, true);
    k.ioctl(fd, IOMMU_IOAS_NOIOMMU_GET_PA.number, q);
  }
  const getPaNs = (cpuNow() - t) / getPaOps;
  k.close(fd);
  return { areas, mapNs, unmapNs, getPaNs, autoMapNs };
}

function main(): void {
  // Warm up the JIT on a small table first.
  measure(1000, 2000);
  const small = measure(1000, 20000);
  const large = measure(100_000, 20000);
  const row = (c: Costs) =>
    `${String(c.areas).padStart(7)} areas: map ${c.mapNs.toFixed(0).padStart(6)} ns  auto-map ${c.autoMapNs.toFixed(0).padStart(6)} ns  unmap ${c.unmapNs.toFixed(0).padStart(6)} ns  GET_PA ${c.getPaNs.toFixed(0).padStart(5)} ns`;
  console.log(`model iommufd: per-op CPU time through ModelKernel.ioctl (load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} CPUs)`);
  console.log(row(small));
  console.log(row(large));
  const ratio = (a: number, b: number) => (b / a).toFixed(2);
  console.log(`ratio 100k/1k: map ${ratio(small.mapNs, large.mapNs)}x  auto-map ${ratio(small.autoMapNs, large.autoMapNs)}x  unmap ${ratio(small.unmapNs, large.unmapNs)}x  GET_PA ${ratio(small.getPaNs, large.getPaNs)}x  (goal ≤ 3x)`);
  console.log(`GET_PA throughput: ${(1e9 / small.getPaNs / 1e6).toFixed(2)} M ops/s at 1k areas, ${(1e9 / large.getPaNs / 1e6).toFixed(2)} M ops/s at 100k (goal ≥ 1 M/s)`);
}

main();

/**
 * Physical segments of a 256 MiB buffer three ways: IOMMU_IOAS_NOIOMMU_GET_PA one call per
 * contiguous run (Ioas.segments, what DmaBuffer does once at map time), one bulk pread of
 * /proc/self/pagemap (the legacy path), and DPDK's method, open/pread/close of pagemap per page
 * (the baseline). Needs a device on the 7.3 noiommu cdev path for the first, CAP_SYS_ADMIN for
 * the others. Run: node dist/bench/api-segments.js [MiB]
 */
import { nativeKernel } from '../lib/sys/native';
import { openDevice } from '../lib/open-device';
import { O_CLOEXEC, O_RDONLY } from '../lib/sys/constants';
import { PAGEMAP_PATH, readPhysicalSegments } from '../lib/pagemap';
import { benchDevice, once, report, type Timing } from './api-support';

function main(): void {
  const mib = BigInt(process.argv[2] ?? 256);
  const length = mib << 20n;
  const kernel = nativeKernel();
  const bdf = benchDevice(kernel);
  if (bdf === null) return;
  using device = openDevice(bdf, { kernel });
  if (!device.backend.noiommu || device.backend.kind !== 'cdev') {
    console.log(`skipped: ${bdf} is not on the Linux 7.3 noiommu cdev path (${device.backend.reason})`);
    return;
  }
  if (!kernel.capabilities().sysAdmin) {
    console.log('skipped: reading frame numbers from /proc/self/pagemap needs CAP_SYS_ADMIN');
    return;
  }
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
}

main();

/**
 * IOMMU_IOAS_NOIOMMU_GET_PA through each layer, against the same ioctl looped in C on the same
 * iommufd in the same run (or, without a C compiler, the raw kernel.ioctl of a pre-packed
 * struct), plus what the DmaBuffer's cached segment table costs instead. Needs a device on the Linux 7.3 noiommu cdev path.
 * Run: node dist/bench/api-get-pa.js [iterations]
 */
import { nativeKernel } from '../lib/sys/native';
import { openDevice } from '../lib/open-device';
import * as U from '../lib/uapi/iommufd';
import { noiommuGetPa } from '../lib/ioctl/iommufd';
import { benchDevice, cBaseline, measure, report } from './api-support';
import type { Iova } from '../lib/types';

function main(): void {
  const iterations = Number(process.argv[2] ?? 100_000);
  const kernel = nativeKernel();
  const bdf = benchDevice(kernel);
  if (bdf === null) return;
  using device = openDevice(bdf, { kernel });
  if (!device.backend.noiommu || device.backend.kind !== 'cdev') {
    console.log(`skipped: ${bdf} is not on the Linux 7.3 noiommu cdev path (${device.backend.reason})`);
    return;
  }
  const ioas = device.ioas!;
  using dma = device.allocateDma(2n << 20n, { locked: true });
  const iova = dma.iova!;
  const fd = device.iommufd!.fd;
  const packed = U.IommuIoasNoiommuGetPa.encode({ size: U.IommuIoasNoiommuGetPa.size, ioas_id: ioas.id, iova, length: 4096n });
  const page = 4096n;
  const pages = dma.size / page;

  const raw = measure('kernel.ioctl, pre-packed struct', iterations, () => {
    U.IommuIoasNoiommuGetPa.set(packed, 'length', 4096n);
    kernel.ioctl(fd, U.IOMMU_IOAS_NOIOMMU_GET_PA.number, packed);
  });
  const wrapper = measure('lib/ioctl noiommuGetPa (pack, call, unpack)', iterations, (i) => {
    noiommuGetPa(kernel, fd, ioas.id, (iova + (BigInt(i) % pages) * page) as Iova, 4096n);
  });
  const api = measure('Ioas.getPhysicalAddress', iterations, (i) => {
    ioas.getPhysicalAddress((iova + (BigInt(i) % pages) * page) as Iova, 4096n);
  });
  const cached = measure('DmaBuffer.physicalAddress (segment table, no syscall)', iterations, (i) => {
    dma.physicalAddress((BigInt(i) % pages) * page);
  });
  U.IommuIoasNoiommuGetPa.set(packed, 'length', 4096n);
  const c = cBaseline('C loop: the same ioctl on the same iommufd', { target: { fd }, request: U.IOMMU_IOAS_NOIOMMU_GET_PA.number, arg: packed, iterations });
  device.close();
  report(`IOMMU_IOAS_NOIOMMU_GET_PA, ${iterations} calls, 4 KiB cap (${bdf})`, c ?? raw, [...(c ? [raw] : []), wrapper, api, cached]);
}

main();

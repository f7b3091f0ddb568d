/**
 * IOMMU_IOAS_NOIOMMU_GET_PA layer by layer, against the same ioctl looped in C on the same
 * iommufd in the same run: the addon's ioctl called directly, NativeKernel.ioctl, the lib/ioctl
 * wrapper and Ioas.getPhysicalAddress, plus an empty addon call (the N-API floor) and what the
 * DmaBuffer's cached segment table costs instead. Every row asks for the same IOVA with the same
 * 4 KiB cap as the C loop. Needs a device on the Linux 7.3 noiommu cdev path.
 * Run: node dist/bench/api-get-pa.js [iterations per round] [rounds]
 */
import { nativeKernel } from '../lib/sys/native-kernel';
import * as U from '../lib/uapi/iommufd';
import { noiommuGetPa } from '../lib/ioctl/iommufd-ioctls';
import { benchLayers, loopArguments, onNoiommuCdev, openBenchDevice, prePackedRows, type Row } from './api-support';

function main(): void {
  const { iterations, rounds } = loopArguments({ iterations: 100_000, rounds: 5 });
  const kernel = nativeKernel();
  using device = openBenchDevice(kernel);
  if (device === null || !onNoiommuCdev(device)) return;
  const ioas = device.ioas!;
  using dma = device.allocateDma(2n << 20n, { locked: true });
  const iova = dma.iova!;
  const cap = 4096n;
  const fd = device.iommufd!.fd;
  const request = U.IOMMU_IOAS_NOIOMMU_GET_PA.number;
  // The pre-packed struct of the raw rows; the kernel writes length back, so it is reset per call.
  const packed = U.IommuIoasNoiommuGetPa.allocate();
  packed.$assign({ size: U.IommuIoasNoiommuGetPa.size, ioas_id: ioas.id, iova, length: cap });

  const pages = dma.size / 4096n;
  const [raw, viaKernel] = prePackedRows(kernel, fd, request, packed.$bytes, () => {
    packed.length = cap;
  });
  const wrapper: Row = {
    name: 'lib/ioctl noiommuGetPa (pack, call, unpack)',
    run: () => {
      noiommuGetPa(kernel, fd, ioas.id, iova, cap);
    },
  };
  const api: Row = {
    name: 'Ioas.getPhysicalAddress',
    run: () => {
      ioas.getPhysicalAddress(iova, cap);
    },
  };
  const cached: Row = {
    name: 'DmaBuffer.physicalAddress (segment table, no syscall)',
    run: (i) => {
      dma.physicalAddress((BigInt(i) % pages) * 4096n);
    },
  };
  benchLayers({
    title: `IOMMU_IOAS_NOIOMMU_GET_PA, ${iterations} calls per round, 4 KiB cap (${device.bdf})`,
    iterations,
    rounds,
    c: { name: 'C loop: the same ioctl on the same iommufd', options: { target: { fd }, request, arg: packed.$bytes.slice() } },
    layers: [raw, viaKernel, wrapper, api],
    goal: api,
    aside: [cached],
  });
}

main();

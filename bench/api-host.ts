/**
 * The typed API's struct packing on the host, without a device: the lib/ioctl wrappers of the
 * hot lookups (IOMMU_IOAS_NOIOMMU_GET_PA, VFIO_DEVICE_GET_INFO) issued against a stub kernel that
 * answers in place (so a row is the wrapper's pack, call and unpack, and nothing of a kernel), and
 * GET_PA issued against the model kernel (the wrapper plus the model's dispatch and lookup).
 * The native benches (api-get-pa, api-device-info) need the lab; this one runs anywhere, so a
 * change to the codec can be measured before and after on the same machine.
 *
 * Costs are CPU time of this process per call, the median of several rounds. Prints, does not assert.
 *
 *   npm run build && node dist/bench/api-host.js [iterations per round] [rounds]
 */
import { createModelKernel } from '../lib/model';
import { MAP_ANONYMOUS, MAP_PRIVATE, O_RDWR, PROT_READ, PROT_WRITE } from '../lib/sys/constants';
import type { Kernel } from '../lib/sys/kernel';
import type { Iova } from '../lib/sys/addresses';
import { ioasAlloc, ioasMap, noiommuGetPa } from '../lib/ioctl/iommufd-ioctls';
import { deviceGetInfo } from '../lib/ioctl/device-ioctls';
import * as U from '../lib/uapi/iommufd';
import * as V from '../lib/uapi/vfio';
import { cpuNow, median } from './cpu-time';
import { loopArguments } from './api-support';

const PAGE = 4096n;
const CAP = 4096n;
const PHYS = 0x1_2345_6000n;
/** Where the rows put their answers, so that the compiler cannot drop the work of making them. */
export let sink: unknown;

/**
 * A kernel whose ioctl answers GET_PA (the asked length, a fixed physical address) and
 * DEVICE_GET_INFO (a PCI device without capabilities) by writing the reply into the caller's
 * bytes through a DataView kept per ArrayBuffer, the cheapest answer a kernel can give.
 */
function stubKernel(): Kernel {
  let lastBuffer: ArrayBufferLike | null = null;
  let view: DataView = new DataView(new ArrayBuffer(8));
  const outPhysAt = U.IommuIoasNoiommuGetPa.offsetOf('out_phys');
  const flagsAt = V.VfioDeviceInfo.offsetOf('flags');
  const regionsAt = V.VfioDeviceInfo.offsetOf('num_regions');
  const irqsAt = V.VfioDeviceInfo.offsetOf('num_irqs');
  const ioctl = (_fd: number, request: number, arg: Uint8Array | number | null): number => {
    if (!(arg instanceof Uint8Array)) throw new Error('the stub kernel answers struct ioctls only');
    if (arg.buffer !== lastBuffer) {
      lastBuffer = arg.buffer;
      view = new DataView(arg.buffer);
    }
    const at = arg.byteOffset;
    if (request === U.IOMMU_IOAS_NOIOMMU_GET_PA.number) view.setBigUint64(at + outPhysAt, PHYS, true);
    else if (request === V.VFIO_DEVICE_GET_INFO.number) {
      view.setUint32(at + flagsAt, V.VFIO_DEVICE_FLAGS_PCI | V.VFIO_DEVICE_FLAGS_RESET, true);
      view.setUint32(at + regionsAt, V.VFIO_PCI_NUM_REGIONS, true);
      view.setUint32(at + irqsAt, 5, true);
    } else throw new Error(`the stub kernel does not answer ioctl 0x${request.toString(16)}`);
    return 0;
  };
  return { ioctl } as unknown as Kernel;
}

/** The model kernel with an IOAS holding one mapped page, in the noiommu domain. */
function modelSubject(): { kernel: Kernel; fd: number; ioasId: number; iova: Iova } {
  const kernel = createModelKernel('linux-7.3-noiommu');
  const fd = kernel.open('/dev/iommu', O_RDWR);
  const ctx = kernel.iommufdOf(fd);
  const ioasId = ioasAlloc(kernel, fd);
  ctx.attachDevice(ctx.bindDevice({ name: 'bench', iommu: null, iommuGroup: 0 }), ioasId);
  const page = kernel.mmap(-1, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
  const iova = ioasMap(kernel, fd, { ioasId, userVa: page.address, length: PAGE, readable: true, writable: true });
  return { kernel, fd, ioasId, iova };
}

function main(): void {
  const { iterations, rounds } = loopArguments({ iterations: 200_000, rounds: 7 });
  const stub = stubKernel();
  const model = modelSubject();
  const iova = 0x10_0000n as Iova;
  const rows: { name: string; run: () => void; ns: number[] }[] = [
    {
      name: 'noiommuGetPa, stub kernel (pack, call, unpack)',
      run: () => {
        sink = noiommuGetPa(stub, 3, 1, iova, CAP);
      },
      ns: [],
    },
    {
      name: 'deviceGetInfo, stub kernel (pack, call, unpack)',
      run: () => {
        sink = deviceGetInfo(stub, 3);
      },
      ns: [],
    },
    {
      name: 'noiommuGetPa, model kernel',
      run: () => {
        sink = noiommuGetPa(model.kernel, model.fd, model.ioasId, model.iova, CAP);
      },
      ns: [],
    },
  ];
  for (const row of rows) for (let i = 0; i < iterations; i++) row.run();
  for (let r = 0; r < rounds; r++) {
    for (const row of rows) {
      const t = cpuNow();
      for (let i = 0; i < iterations; i++) row.run();
      row.ns.push((cpuNow() - t) / iterations);
    }
  }
  console.log(`typed API on the host: CPU time per call, median of ${rounds} rounds of ${iterations}`);
  for (const row of rows) console.log(`  ${row.name.padEnd(50)} ${median(row.ns).toFixed(1).padStart(8)} ns`);
}

main();

/**
 * VFIO_DEVICE_GET_INFO / GET_REGION_INFO through each layer against the same ioctl looped in C
 * on the same device fd in the same run (or the raw kernel.ioctl without a C compiler). `VfioDevice.info` is cached by design; the uncached
 * wrapper is what the API pays the first time. Run: node dist/bench/api-device-info.js [iterations]
 */
import { nativeKernel } from '../lib/sys/native';
import { openDevice } from '../lib/open-device';
import * as V from '../lib/uapi/vfio';
import { deviceGetInfo, deviceGetRegionInfo } from '../lib/ioctl/vfio-device';
import { benchDevice, cBaseline, measure, report } from './api-support';

function main(): void {
  const iterations = Number(process.argv[2] ?? 100_000);
  const kernel = nativeKernel();
  const bdf = benchDevice(kernel);
  if (bdf === null) return;
  using device = openDevice(bdf, { kernel });
  const fd = device.fd;
  const packed = V.VfioDeviceInfo.encode({ argsz: V.VfioDeviceInfo.size });

  const raw = measure('kernel.ioctl VFIO_DEVICE_GET_INFO, pre-packed', iterations, () => {
    V.VfioDeviceInfo.set(packed, 'argsz', V.VfioDeviceInfo.size);
    kernel.ioctl(fd, V.VFIO_DEVICE_GET_INFO.number, packed);
  });
  const wrapper = measure('lib/ioctl deviceGetInfo (with capability chain)', iterations, () => deviceGetInfo(kernel, fd));
  const api = measure('VfioDevice.info (cached after the first call)', iterations, () => device.info);
  const region = measure('lib/ioctl deviceGetRegionInfo(BAR0)', iterations, () => deviceGetRegionInfo(kernel, fd, 0));
  V.VfioDeviceInfo.set(packed, 'argsz', V.VfioDeviceInfo.size);
  const c = cBaseline('C loop: the same ioctl on the same device fd', { target: { fd }, request: V.VFIO_DEVICE_GET_INFO.number, arg: packed, iterations });
  device.close();
  console.log(`backend: ${device.backend.kind}${device.backend.noiommu ? ' (noiommu)' : ''}`);
  report(`VFIO_DEVICE_GET_INFO, ${iterations} calls (${bdf})`, c ?? raw, [...(c ? [raw] : []), wrapper, api, region]);
}

main();

/**
 * VFIO_DEVICE_GET_INFO layer by layer, against the same ioctl looped in C on the same device fd
 * in the same run: the addon's ioctl called directly, NativeKernel.ioctl, the lib/ioctl wrapper
 * (what `VfioDevice.info` issues), plus an empty addon call (the N-API floor). `VfioDevice.info`
 * asks the kernel once per device and then answers from its cache, so the typed API's cost per
 * ioctl is the wrapper's row; the cached getter is printed beside it. GET_REGION_INFO(BAR0) is
 * timed too, through its wrapper. Run: node dist/bench/api-device-info.js [iterations per round] [rounds]
 */
import { nativeKernel } from '../lib/sys/native-kernel';
import * as V from '../lib/uapi/vfio';
import { deviceGetInfo, deviceGetRegionInfo } from '../lib/ioctl/device-ioctls';
import { benchLayers, loopArguments, openBenchDevice, prePackedRows, type Row } from './api-support';

function main(): void {
  const { iterations, rounds } = loopArguments({ iterations: 100_000, rounds: 5 });
  const kernel = nativeKernel();
  using device = openBenchDevice(kernel);
  if (device === null) return;
  const fd = device.fd;
  const request = V.VFIO_DEVICE_GET_INFO.number;
  // The pre-packed struct of the raw rows; argsz is reset per call, as the kernel may raise it.
  const packed = V.VfioDeviceInfo.allocate();
  packed.argsz = V.VfioDeviceInfo.size;
  const [raw, viaKernel] = prePackedRows(kernel, fd, request, packed.$bytes, () => {
    packed.argsz = V.VfioDeviceInfo.size;
  });
  const wrapper: Row = {
    name: 'lib/ioctl deviceGetInfo = what VfioDevice.info issues',
    run: () => {
      deviceGetInfo(kernel, fd);
    },
  };
  const cached: Row = {
    name: 'VfioDevice.info, answered from its cache',
    run: () => {
      void device.info;
    },
  };
  const region: Row = {
    name: 'lib/ioctl deviceGetRegionInfo(BAR0), another ioctl',
    run: () => {
      deviceGetRegionInfo(kernel, fd, 0);
    },
  };
  const backend = `${device.backend.kind}${device.backend.noiommu ? ', noiommu' : ''}`;
  benchLayers({
    title: `VFIO_DEVICE_GET_INFO, ${iterations} calls per round (${device.bdf}, ${backend})`,
    iterations,
    rounds,
    c: { name: 'C loop: the same ioctl on the same device fd', options: { target: { fd }, request, arg: packed.$bytes.slice() } },
    layers: [raw, viaKernel, wrapper],
    goal: wrapper,
    aside: [cached, region],
  });
}

main();

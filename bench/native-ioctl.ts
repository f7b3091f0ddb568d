/**
 * Call overhead on the host, outside any emulator: an ioctl through each layer of the library
 * against the same ioctl from C (bench/c/ioctl-loop.c) on the same open file, which the C program
 * inherits. Hosts without VFIO hardware have neither GET_PA nor a device to ask for its info, so
 * the ioctl is FIONREAD on an empty memfd, which every Linux answers cheaply; the typed-API rows
 * run the real lib/ioctl and Ioas code over a NativeKernel whose addon issues that FIONREAD (on
 * the same struct memory) in place of the VFIO ioctl. So they show what the library adds above a
 * syscall on real hardware, the number the lab's emulated CPU cannot give. Prints; asserts nothing.
 *
 *   npm run bench:native-ioctl [-- ITERATIONS [ROUNDS]]
 */
import { addonStatus, type NativeAddon } from '../lib/sys/addon';
import { NativeKernel, nativeKernel } from '../lib/sys/native-kernel';
import { Iommufd } from '../lib/iommu/iommufd';
import { deviceGetInfo, noiommuGetPa } from '../lib/ioctl';
import { iova } from '../lib/sys/addresses';
import { VfioGroupStatus } from '../lib/uapi/vfio';
import { benchLayers, loopArguments, type Row } from './api-support';

const FIONREAD = 0x541b;

function main(): void {
  const { iterations, rounds } = loopArguments({ iterations: 100_000, rounds: 9 });
  const status = addonStatus();
  if (!status.available) {
    console.log(`native-ioctl: skipped, the addon is not available (${status.reason})`);
    return;
  }
  const addon = status.addon;
  const kernel = nativeKernel();
  const memfd = kernel.memfdCreate('node-vfio-bench', 0);
  // Empty, so FIONREAD writes 0 into the first word of whatever struct it is given: a `size` or
  // `argsz` of 0 that the wrappers take as "the answer fit".
  kernel.ftruncate(memfd, 0n);
  // FIONREAD writes an int. Its memory is struct memory like the wrappers' (any 8-byte struct
  // will do), so NativeKernel hands the addon the ArrayBuffer as it does for them.
  const answer = VfioGroupStatus.allocate().$bytes;
  const answerBuffer = answer.buffer as ArrayBuffer;

  // The library's own code over FIONREAD: every ioctl this kernel issues becomes FIONREAD on the
  // memfd, with the caller's struct as its argument.
  const fionreadInstead: NativeAddon = { ...addon, ioctl: (_fd, _request, arg) => addon.ioctl(memfd, FIONREAD, arg) };
  const stand = new NativeKernel(fionreadInstead);
  using iommufd = Iommufd.open(stand, `/proc/self/fd/${memfd}`);
  const ioas = iommufd.ioas();
  const at = iova(0x10_0000n);

  const raw: Row = {
    name: 'addon.ioctl(fd, FIONREAD, bytes) (no NativeKernel)',
    run: () => {
      addon.ioctl(memfd, FIONREAD, answerBuffer);
    },
  };
  const viaKernel: Row = {
    name: 'NativeKernel.ioctl(fd, FIONREAD, bytes)',
    run: () => {
      kernel.ioctl(memfd, FIONREAD, answer);
    },
  };
  const wrapper: Row = {
    name: 'lib/ioctl noiommuGetPa, FIONREAD in place of GET_PA',
    run: () => {
      noiommuGetPa(stand, memfd, ioas.id, at, 4096n);
    },
  };
  const api: Row = {
    name: 'Ioas.getPhysicalAddress, FIONREAD in place of GET_PA',
    run: () => {
      ioas.getPhysicalAddress(at, 4096n);
    },
  };
  const info: Row = {
    name: 'lib/ioctl deviceGetInfo, FIONREAD in place of GET_INFO',
    run: () => {
      deviceGetInfo(stand, memfd);
    },
  };
  benchLayers({
    title: `FIONREAD on a memfd through each layer, standing in for GET_PA and GET_INFO, ${iterations} calls per round`,
    iterations,
    rounds,
    c: { name: 'C loop: FIONREAD on the same memfd', options: { target: { fd: memfd }, request: FIONREAD, arg: answer.slice() } },
    layers: [raw, viaKernel, wrapper, api],
    goal: api,
    aside: [info],
  });
  iommufd.close();
  kernel.close(memfd);
}

main();

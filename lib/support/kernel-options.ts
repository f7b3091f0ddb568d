/**
 * How every static opener of the typed API is told which kernel to use: an options object with
 * `kernel` (`Iommufd.open({ kernel })`, `PciDevice.get(bdf, { kernel })`, `openDevice(bdf, { kernel })`).
 * Without one, the real kernel (the native addon). Everything an opener returns carries its
 * kernel, and every call on it goes there: nothing falls back to the native kernel later.
 */
import type { Kernel } from '../sys/kernel';
import { defaultKernel } from '../sys/default-kernel';

/**
 * The kernel a static opener uses.
 *
 * @category Kernel
 */
export interface KernelOptions {
  /** The kernel to use; default: the real one, through the native addon. */
  readonly kernel?: Kernel;
}

/**
 * The kernel named by an opener's options. A Kernel given in their place is the earlier,
 * positional form of the same argument, still accepted.
 *
 * @category Kernel
 */
export function kernelFrom(options: KernelOptions | Kernel | undefined): Kernel {
  if (options === undefined) return defaultKernel();
  if (isKernel(options)) return options;
  return options.kernel ?? defaultKernel();
}

/**
 * Whether an opener's argument is a Kernel (the positional form) rather than options.
 *
 * @category Kernel
 */
export function isKernel(value: object): value is Kernel {
  return typeof (value as Partial<Kernel>).ioctl === 'function';
}

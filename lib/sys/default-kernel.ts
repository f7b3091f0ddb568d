/**
 * The kernel used when a caller passes none: the real one, through the native addon. Loaded on
 * first use only, so that programs running entirely on the model never load (or need) the addon.
 */
import type { Kernel } from './kernel';

let cached: Kernel | undefined;

export function defaultKernel(): Kernel {
  if (cached) return cached;
  let loaded: { nativeKernel?: () => Kernel };
  try {
    // A plain require keeps the addon out of the import graph until it is actually needed.
    loaded = require('./native-kernel') as { nativeKernel?: () => Kernel };
  } catch (e) {
    throw new Error(
      `node-vfio: the native addon could not be loaded (${(e as Error).message}); ` +
        'build it with `npm rebuild node-vfio`, or pass a kernel explicitly (e.g. a model kernel for tests)',
    );
  }
  if (typeof loaded.nativeKernel !== 'function') throw new Error('node-vfio: lib/sys/native-kernel does not export nativeKernel()');
  cached = loaded.nativeKernel();
  return cached;
}

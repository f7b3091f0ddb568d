/**
 * The one place every new kernel (native, or a model from createModelKernel) passes through, so
 * that tracing can be switched on without changing a program: with NODE_VFIO_TRACE=path set, the
 * first use loads lib/trace/environment, which wraps each kernel in a recorder. Loaded with a plain
 * require, and only when the variable is set, so that untraced programs never load the tracer.
 */
import type { Kernel } from './kernel';

/**
 * Returns the kernel to use in place of `kernel` (the same object, or one with the same type that records).
 *
 * @category Kernel
 */
export type KernelWrapper = <K extends Kernel>(kernel: K) => K;

let wrapper: KernelWrapper | undefined;
let environmentRead = false;

/**
 * Installs (or, with undefined, removes) the wrapper applied to every kernel made from now on.
 *
 * @category Kernel
 */
export function setKernelWrapper(w: KernelWrapper | undefined): void {
  wrapper = w;
  environmentRead = true;
}

export function wrapNewKernel<K extends Kernel>(kernel: K): K {
  if (!environmentRead) {
    environmentRead = true;
    const path = process.env.NODE_VFIO_TRACE;
    if (path !== undefined && path !== '') {
      const env = require('../trace/environment') as { environmentWrapper(path: string): KernelWrapper };
      wrapper = env.environmentWrapper(path);
    }
  }
  return wrapper ? wrapper(kernel) : kernel;
}

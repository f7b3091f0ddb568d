/**
 * NODE_VFIO_TRACE=path: every kernel the program makes is traced, the first to `path`, any later
 * one to `path.1`, `path.2`, … (a program may look at the real kernel and then fall back to the
 * model). NODE_VFIO_TRACE_MMIO=1 records MMIO too; NODE_VFIO_TRACE_DATA_CAP=n sets the byte cap.
 */
import type { Kernel } from '../sys/kernel';
import { attachTracing } from './attach';
import { DEFAULT_DATA_CAP } from './tracing-kernel';

function dataCapFromEnvironment(): number {
  const text = process.env.NODE_VFIO_TRACE_DATA_CAP;
  if (text === undefined || text === '') return DEFAULT_DATA_CAP;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`NODE_VFIO_TRACE_DATA_CAP must be a non-negative integer, got '${text}'`);
  return n;
}

/** What lib/sys/kernel-wrapper.ts applies to each new kernel (its KernelWrapper; not imported, which would be a cycle). */
export function environmentWrapper(path: string): <K extends Kernel>(kernel: K) => K {
  const mmio = process.env.NODE_VFIO_TRACE_MMIO === '1';
  const dataCap = dataCapFromEnvironment();
  let made = 0;
  return (kernel) => {
    const file = made === 0 ? path : `${path}.${made}`;
    made++;
    return attachTracing(kernel, file, { mmio, dataCap }).kernel;
  };
}

/**
 * Tracing a kernel in place of the original, keeping its type: the result is a proxy whose Kernel
 * methods record through a TracingKernel and whose other members (a ModelKernel's machine, …)
 * are the original's, so code written against `ModelKernel` or `NativeKernel` keeps working.
 */
import type { Kernel } from '../sys/kernel';
import { TracingKernel, type TraceOptions } from './tracing-kernel';
import { JsonlTraceWriter, type TraceSink } from './trace-writer';

const KERNEL_METHODS: ReadonlySet<string> = new Set([
  'open',
  'close',
  'ioctl',
  'pread',
  'pwrite',
  'mmap',
  'munmap',
  'mlock',
  'mmioRead',
  'mmioWrite',
  'memfdCreate',
  'ftruncate',
  'eventfd',
  'eventfdRead',
  'eventfdWrite',
  'waitReadable',
  'readFile',
  'writeFile',
  'readdir',
  'readlink',
  'exists',
  'capabilities',
  'memlockLimit',
]);

/**
 * A kernel with tracing attached, as attachTracing returns it.
 *
 * @category Tracing
 */
export interface AttachedTrace<K extends Kernel> {
  /** Use this in place of the original kernel. */
  readonly kernel: K;
  /** The recorder behind `kernel`. */
  readonly tracer: TracingKernel;
  /** Flushes and closes the trace. */
  end(): void;
}

/**
 * Records every call made through the returned kernel to `destination` (a file path, or a sink).
 *
 * @category Tracing
 */
export function attachTracing<K extends Kernel>(kernel: K, destination: string | TraceSink, options?: TraceOptions): AttachedTrace<K> {
  const sink = typeof destination === 'string' ? new JsonlTraceWriter(destination) : destination;
  const tracer = new TracingKernel(kernel, sink, options);
  const proxy = new Proxy(kernel, {
    get(target, prop) {
      // Without the kernel's one-call loop, a GET_PA walk makes each step through the traced ioctl.
      if (prop === 'ioctlRuns') return undefined;
      if (typeof prop === 'string' && KERNEL_METHODS.has(prop)) {
        const method = (tracer as unknown as Record<string, unknown>)[prop] as (...a: unknown[]) => unknown;
        return method.bind(tracer);
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { kernel: proxy, tracer, end: () => tracer.endTrace() };
}

/**
 * When a simulated device finishes work it started (a DMA transfer, a computation). Real devices
 * finish later, so a driver must poll a status register or wait for an interrupt; the model does
 * the same by default. Unit tests may ask for synchronous completion to step through states.
 */
export type CompletionTiming =
  /** Completes inside the MMIO write that started it. */
  | { readonly mode: 'sync' }
  /** Completes on a later turn of the event loop (setImmediate). */
  | { readonly mode: 'immediate' }
  /** Completes after `ms` milliseconds (QEMU's edu DMA timer uses 100 ms of virtual time). */
  | { readonly mode: 'delay'; readonly ms: number };

export const ASYNC_COMPLETION: CompletionTiming = { mode: 'immediate' };

/** Runs `work` according to `timing`; returns a cancel function. */
export function schedule(timing: CompletionTiming, work: () => void): () => void {
  switch (timing.mode) {
    case 'sync':
      work();
      return () => undefined;
    case 'immediate': {
      const h = setImmediate(work);
      return () => clearImmediate(h);
    }
    case 'delay': {
      const h = setTimeout(work, timing.ms);
      return () => clearTimeout(h);
    }
  }
}

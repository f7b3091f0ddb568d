/**
 * Replaying a checked-in trace as a regression test:
 *
 *   import { itReplaysTrace } from 'node-vfio/trace';
 *   import { createModelKernel } from 'node-vfio/model';
 *   itReplaysTrace('edu session from the lab', 'test/traces/edu.jsonl', () => createModelKernel('linux-7.3-noiommu'));
 *
 * The test fails with the first divergence (call index, what was recorded, what came back).
 */
import type { Kernel } from '../sys/kernel';
import { formatDivergence, replayTrace, type ReplayOptions, type ReplayResult } from './replay';
import { readTrace } from './trace-file';

/**
 * A checked-in trace no longer replays: the message has the first divergence with its context.
 *
 * @category Tracing
 */
export class TraceDivergenceError extends Error {
  /** Always ERR_VFIO_TRACE_DIVERGED. */
  readonly code = 'ERR_VFIO_TRACE_DIVERGED';
  constructor(
    /** The trace file. */
    readonly file: string,
    /** What replay returned (its divergence is set). */
    readonly result: ReplayResult,
  ) {
    super(`${file}: ${formatDivergence(result.divergence!).join('\n')}`);
    this.name = 'TraceDivergenceError';
  }
}

/**
 * Replays `file` on a fresh kernel from `makeKernel`; rejects with a TraceDivergenceError on the first divergence.
 *
 * @category Tracing
 */
export async function assertTraceReplays(file: string, makeKernel: () => Kernel, options?: ReplayOptions): Promise<ReplayResult> {
  const trace = readTrace(file);
  const result = await replayTrace(trace, makeKernel(), options);
  if (result.divergence) throw new TraceDivergenceError(file, result);
  return result;
}

type MochaIt = (title: string, fn: () => Promise<void>) => unknown;

/**
 * Registers a mocha `it` that replays `file` (mocha's global `it` must be defined: call it inside a test file).
 *
 * @category Tracing
 */
export function itReplaysTrace(title: string, file: string, makeKernel: () => Kernel, options?: ReplayOptions): void {
  const it = (globalThis as { it?: MochaIt }).it;
  if (typeof it !== 'function')
    throw new TypeError('itReplaysTrace must be called where mocha defines the global it() (inside a test file)');
  it(title, async () => {
    await assertTraceReplays(file, makeKernel, options);
  });
}

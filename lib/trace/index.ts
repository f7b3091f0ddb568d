/**
 * node-vfio/trace: record every call at the Kernel boundary to a JSON Lines file, list it, and
 * replay it on another kernel (usually the model) to find the first divergence.
 */
export { TracingKernel, traceKernel, DEFAULT_DATA_CAP } from './tracing-kernel';
export type { TraceOptions } from './tracing-kernel';
export { attachTracing } from './attach';
export type { AttachedTrace } from './attach';
export { JsonlTraceWriter, MemoryTraceSink } from './trace-writer';
export type { TraceSink } from './trace-writer';
export { readTrace, parseTrace, TraceFormatError } from './trace-file';
export type { TraceFile } from './trace-file';
export { replayTrace, formatDivergence } from './replay';
export type { ReplayOptions, ReplayResult, Divergence, ReplayClock } from './replay';
export { listTrace, formatRecord, summarizeTrace, formatSummary } from './trace-listing';
export type { ListingFilter, TraceSummary } from './trace-listing';
export { assertTraceReplays, itReplaysTrace, TraceDivergenceError } from './mocha';
export { TRACE_SCHEMA, TRACE_VERSION } from './schema';
export type { TraceHeader, TraceRecord, TraceCall, TraceField, TraceFields } from './schema';

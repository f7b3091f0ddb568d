/**
 * Reads a trace file back, refusing what it cannot trust: a line that is not JSON (corrupted, or
 * cut off mid-line by a crash), a header of another schema or of a version newer than this reader,
 * a record without the fields every record has. The error names the file and line.
 */
import fs from 'node:fs';
import { TRACE_SCHEMA, TRACE_VERSION, type TraceHeader, type TraceRecord } from './schema';

/**
 * A trace file that cannot be trusted: not a trace, a newer version, or a line that is cut off, not JSON or out of order.
 *
 * @category Tracing
 */
export class TraceFormatError extends Error {
  /** Always ERR_VFIO_TRACE_FORMAT. */
  readonly code = 'ERR_VFIO_TRACE_FORMAT';
  constructor(
    /** The file (or the name parseTrace was given). */
    readonly file: string,
    /** The 1-based line at fault (0: the file could not be read at all). */
    readonly line: number,
    what: string,
  ) {
    super(`${file}:${line}: ${what}`);
    this.name = 'TraceFormatError';
  }
}

/**
 * A trace read back: its header and records.
 *
 * @category Tracing
 */
export interface TraceFile {
  /** The first line. */
  readonly header: TraceHeader;
  /** Every other line, in call order (index i is the array index). */
  readonly records: readonly TraceRecord[];
}

const CALLS = new Set([
  'open',
  'close',
  'ioctl',
  'pread',
  'pwrite',
  'mmap',
  'munmap',
  'mlock',
  'mmio-read',
  'mmio-write',
  'memfd',
  'ftruncate',
  'eventfd',
  'eventfd-read',
  'eventfd-write',
  'wait',
  'memory',
  'read-file',
  'write-file',
  'readdir',
  'readlink',
  'exists',
  'capabilities',
  'memlock-limit',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses trace text; `name` is what errors call the file.
 *
 * @category Tracing
 */
export function parseTrace(text: string, name = 'trace'): TraceFile {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  else if (lines.length > 0)
    throw new TraceFormatError(name, lines.length, 'the last line does not end with a newline: the trace is truncated');
  if (lines.length === 0) throw new TraceFormatError(name, 1, 'empty file: no trace header');
  const parse = (k: number): unknown => {
    try {
      return JSON.parse(lines[k]!);
    } catch (e) {
      throw new TraceFormatError(name, k + 1, `not valid JSON (${(e as Error).message}): corrupted or truncated`);
    }
  };
  const header = parse(0);
  if (!isObject(header) || header.schema !== TRACE_SCHEMA)
    throw new TraceFormatError(name, 1, `not a node-vfio trace (the first line must be a header with schema "${TRACE_SCHEMA}")`);
  if (typeof header.version !== 'number' || !Number.isInteger(header.version) || header.version < 1)
    throw new TraceFormatError(name, 1, `invalid trace version ${JSON.stringify(header.version)}`);
  if (header.version > TRACE_VERSION)
    throw new TraceFormatError(
      name,
      1,
      `trace version ${header.version} is newer than this node-vfio reads (${TRACE_VERSION}): upgrade node-vfio`,
    );
  for (const key of ['kernel', 'kind', 'pageSize', 'dataCap', 'mmio'] as const) {
    if (header[key] === undefined) throw new TraceFormatError(name, 1, `header has no "${key}"`);
  }
  const records: TraceRecord[] = [];
  for (let k = 1; k < lines.length; k++) {
    const r = parse(k);
    if (!isObject(r)) throw new TraceFormatError(name, k + 1, 'a record must be a JSON object');
    if (r.i !== records.length)
      throw new TraceFormatError(
        name,
        k + 1,
        `record index ${JSON.stringify(r.i)} where ${records.length} was expected: records are missing or out of order`,
      );
    if (typeof r.t !== 'number') throw new TraceFormatError(name, k + 1, 'record has no timestamp "t"');
    if (typeof r.call !== 'string' || !CALLS.has(r.call)) throw new TraceFormatError(name, k + 1, `unknown call ${JSON.stringify(r.call)}`);
    if (r.call === 'ioctl' && (typeof r.req !== 'string' || typeof r.nr !== 'number' || typeof r.fd !== 'number'))
      throw new TraceFormatError(name, k + 1, 'ioctl record needs "fd", "req" and "nr"');
    records.push(r as unknown as TraceRecord);
  }
  return { header: header as unknown as TraceHeader, records };
}

/**
 * Reads and checks a trace file (see parseTrace); a TraceFormatError names the file and line.
 *
 * @category Tracing
 */
export function readTrace(file: string): TraceFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new TraceFormatError(file, 0, `cannot read: ${(e as Error).message}`);
  }
  return parseTrace(text, file);
}

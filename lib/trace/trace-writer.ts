/**
 * Streams trace records to a file as JSON Lines with bounded memory: lines are gathered up to
 * `flushBytes` and then written synchronously, so a long session never holds more than one chunk,
 * and what was traced before a crash is on disk up to the last chunk (the rest is flushed at exit).
 */
import fs from 'node:fs';
import { LineEncoder } from './line-encoder';
import type { TraceHeader, TraceRecord } from './schema';

/**
 * Where a tracing kernel sends its records.
 *
 * @category Tracing
 */
export interface TraceSink {
  /** Takes the header, once, before any record. */
  header(header: TraceHeader): void;
  /** Takes one record, in call order. */
  record(record: TraceRecord): void;
  /** Writes out everything pending (and, for a file, closes it). Idempotent. */
  end(): void;
}

const DEFAULT_FLUSH_BYTES = 64 * 1024;

/**
 * Writes a trace to a file as JSON Lines (see the module comment): the header, then one record per line.
 *
 * @category Tracing
 */
export class JsonlTraceWriter implements TraceSink {
  private fd: number | null;
  /**
   * The chunk being gathered. A tracing kernel writing to this writer encodes its hot-path
   * records straight into it (see line-encoder.ts), so a line is never a string nor copied.
   *
   * @internal
   */
  readonly lines = new LineEncoder();
  private readonly onExit = (): void => this.end();

  constructor(
    /** The trace file. */
    readonly path: string,
    private readonly flushBytes = DEFAULT_FLUSH_BYTES,
  ) {
    if (typeof path !== 'string' || path === '') throw new TypeError('trace path must be a non-empty string');
    this.fd = fs.openSync(path, 'w');
    process.once('exit', this.onExit);
  }

  /** Writes the header line. */
  header(header: TraceHeader): void {
    this.push(JSON.stringify(header));
  }

  /** Writes one record line. */
  record(record: TraceRecord): void {
    this.push(JSON.stringify(record));
  }

  /**
   * A line was just encoded into `lines`: ends it, and writes the chunk out once it is full.
   *
   * @internal
   */
  lineEnded(): void {
    if (this.fd === null) {
      this.lines.reset();
      return;
    }
    this.lines.ascii('\n');
    if (this.lines.length >= this.flushBytes) this.flush();
  }

  /** Writes the lines gathered so far to the file. */
  flush(): void {
    if (this.fd === null || this.lines.length === 0) return;
    fs.writeSync(this.fd, this.lines.buffer, 0, this.lines.length);
    this.lines.reset();
  }

  end(): void {
    if (this.fd === null) return;
    this.flush();
    fs.closeSync(this.fd);
    this.fd = null;
    process.removeListener('exit', this.onExit);
  }

  private push(line: string): void {
    if (this.fd === null) return;
    this.lines.text8(line);
    this.lineEnded();
  }
}

/**
 * Keeps records in memory (tests, and replaying a session just recorded).
 *
 * @category Tracing
 */
export class MemoryTraceSink implements TraceSink {
  /** The header, once the tracer has sent it. */
  headerLine: TraceHeader | undefined;
  /** Every record, in call order. */
  readonly records: TraceRecord[] = [];
  /** Keeps the header. */
  header(header: TraceHeader): void {
    this.headerLine = header;
  }
  /** Keeps one record. */
  record(record: TraceRecord): void {
    this.records.push(record);
  }
  /** Nothing to write: the records stay in memory. */
  end(): void {
    /* nothing pending */
  }
}

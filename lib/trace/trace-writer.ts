/**
 * Streams trace records to a file as JSON Lines with bounded memory: lines are gathered up to
 * `flushBytes` and then written synchronously, so a long session never holds more than one chunk,
 * and what was traced before a crash is on disk up to the last chunk (the rest is flushed at exit).
 */
import fs from 'node:fs';
import type { TraceHeader, TraceRecord } from './schema';

/** Where a tracing kernel sends its records. */
export interface TraceSink {
  header(header: TraceHeader): void;
  record(record: TraceRecord): void;
  /**
   * A record already written as one line of UTF-8 JSON: the first `length` bytes of `line`
   * (without the newline; only valid during the call): what the tracer's hot paths (ioctls with a struct, MMIO) produce
   * instead of an object. A sink without it is handed the line parsed, so it sees exactly what a
   * trace file would hold.
   */
  recordJson?(line: Uint8Array, length: number): void;
  /** Writes out everything pending (and, for a file, closes it). Idempotent. */
  end(): void;
}

const DEFAULT_FLUSH_BYTES = 64 * 1024;

export class JsonlTraceWriter implements TraceSink {
  private fd: number | null;
  /** Lines encoded as they arrive, so their strings die young (kept as strings, they cost more in GC than to write). */
  private readonly chunk: Buffer;
  private used = 0;
  private readonly onExit = (): void => this.end();

  constructor(
    readonly path: string,
    private readonly flushBytes = DEFAULT_FLUSH_BYTES,
  ) {
    if (typeof path !== 'string' || path === '') throw new TypeError('trace path must be a non-empty string');
    this.fd = fs.openSync(path, 'w');
    this.chunk = Buffer.allocUnsafe(Math.max(4096, flushBytes));
    process.once('exit', this.onExit);
  }

  header(header: TraceHeader): void {
    this.push(JSON.stringify(header));
  }

  record(record: TraceRecord): void {
    this.push(JSON.stringify(record));
  }

  recordJson(line: Uint8Array, length: number): void {
    if (this.fd === null) return;
    if (this.used + length + 1 > this.chunk.length) {
      this.flush();
      if (length + 1 > this.chunk.length) {
        fs.writeSync(this.fd, line, 0, length);
        fs.writeSync(this.fd, '\n');
        return;
      }
    }
    const chunk = this.chunk;
    let at = this.used;
    // Lines are a few hundred bytes: a loop is cheaper than making a subarray to set().
    for (let k = 0; k < length; k++) chunk[at++] = line[k]!;
    chunk[at++] = 0x0a;
    this.used = at;
  }

  flush(): void {
    if (this.fd === null || this.used === 0) return;
    fs.writeSync(this.fd, this.chunk, 0, this.used);
    this.used = 0;
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
    // At most 3 bytes of UTF-8 per UTF-16 unit, and the newline.
    const most = line.length * 3 + 1;
    if (this.used + most > this.chunk.length) {
      this.flush();
      if (most > this.chunk.length) {
        fs.writeSync(this.fd, `${line}\n`);
        return;
      }
    }
    this.used += this.chunk.write(line, this.used, 'utf8');
    this.chunk[this.used++] = 0x0a;
  }
}

/** Keeps records in memory (tests, and replaying a session just recorded). */
export class MemoryTraceSink implements TraceSink {
  headerLine: TraceHeader | undefined;
  readonly records: TraceRecord[] = [];
  header(header: TraceHeader): void {
    this.headerLine = header;
  }
  record(record: TraceRecord): void {
    this.records.push(record);
  }
  end(): void {
    /* nothing pending */
  }
}

/**
 * The kernel's log buffer as /dev/kmsg shows it (kernel/printk/printk.c, devkmsg_read): one
 * record per read, "level,sequence,microseconds,flags;text\n" (level is the syslog priority with
 * the facility, 0 for the kernel, above it), each reader starting at the oldest record still
 * kept; an empty buffer answers EAGAIN to a reader that asked for O_NONBLOCK. The model cannot
 * block a read, so it answers EAGAIN to the others too (as its eventfds do). Records that wrap
 * out of the buffer before a reader got to them make its next read fail with EPIPE, once.
 *
 * What logs here: the model's kernel code that Linux would have printk'ed where a test wants to
 * see it (DMAR faults, AER) — not every message the real boot prints.
 */
import { fail } from '../errno';
import type { OpenFile } from '../open-file';
import type { Vfs } from '../vfs';

/** Syslog levels as printk uses them. */
export const LOGLEVEL_ERR = 3;
export const LOGLEVEL_WARNING = 4;
export const LOGLEVEL_INFO = 6;

/** Records kept (the real buffer is sized in bytes; a count is what a test can reason about). */
const DEFAULT_CAPACITY = 4096;
/** CONSOLE_EXT_LOG_MAX: a read shorter than the record is EINVAL. */
const RECORD_MAX = 8192;

interface LogRecord {
  readonly seq: bigint;
  readonly level: number;
  readonly usec: bigint;
  readonly text: string;
}

export class KernelLog {
  private readonly records: LogRecord[] = [];
  private nextSeq = 0n;
  private readonly start = process.hrtime.bigint();

  constructor(private readonly capacity = DEFAULT_CAPACITY) {}

  /** Publishes /dev/kmsg. */
  install(vfs: Vfs): void {
    vfs.add('/dev/kmsg', { type: 'chardev', open: (flags: number) => this.open(flags) });
  }

  /** printk at `level`: `text` is one line without its newline. */
  printk(level: number, text: string): void {
    this.records.push({ seq: this.nextSeq++, level, usec: (process.hrtime.bigint() - this.start) / 1000n, text });
    if (this.records.length > this.capacity) this.records.shift();
  }

  /** The texts logged so far (for tests of the model itself). */
  texts(): string[] {
    return this.records.map((r) => r.text);
  }

  private open(_flags: number): OpenFile {
    let next = this.records[0]?.seq ?? this.nextSeq;
    return {
      kind: 'kmsg',
      pread: (into: Uint8Array) => {
        const first = this.records[0]?.seq ?? this.nextSeq;
        if (next < first) {
          next = first;
          fail('EPIPE', 'records were overwritten before this reader got to them');
        }
        const record = this.records[Number(next - first)];
        if (!record) fail('EAGAIN', 'no new records in the kernel log');
        const line = Buffer.from(`${record.level},${record.seq},${record.usec},-;${record.text}\n`);
        if (into.length < Math.min(line.length, RECORD_MAX))
          fail('EINVAL', `a ${into.length}-byte read cannot hold the ${line.length}-byte record`);
        into.set(line);
        next = record.seq + 1n;
        return line.length;
      },
    };
  }
}

/**
 * The kernel log as /dev/kmsg gives it, for tests that check what the kernel said about their
 * device: an IOMMU fault on a DMA it blocked ("DMAR: [DMA Read NO_PASID] Request device …"), an
 * AER error, a reset. Reads every record still in the buffer without waiting (O_NONBLOCK), so a
 * test takes a mark before the step and reads what came after it.
 */
import type { Kernel } from './kernel';
import { O_NONBLOCK, O_RDONLY } from './constants';
import { isVfioError } from './errors';

/**
 * One record of the kernel log.
 *
 * @category Kernel log
 */
export interface KernelLogRecord {
  /** The record's sequence number: increasing, never reused within a boot. */
  readonly seq: bigint;
  /** The syslog level (0 emergency … 7 debug). */
  readonly level: number;
  /** The syslog facility (0: the kernel). */
  readonly facility: number;
  /** Microseconds since boot. */
  readonly usec: bigint;
  /** The message, without the trailing newline. */
  readonly text: string;
}

/** CONSOLE_EXT_LOG_MAX: every record fits. */
const RECORD_MAX = 8192;

/**
 * The records of the kernel log after sequence number `after` (all of them when absent). Records
 * that the buffer overwrote while this read was going on are skipped, as `dmesg` skips them.
 * Needs read access to /dev/kmsg (root, or CAP_SYSLOG where kernel.dmesg_restrict is set).
 *
 * @example
 * ```ts
 * const mark = lastKernelLogSeq(kernel);
 * // ... a DMA to an IOVA that is not mapped ...
 * const faults = readKernelLog(kernel, { after: mark }).filter((r) => r.text.startsWith('DMAR: [DMA'));
 * ```
 *
 * @category Kernel log
 */
export function readKernelLog(kernel: Kernel, options: { readonly after?: bigint } = {}): KernelLogRecord[] {
  const fd = kernel.open('/dev/kmsg', O_RDONLY | O_NONBLOCK);
  const records: KernelLogRecord[] = [];
  const buf = new Uint8Array(RECORD_MAX);
  try {
    for (;;) {
      let n: number;
      try {
        n = kernel.pread(fd, buf, 0n);
      } catch (e) {
        if (isVfioError(e, 'EAGAIN')) break;
        if (isVfioError(e, 'EPIPE')) continue;
        throw e;
      }
      const record = parseRecord(Buffer.from(buf.buffer, 0, n).toString('utf8'));
      if (record && (options.after === undefined || record.seq > options.after)) records.push(record);
    }
  } finally {
    kernel.close(fd);
  }
  return records;
}

/**
 * The sequence number of the newest record (-1 when the log is empty): a mark to read after.
 *
 * @category Kernel log
 */
export function lastKernelLogSeq(kernel: Kernel): bigint {
  const all = readKernelLog(kernel);
  return all.length ? all[all.length - 1]!.seq : -1n;
}

/** "prefix;text\n" with prefix "level,seq,usec,flags[,more]"; continuation lines (" KEY=value") dropped. */
function parseRecord(raw: string): KernelLogRecord | undefined {
  const semi = raw.indexOf(';');
  if (semi < 0) return undefined;
  const [prio, seq, usec] = raw.slice(0, semi).split(',');
  if (prio === undefined || seq === undefined || usec === undefined) return undefined;
  const text = raw.slice(semi + 1).split('\n')[0]!;
  const p = Number(prio);
  return { seq: BigInt(seq), level: p & 7, facility: p >> 3, usec: BigInt(usec), text };
}

/**
 * Physical addresses from /proc/self/pagemap, for the legacy noiommu path (no GET_PA there).
 * One pread covers the whole range (8 bytes per page), instead of an open/pread/close per page.
 * Frame numbers are only shown to CAP_SYS_ADMIN, and only for pages that are present, so the
 * memory must be locked (mlock faults it in and keeps it from moving).
 */
import type { Kernel, UserVa } from '../sys/kernel';
import { O_CLOEXEC, O_RDONLY } from '../sys/constants';
import { VfioError } from '../sys/errors';
import type { BufferSegment } from './dma-space';
import type { PhysAddr } from '../sys/addresses';

export const PAGEMAP_PATH = '/proc/self/pagemap';
/** Bits 32..54 of an entry: the high part of the frame number (bit 63 is "present"). */
const PFN_HIGH_MASK = (1 << 23) - 1;

/** The physically contiguous runs of [address, address+length), by offset from `address`. */
export function readPhysicalSegments(kernel: Kernel, address: UserVa, length: bigint): BufferSegment[] {
  const pageSize = BigInt(kernel.pageSize);
  if (address % pageSize !== 0n || length % pageSize !== 0n) {
    throw new RangeError(`pagemap lookup needs a page-aligned range, got 0x${address.toString(16)}+0x${length.toString(16)}`);
  }
  const pages = Number(length / pageSize);
  const entries = Buffer.alloc(pages * 8);
  let fd: number;
  try {
    fd = kernel.open(PAGEMAP_PATH, O_RDONLY | O_CLOEXEC);
  } catch (e) {
    throw VfioError.wrap(e, { path: PAGEMAP_PATH, context: 'reading physical addresses' });
  }
  try {
    let done = 0;
    while (done < entries.length) {
      const n = kernel.pread(fd, entries.subarray(done), (address / pageSize) * 8n + BigInt(done));
      if (n <= 0) break;
      done += n;
    }
    if (done !== entries.length) {
      throw VfioError.of('EIO', {
        syscall: 'pread',
        path: PAGEMAP_PATH,
        context: `short read of ${done} of ${entries.length} pagemap bytes`,
      });
    }
  } catch (e) {
    throw VfioError.wrap(e, { path: PAGEMAP_PATH });
  } finally {
    kernel.close(fd);
  }
  // Parsed with Number arithmetic (a BigInt per page made this loop the cost of the lookup):
  // frame numbers of real machines stay far below 2^53 (52-bit physical addresses at most).
  const segments: BufferSegment[] = [];
  const page = Number(pageSize);
  let runStart = -1;
  let runPfn = 0;
  let runPages = 0;
  const flush = () => {
    if (runPages > 0) {
      segments.push({
        offset: BigInt(runStart) * pageSize,
        phys: (BigInt(runPfn) * pageSize) as PhysAddr,
        length: BigInt(runPages) * pageSize,
      });
    }
  };
  for (let i = 0; i < pages; i++) {
    const low = entries.readUInt32LE(i * 8);
    const high = entries.readUInt32LE(i * 8 + 4);
    if ((high & 0x8000_0000) === 0) {
      throw VfioError.of('EFAULT', {
        syscall: 'pread',
        path: PAGEMAP_PATH,
        context: `page at 0x${(address + BigInt(i * page)).toString(16)} is not present`,
        hint: 'lock the memory (mlock) before looking up its physical address',
      });
    }
    const pfn = (high & PFN_HIGH_MASK) * 0x1_0000_0000 + low;
    if (pfn === 0) {
      throw VfioError.of('EPERM', {
        syscall: 'pread',
        path: PAGEMAP_PATH,
        context: 'pagemap hides frame numbers',
        hint: 'reading physical addresses from /proc/self/pagemap needs CAP_SYS_ADMIN',
      });
    }
    if (runPages > 0 && pfn === runPfn + runPages) {
      runPages++;
    } else {
      flush();
      runStart = i;
      runPfn = pfn;
      runPages = 1;
    }
  }
  flush();
  return segments;
}

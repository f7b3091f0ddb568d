/**
 * Physical addresses from /proc/self/pagemap, for the legacy noiommu path (no GET_PA there).
 * One pread covers the whole range (8 bytes per page), instead of an open/pread/close per page.
 * Frame numbers are only shown to CAP_SYS_ADMIN, and only for pages that are present, so the
 * memory must be locked (mlock faults it in and keeps it from moving).
 */
import type { Kernel, UserVa } from './sys/kernel';
import { O_CLOEXEC, O_RDONLY } from './sys/constants';
import { VfioError } from './sys/errors';
import { explain } from './hints';
import type { BufferSegment } from './dma-space';
import type { PhysAddr } from './types';

export const PAGEMAP_PATH = '/proc/self/pagemap';
const PRESENT = 1n << 63n;
const PFN_MASK = (1n << 55n) - 1n;

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
    throw explain(e, { path: PAGEMAP_PATH, context: 'reading physical addresses' });
  }
  try {
    let done = 0;
    while (done < entries.length) {
      const n = kernel.pread(fd, entries.subarray(done), (address / pageSize) * 8n + BigInt(done));
      if (n <= 0) break;
      done += n;
    }
    if (done !== entries.length) {
      throw VfioError.of('EIO', { syscall: 'pread', path: PAGEMAP_PATH, context: `short read of ${done} of ${entries.length} pagemap bytes` });
    }
  } catch (e) {
    throw explain(e, { path: PAGEMAP_PATH });
  } finally {
    kernel.close(fd);
  }
  const segments: BufferSegment[] = [];
  for (let i = 0; i < pages; i++) {
    const entry = entries.readBigUInt64LE(i * 8);
    const offset = BigInt(i) * pageSize;
    if ((entry & PRESENT) === 0n) {
      throw VfioError.of('EFAULT', {
        syscall: 'pread', path: PAGEMAP_PATH,
        context: `page at 0x${(address + offset).toString(16)} is not present`, hint: 'lock the memory (mlock) before looking up its physical address',
      });
    }
    const pfn = entry & PFN_MASK;
    if (pfn === 0n) {
      throw VfioError.of('EPERM', {
        syscall: 'pread', path: PAGEMAP_PATH,
        context: 'pagemap hides frame numbers', hint: 'reading physical addresses from /proc/self/pagemap needs CAP_SYS_ADMIN',
      });
    }
    const phys = pfn * pageSize;
    const last = segments[segments.length - 1];
    if (last && last.phys + last.length === phys) {
      segments[segments.length - 1] = { offset: last.offset, phys: last.phys, length: last.length + pageSize };
    } else {
      segments.push({ offset, phys: phys as PhysAddr, length: pageSize });
    }
  }
  return segments;
}

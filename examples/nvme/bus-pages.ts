/**
 * The bus address of every page of a DMA buffer, looked up once and kept as 32-bit halves, so
 * building PRPs for an I/O costs no syscalls, no bigint allocations and no floating point:
 * physical addresses on a noiommu host, IOVAs behind an IOMMU — the same code for both, since
 * DmaBuffer.dmaAddress gives whichever the device needs. Halves rather than one number per page
 * because an NVMe entry takes its addresses as dword pairs anyway, and splitting a number into
 * them is a division and two float-to-integer conversions per address: under the lab's emulated
 * CPU each of those is a call into QEMU's software floating point.
 */
import type { DmaBuffer } from '../../lib';
import { PAGE } from './nvme-spec';

/** Page i's bus address is `pages[2 * i]` (low 32 bits, a multiple of 4096) and `pages[2 * i + 1]` (high). */
export type BusPages = Uint32Array;

const cache = new WeakMap<DmaBuffer, BusPages>();

/** Bus addresses of the buffer's 4 KiB pages. */
export function busPages(buffer: DmaBuffer): BusPages {
  // The cached addresses outlive the buffer: after close() they may be another owner's memory.
  if (buffer.closed) {
    cache.delete(buffer);
    buffer.dmaAddress(0); // throws the library's EBADF error for a closed buffer
  }
  let pages = cache.get(buffer);
  if (!pages) {
    const count = Number(buffer.size) / PAGE;
    pages = new Uint32Array(2 * count);
    for (let i = 0; i < count; i++) {
      const address = buffer.dmaAddress(i * PAGE);
      pages[2 * i] = Number(address & 0xffff_ffffn);
      pages[2 * i + 1] = Number(address >> 32n);
    }
    cache.set(buffer, pages);
  }
  return pages;
}

/** How many pages `pages` holds. */
export function pageCount(pages: BusPages): number {
  return pages.length / 2;
}

/** The bus address of `offset` in the buffer, as a number (every bus address here is below 2^53). */
export function busAddress(pages: BusPages, offset: number): number {
  const page = Math.floor(offset / PAGE);
  const low = pages[2 * page];
  if (low === undefined || page < 0) throw new RangeError(`offset ${offset} is beyond the ${pageCount(pages) * PAGE}-byte DMA buffer`);
  return pages[2 * page + 1]! * 0x1_0000_0000 + low + (offset - page * PAGE);
}

/**
 * PRP1 and PRP2 for `length` bytes at `offset` of a buffer (NVMe 1.4 §4.3): PRP1 may start
 * inside a page; a transfer that ends in the next page puts that page in PRP2; anything longer
 * gets a PRP list (in `list`, at bus address `listAddress`, one page: up to 512 entries).
 * Returns PRP2 (PRP1 is `busAddress(pages, offset)`).
 */
export function buildPrp2(pages: BusPages, offset: number, length: number, list: DataView, listAddress: number): number {
  const first = PAGE - (offset % PAGE);
  if (length <= first) return 0;
  const next = offset + first;
  const remaining = length - first;
  if (remaining <= PAGE) return busAddress(pages, next);
  fillPrpList(pages, offset, length, list);
  return listAddress;
}

/** The PRP list of a transfer longer than two pages: every page after the first, in `list`. */
export function fillPrpList(pages: BusPages, offset: number, length: number, list: DataView): void {
  const first = PAGE - (offset % PAGE);
  const next = offset + first;
  const entries = Math.ceil((length - first) / PAGE);
  if (entries > PAGE / 8)
    throw new RangeError(`a transfer of ${length} bytes needs ${entries} PRP entries; one list page holds ${PAGE / 8}`);
  const firstPage = next / PAGE;
  if (firstPage + entries > pageCount(pages))
    throw new RangeError(`${length} bytes at offset ${offset} run past the end of the DMA buffer`);
  for (let i = 0; i < entries; i++) {
    list.setUint32(i * 8, pages[2 * (firstPage + i)]!, true);
    list.setUint32(i * 8 + 4, pages[2 * (firstPage + i) + 1]!, true);
  }
}

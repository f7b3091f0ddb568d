/**
 * The bus address of every page of a DMA buffer, looked up once and kept as plain numbers, so
 * building PRPs for an I/O costs no syscalls and no bigint allocations: physical addresses on a
 * noiommu host, IOVAs behind an IOMMU — the same code for both, since DmaBuffer.dmaAddress gives
 * whichever the device needs.
 */
import type { DmaBuffer } from '../../lib';
import { PAGE } from './nvme-spec';

const cache = new WeakMap<DmaBuffer, Float64Array>();

/** Bus addresses of the buffer's 4 KiB pages, as numbers (below 2^53, as every bus address here is). */
export function busPages(buffer: DmaBuffer): Float64Array {
  // The cached addresses outlive the buffer: after close() they may be another owner's memory.
  if (buffer.closed) {
    cache.delete(buffer);
    buffer.dmaAddress(0); // throws the library's EBADF error for a closed buffer
  }
  let pages = cache.get(buffer);
  if (!pages) {
    const count = Number(buffer.size) / PAGE;
    pages = new Float64Array(count);
    for (let i = 0; i < count; i++) pages[i] = Number(buffer.dmaAddress(i * PAGE));
    cache.set(buffer, pages);
  }
  return pages;
}

/** The bus address of `offset` in the buffer. */
export function busAddress(pages: Float64Array, offset: number): number {
  const page = Math.floor(offset / PAGE);
  const address = pages[page];
  if (address === undefined) throw new RangeError(`offset ${offset} is beyond the ${pages.length * PAGE}-byte DMA buffer`);
  return address + (offset - page * PAGE);
}

/** Writes a 64-bit little-endian value held in a number (no bigint). */
export function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value >>> 0, true);
  view.setUint32(at + 4, Math.floor(value / 0x1_0000_0000) >>> 0, true);
}

/**
 * PRP1 and PRP2 for `length` bytes at `offset` of a buffer (NVMe 1.4 §4.3): PRP1 may start
 * inside a page; a transfer that ends in the next page puts that page in PRP2; anything longer
 * gets a PRP list (in `list`, at bus address `listAddress`, one page: up to 512 entries).
 * Returns PRP2 (PRP1 is `busAddress(pages, offset)`).
 */
export function buildPrp2(pages: Float64Array, offset: number, length: number, list: DataView, listAddress: number): number {
  const first = PAGE - (offset % PAGE);
  if (length <= first) return 0;
  const next = offset + first;
  const remaining = length - first;
  if (remaining <= PAGE) return busAddress(pages, next);
  fillPrpList(pages, offset, length, list);
  return listAddress;
}

/** The PRP list of a transfer longer than two pages: every page after the first, in `list`. */
export function fillPrpList(pages: Float64Array, offset: number, length: number, list: DataView): void {
  const first = PAGE - (offset % PAGE);
  const next = offset + first;
  const entries = Math.ceil((length - first) / PAGE);
  if (entries > PAGE / 8)
    throw new RangeError(`a transfer of ${length} bytes needs ${entries} PRP entries; one list page holds ${PAGE / 8}`);
  const firstPage = next / PAGE;
  for (let i = 0; i < entries; i++) {
    const address = pages[firstPage + i];
    if (address === undefined) throw new RangeError(`${length} bytes at offset ${offset} run past the end of the DMA buffer`);
    setU64(list, i * 8, address);
  }
}

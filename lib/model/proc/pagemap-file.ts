/**
 * /proc/self/pagemap (fs/proc/task_mmu.c: pagemap_read): one little-endian u64 per virtual page,
 * read with pread at offset (va / page size) * 8.
 *
 *   bits 0-54  page frame number, shown only to CAP_SYS_ADMIN (zero otherwise, since Linux 4.2)
 *   bit  56    page exclusively mapped
 *   bit  61    file page or shared anonymous (shmem) page
 *   bit  62    swapped (never, in the model)
 *   bit  63    present
 *
 * The position and count must be multiples of 8 (EINVAL otherwise). Pages without a mapping, and
 * I/O memory mappings (whose frames the model does not number), read as 0.
 */
import { fail } from '../errno';
import type { AddressSpace } from '../memory/address-space';
import { TASK_SIZE } from '../memory/address-space';
import type { OpenFile, SyscallContext } from '../open-file';

export const PM_PFN_MASK = (1n << 55n) - 1n;
export const PM_MMAP_EXCLUSIVE = 1n << 56n;
export const PM_FILE = 1n << 61n;
export const PM_SWAP = 1n << 62n;
export const PM_PRESENT = 1n << 63n;

export class PagemapFile implements OpenFile {
  readonly kind = 'proc-pagemap';

  constructor(
    private readonly space: AddressSpace,
    private readonly showPfn: () => boolean,
  ) {}

  pread(into: Uint8Array, offset: bigint, _ctx: SyscallContext): number {
    if (offset % 8n !== 0n || into.length % 8 !== 0) fail('EINVAL');
    const ps = BigInt(this.space.memory.pageSize);
    const endPage = TASK_SIZE / ps;
    let page = offset / 8n;
    const view = new DataView(into.buffer, into.byteOffset, into.byteLength);
    const withPfn = this.showPfn();
    let written = 0;
    while (written < into.length && page < endPage) {
      const va = page * ps;
      const vma = this.space.find(va);
      if (!vma || vma.kind === 'mmio') {
        // Skip to the next mapping (or the end of the request) in one step.
        const remaining = (into.length - written) / 8;
        let runPages = BigInt(remaining);
        const next = this.space.nextAbove(va)?.address;
        if (next !== undefined && (next - va) / ps < runPages) runPages = (next - va) / ps;
        if (runPages > endPage - page) runPages = endPage - page;
        if (runPages === 0n) runPages = 1n;
        new Uint8Array(into.buffer, into.byteOffset + written, Number(runPages) * 8).fill(0);
        written += Number(runPages) * 8;
        page += runPages;
        continue;
      }
      const index = Number((va - vma.address) / ps);
      const pfn = vma.pfns[index]!;
      let entry = PM_PRESENT;
      if (withPfn) entry |= BigInt(pfn) & PM_PFN_MASK;
      if (vma.fileBacked) entry |= PM_FILE;
      if (vma.kind === 'anonymous' || (vma.window?.users ?? 1) === 1) entry |= PM_MMAP_EXCLUSIVE;
      view.setBigUint64(written, entry, true);
      written += 8;
      page++;
    }
    return written;
  }
}

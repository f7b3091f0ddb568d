/**
 * What an open file of the simulated kernel can do. Each kind of file (iommufd, VFIO device,
 * group, container, eventfd, memfd, sysfs attribute) implements the operations it supports; a
 * missing operation answers the errno Linux gives for it (ENOTTY for ioctl, EINVAL for mmap, ...).
 */
import type { Mapping } from '../sys/kernel';

export interface SyscallContext {
  /** The fd the call came in on. */
  readonly fd: number;
  /** The path the file was opened by, for error messages. */
  readonly path?: string;
}

/** Where the bytes of an mmap of a file come from. */
export type MmapBacking =
  /** Ordinary memory pages (memfd, hugetlbfs file): the address space maps these frames. */
  | { readonly kind: 'frames'; readonly pfns: readonly bigint[]; readonly pageSize: number }
  /** I/O memory: every access goes through these exact-width handlers (a BAR of a device model). */
  | {
      readonly kind: 'mmio';
      /**
       * The bus address of the mapping's first byte (the BAR's resource start plus the offset):
       * the PFNs a walk of the VM_PFNMAP vma finds (follow_pfnmap_start). Absent: not known.
       */
      readonly physAddress?: bigint;
      /**
       * Whether a fault on the mapping would install its PFNs (vfio_pci_mmap_huge_fault: memory
       * decoding on, not in low power); false means SIGBUS, which a kernel-side walk sees as EFAULT.
       */
      faultable?(): boolean;
      read(offset: number, width: 8 | 16 | 32 | 64): bigint;
      write(offset: number, width: 8 | 16 | 32 | 64, value: bigint): void;
    };

export interface OpenFile {
  /** The kind of file, e.g. 'iommufd', 'vfio-device', 'vfio-group', 'vfio-container', 'eventfd'. */
  readonly kind: string;
  ioctl?(request: number, arg: Uint8Array | number | null, ctx: SyscallContext): number;
  pread?(into: Uint8Array, offset: bigint, ctx: SyscallContext): number;
  pwrite?(from: Uint8Array, offset: bigint, ctx: SyscallContext): number;
  mmap?(length: bigint, prot: number, flags: number, offset: bigint, ctx: SyscallContext): MmapBacking;
  /** For poll: is there something to read? */
  readable?(): boolean;
  /** Registers a callback fired when the file may have become readable. Returns an unsubscribe. */
  onReadable?(cb: () => void): () => void;
  /** Called when the last fd referring to this open file is closed. */
  release?(): void;
}

/** A mapping as the model tracks it: the public Mapping plus how to reach its bytes. */
export interface ModelMapping extends Mapping {
  readonly backing: MmapBacking | { readonly kind: 'anonymous' };
}

/**
 * IOMMU_FAULT_QUEUE_ALLOC objects (eventq.c: struct iommufd_fault): a queue of I/O page faults
 * delivered through its own fd ("anon_inode:[iommufd-pgfault]"). No modelled device raises page
 * requests (edu has no PRI), so the queue stays empty; the object still exists, holds its ID,
 * can be named by HWPT_ALLOC's fault_id, and its fd behaves like the kernel's: non-seekable (so
 * pread/pwrite answer ESPIPE) and never readable.
 */
import { fail } from '../errno';
import type { OpenFile, SyscallContext } from '../open-file';
import { IommufdObject } from './object-table';

export class FaultQueue extends IommufdObject {
  readonly type = 'fault' as const;

  /** iommufd_fault_destroy: nothing is ever pending. */
  destroy(): void {}
}

export class FaultQueueFile implements OpenFile {
  readonly kind = 'iommufd-fault';

  constructor(
    readonly queue: FaultQueue,
    /** iommufd_eventq_fops_release: drops the file's users reference and the context reference. */
    private readonly onRelease: () => void,
  ) {}

  pread(_into: Uint8Array, _offset: bigint, _ctx: SyscallContext): number {
    fail('ESPIPE');
  }

  pwrite(_from: Uint8Array, _offset: bigint, _ctx: SyscallContext): number {
    fail('ESPIPE');
  }

  readable(): boolean {
    return false;
  }

  onReadable(_cb: () => void): () => void {
    return () => undefined;
  }

  release(): void {
    this.onRelease();
  }
}

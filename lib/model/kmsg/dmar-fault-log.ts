/**
 * What intel-iommu's fault interrupt prints for a DMA the IOMMU blocked (drivers/iommu/intel/dmar.c,
 * dmar_fault and dmar_fault_do_one), seen in the lab with QEMU's intel-iommu: the fault status
 * line, then one line per fault record with the direction, the requester, the page of the address
 * and the reason. Both share one ratelimit (10 lines per 5 s); past it the records are cleared
 * unprinted. QEMU records a second fault of the same requester while the first is still pending
 * as nothing at all ("compression of faults"), so a transfer that faults logs once.
 */
import { LOGLEVEL_ERR, type KernelLog } from './kernel-log';

const RATELIMIT_INTERVAL_MS = 5000;
const RATELIMIT_BURST = 10;
/** The VT-d fault reasons a second-level translation raises (dmar_get_fault_reason's table). */
const REASON_READ = { code: 0x06, text: 'PTE Read access is not set' };
const REASON_WRITE = { code: 0x05, text: 'PTE Write access is not set' };
const PAGE_MASK = ~0xfffn;

/** One faulting transaction as the IOMMU recorded it. */
export interface DmarFault {
  /** The requester, "0000:00:03.0". */
  readonly device: string;
  readonly iova: bigint;
  readonly direction: 'read' | 'write';
}

export class DmarFaultLog {
  private windowStart = -Infinity;
  private printed = 0;

  constructor(private readonly log: KernelLog) {}

  /** The fault interrupt for one recorded fault. */
  report(fault: DmarFault): void {
    if (this.allowed()) this.log.printk(LOGLEVEL_ERR, 'DMAR: DRHD: handling fault status reg 2');
    if (!this.allowed()) return;
    const reason = fault.direction === 'read' ? REASON_READ : REASON_WRITE;
    this.log.printk(
      LOGLEVEL_ERR,
      `DMAR: [DMA ${fault.direction === 'read' ? 'Read' : 'Write'} NO_PASID] Request device [${fault.device}] ` +
        `fault addr 0x${(fault.iova & PAGE_MASK).toString(16)} [fault reason 0x${reason.code.toString(16).padStart(2, '0')}] ${reason.text}`,
    );
  }

  /** __ratelimit with DEFAULT_RATELIMIT_INTERVAL and _BURST. */
  private allowed(): boolean {
    const now = Date.now();
    if (now - this.windowStart > RATELIMIT_INTERVAL_MS) {
      this.windowStart = now;
      this.printed = 0;
    }
    if (this.printed >= RATELIMIT_BURST) return false;
    this.printed++;
    return true;
  }
}

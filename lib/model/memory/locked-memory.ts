/**
 * The locked/pinned page counters the kernel charges against RLIMIT_MEMLOCK.
 *
 * Linux keeps two: mm->locked_vm (mlock, MAP_LOCKED, VFIO type1 and iommufd in "mm" accounting
 * mode) and user->locked_vm (io_uring and iommufd's default "user" mode, shared by every process
 * of the same user). A process with CAP_IPC_LOCK is exempt from the limit. pinned_vm only counts.
 */
import { RLIM_INFINITY } from '../profile';

export class LockedMemory {
  /** mm->locked_vm, in pages. */
  mmLockedPages = 0;
  /** user->locked_vm, in pages. */
  userLockedPages = 0;
  /** mm->pinned_vm, in pages (statistics only). */
  pinnedPages = 0;

  constructor(
    private readonly limitBytes: bigint,
    private readonly pageShift: number,
    private readonly ipcLock: boolean,
  ) {}

  /** RLIMIT_MEMLOCK in pages (effectively unbounded for RLIM_INFINITY). */
  get limitPages(): number {
    if (this.limitBytes === RLIM_INFINITY) return Number.MAX_SAFE_INTEGER;
    return Number(this.limitBytes >> BigInt(this.pageShift));
  }

  get limitIsZero(): boolean {
    return this.limitBytes === 0n;
  }

  get exempt(): boolean {
    return this.ipcLock;
  }

  /** incr_user_locked_vm: charge user->locked_vm or refuse (false → ENOMEM); no CAP_IPC_LOCK bypass here. */
  chargeUser(pages: number): boolean {
    if (this.userLockedPages + pages > this.limitPages) return false;
    this.userLockedPages += pages;
    return true;
  }

  unchargeUser(pages: number): void {
    this.userLockedPages = Math.max(0, this.userLockedPages - pages);
  }

  /** __account_locked_vm(inc, bypass_rlim=false): charge mm->locked_vm or refuse (false → ENOMEM). */
  chargeMm(pages: number): boolean {
    if (this.mmLockedPages + pages > this.limitPages) return false;
    this.mmLockedPages += pages;
    return true;
  }

  unchargeMm(pages: number): void {
    this.mmLockedPages = Math.max(0, this.mmLockedPages - pages);
  }
}

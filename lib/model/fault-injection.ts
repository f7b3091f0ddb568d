/**
 * Fault injection in the spirit of the kernel's fail_nth (what iommufd's selftest drives through
 * iommufd_should_fail()): arm it with N and the Nth injection site reached afterwards fails with
 * that site's errno — an allocation with ENOMEM, an object lookup with ENOENT, a page pin with
 * EFAULT. Tests walk N = 1, 2, 3, ... over an operation sequence and check that every early
 * failure leaves no leaked IDs, pins or accounting behind. Sites are named (lib/model/faults.ts
 * lists them with their errnos); sites without a path to their kernel's injector reach the armed
 * one through faults.ts.
 */
import type { FaultPointName } from './fault-points';

/** The injector armed right now, if any (one kernel at a time is swept). */
let armed: FaultInjector | undefined;

export function armedInjector(): FaultInjector | undefined {
  return armed;
}

export class FaultInjector {
  private remaining = 0;
  /** How many sites were passed since the injector was last armed. */
  sitesSeen = 0;
  /** Whether the armed failure has happened. */
  fired = false;
  /** The site that failed, once it has. */
  firedAt: FaultPointName | undefined;
  /** Sites passed since arming, by name. */
  readonly seen = new Map<FaultPointName, number>();

  /** Fails the `n`th site reached from now on (n ≥ 1); 0 disarms. */
  failNth(n: number): void {
    this.remaining = n;
    this.sitesSeen = 0;
    this.fired = false;
    this.firedAt = undefined;
    this.seen.clear();
    if (n > 0) armed = this;
    else if (armed === this) armed = undefined;
  }

  /** Called at each injection site: true when this one must fail. */
  shouldFail(site: FaultPointName): boolean {
    if (this.remaining === 0) return false;
    this.sitesSeen++;
    this.seen.set(site, (this.seen.get(site) ?? 0) + 1);
    if (--this.remaining > 0) return false;
    this.fired = true;
    this.firedAt = site;
    return true;
  }
}

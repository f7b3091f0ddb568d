/**
 * Fault injection in the spirit of the kernel's fail_nth (what iommufd's selftest drives through
 * iommufd_should_fail()): arm it with N and the Nth injection site reached afterwards fails with
 * that site's errno — an allocation with ENOMEM, an object lookup with ENOENT, a page pin with
 * EFAULT. Tests walk N = 1, 2, 3, ... over an operation sequence and check that every early
 * failure leaves no leaked IDs, pins or accounting behind.
 *
 * Each ModelKernel owns one injector (`kernel.faults`) and hands it to the parts it builds, so a
 * site always asks its own kernel's injector: two kernels armed at once do not see each other's
 * sites. A site is one call, `faults.point('name')`, named in lib/model/faults.ts with its errno.
 */
import { KernelError } from './errno';
import { FAULT_POINTS, type FaultPointName } from './faults';

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
  }

  /**
   * A fault site (iommufd_should_fail and friends): throws the site's catalogued errno when it is
   * the one the armed count picks. Unarmed it costs a comparison.
   */
  point(site: FaultPointName): void {
    if (this.remaining === 0) return;
    this.sitesSeen++;
    this.seen.set(site, (this.seen.get(site) ?? 0) + 1);
    if (--this.remaining > 0) return;
    this.fired = true;
    this.firedAt = site;
    const info = FAULT_POINTS[site];
    throw new KernelError(info.errno, `fault injected at ${site} (${info.site})`);
  }
}

/**
 * Fault injection in the spirit of the kernel's fail_nth (what iommufd's selftest drives through
 * iommufd_should_fail()): arm it with N and the Nth injection site reached afterwards fails with
 * that site's errno — an allocation with ENOMEM, an object lookup with ENOENT, a page pin with
 * EFAULT. Tests walk N = 1, 2, 3, ... over an operation sequence and check that every early
 * failure leaves no leaked IDs, pins or accounting behind.
 */
export class FaultInjector {
  private remaining = 0;
  /** How many sites were passed since the injector was last armed. */
  sitesSeen = 0;
  /** Whether the armed failure has happened. */
  fired = false;

  /** Fails the `n`th site reached from now on (n ≥ 1); 0 disarms. */
  failNth(n: number): void {
    this.remaining = n;
    this.sitesSeen = 0;
    this.fired = false;
  }

  /** Called at each injection site: true when this one must fail. */
  shouldFail(): boolean {
    if (this.remaining === 0) return false;
    this.sitesSeen++;
    if (--this.remaining > 0) return false;
    this.fired = true;
    return true;
  }
}

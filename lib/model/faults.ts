/**
 * The fault points of the model, after the kernel's fail_nth (tools/testing/selftests/iommu/
 * iommufd_fail_nth.c): every allocation, pin, ID allocation and object lookup of the model that
 * can fail in the kernel is a named site, and a sweep arms the kernel's FaultInjector
 * (fault-injection.ts) so the 1st, 2nd, … Nth site passed fails — once — until a scenario runs
 * through untouched. Each site fails with the errno the kernel's own site returns there, listed
 * here so a sweep can hold every surfaced error against its site.
 *
 * Model code with a path to its kernel's injector writes `if (faults.shouldFail('name')) fail(errno)`;
 * code without one (the VFIO side, the address space) writes `faultPoint('name')`, which asks the
 * injector that is armed. Unarmed, both cost a comparison.
 */
import { KernelError } from './errno';
import { armedInjector } from './fault-injection';
import { FAULT_POINTS, type FaultPointName } from './fault-points';

export { FAULT_POINTS, type FaultPointInfo, type FaultPointName } from './fault-points';

/** iommufd_should_fail for code without its kernel's injector at hand: asks the armed one. */
export function shouldFail(point: FaultPointName): boolean {
  return armedInjector()?.shouldFail(point) ?? false;
}

/** A site that fails with its catalogued errno when the armed injector picks it. */
export function faultPoint(point: FaultPointName): void {
  if (shouldFail(point)) {
    const info = FAULT_POINTS[point];
    throw new KernelError(info.errno, `fault injected at ${point} (${info.site})`);
  }
}

/**
 * What a case works with: the kernel, the mode and facts of the environment, a fixture that owns
 * every fd and mapping the case opens (closed in reverse order at teardown, like the kselftest
 * harness's FIXTURE_TEARDOWN), and expectation helpers that compare what the kernel did with what
 * the case expects in the current mode.
 */
import type { Kernel, Mapping, MmapPlacement } from '../sys/kernel';
import { isVfioError, VfioError } from '../sys/errors';
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  MAP_ANONYMOUS,
  MAP_HUGE_SHIFT,
  MAP_HUGETLB,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_CLOEXEC,
  O_CLOEXEC,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from '../sys/constants';
import type { Environment } from './environment';
import { CaseFailed, CaseSkipped } from './outcome';
import { describeExpected, outcomeFor, type Expected, type Mode, type Outcome } from './types';
import type { TrackedKernel } from './tracked-kernel';

/**
 * How CaseContext.anonymousMemory backs the memory it maps.
 *
 * @category Conformance suite
 */
export interface AnonymousMemoryOptions {
  /** Back it with huge pages (MAP_HUGETLB); skips the case when the machine has none free. */
  readonly hugetlb?: boolean;
  /** With hugetlb: this huge page size (MAP_HUGE_2MB, MAP_HUGE_1GB) instead of the default one. */
  readonly hugePageSize?: bigint;
}

/**
 * What a case works with: the kernel and environment, a fixture that releases every fd and mapping
 * the case opens at teardown (last opened first), and expectation helpers that compare what the
 * kernel did with what the case expects in the current mode.
 *
 * @category Conformance suite
 */
export class CaseContext {
  /** The kernel the case runs on, wrapped so that the runner sees every fd and mapping it opens. */
  readonly kernel: Kernel;
  /** The environment the case runs in (its kernel is the tracking wrapper). */
  readonly env: Environment;
  /** Lines the case noted, in order; they become the result's log. */
  readonly log: string[] = [];
  private readonly cleanups: { what: string; run: () => void }[] = [];

  /**
   * Made by the runner for each case.
   *
   * @internal
   */
  constructor(kernel: TrackedKernel, env: Environment) {
    this.kernel = kernel;
    this.env = env;
  }

  /** The environment's mode, which picks the expectation of a per-mode Expected. */
  get mode(): Mode {
    return this.env.mode;
  }

  /** The kernel's page size in bytes. */
  get pageSize(): number {
    return this.env.pageSize;
  }

  /** Same as pageSize, as a bigint, for IOVA arithmetic. */
  get page(): bigint {
    return BigInt(this.env.pageSize);
  }

  /** Adds a line to the case's log (printed as a TAP diagnostic when the case fails or the run is verbose). */
  note(line: string): void {
    this.log.push(line);
  }

  /** Ends the case as skipped with this reason. */
  skip(reason: string): never {
    throw new CaseSkipped(reason);
  }

  /** Ends the case as failed with this message. */
  fail(message: string): never {
    throw new CaseFailed(message);
  }

  // ---- fixture: everything opened here is released at teardown, last opened first ----

  /** Registers a cleanup that runs at teardown (reverse order of registration). */
  defer(what: string, run: () => void): void {
    this.cleanups.push({ what, run });
  }

  /** Opens `path` and closes the fd at teardown. */
  open(path: string, flags = O_RDWR | O_CLOEXEC): number {
    const fd = this.kernel.open(path, flags);
    this.ownFd(fd, path);
    return fd;
  }

  /** Takes ownership of an fd the kernel created (e.g. a fault queue fd returned in a struct). */
  ownFd(fd: number, what: string): void {
    this.defer(`close ${what} (fd ${fd})`, () => this.kernel.close(fd));
  }

  /** Closes an fd now (e.g. to test what closing does); teardown then skips it. */
  closeNow(fd: number): void {
    this.kernel.close(fd);
    const i = this.cleanups.findIndex((c) => c.what.endsWith(`(fd ${fd})`));
    if (i >= 0) this.cleanups.splice(i, 1);
  }

  /** The device under test's cdev, opened. Skips when the environment has no VFIO device. */
  openDevice(): number {
    const device = this.env.device;
    if (!device) this.skip('no VFIO device in this environment (bind one to vfio-pci, or pass its BDF)');
    return this.open(device.cdevPath);
  }

  /** Opens /dev/iommu, closed at teardown; skips the case when the kernel has no iommufd. */
  openIommufd(): number {
    if (!this.env.hasIommufd) this.skip('no /dev/iommu (kernel built without CONFIG_IOMMUFD)');
    return this.open('/dev/iommu');
  }

  /** A non-blocking close-on-exec eventfd, closed at teardown. */
  eventfd(): number {
    const fd = this.kernel.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    this.ownFd(fd, 'eventfd');
    return fd;
  }

  /** A memfd of `length` bytes, closed at teardown. */
  memfd(name: string, length: bigint): number {
    const fd = this.kernel.memfdCreate(name, MFD_CLOEXEC);
    this.ownFd(fd, `memfd ${name}`);
    this.kernel.ftruncate(fd, length);
    return fd;
  }

  /**
   * Private anonymous read/write memory, populated, unmapped at teardown. With `hugetlb`, when no
   * huge page is free and the process may write /proc/sys/vm/nr_hugepages, it reserves the pages
   * it needs for the duration of the case (given back at teardown); otherwise the case is skipped.
   */
  anonymousMemory(length: bigint, options: AnonymousMemoryOptions = {}): Mapping {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE;
    let size = length;
    const hugePage = options.hugetlb ? (options.hugePageSize ?? this.hugePageSize()) : 0n;
    if (options.hugetlb) {
      flags |= MAP_HUGETLB;
      if (options.hugePageSize !== undefined) flags |= log2(options.hugePageSize) << MAP_HUGE_SHIFT;
      // munmap of a hugetlb mapping must cover whole huge pages, so map whole ones.
      size = ((length + hugePage - 1n) / hugePage) * hugePage;
    }
    const attempt = () => this.kernel.mmap(-1, size, PROT_READ | PROT_WRITE, flags, 0n);
    let m: Mapping;
    try {
      m = attempt();
    } catch (e) {
      if (!options.hugetlb || !isVfioError(e)) throw e;
      const why = this.reserveHugePages(size, hugePage, options.hugePageSize !== undefined);
      if (why) this.skip(`no free huge pages for ${length} bytes (mmap MAP_HUGETLB: ${e.code}) and ${why}`);
      try {
        m = attempt();
      } catch (again) {
        if (!isVfioError(again)) throw again;
        this.skip(`huge pages were reserved but mmap MAP_HUGETLB of ${size} bytes still fails: ${again.code}`);
      }
    }
    this.defer(`munmap ${size} bytes at 0x${m.address.toString(16)}`, () => this.kernel.munmap(m));
    return m;
  }

  /** The default huge page size from /proc/meminfo; skips the case when the kernel has none. */
  private hugePageSize(): bigint {
    const meminfo = this.kernel.exists('/proc/meminfo') ? this.kernel.readFile('/proc/meminfo').toString() : '';
    const size = /^Hugepagesize:\s+(\d+) kB$/m.exec(meminfo);
    if (!size) this.skip('the kernel reports no huge page size (/proc/meminfo has no Hugepagesize)');
    return BigInt(size[1]!) * 1024n;
  }

  /**
   * Raises nr_hugepages (of `hugePage`'s pool in sysfs when `explicit`) by what `size` (whole huge
   * pages) needs; returns why it could not, or null.
   */
  private reserveHugePages(size: bigint, hugePage: bigint, explicit: boolean): string | null {
    const sysctl = explicit ? `/sys/kernel/mm/hugepages/hugepages-${hugePage / 1024n}kB/nr_hugepages` : '/proc/sys/vm/nr_hugepages';
    if (!this.kernel.exists(sysctl)) return `this kernel has no ${sysctl} (no ${hugePage / 1024n} kB huge pages)`;
    const needed = size / hugePage;
    const before = BigInt(this.kernel.readFile(sysctl).toString().trim());
    try {
      this.kernel.writeFile(sysctl, `${before + needed}\n`);
    } catch (e) {
      return `reserving some through ${sysctl} failed (${isVfioError(e) ? e.code : (e as Error).message})`;
    }
    this.defer(`restore ${sysctl} to ${before}`, () => this.kernel.writeFile(sysctl, `${before}\n`));
    const now = BigInt(this.kernel.readFile(sysctl).toString().trim());
    this.note(`reserved huge pages: nr_hugepages ${before} -> ${now}`);
    return now >= before + needed ? null : `the kernel found only ${now - before} of ${needed} huge pages to reserve`;
  }

  /** A shared mapping of a device region (BAR), unmapped at teardown; `placement` fixes its address's low bits. */
  mapRegion(fd: number, length: bigint, offset: bigint, placement?: MmapPlacement): Mapping {
    const m = this.kernel.mmap(fd, length, PROT_READ | PROT_WRITE, MAP_SHARED, offset, placement);
    this.defer(`munmap region at offset 0x${offset.toString(16)}`, () => this.kernel.munmap(m));
    return m;
  }

  /** Runs the cleanups; the first error is rethrown after all of them ran. */
  teardown(): void {
    let first: CaseFailed | undefined;
    while (this.cleanups.length) {
      const c = this.cleanups.pop()!;
      try {
        c.run();
      } catch (e) {
        first ??= new CaseFailed(`teardown: ${c.what} failed: ${(e as Error).message}`);
      }
    }
    if (first) throw first;
  }

  // ---- expectations ----

  /**
   * Runs `call` and checks its outcome against `expected` for the current mode. Returns the call's
   * value when it was expected to succeed and did, undefined when it failed as expected.
   */
  expect<T>(what: string, call: () => T, expected: Expected): T | undefined {
    const want = outcomeFor(expected, this.mode);
    let value: T;
    try {
      value = call();
    } catch (e) {
      const got = outcomeOf(e);
      if (got === want) {
        this.note(`${what}: ${got} as expected`);
        return undefined;
      }
      this.fail(`${what}: expected ${describeWant(want, expected)}, got ${got}${detail(e)}`);
    }
    if (want !== 'ok') this.fail(`${what}: expected ${describeWant(want, expected)}, but it succeeded`);
    this.note(`${what}: ok as expected`);
    return value;
  }

  /** Like `expect` for calls that must fail in every mode. */
  expectErrno(what: string, call: () => unknown, expected: Expected): void {
    this.expect(what, call, expected);
  }

  /** Runs a step that must succeed; a failure fails the case with the errno. */
  ok<T>(what: string, call: () => T): T {
    try {
      return call();
    } catch (e) {
      if (e instanceof CaseSkipped || e instanceof CaseFailed) throw e;
      this.fail(`${what}: expected success, got ${outcomeOf(e)}${detail(e)}`);
    }
  }

  /** Fails the case with `what` unless `condition` holds. */
  check(condition: boolean, what: string): void {
    if (!condition) this.fail(what);
  }

  /** Fails the case, showing both values, unless `actual` is `expected`. */
  equal<T extends number | bigint | string | boolean>(actual: T, expected: T, what: string): void {
    if (actual !== expected) this.fail(`${what}: expected ${show(expected)}, got ${show(actual)}`);
  }
}

function outcomeOf(e: unknown): string {
  if (e instanceof CaseSkipped || e instanceof CaseFailed) throw e;
  if (e instanceof VfioError) return e.code as Outcome;
  return `${(e as Error)?.name ?? 'exception'}: ${(e as Error)?.message ?? String(e)}`;
}

function describeWant(want: Outcome, expected: Expected): string {
  return typeof expected === 'string' ? want : `${want} (${describeExpected(expected)})`;
}

function detail(e: unknown): string {
  return e instanceof VfioError ? ` (${e.message})` : '';
}

export function show(v: number | bigint | string | boolean): string {
  if (typeof v === 'bigint') return `0x${v.toString(16)}`;
  if (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) > 9) return `${v} (0x${v.toString(16)})`;
  return String(v);
}

function log2(n: bigint): number {
  return n.toString(2).length - 1;
}

/**
 * The driver matrix, after the kernel's vfio_pci_driver_test.c, in every IOMMU mode: each case
 * drives the device through its selftest driver (lib/selftest/drivers: edu, NVMe, or one a device
 * model registers). init/remove cycles; a memcpy of the driver's largest size and the region
 * copied in such chunks; a memcpy from and to an unmapped IOVA (the IOMMU blocks it: an error
 * where the device reports one, and never an MSI); send_msi; the kernel's mix of the three ten
 * times; a storm of the driver's largest count of copies. The unmapped-IOVA cases need an IOMMU:
 * without one there is no unmapped IOVA, the device would write to whatever physical address.
 */
import { defineCase, type ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import { CHUNKS, withDriver, type DriverTest } from '../driver-fixture';
import { IOMMU_MODES, modeId, type IommuModeRow } from '../iommu-modes';

/** ASSERT_NO_MSI: the eventfd counts nothing (a nonblocking read is EAGAIN). */
function expectNoMsi(t: CaseContext, efd: number, after: string): void {
  t.expectErrno(`read the MSI eventfd after ${after} (no interrupt)`, () => t.kernel.eventfdRead(efd), 'EAGAIN');
}

async function expectOneMsi(d: DriverTest): Promise<void> {
  const { t, driver } = d;
  const efd = driver.msiEventfd;
  try {
    await t.kernel.waitReadable(efd, AbortSignal.timeout(5000));
  } catch (e) {
    t.fail(`send_msi: the MSI eventfd did not become readable within 5 s (${(e as Error).message})`);
  }
  t.equal(t.kernel.eventfdRead(efd), 1n, 'MSI eventfd count after one send_msi');
}

function firstDifference(a: Uint8Array, b: Uint8Array, length: number): number {
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

async function memcpyOk(d: DriverTest, src: bigint, dst: bigint, size: number, what: string): Promise<void> {
  const error = await d.driver.memcpy(src, dst, size);
  if (error !== null) d.t.fail(`${what}: the driver reports ${error}`);
}

/** The copy the kernel's memcpy_success does: 'x' over 'y', the driver's largest size. */
async function copyAndCompare(d: DriverTest): Promise<void> {
  d.srcBytes.fill(0x78, 0, d.size);
  d.dstBytes.fill(0x79, 0, d.size);
  await memcpyOk(d, d.src, d.dst, d.size, 'memcpy');
  d.t.equal(firstDifference(d.srcBytes, d.dstBytes, d.size), -1, 'first byte that differs after the memcpy');
}

function requireIommu(t: CaseContext): void {
  if (t.mode === 'noiommu') t.skip('without an IOMMU there is no unmapped IOVA: the device would reach whatever memory is at that address');
}

/** A transfer the IOMMU blocked: an error where the driver can tell, and no interrupt either way. */
async function blockedMemcpy(d: DriverTest, src: bigint, dst: bigint, what: string): Promise<void> {
  const error = await d.driver.memcpy(src, dst, d.size);
  if (d.driver.driver.reportsDmaErrors) d.t.check(error !== null, `${what}: the ${d.driver.name} driver reports an error`);
  d.t.note(`${what}: ${error ?? `no error reported (${d.driver.name} cannot tell)`}`);
}

interface DriverCase {
  readonly id: string;
  readonly kernel: string;
  readonly title: string;
  run(d: DriverTest): Promise<void>;
}

const CASES: readonly DriverCase[] = [
  {
    id: 'init-remove',
    kernel: 'init_remove',
    title: 'the driver is removed and initialised again ten times',
    async run(d) {
      for (let i = 0; i < 10; i++) {
        await d.driver.remove();
        await d.driver.init();
      }
      await copyAndCompare(d);
    },
  },
  {
    id: 'memcpy-success',
    kernel: 'memcpy_success',
    title: `a memcpy of the driver's largest size copies, and so does the region in ${CHUNKS} chunks of that size; no MSI`,
    async run(d) {
      await copyAndCompare(d);
      const total = d.size * CHUNKS;
      for (let i = 0; i < total; i++) d.srcBytes[i] = (i * 7 + 3) & 0xff;
      d.dstBytes.fill(0, 0, total);
      for (let at = 0; at < total; at += d.size) await memcpyOk(d, d.src + BigInt(at), d.dst + BigInt(at), d.size, `chunk at ${at}`);
      d.t.equal(firstDifference(d.srcBytes, d.dstBytes, total), -1, 'first byte that differs after the chunked copy');
      expectNoMsi(d.t, d.driver.msiEventfd, 'the memcpys');
    },
  },
  {
    id: 'memcpy-from-unmapped-iova',
    kernel: 'memcpy_from_unmapped_iova',
    title: 'a memcpy from an unmapped IOVA is blocked: an error where the device reports one, no MSI',
    async run(d) {
      await blockedMemcpy(d, d.unmappedIova, d.dst, 'memcpy from an unmapped IOVA');
      expectNoMsi(d.t, d.driver.msiEventfd, 'the blocked memcpy');
    },
  },
  {
    id: 'memcpy-to-unmapped-iova',
    kernel: 'memcpy_to_unmapped_iova',
    title: 'a memcpy to an unmapped IOVA is blocked: an error where the device reports one, no MSI',
    async run(d) {
      await blockedMemcpy(d, d.src, d.unmappedIova, 'memcpy to an unmapped IOVA');
      expectNoMsi(d.t, d.driver.msiEventfd, 'the blocked memcpy');
    },
  },
  {
    id: 'send-msi',
    kernel: 'send_msi',
    title: 'send_msi signals the MSI eventfd exactly once',
    async run(d) {
      await d.driver.sendMsi();
      await expectOneMsi(d);
    },
  },
  {
    id: 'mix-and-match',
    kernel: 'mix_and_match',
    title: 'ten rounds of a memcpy, a memcpy from an unmapped IOVA (with an IOMMU) and send_msi, each as if alone',
    async run(d) {
      for (let i = 0; i < 10; i++) {
        await copyAndCompare(d);
        if (d.t.mode === 'iommu') await blockedMemcpy(d, d.unmappedIova, d.dst, `round ${i}: memcpy from an unmapped IOVA`);
        await d.driver.sendMsi();
        await expectOneMsi(d);
      }
      if (d.t.mode === 'noiommu') d.t.note('no unmapped-IOVA memcpy without an IOMMU');
    },
  },
  {
    id: 'memcpy-storm',
    kernel: 'memcpy_storm',
    title: "the driver's largest count of its largest memcpys, started at once and waited for: no error, no MSI, the data copied",
    async run(d) {
      const count = d.driver.driver.maxMemcpyCount;
      for (let i = 0; i < d.size; i++) d.srcBytes[i] = (i * 13 + 5) & 0xff;
      d.dstBytes.fill(0, 0, d.size);
      d.t.note(`${count} memcpys of ${d.size} bytes`);
      d.driver.memcpyStart(d.src, d.dst, d.size, count);
      const error = await d.driver.memcpyWait();
      if (error !== null) d.t.fail(`memcpy storm: the driver reports ${error}`);
      expectNoMsi(d.t, d.driver.msiEventfd, 'the storm');
      d.t.equal(firstDifference(d.srcBytes, d.dstBytes, d.size), -1, 'first byte that differs after the storm');
    },
  },
];

/** The kernel's case name → our case id segment, for the mapping table's test. */
export const DRIVER_CASE_NAMES: Readonly<Record<string, string>> = Object.fromEntries(CASES.map((c) => [c.kernel, c.id]));

function driverCase(row: IommuModeRow, c: DriverCase): ConformanceCase {
  return defineCase({
    id: `driver.${modeId(row)}.${c.id}`,
    title: `${row.name}: ${c.title} (vfio_pci_driver_test ${c.kernel})`,
    needs: row.needs,
    async run(t) {
      if (c.id.includes('unmapped') && row.environment === 'noiommu') requireIommu(t);
      await withDriver(t, row, (d) => c.run(d));
    },
  });
}

export const driverCases: ConformanceCase[] = IOMMU_MODES.flatMap((row) => CASES.map((c) => driverCase(row, c)));

/**
 * Steps the cases that drive edu share: mapping its BAR0 and the address its DMA engine must be
 * given for an IOVA (the physical address without an IOMMU, the IOVA itself with one).
 */
import type { Mapping } from '../sys/kernel';
import * as V from '../uapi/vfio';
import { call } from './calls';
import type { CaseContext } from './context';
import { regionInfo } from './steps';
import type { FixtureValue } from './struct-call';

export function mapBar0(t: CaseContext, deviceFd: number): Mapping {
  const info = regionInfo(t, deviceFd, V.VFIO_PCI_BAR0_REGION_INDEX);
  t.check((info.flags & V.VFIO_REGION_INFO_FLAG_MMAP) !== 0, 'BAR0 can be mmap\'ed');
  return t.ok('mmap BAR0', () => t.mapRegion(deviceFd, info.size, info.offset));
}

/** The address edu must use for `iova` of the IOAS: its physical address in noiommu mode (GET_PA), else the IOVA. */
export function dmaAddress(f: FixtureValue & { readonly iommufd: number; readonly ioasId: number }, iova: bigint, length: bigint): bigint {
  const { t } = f;
  if (t.mode === 'iommu') return iova;
  const run = t.ok('GET_PA of the DMA buffer', () => call.getPa(f, { iova, length }));
  t.check(run.length >= length, `the buffer is physically contiguous over the transfer (${run.length} bytes)`);
  return run.out_phys;
}

/**
 * Steps the cases that drive edu share: mapping its BAR0, the address its DMA engine must be
 * given for an IOVA (the physical address without an IOMMU, the IOVA itself with one), and a
 * round trip through its buffer.
 */
import type { Mapping } from '../sys/kernel';
import * as P from '../uapi/pci';
import * as V from '../uapi/vfio';
import { call } from './calls';
import type { CaseContext } from './context';
import { EDU, eduDma } from './edu-driver';
import { configRead, configWrite, regionInfo } from './steps';
import type { FixtureValue } from './struct-call';

export function mapBar0(t: CaseContext, deviceFd: number): Mapping {
  const info = regionInfo(t, deviceFd, V.VFIO_PCI_BAR0_REGION_INDEX);
  t.check((info.flags & V.VFIO_REGION_INFO_FLAG_MMAP) !== 0, "BAR0 can be mmap'ed");
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

/**
 * RAM → edu → RAM: edu copies `count` bytes from bus address `src` into its own buffer and from
 * there to `dst`, with bus mastering on for the transfers and the command register restored after.
 */
export async function eduRoundTrip(t: CaseContext, deviceFd: number, src: bigint, dst: bigint, count: number): Promise<void> {
  const command = configRead(t, deviceFd, P.PCI_COMMAND, 2);
  configWrite(t, deviceFd, P.PCI_COMMAND, 2, command | P.PCI_COMMAND_MASTER | P.PCI_COMMAND_MEMORY);
  const bar0 = mapBar0(t, deviceFd);
  await eduDma(t.kernel, bar0, { src, dst: EDU.DEVICE_BUFFER, count, toRam: false });
  await eduDma(t.kernel, bar0, { src: EDU.DEVICE_BUFFER, dst, count, toRam: true });
  configWrite(t, deviceFd, P.PCI_COMMAND, 2, command);
}

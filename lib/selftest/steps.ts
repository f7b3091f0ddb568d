/**
 * The ordinary steps cases are built from (bind, allocate an IOAS, attach, map, look up a physical
 * address, read device info), each one call with the struct exactly as the uapi defines it. A step
 * that fails fails the case with the errno, so a case reads as the sequence it tests.
 */
import type { Mapping, UserVa } from '../sys/kernel';
import { U64_MAX } from '../uapi/codec';
import * as I from '../uapi/iommufd';
import * as V from '../uapi/vfio';
import type { CaseContext } from './context';
import { rawIoctl } from './raw-ioctl';
import { ioasAlloc as wrappedIoasAlloc, ioasMap, iommuDestroy } from '../ioctl/iommufd-ioctls';
import { deviceAttachIommufdPt, deviceBindIommufd, deviceDetachIommufdPt } from '../ioctl/device-ioctls';
import { iova } from '../sys/addresses';

/** VFIO_PCI_INDEX_TO_OFFSET: where region `index` starts in the device fd's file offsets. */
export function regionOffset(index: number): bigint {
  return BigInt(index) << 40n;
}

export const MAP_RW = I.IOMMU_IOAS_MAP_READABLE | I.IOMMU_IOAS_MAP_WRITEABLE;

export function bind(t: CaseContext, deviceFd: number, iommufd: number): number {
  return t.ok('VFIO_DEVICE_BIND_IOMMUFD', () => deviceBindIommufd(t.kernel, deviceFd, iommufd));
}

export function ioasAlloc(t: CaseContext, iommufd: number): number {
  return t.ok('IOMMU_IOAS_ALLOC', () => wrappedIoasAlloc(t.kernel, iommufd));
}

export function destroy(t: CaseContext, iommufd: number, id: number): void {
  t.ok(`IOMMU_DESTROY ${id}`, () => iommuDestroy(t.kernel, iommufd, id));
}

/** VFIO_DEVICE_ATTACH_IOMMUFD_PT as a call; returns the pt_id the kernel wrote back (the HWPT used). */
export function attachCall(t: CaseContext, deviceFd: number, ptId: number, flags = 0): () => number {
  return () => rawIoctl(t.kernel, deviceFd, V.VFIO_DEVICE_ATTACH_IOMMUFD_PT, V.VfioDeviceAttachIommufdPt, { pt_id: ptId, flags },
    { declaredSize: V.VfioDeviceAttachIommufdPt.endOf('pt_id') }).out.pt_id;
}

/** The normal attach (full struct, as the typed wrapper sends it); returns the HWPT used. */
export function attach(t: CaseContext, deviceFd: number, ptId: number): number {
  return t.ok(`VFIO_DEVICE_ATTACH_IOMMUFD_PT ${ptId}`, () => deviceAttachIommufdPt(t.kernel, deviceFd, ptId));
}

export function detach(t: CaseContext, deviceFd: number): void {
  t.ok('VFIO_DEVICE_DETACH_IOMMUFD_PT', () => deviceDetachIommufdPt(t.kernel, deviceFd));
}

/** A device cdev and an iommufd, the device bound: the fixture most cases start from. */
export interface BoundDevice {
  readonly deviceFd: number;
  readonly iommufd: number;
  readonly devId: number;
}

export function openBound(t: CaseContext): BoundDevice {
  const deviceFd = t.openDevice();
  const iommufd = t.openIommufd();
  return { deviceFd, iommufd, devId: bind(t, deviceFd, iommufd) };
}

/** Bound and attached to a fresh IOAS. */
export interface AttachedDevice extends BoundDevice {
  readonly ioasId: number;
  /** The HWPT the kernel chose for the IOAS (written back in pt_id). */
  readonly hwptId: number;
}

export function openAttached(t: CaseContext): AttachedDevice {
  const bound = openBound(t);
  const ioasId = ioasAlloc(t, bound.iommufd);
  const hwptId = attach(t, bound.deviceFd, ioasId);
  return { ...bound, ioasId, hwptId };
}

export interface MapRequest {
  readonly userVa: UserVa;
  readonly length: bigint;
  /** A fixed IOVA, or omitted to let the kernel choose. */
  readonly iova?: bigint;
  readonly flags?: number;
}

/** IOMMU_IOAS_MAP as a call (for t.expect); returns the IOVA used. */
export function mapCall(t: CaseContext, iommufd: number, ioasId: number, req: MapRequest): () => bigint {
  return () => {
    let flags = req.flags ?? MAP_RW;
    if (req.iova !== undefined) flags |= I.IOMMU_IOAS_MAP_FIXED_IOVA;
    return rawIoctl(t.kernel, iommufd, I.IOMMU_IOAS_MAP, I.IommuIoasMap, {
      flags, ioas_id: ioasId, user_va: req.userVa, length: req.length, iova: req.iova ?? 0n,
    }).out.iova;
  };
}

/** The normal read/write map through the typed wrapper; returns the IOVA used. */
export function map(t: CaseContext, iommufd: number, ioasId: number, req: MapRequest): bigint {
  const where = req.iova === undefined ? 'a kernel-chosen IOVA' : `IOVA 0x${req.iova.toString(16)}`;
  if (req.flags !== undefined) return t.ok(`IOMMU_IOAS_MAP ${req.length} bytes at ${where}`, mapCall(t, iommufd, ioasId, req));
  return t.ok(`IOMMU_IOAS_MAP ${req.length} bytes at ${where}`, () => ioasMap(t.kernel, iommufd, {
    ioasId, userVa: req.userVa, length: req.length, readable: true, writable: true, ...(req.iova === undefined ? {} : { iova: iova(req.iova) }),
  }));
}

/** Maps `pages` fresh anonymous pages (or a given mapping); returns the memory and the IOVA. */
export function mapPages(t: CaseContext, iommufd: number, ioasId: number, pages: number, iova?: bigint): { memory: Mapping; iova: bigint } {
  const length = t.page * BigInt(pages);
  const memory = t.anonymousMemory(length);
  return { memory, iova: map(t, iommufd, ioasId, { userVa: memory.address, length, ...(iova === undefined ? {} : { iova }) }) };
}

export function unmapCall(t: CaseContext, iommufd: number, ioasId: number, iova: bigint, length: bigint): () => bigint {
  return () => rawIoctl(t.kernel, iommufd, I.IOMMU_IOAS_UNMAP, I.IommuIoasUnmap, { ioas_id: ioasId, iova, length }).out.length;
}

export function unmapAllCall(t: CaseContext, iommufd: number, ioasId: number): () => bigint {
  return unmapCall(t, iommufd, ioasId, 0n, U64_MAX);
}

export interface PhysicalRun {
  readonly phys: bigint;
  readonly length: bigint;
}

export interface GetPaRequest {
  readonly iova: bigint;
  /** The cap on the answer's length (must be non-zero to succeed). */
  readonly length: bigint;
  readonly flags?: number;
  readonly reserved?: number;
}

export function getPaCall(t: CaseContext, iommufd: number, ioasId: number, req: GetPaRequest): () => PhysicalRun {
  return () => {
    const { out } = rawIoctl(t.kernel, iommufd, I.IOMMU_IOAS_NOIOMMU_GET_PA, I.IommuIoasNoiommuGetPa, {
      flags: req.flags ?? 0, ioas_id: ioasId, __reserved: req.reserved ?? 0, iova: req.iova, length: req.length,
    });
    return { phys: out.out_phys, length: out.length };
  };
}

export interface IovaRangesAnswer {
  readonly ranges: { start: bigint; last: bigint }[];
  /** num_iovas as the kernel wrote it back: the number of ranges that exist. */
  readonly count: number;
  readonly alignment: bigint;
}

/** IOMMU_IOAS_IOVA_RANGES with room for `capacity` ranges, as a call. */
export function iovaRangesCall(t: CaseContext, iommufd: number, ioasId: number, capacity = 16): () => IovaRangesAnswer {
  return () => {
    const entry = I.IommuIovaRange.size;
    const memory = t.anonymousMemory(BigInt(Math.max(1, Math.ceil((capacity * entry) / t.pageSize)) * t.pageSize));
    const { out } = rawIoctl(t.kernel, iommufd, I.IOMMU_IOAS_IOVA_RANGES, I.IommuIoasIovaRanges, {
      ioas_id: ioasId, num_iovas: capacity, allowed_iovas: memory.address,
    });
    const bytes = new Uint8Array(memory.buffer!);
    const ranges = [];
    for (let i = 0; i < Math.min(out.num_iovas, capacity); i++) ranges.push(I.IommuIovaRange.decode(bytes, i * entry));
    return { ranges, count: out.num_iovas, alignment: out.out_iova_alignment };
  };
}

export function deviceInfo(t: CaseContext, deviceFd: number): { argsz: number; flags: number; num_regions: number; num_irqs: number } {
  return t.ok('VFIO_DEVICE_GET_INFO', () => rawIoctl(t.kernel, deviceFd, V.VFIO_DEVICE_GET_INFO, V.VfioDeviceInfo, {}).out);
}

export function regionInfo(t: CaseContext, deviceFd: number, index: number): { argsz: number; flags: number; size: bigint; offset: bigint; cap_offset: number } {
  return t.ok(`VFIO_DEVICE_GET_REGION_INFO ${index}`, () =>
    rawIoctl(t.kernel, deviceFd, V.VFIO_DEVICE_GET_REGION_INFO, V.VfioRegionInfo, { index }).out);
}

export function irqInfo(t: CaseContext, deviceFd: number, index: number): { flags: number; count: number } {
  return t.ok(`VFIO_DEVICE_GET_IRQ_INFO ${index}`, () =>
    rawIoctl(t.kernel, deviceFd, V.VFIO_DEVICE_GET_IRQ_INFO, V.VfioIrqInfo, { index }).out);
}

/** Reads `width` bytes (1, 2 or 4) of PCI config space through the device fd. */
export function configRead(t: CaseContext, deviceFd: number, offset: number, width: 1 | 2 | 4): number {
  const buf = Buffer.alloc(width);
  const n = t.ok(`config space read at 0x${offset.toString(16)}`, () =>
    t.kernel.pread(deviceFd, buf, regionOffset(V.VFIO_PCI_CONFIG_REGION_INDEX) + BigInt(offset)));
  t.equal(n, width, `bytes read from config space at 0x${offset.toString(16)}`);
  return width === 1 ? buf.readUInt8(0) : width === 2 ? buf.readUInt16LE(0) : buf.readUInt32LE(0);
}

export function configWrite(t: CaseContext, deviceFd: number, offset: number, width: 1 | 2 | 4, value: number): void {
  const buf = Buffer.alloc(width);
  if (width === 1) buf.writeUInt8(value);
  else if (width === 2) buf.writeUInt16LE(value);
  else buf.writeUInt32LE(value);
  const n = t.ok(`config space write at 0x${offset.toString(16)}`, () =>
    t.kernel.pwrite(deviceFd, buf, regionOffset(V.VFIO_PCI_CONFIG_REGION_INDEX) + BigInt(offset)));
  t.equal(n, width, `bytes written to config space at 0x${offset.toString(16)}`);
}

/**
 * The physical address of the byte at `va` from /proc/self/pagemap (bit 63 present, bits 0-54 the
 * frame number; the frame reads as 0 without CAP_SYS_ADMIN). Null when the page is not present.
 */
export function pagemapPhys(t: CaseContext, va: bigint): bigint | null {
  const fd = t.open('/proc/self/pagemap', 0);
  const entry = Buffer.alloc(8);
  const page = t.page;
  t.ok('pread /proc/self/pagemap', () => t.kernel.pread(fd, entry, (va / page) * 8n));
  t.closeNow(fd);
  const e = entry.readBigUInt64LE(0);
  if (!(e >> 63n)) return null;
  const pfn = e & ((1n << 55n) - 1n);
  return pfn * page + (va % page);
}

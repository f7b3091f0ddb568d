/**
 * The ordinary steps cases and fixtures are built from (bind, allocate an IOAS, attach, map, read
 * device info, config space), each one call with the struct exactly as the uapi defines it. A
 * step that fails fails the case with the errno, so a case reads as the sequence it tests; the
 * calls whose outcome a case checks come from calls.ts.
 */
import type { UserVa } from '../sys/kernel';
import * as I from '../uapi/iommufd';
import * as V from '../uapi/vfio';
import { call } from './calls';
import { on, type FixtureValue } from './struct-call';
import type { CaseContext } from './context';
import { ioasAlloc as wrappedIoasAlloc, ioasMap, iommuDestroy } from '../ioctl/iommufd-ioctls';
import { deviceAttachIommufdPt, deviceBindIommufd, deviceDetachIommufdPt } from '../ioctl/device-ioctls';
import { iova } from '../sys/addresses';

/** VFIO_PCI_INDEX_TO_OFFSET: where region `index` starts in the device fd's file offsets. */
export function regionOffset(index: number): bigint {
  return BigInt(index) << 40n;
}

export function bind(t: CaseContext, deviceFd: number, iommufd: number): number {
  return t.ok('VFIO_DEVICE_BIND_IOMMUFD', () => deviceBindIommufd(t.kernel, deviceFd, iommufd));
}

export function ioasAlloc(t: CaseContext, iommufd: number): number {
  return t.ok('IOMMU_IOAS_ALLOC', () => wrappedIoasAlloc(t.kernel, iommufd));
}

export function destroy(t: CaseContext, iommufd: number, id: number): void {
  t.ok(`IOMMU_DESTROY ${id}`, () => iommuDestroy(t.kernel, iommufd, id));
}

/** The normal attach (full struct, as the typed wrapper sends it); returns the HWPT used. */
export function attach(t: CaseContext, deviceFd: number, ptId: number): number {
  return t.ok(`VFIO_DEVICE_ATTACH_IOMMUFD_PT ${ptId}`, () => deviceAttachIommufdPt(t.kernel, deviceFd, ptId));
}

export function detach(t: CaseContext, deviceFd: number): void {
  t.ok('VFIO_DEVICE_DETACH_IOMMUFD_PT', () => deviceDetachIommufdPt(t.kernel, deviceFd));
}

export interface MapRequest {
  readonly userVa: UserVa;
  readonly length: bigint;
  /** A fixed IOVA, or omitted to let the kernel choose. */
  readonly iova?: bigint;
}

/** The normal read/write map through the typed wrapper; returns the IOVA used. */
export function map(t: CaseContext, iommufd: number, ioasId: number, req: MapRequest): bigint {
  const where = req.iova === undefined ? 'a kernel-chosen IOVA' : `IOVA 0x${req.iova.toString(16)}`;
  return t.ok(`IOMMU_IOAS_MAP ${req.length} bytes at ${where}`, () =>
    ioasMap(t.kernel, iommufd, {
      ioasId,
      userVa: req.userVa,
      length: req.length,
      readable: true,
      writable: true,
      ...(req.iova === undefined ? {} : { iova: iova(req.iova) }),
    }),
  );
}

export interface IovaRangesAnswer {
  readonly ranges: { start: bigint; last: bigint }[];
  /** num_iovas as the kernel wrote it back: the number of ranges that exist. */
  readonly count: number;
  readonly alignment: bigint;
}

/** IOMMU_IOAS_IOVA_RANGES of the fixture's IOAS with room for `capacity` ranges. */
export function iovaRanges(f: FixtureValue & { readonly iommufd: number; readonly ioasId: number }, capacity = 16): IovaRangesAnswer {
  const { t } = f;
  const entry = I.IommuIovaRange.size;
  const memory = t.anonymousMemory(BigInt(Math.max(1, Math.ceil((capacity * entry) / t.pageSize)) * t.pageSize));
  const out = call.iovaRanges(f, { num_iovas: capacity, allowed_iovas: memory.address });
  const bytes = new Uint8Array(memory.buffer!);
  const ranges = [];
  for (let i = 0; i < Math.min(out.num_iovas, capacity); i++) ranges.push(I.IommuIovaRange.decode(bytes, i * entry));
  return { ranges, count: out.num_iovas, alignment: out.out_iova_alignment };
}

export function deviceInfo(t: CaseContext, deviceFd: number) {
  return t.ok('VFIO_DEVICE_GET_INFO', () => call.deviceInfo(on(t, { deviceFd })));
}

export function regionInfo(t: CaseContext, deviceFd: number, index: number) {
  return t.ok(`VFIO_DEVICE_GET_REGION_INFO ${index}`, () => call.regionInfo(on(t, { deviceFd }), { index }));
}

export function irqInfo(t: CaseContext, deviceFd: number, index: number) {
  return t.ok(`VFIO_DEVICE_GET_IRQ_INFO ${index}`, () => call.irqInfo(on(t, { deviceFd }), { index }));
}

/** Reads `width` bytes (1, 2 or 4) of PCI config space through the device fd. */
export function configRead(t: CaseContext, deviceFd: number, offset: number, width: 1 | 2 | 4): number {
  const buf = Buffer.alloc(width);
  const n = t.ok(`config space read at 0x${offset.toString(16)}`, () =>
    t.kernel.pread(deviceFd, buf, regionOffset(V.VFIO_PCI_CONFIG_REGION_INDEX) + BigInt(offset)),
  );
  t.equal(n, width, `bytes read from config space at 0x${offset.toString(16)}`);
  return width === 1 ? buf.readUInt8(0) : width === 2 ? buf.readUInt16LE(0) : buf.readUInt32LE(0);
}

export function configWrite(t: CaseContext, deviceFd: number, offset: number, width: 1 | 2 | 4, value: number): void {
  const buf = Buffer.alloc(width);
  if (width === 1) buf.writeUInt8(value);
  else if (width === 2) buf.writeUInt16LE(value);
  else buf.writeUInt32LE(value);
  const n = t.ok(`config space write at 0x${offset.toString(16)}`, () =>
    t.kernel.pwrite(deviceFd, buf, regionOffset(V.VFIO_PCI_CONFIG_REGION_INDEX) + BigInt(offset)),
  );
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

/** A VFIO_DEVICE_SET_IRQS request: the header's fields and the data[] that follows it. */
export interface IrqSet {
  readonly flags: number;
  readonly index: number;
  readonly start: number;
  readonly count: number;
  /** s32 eventfds or u8 bools. */
  readonly data?: Uint8Array;
  readonly declaredSize?: number;
}

export function setIrqs(f: FixtureValue & { readonly deviceFd: number }, s: IrqSet): void {
  const { data = new Uint8Array(0), declaredSize, ...header } = s;
  call.setIrqs(f, header, { trailer: data, ...(declaredSize === undefined ? {} : { declaredSize }) });
}

/** The data[] of a DATA_EVENTFD request. */
export function eventfds(...fds: number[]): Uint8Array {
  const b = Buffer.alloc(4 * fds.length);
  fds.forEach((fd, i) => b.writeInt32LE(fd, 4 * i));
  return b;
}

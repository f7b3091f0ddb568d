/**
 * One raw call per ioctl the cases issue, made from the uapi tables: the request number and the
 * struct layout, the fixture fd it goes to, and the few defaults a well-formed call has that the
 * fixture does not give (read/write access for a map, the short argsz VFIO's attach reads).
 * `call.getPa(f, { length: 0n })` sends GET_PA for the fixture's mapping with length 0 and
 * returns the struct as the kernel wrote it back; a failure is the kernel's errno, unchanged.
 */
import * as I from '../uapi/iommufd';
import * as V from '../uapi/vfio';
import { structCall, type FixtureValue } from './struct-call';

/** Read and write access: what a DMA buffer is normally mapped with. */
export const MAP_RW = I.IOMMU_IOAS_MAP_READABLE | I.IOMMU_IOAS_MAP_WRITEABLE;
/** MAP_RW at the IOVA the caller gives. */
export const MAP_RW_FIXED = MAP_RW | I.IOMMU_IOAS_MAP_FIXED_IOVA;

export const call = {
  // ---- iommufd ----
  destroy: structCall({ request: I.IOMMU_DESTROY, layout: I.IommuDestroy, fd: 'iommufd' }),
  ioasAlloc: structCall({ request: I.IOMMU_IOAS_ALLOC, layout: I.IommuIoasAlloc, fd: 'iommufd' }),
  iovaRanges: structCall({ request: I.IOMMU_IOAS_IOVA_RANGES, layout: I.IommuIoasIovaRanges, fd: 'iommufd' }),
  allowIovas: structCall({ request: I.IOMMU_IOAS_ALLOW_IOVAS, layout: I.IommuIoasAllowIovas, fd: 'iommufd' }),
  map: structCall({ request: I.IOMMU_IOAS_MAP, layout: I.IommuIoasMap, fd: 'iommufd', defaults: { flags: MAP_RW_FIXED } }),
  mapFile: structCall({ request: I.IOMMU_IOAS_MAP_FILE, layout: I.IommuIoasMapFile, fd: 'iommufd', defaults: { flags: MAP_RW_FIXED } }),
  copy: structCall({ request: I.IOMMU_IOAS_COPY, layout: I.IommuIoasCopy, fd: 'iommufd', defaults: { flags: MAP_RW_FIXED } }),
  unmap: structCall({ request: I.IOMMU_IOAS_UNMAP, layout: I.IommuIoasUnmap, fd: 'iommufd' }),
  getPa: structCall({ request: I.IOMMU_IOAS_NOIOMMU_GET_PA, layout: I.IommuIoasNoiommuGetPa, fd: 'iommufd' }),
  option: structCall({ request: I.IOMMU_OPTION, layout: I.IommuOption, fd: 'iommufd' }),
  vfioIoas: structCall({ request: I.IOMMU_VFIO_IOAS, layout: I.IommuVfioIoas, fd: 'iommufd' }),
  /** HWPT_ALLOC for the fixture's device on the fixture's IOAS. */
  hwptAlloc: structCall({ request: I.IOMMU_HWPT_ALLOC, layout: I.IommuHwptAlloc, fd: 'iommufd', fixtureNames: { pt_id: 'ioasId' } }),
  /** GET_HW_INFO for the fixture's device, with a page to write the driver's data into. */
  hwInfo: structCall({
    request: I.IOMMU_GET_HW_INFO,
    layout: I.IommuHwInfo,
    fd: 'iommufd',
    defaults: (f: FixtureValue & { iommufd: number }) => ({ data_len: 256, data_uptr: f.t.anonymousMemory(f.t.page).address }),
  }),
  // ---- the legacy container ioctls (on a container, or on an iommufd that answers them) ----
  dmaMap: structCall({
    request: V.VFIO_IOMMU_MAP_DMA,
    layout: V.VfioIommuType1DmaMap,
    fd: 'iommufd',
    defaults: { flags: V.VFIO_DMA_MAP_FLAG_READ | V.VFIO_DMA_MAP_FLAG_WRITE },
  }),
  dmaUnmap: structCall({ request: V.VFIO_IOMMU_UNMAP_DMA, layout: V.VfioIommuType1DmaUnmap, fd: 'iommufd' }),
  iommuInfo: structCall({ request: V.VFIO_IOMMU_GET_INFO, layout: V.VfioIommuType1Info, fd: 'iommufd' }),
  // ---- the device cdev ----
  bind: structCall({ request: V.VFIO_DEVICE_BIND_IOMMUFD, layout: V.VfioDeviceBindIommufd, fd: 'deviceFd' }),
  /** ATTACH_IOMMUFD_PT as most userspace sends it: argsz up to pt_id (no PASID). */
  attach: structCall({
    request: V.VFIO_DEVICE_ATTACH_IOMMUFD_PT,
    layout: V.VfioDeviceAttachIommufdPt,
    fd: 'deviceFd',
    options: { declaredSize: V.VfioDeviceAttachIommufdPt.endOf('pt_id') },
  }),
  detach: structCall({
    request: V.VFIO_DEVICE_DETACH_IOMMUFD_PT,
    layout: V.VfioDeviceDetachIommufdPt,
    fd: 'deviceFd',
    options: { declaredSize: V.VfioDeviceDetachIommufdPt.endOf('flags') },
  }),
  deviceInfo: structCall({ request: V.VFIO_DEVICE_GET_INFO, layout: V.VfioDeviceInfo, fd: 'deviceFd' }),
  regionInfo: structCall({ request: V.VFIO_DEVICE_GET_REGION_INFO, layout: V.VfioRegionInfo, fd: 'deviceFd' }),
  irqInfo: structCall({ request: V.VFIO_DEVICE_GET_IRQ_INFO, layout: V.VfioIrqInfo, fd: 'deviceFd' }),
  /** SET_IRQS; the data[] after the header goes in `options.trailer`. */
  setIrqs: structCall({ request: V.VFIO_DEVICE_SET_IRQS, layout: V.VfioIrqSet, fd: 'deviceFd' }),
  feature: structCall({ request: V.VFIO_DEVICE_FEATURE, layout: V.VfioDeviceFeature, fd: 'deviceFd' }),
  // ---- the legacy group ----
  groupStatus: structCall({ request: V.VFIO_GROUP_GET_STATUS, layout: V.VfioGroupStatus, fd: 'groupFd' }),
};

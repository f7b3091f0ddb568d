/**
 * VFIO uapi of Linux 7.3 (include/uapi/linux/vfio.h) that a driver library needs: request numbers
 * (per kind of fd, since VFIO reuses numbers), flags, region/IRQ indexes and struct layouts.
 * Data only; checked against the real header by test/uapi/layout.test.ts.
 */
import { s32, struct, u16, u32, u64, u8 } from './codec';
import { IO, IOCTL_TYPE_SEMICOLON, defineIoctl } from './requests';

export const VFIO_TYPE = IOCTL_TYPE_SEMICOLON;
export const VFIO_BASE = 100;
export const VFIO_API_VERSION = 0;

/** Container extensions / IOMMU types (VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU). */
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_SPAPR_TCE_IOMMU = 2;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_DMA_CC_IOMMU = 4;
export const VFIO_EEH = 5;
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
export const VFIO_NOIOMMU_IOMMU = 8;
export const VFIO_UNMAP_ALL = 9;
export const VFIO_UPDATE_VADDR = 10;

const nr = (n: number) => IO(VFIO_TYPE, VFIO_BASE + n);
// Container fd (/dev/vfio/vfio)
export const VFIO_GET_API_VERSION = defineIoctl('VFIO_GET_API_VERSION', nr(0), 'vfio-container');
export const VFIO_CHECK_EXTENSION = defineIoctl('VFIO_CHECK_EXTENSION', nr(1), 'vfio-container');
export const VFIO_SET_IOMMU = defineIoctl('VFIO_SET_IOMMU', nr(2), 'vfio-container');
export const VFIO_IOMMU_GET_INFO = defineIoctl('VFIO_IOMMU_GET_INFO', nr(12), 'vfio-container');
export const VFIO_IOMMU_MAP_DMA = defineIoctl('VFIO_IOMMU_MAP_DMA', nr(13), 'vfio-container');
export const VFIO_IOMMU_UNMAP_DMA = defineIoctl('VFIO_IOMMU_UNMAP_DMA', nr(14), 'vfio-container');
export const VFIO_IOMMU_ENABLE = defineIoctl('VFIO_IOMMU_ENABLE', nr(15), 'vfio-container');
export const VFIO_IOMMU_DISABLE = defineIoctl('VFIO_IOMMU_DISABLE', nr(16), 'vfio-container');
// Group fd (/dev/vfio/N, /dev/vfio/noiommu-N)
export const VFIO_GROUP_GET_STATUS = defineIoctl('VFIO_GROUP_GET_STATUS', nr(3), 'vfio-group');
export const VFIO_GROUP_SET_CONTAINER = defineIoctl('VFIO_GROUP_SET_CONTAINER', nr(4), 'vfio-group');
export const VFIO_GROUP_UNSET_CONTAINER = defineIoctl('VFIO_GROUP_UNSET_CONTAINER', nr(5), 'vfio-group');
export const VFIO_GROUP_GET_DEVICE_FD = defineIoctl('VFIO_GROUP_GET_DEVICE_FD', nr(6), 'vfio-group');
// Device fd (cdev or from the group)
export const VFIO_DEVICE_GET_INFO = defineIoctl('VFIO_DEVICE_GET_INFO', nr(7), 'vfio-device');
export const VFIO_DEVICE_GET_REGION_INFO = defineIoctl('VFIO_DEVICE_GET_REGION_INFO', nr(8), 'vfio-device');
export const VFIO_DEVICE_GET_IRQ_INFO = defineIoctl('VFIO_DEVICE_GET_IRQ_INFO', nr(9), 'vfio-device');
export const VFIO_DEVICE_SET_IRQS = defineIoctl('VFIO_DEVICE_SET_IRQS', nr(10), 'vfio-device');
export const VFIO_DEVICE_RESET = defineIoctl('VFIO_DEVICE_RESET', nr(11), 'vfio-device');
export const VFIO_DEVICE_GET_PCI_HOT_RESET_INFO = defineIoctl('VFIO_DEVICE_GET_PCI_HOT_RESET_INFO', nr(12), 'vfio-device');
export const VFIO_DEVICE_PCI_HOT_RESET = defineIoctl('VFIO_DEVICE_PCI_HOT_RESET', nr(13), 'vfio-device');
export const VFIO_DEVICE_IOEVENTFD = defineIoctl('VFIO_DEVICE_IOEVENTFD', nr(16), 'vfio-device');
export const VFIO_DEVICE_FEATURE = defineIoctl('VFIO_DEVICE_FEATURE', nr(17), 'vfio-device');
export const VFIO_DEVICE_BIND_IOMMUFD = defineIoctl('VFIO_DEVICE_BIND_IOMMUFD', nr(18), 'vfio-device');
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT = defineIoctl('VFIO_DEVICE_ATTACH_IOMMUFD_PT', nr(19), 'vfio-device');
export const VFIO_DEVICE_DETACH_IOMMUFD_PT = defineIoctl('VFIO_DEVICE_DETACH_IOMMUFD_PT', nr(20), 'vfio-device');

export const VfioInfoCapHeader = struct('vfio_info_cap_header', { id: u16, version: u16, next: u32 });

export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;
export const VfioGroupStatus = struct('vfio_group_status', { argsz: u32, flags: u32 });

export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
export const VFIO_DEVICE_FLAGS_PLATFORM = 1 << 2;
export const VFIO_DEVICE_FLAGS_AMBA = 1 << 3;
export const VFIO_DEVICE_FLAGS_CCW = 1 << 4;
export const VFIO_DEVICE_FLAGS_AP = 1 << 5;
export const VFIO_DEVICE_FLAGS_FSL_MC = 1 << 6;
export const VFIO_DEVICE_FLAGS_CAPS = 1 << 7;
export const VFIO_DEVICE_FLAGS_CDX = 1 << 8;
export const VfioDeviceInfo = struct('vfio_device_info', {
  argsz: u32,
  flags: u32,
  num_regions: u32,
  num_irqs: u32,
  cap_offset: u32,
  pad: u32,
});
export const VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP = 5;

export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
export const VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;
export const VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;
export const VfioRegionInfo = struct('vfio_region_info', {
  argsz: u32,
  flags: u32,
  index: u32,
  cap_offset: u32,
  size: u64,
  offset: u64,
});
export const VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1;
export const VFIO_REGION_INFO_CAP_TYPE = 2;
export const VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3;
export const VfioRegionSparseMmapArea = struct('vfio_region_sparse_mmap_area', { offset: u64, size: u64 });
/** Header of the sparse-mmap capability; `nr_areas` vfio_region_sparse_mmap_area follow it. */
export const VfioRegionInfoCapSparseMmap = struct('vfio_region_info_cap_sparse_mmap', {
  id: u16,
  version: u16,
  next: u32,
  nr_areas: u32,
  reserved: u32,
});
export const VfioRegionInfoCapType = struct('vfio_region_info_cap_type', {
  id: u16,
  version: u16,
  next: u32,
  type: u32,
  subtype: u32,
});
export const VFIO_REGION_TYPE_PCI_VENDOR_TYPE = 0x8000_0000;
export const VFIO_REGION_TYPE_GFX = 1;
export const VFIO_REGION_TYPE_CCW = 2;

export const VFIO_PCI_BAR0_REGION_INDEX = 0;
export const VFIO_PCI_BAR5_REGION_INDEX = 5;
export const VFIO_PCI_ROM_REGION_INDEX = 6;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
export const VFIO_PCI_VGA_REGION_INDEX = 8;
export const VFIO_PCI_NUM_REGIONS = 9;

export const VFIO_PCI_INTX_IRQ_INDEX = 0;
export const VFIO_PCI_MSI_IRQ_INDEX = 1;
export const VFIO_PCI_MSIX_IRQ_INDEX = 2;
export const VFIO_PCI_ERR_IRQ_INDEX = 3;
export const VFIO_PCI_REQ_IRQ_INDEX = 4;
export const VFIO_PCI_NUM_IRQS = 5;

export const VFIO_IRQ_INFO_EVENTFD = 1 << 0;
export const VFIO_IRQ_INFO_MASKABLE = 1 << 1;
export const VFIO_IRQ_INFO_AUTOMASKED = 1 << 2;
export const VFIO_IRQ_INFO_NORESIZE = 1 << 3;
export const VfioIrqInfo = struct('vfio_irq_info', { argsz: u32, flags: u32, index: u32, count: u32 });

export const VFIO_IRQ_SET_DATA_NONE = 1 << 0;
export const VFIO_IRQ_SET_DATA_BOOL = 1 << 1;
export const VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2;
export const VFIO_IRQ_SET_ACTION_MASK = 1 << 3;
export const VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4;
export const VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5;
export const VFIO_IRQ_SET_DATA_TYPE_MASK = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD;
export const VFIO_IRQ_SET_ACTION_TYPE_MASK = VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER;
/** Header of vfio_irq_set; `data[]` (u8 bools or s32 eventfds) follows at offset 20. */
export const VfioIrqSet = struct('vfio_irq_set', { argsz: u32, flags: u32, index: u32, start: u32, count: u32 });

export const VFIO_PCI_DEVID_OWNED = 0;
export const VFIO_PCI_DEVID_NOT_OWNED = -1;
/** `group_id` and `devid` share the first u32 (a union in the header). */
export const VfioPciDependentDevice = struct('vfio_pci_dependent_device', { group_id: u32, segment: u16, bus: u8, devfn: u8 });
export const VFIO_PCI_HOT_RESET_FLAG_DEV_ID = 1 << 0;
export const VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED = 1 << 1;
export const VfioPciHotResetInfo = struct('vfio_pci_hot_reset_info', { argsz: u32, flags: u32, count: u32 });
export const VfioPciHotReset = struct('vfio_pci_hot_reset', { argsz: u32, flags: u32, count: u32 });

export const VfioDeviceIoeventfd = struct('vfio_device_ioeventfd', {
  argsz: u32,
  flags: u32,
  offset: u64,
  data: u64,
  fd: s32,
  reserved: u32,
});

export const VFIO_DEVICE_FEATURE_MASK = 0xffff;
export const VFIO_DEVICE_FEATURE_GET = 1 << 16;
export const VFIO_DEVICE_FEATURE_SET = 1 << 17;
export const VFIO_DEVICE_FEATURE_PROBE = 1 << 18;
export const VFIO_DEVICE_FEATURE_PCI_VF_TOKEN = 0;
export const VFIO_DEVICE_FEATURE_MIGRATION = 1;
export const VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE = 2;
export const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY = 3;
export const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP = 4;
export const VFIO_DEVICE_FEATURE_LOW_POWER_EXIT = 5;
export const VFIO_DEVICE_FEATURE_DMA_LOGGING_START = 6;
export const VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP = 7;
export const VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT = 8;
export const VFIO_DEVICE_FEATURE_MIG_DATA_SIZE = 9;
export const VFIO_DEVICE_FEATURE_BUS_MASTER = 10;
export const VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 = 12;

/** vfio_device_ioeventfd.flags: the access size (1, 2, 4 or 8 bytes) in the low bits. */
export const VFIO_DEVICE_IOEVENTFD_SIZE_MASK = 0xf;
/** Header of vfio_device_feature; `data[]` follows at offset 8. */
export const VfioDeviceFeature = struct('vfio_device_feature', { argsz: u32, flags: u32 });
export const VfioDeviceFeatureBusMaster = struct('vfio_device_feature_bus_master', { op: u32 });

export const VFIO_DEVICE_BIND_FLAG_TOKEN = 1 << 0;
export const VfioDeviceBindIommufd = struct('vfio_device_bind_iommufd', {
  argsz: u32,
  flags: u32,
  iommufd: s32,
  out_devid: u32,
  token_uuid_ptr: u64,
});
export const VFIO_DEVICE_ATTACH_PASID = 1 << 0;
export const VfioDeviceAttachIommufdPt = struct('vfio_device_attach_iommufd_pt', { argsz: u32, flags: u32, pt_id: u32, pasid: u32 });
export const VFIO_DEVICE_DETACH_PASID = 1 << 0;
export const VfioDeviceDetachIommufdPt = struct('vfio_device_detach_iommufd_pt', { argsz: u32, flags: u32, pasid: u32 });

export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;
export const VfioIommuType1Info = struct('vfio_iommu_type1_info', { argsz: u32, flags: u32, iova_pgsizes: u64, cap_offset: u32, pad: u32 });
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;
export const VfioIovaRange = struct('vfio_iova_range', { start: u64, end: u64 });
export const VfioIommuType1InfoCapIovaRange = struct('vfio_iommu_type1_info_cap_iova_range', {
  id: u16,
  version: u16,
  next: u32,
  nr_iovas: u32,
  reserved: u32,
});
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
export const VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;
export const VfioIommuType1DmaMap = struct('vfio_iommu_type1_dma_map', { argsz: u32, flags: u32, vaddr: u64, iova: u64, size: u64 });
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
export const VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;
export const VfioIommuType1DmaUnmap = struct('vfio_iommu_type1_dma_unmap', { argsz: u32, flags: u32, iova: u64, size: u64 });

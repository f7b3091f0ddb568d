/**
 * iommufd uapi of Linux 7.3 (include/uapi/linux/iommufd.h): request numbers, flags and struct
 * layouts. Data only; checked against the real header by test/uapi/layout.test.ts.
 */
import { array, s32, struct, u16, u32, u64, u8 } from './codec';
import { IO, IOCTL_TYPE_SEMICOLON, defineIoctl } from './requests';

export const IOMMUFD_TYPE = IOCTL_TYPE_SEMICOLON;
export const IOMMUFD_CMD = {
  DESTROY: 0x80,
  IOAS_ALLOC: 0x81,
  IOAS_ALLOW_IOVAS: 0x82,
  IOAS_COPY: 0x83,
  IOAS_IOVA_RANGES: 0x84,
  IOAS_MAP: 0x85,
  IOAS_UNMAP: 0x86,
  OPTION: 0x87,
  VFIO_IOAS: 0x88,
  HWPT_ALLOC: 0x89,
  GET_HW_INFO: 0x8a,
  HWPT_SET_DIRTY_TRACKING: 0x8b,
  HWPT_GET_DIRTY_BITMAP: 0x8c,
  HWPT_INVALIDATE: 0x8d,
  FAULT_QUEUE_ALLOC: 0x8e,
  IOAS_MAP_FILE: 0x8f,
  VIOMMU_ALLOC: 0x90,
  VDEVICE_ALLOC: 0x91,
  IOAS_CHANGE_PROCESS: 0x92,
  VEVENTQ_ALLOC: 0x93,
  HW_QUEUE_ALLOC: 0x94,
  IOAS_NOIOMMU_GET_PA: 0x95,
} as const;

const req = (name: string, cmd: number) => defineIoctl(name, IO(IOMMUFD_TYPE, cmd), 'iommufd');
export const IOMMU_DESTROY = req('IOMMU_DESTROY', IOMMUFD_CMD.DESTROY);
export const IOMMU_IOAS_ALLOC = req('IOMMU_IOAS_ALLOC', IOMMUFD_CMD.IOAS_ALLOC);
export const IOMMU_IOAS_ALLOW_IOVAS = req('IOMMU_IOAS_ALLOW_IOVAS', IOMMUFD_CMD.IOAS_ALLOW_IOVAS);
export const IOMMU_IOAS_COPY = req('IOMMU_IOAS_COPY', IOMMUFD_CMD.IOAS_COPY);
export const IOMMU_IOAS_IOVA_RANGES = req('IOMMU_IOAS_IOVA_RANGES', IOMMUFD_CMD.IOAS_IOVA_RANGES);
export const IOMMU_IOAS_MAP = req('IOMMU_IOAS_MAP', IOMMUFD_CMD.IOAS_MAP);
export const IOMMU_IOAS_UNMAP = req('IOMMU_IOAS_UNMAP', IOMMUFD_CMD.IOAS_UNMAP);
export const IOMMU_OPTION = req('IOMMU_OPTION', IOMMUFD_CMD.OPTION);
export const IOMMU_VFIO_IOAS = req('IOMMU_VFIO_IOAS', IOMMUFD_CMD.VFIO_IOAS);
export const IOMMU_HWPT_ALLOC = req('IOMMU_HWPT_ALLOC', IOMMUFD_CMD.HWPT_ALLOC);
export const IOMMU_GET_HW_INFO = req('IOMMU_GET_HW_INFO', IOMMUFD_CMD.GET_HW_INFO);
export const IOMMU_HWPT_SET_DIRTY_TRACKING = req('IOMMU_HWPT_SET_DIRTY_TRACKING', IOMMUFD_CMD.HWPT_SET_DIRTY_TRACKING);
export const IOMMU_HWPT_GET_DIRTY_BITMAP = req('IOMMU_HWPT_GET_DIRTY_BITMAP', IOMMUFD_CMD.HWPT_GET_DIRTY_BITMAP);
export const IOMMU_HWPT_INVALIDATE = req('IOMMU_HWPT_INVALIDATE', IOMMUFD_CMD.HWPT_INVALIDATE);
export const IOMMU_FAULT_QUEUE_ALLOC = req('IOMMU_FAULT_QUEUE_ALLOC', IOMMUFD_CMD.FAULT_QUEUE_ALLOC);
export const IOMMU_IOAS_MAP_FILE = req('IOMMU_IOAS_MAP_FILE', IOMMUFD_CMD.IOAS_MAP_FILE);
export const IOMMU_VIOMMU_ALLOC = req('IOMMU_VIOMMU_ALLOC', IOMMUFD_CMD.VIOMMU_ALLOC);
export const IOMMU_VDEVICE_ALLOC = req('IOMMU_VDEVICE_ALLOC', IOMMUFD_CMD.VDEVICE_ALLOC);
export const IOMMU_IOAS_CHANGE_PROCESS = req('IOMMU_IOAS_CHANGE_PROCESS', IOMMUFD_CMD.IOAS_CHANGE_PROCESS);
export const IOMMU_VEVENTQ_ALLOC = req('IOMMU_VEVENTQ_ALLOC', IOMMUFD_CMD.VEVENTQ_ALLOC);
export const IOMMU_HW_QUEUE_ALLOC = req('IOMMU_HW_QUEUE_ALLOC', IOMMUFD_CMD.HW_QUEUE_ALLOC);
export const IOMMU_IOAS_NOIOMMU_GET_PA = req('IOMMU_IOAS_NOIOMMU_GET_PA', IOMMUFD_CMD.IOAS_NOIOMMU_GET_PA);

export const IommuDestroy = struct('iommu_destroy', { size: u32, id: u32 });
export const IommuIoasAlloc = struct('iommu_ioas_alloc', { size: u32, flags: u32, out_ioas_id: u32 });
export const IommuIovaRange = struct('iommu_iova_range', { start: u64, last: u64 });
export const IommuIoasIovaRanges = struct('iommu_ioas_iova_ranges', {
  size: u32,
  ioas_id: u32,
  num_iovas: u32,
  __reserved: u32,
  allowed_iovas: u64,
  out_iova_alignment: u64,
});
export const IommuIoasAllowIovas = struct('iommu_ioas_allow_iovas', {
  size: u32,
  ioas_id: u32,
  num_iovas: u32,
  __reserved: u32,
  allowed_iovas: u64,
});

export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;
export const IommuIoasMap = struct('iommu_ioas_map', {
  size: u32,
  flags: u32,
  ioas_id: u32,
  __reserved: u32,
  user_va: u64,
  length: u64,
  iova: u64,
});
export const IommuIoasNoiommuGetPa = struct('iommu_ioas_noiommu_get_pa', {
  size: u32,
  flags: u32,
  ioas_id: u32,
  __reserved: u32,
  iova: u64,
  length: u64,
  out_phys: u64,
});
export const IommuIoasMapFile = struct('iommu_ioas_map_file', {
  size: u32,
  flags: u32,
  ioas_id: u32,
  fd: s32,
  start: u64,
  length: u64,
  iova: u64,
});
export const IommuIoasCopy = struct('iommu_ioas_copy', {
  size: u32,
  flags: u32,
  dst_ioas_id: u32,
  src_ioas_id: u32,
  length: u64,
  dst_iova: u64,
  src_iova: u64,
});
export const IommuIoasUnmap = struct('iommu_ioas_unmap', { size: u32, ioas_id: u32, iova: u64, length: u64 });

export const IOMMU_OPTION_RLIMIT_MODE = 0;
export const IOMMU_OPTION_HUGE_PAGES = 1;
export const IOMMU_OPTION_OP_SET = 0;
export const IOMMU_OPTION_OP_GET = 1;
export const IommuOption = struct('iommu_option', {
  size: u32,
  option_id: u32,
  op: u16,
  __reserved: u16,
  object_id: u32,
  val64: u64,
});

export const IOMMU_VFIO_IOAS_GET = 0;
export const IOMMU_VFIO_IOAS_SET = 1;
export const IOMMU_VFIO_IOAS_CLEAR = 2;
export const IommuVfioIoas = struct('iommu_vfio_ioas', { size: u32, ioas_id: u32, op: u16, __reserved: u16 });

export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;
export const IOMMU_HWPT_DATA_NONE = 0;
export const IOMMU_HWPT_DATA_VTD_S1 = 1;
export const IOMMU_HWPT_DATA_ARM_SMMUV3 = 2;
export const IOMMU_HWPT_DATA_AMD_GUEST = 3;
export const IommuHwptVtdS1 = struct('iommu_hwpt_vtd_s1', { flags: u64, pgtbl_addr: u64, addr_width: u32, __reserved: u32 });
export const IommuHwptAlloc = struct('iommu_hwpt_alloc', {
  size: u32,
  flags: u32,
  dev_id: u32,
  pt_id: u32,
  out_hwpt_id: u32,
  __reserved: u32,
  data_type: u32,
  data_len: u32,
  data_uptr: u64,
  fault_id: u32,
  __reserved2: u32,
});

export const IOMMU_HW_INFO_TYPE_NONE = 0;
export const IOMMU_HW_INFO_TYPE_DEFAULT = 0;
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;
export const IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV = 3;
export const IOMMU_HW_INFO_TYPE_AMD = 4;
export const IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0;
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0;
export const IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1;
export const IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2;
export const IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED = 1 << 3;
/** iommu_hw_info_vtd.flags: read-only mappings are refused on a nesting parent (Intel erratum 772415, SPR17). */
export const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0;
export const IommuHwInfoVtd = struct('iommu_hw_info_vtd', { flags: u32, __reserved: u32, cap_reg: u64, ecap_reg: u64 });
export const IommuHwInfoArmSmmuv3 = struct('iommu_hw_info_arm_smmuv3', {
  flags: u32,
  __reserved: u32,
  idr: array(u32, 6),
  iidr: u32,
  aidr: u32,
});
export const IommuHwInfoAmd = struct('iommu_hw_info_amd', { efr: u64, efr2: u64 });
export const IommuHwInfo = struct('iommu_hw_info', {
  size: u32,
  flags: u32,
  dev_id: u32,
  data_len: u32,
  data_uptr: u64,
  // `in_data_type` and `out_data_type` share this u32 (a union in the header).
  out_data_type: u32,
  out_max_pasid_log2: u8,
  __reserved: array(u8, 3),
  out_capabilities: u64,
});

export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;
export const IommuHwptSetDirtyTracking = struct('iommu_hwpt_set_dirty_tracking', {
  size: u32,
  flags: u32,
  hwpt_id: u32,
  __reserved: u32,
});
export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;
export const IommuHwptGetDirtyBitmap = struct('iommu_hwpt_get_dirty_bitmap', {
  size: u32,
  hwpt_id: u32,
  flags: u32,
  __reserved: u32,
  iova: u64,
  length: u64,
  page_size: u64,
  data: u64,
});
export const IommuHwptInvalidate = struct('iommu_hwpt_invalidate', {
  size: u32,
  hwpt_id: u32,
  data_uptr: u64,
  data_type: u32,
  entry_len: u32,
  entry_num: u32,
  __reserved: u32,
});
export const IommuFaultAlloc = struct('iommu_fault_alloc', { size: u32, flags: u32, out_fault_id: u32, out_fault_fd: u32 });
export const IommuViommuAlloc = struct('iommu_viommu_alloc', {
  size: u32,
  flags: u32,
  type: u32,
  dev_id: u32,
  hwpt_id: u32,
  out_viommu_id: u32,
  data_len: u32,
  __reserved: u32,
  data_uptr: u64,
});
export const IommuVdeviceAlloc = struct('iommu_vdevice_alloc', {
  size: u32,
  viommu_id: u32,
  dev_id: u32,
  out_vdevice_id: u32,
  virt_id: u64,
});
export const IommuIoasChangeProcess = struct('iommu_ioas_change_process', { size: u32, __reserved: u32 });
export const IommuVeventqAlloc = struct('iommu_veventq_alloc', {
  size: u32,
  flags: u32,
  viommu_id: u32,
  type: u32,
  veventq_depth: u32,
  out_veventq_id: u32,
  out_veventq_fd: u32,
  __reserved: u32,
});
export const IommuHwQueueAlloc = struct('iommu_hw_queue_alloc', {
  size: u32,
  flags: u32,
  viommu_id: u32,
  type: u32,
  index: u32,
  out_hw_queue_id: u32,
  nesting_parent_iova: u64,
  length: u64,
});

/**
 * The parts of the NVMe 1.4 base specification this driver uses: controller register offsets and
 * fields, admin and NVM opcodes, Identify CNS values, feature IDs. Values only; the driver's logic
 * lives in the other files.
 */
export const NVME_CLASS_CODE = 0x010802;

export const REG = { CAP: 0x00, VS: 0x08, INTMS: 0x0c, INTMC: 0x10, CC: 0x14, CSTS: 0x1c, AQA: 0x24, ASQ: 0x28, ACQ: 0x30 } as const;
export const DOORBELL_BASE = 0x1000;

export const CC = {
  EN: 1 << 0,
  /** NVM command set. */
  CSS_NVM: 0 << 4,
  /** Normal shutdown notification. */
  SHN_NORMAL: 1 << 14,
  SHN_MASK: 3 << 14,
  /** 64-byte submission and 16-byte completion queue entries. */
  IOSQES_64: 6 << 16,
  IOCQES_16: 4 << 20,
} as const;
export const CSTS = { RDY: 1 << 0, CFS: 1 << 1, SHST_MASK: 3 << 2, SHST_COMPLETE: 2 << 2 } as const;

export const ADMIN = {
  DELETE_SQ: 0x00,
  CREATE_SQ: 0x01,
  GET_LOG_PAGE: 0x02,
  DELETE_CQ: 0x04,
  CREATE_CQ: 0x05,
  IDENTIFY: 0x06,
  ABORT: 0x08,
  SET_FEATURES: 0x09,
  GET_FEATURES: 0x0a,
} as const;
export const NVM = { FLUSH: 0x00, WRITE: 0x01, READ: 0x02, WRITE_ZEROES: 0x08, DSM: 0x09 } as const;
export const CNS = { NAMESPACE: 0x00, CONTROLLER: 0x01, ACTIVE_NAMESPACES: 0x02 } as const;
export const FEATURE = { NUMBER_OF_QUEUES: 0x07, INTERRUPT_COALESCING: 0x08 } as const;
export const LOG = { ERROR: 0x01, SMART: 0x02 } as const;

export const SQE_BYTES = 64;
export const CQE_BYTES = 16;
/** The memory page size this driver programs (CC.MPS 0). */
export const PAGE = 4096;
export const PAGE_SHIFT = 12;

/** CAP, decoded. */
export interface ControllerCapabilities {
  /** Entries per queue, at most (MQES + 1). */
  readonly maxQueueEntries: number;
  readonly contiguousQueuesRequired: boolean;
  /** CAP.TO: the longest the controller takes to become ready or not ready. */
  readonly readyTimeoutMs: number;
  /** Bytes between doorbells: 4 << DSTRD. */
  readonly doorbellStride: number;
  readonly nvmCommandSet: boolean;
  readonly minPageSize: number;
  readonly maxPageSize: number;
  readonly controllerMemoryBuffer: boolean;
}

export function decodeCapabilities(cap: bigint): ControllerCapabilities {
  const bits = (shift: number, width: number) => Number((cap >> BigInt(shift)) & ((1n << BigInt(width)) - 1n));
  return {
    maxQueueEntries: bits(0, 16) + 1,
    contiguousQueuesRequired: bits(16, 1) === 1,
    readyTimeoutMs: bits(24, 8) * 500,
    doorbellStride: 4 << bits(32, 4),
    nvmCommandSet: (bits(37, 8) & 1) === 1,
    minPageSize: 2 ** (12 + bits(48, 4)),
    maxPageSize: 2 ** (12 + bits(52, 4)),
    controllerMemoryBuffer: bits(57, 1) === 1,
  };
}

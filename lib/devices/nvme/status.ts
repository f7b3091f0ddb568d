/**
 * Completion status values as QEMU 7.2 composes them: the 15-bit status field of a completion
 * queue entry without the phase tag — status code in bits 7:0, status code type in 10:8, More in
 * 13, Do Not Retry in 14 (NVMe 1.4 §4.6.1). Only the ones the model returns are listed.
 */
export const STATUS = {
  SUCCESS: 0x0000,
  INVALID_OPCODE: 0x0001,
  INVALID_FIELD: 0x0002,
  DATA_TRANSFER_ERROR: 0x0004,
  INTERNAL_DEVICE_ERROR: 0x0006,
  INVALID_NSID: 0x000b,
  COMMAND_SEQUENCE_ERROR: 0x000c,
  INVALID_PRP_OFFSET: 0x0013,
  LBA_OUT_OF_RANGE: 0x0080,
  // command specific (status code type 1)
  INVALID_CQID: 0x0100,
  INVALID_QID: 0x0101,
  MAX_QUEUE_SIZE_EXCEEDED: 0x0102,
  INVALID_INTERRUPT_VECTOR: 0x0108,
  INVALID_QUEUE_DELETION: 0x010c,
  FEATURE_ID_NOT_SAVEABLE: 0x010d,
  FEATURE_NOT_CHANGEABLE: 0x010e,
  FEATURE_NOT_NAMESPACE_SPECIFIC: 0x010f,
  INVALID_CONTROLLER_ID: 0x011f,
  INVALID_SECONDARY_CONTROLLER_STATE: 0x0120,
  INVALID_NUMBER_OF_RESOURCES: 0x0121,
  INVALID_RESOURCE_ID: 0x0122,
} as const;

/** Do Not Retry. */
export const DNR = 0x4000;

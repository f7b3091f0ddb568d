/**
 * Asynchronous events as QEMU 7.2 reports them in an Asynchronous Event Request's completion
 * (dword 0: type in bits 2:0, information in 15:8, the log page that clears it in 23:16).
 */

/** The event types the controller raises. */
export const EVENT_TYPE = { ERROR: 0, SMART: 1, NOTICE: 2 } as const;

/** Information codes, per type. */
export const EVENT_INFO = {
  /** Error: a doorbell write to a queue that does not exist. */
  INVALID_DOORBELL_REGISTER: 0x00,
  /** Error: a doorbell value beyond the queue, or a head the controller has not posted past. */
  INVALID_DOORBELL_VALUE: 0x01,
  /** SMART: the composite temperature is at or beyond a threshold. */
  TEMPERATURE_THRESHOLD: 0x01,
  /** Notice: a namespace was attached or detached (the Changed Namespace List names it). */
  NAMESPACE_ATTRIBUTE_CHANGED: 0x00,
} as const;

/** Bit of Asynchronous Event Configuration (feature 0Bh) that lets a temperature event be raised. */
export const AEC_TEMPERATURE = 1 << 1;

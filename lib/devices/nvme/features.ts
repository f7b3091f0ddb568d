/**
 * Get Features and Set Features (NVMe 1.4 §5.14, §5.21) as QEMU 7.2 answers them: the features it
 * supports, which it lets the host change (temperature threshold, error recovery, volatile write
 * cache, number of queues — only before queues exist, and always answered with the controller's
 * own count —, asynchronous event configuration, timestamp, host behavior, command set profile),
 * and Feature Not Changeable for the rest (arbitration, power management, interrupt coalescing,
 * interrupt vector configuration, write atomicity). Nothing is saveable.
 */
import type { Command, Completion } from './command';
import type { AdminContext } from './context';
import { AEC_TEMPERATURE, EVENT_INFO, EVENT_TYPE } from './async-events';
import { temperatureBeyondThreshold, WARNING_TEMPERATURE } from './identify-controller';
import { LOG_PAGE } from './log-pages';
import { BROADCAST_NSID, nsidValid } from './namespace';
import { DNR, STATUS } from './status';

export const FEATURE = {
  ARBITRATION: 0x01,
  POWER_MANAGEMENT: 0x02,
  TEMPERATURE_THRESHOLD: 0x04,
  ERROR_RECOVERY: 0x05,
  VOLATILE_WRITE_CACHE: 0x06,
  NUMBER_OF_QUEUES: 0x07,
  INTERRUPT_COALESCING: 0x08,
  INTERRUPT_VECTOR_CONFIG: 0x09,
  WRITE_ATOMICITY: 0x0a,
  ASYNC_EVENT_CONFIG: 0x0b,
  TIMESTAMP: 0x0e,
  HOST_BEHAVIOR: 0x16,
  COMMAND_SET_PROFILE: 0x19,
} as const;

const SUPPORTED = new Set<number>(Object.values(FEATURE));
/** Capabilities (Get Features select 3): bit 1 namespace specific, bit 2 changeable. */
const CHANGEABLE = 1 << 2;
const NAMESPACE_SPECIFIC = 1 << 1;
const CAPABILITIES: Readonly<Record<number, number>> = {
  [FEATURE.TEMPERATURE_THRESHOLD]: CHANGEABLE,
  [FEATURE.ERROR_RECOVERY]: CHANGEABLE | NAMESPACE_SPECIFIC,
  [FEATURE.VOLATILE_WRITE_CACHE]: CHANGEABLE,
  [FEATURE.NUMBER_OF_QUEUES]: CHANGEABLE,
  [FEATURE.ASYNC_EVENT_CONFIG]: CHANGEABLE,
  [FEATURE.TIMESTAMP]: CHANGEABLE,
  [FEATURE.HOST_BEHAVIOR]: CHANGEABLE,
  [FEATURE.COMMAND_SET_PROFILE]: CHANGEABLE,
};
const NO_COALESCING = 1 << 16;
/** Arbitration burst: no limit. */
const ARBITRATION_DEFAULT = 0x7;
const COMPOSITE_SENSOR = 0;

export function initialFeatures(): AdminContext['features'] {
  return {
    temperatureOver: WARNING_TEMPERATURE,
    temperatureUnder: 0,
    volatileWriteCache: true,
    asyncEventConfig: 0,
    timestampMs: 0n,
    timestampSetAt: 0,
    timestampSetByHost: false,
    hostBehavior: new Uint8Array(512),
  };
}

export function getFeatures(ctx: AdminContext, c: Command): Completion {
  const fid = c.cdw10 & 0xff;
  const select = (c.cdw10 >>> 8) & 0x7;
  if (!SUPPORTED.has(fid)) return { status: STATUS.INVALID_FIELD | DNR };
  const capabilities = CAPABILITIES[fid] ?? 0;
  if (capabilities & NAMESPACE_SPECIFIC) {
    if (!nsidValid(c.nsid, ctx.maxNamespaces) || c.nsid === BROADCAST_NSID) return { status: STATUS.INVALID_NSID | DNR };
    if (!ctx.namespace(c.nsid)) return { status: STATUS.INVALID_FIELD | DNR };
  }
  if (select === 3) return { status: STATUS.SUCCESS, result: capabilities };
  const f = ctx.features;
  const sensor = (c.cdw11 >>> 16) & 0xf;
  const underThreshold = ((c.cdw11 >>> 20) & 0x3) === 1;
  if (select === 0) {
    switch (fid) {
      case FEATURE.TEMPERATURE_THRESHOLD: {
        if (sensor !== COMPOSITE_SENSOR) return { status: STATUS.SUCCESS, result: 0 };
        const which = (c.cdw11 >>> 20) & 0x3;
        if (which > 1) return { status: STATUS.INVALID_FIELD | DNR };
        return { status: STATUS.SUCCESS, result: underThreshold ? f.temperatureUnder : f.temperatureOver };
      }
      case FEATURE.ERROR_RECOVERY:
        return { status: STATUS.SUCCESS, result: ctx.namespace(c.nsid)!.errorRecovery };
      case FEATURE.VOLATILE_WRITE_CACHE:
        return { status: STATUS.SUCCESS, result: f.volatileWriteCache ? 1 : 0 };
      case FEATURE.ASYNC_EVENT_CONFIG:
        return { status: STATUS.SUCCESS, result: f.asyncEventConfig };
      case FEATURE.TIMESTAMP:
        return ctx.toHost(c, timestamp(ctx));
      case FEATURE.HOST_BEHAVIOR:
        return ctx.toHost(c, f.hostBehavior);
    }
  }
  // Defaults (and the current value of the features the host cannot change).
  switch (fid) {
    case FEATURE.TEMPERATURE_THRESHOLD:
      return {
        status: STATUS.SUCCESS,
        result: sensor === COMPOSITE_SENSOR && !underThreshold && ((c.cdw11 >>> 20) & 0x3) === 0 ? WARNING_TEMPERATURE : 0,
      };
    case FEATURE.NUMBER_OF_QUEUES:
      return { status: STATUS.SUCCESS, result: queueCounts(ctx) };
    case FEATURE.INTERRUPT_VECTOR_CONFIG: {
      const vector = c.cdw11 & 0xffff;
      if (vector >= ctx.ioQueuePairs + 1) return { status: STATUS.INVALID_FIELD | DNR };
      // The admin completion queue uses vector 0 and is never coalesced.
      return { status: STATUS.SUCCESS, result: vector === 0 ? vector | NO_COALESCING : vector };
    }
    case FEATURE.ARBITRATION:
      return { status: STATUS.SUCCESS, result: ARBITRATION_DEFAULT };
    default:
      return { status: STATUS.SUCCESS, result: 0 };
  }
}

export function setFeatures(ctx: AdminContext, c: Command): Completion {
  const fid = c.cdw10 & 0xff;
  const save = (c.cdw10 >>> 31) & 1;
  if (save) return { status: STATUS.FEATURE_ID_NOT_SAVEABLE | DNR };
  if (!SUPPORTED.has(fid)) return { status: STATUS.INVALID_FIELD | DNR };
  const capabilities = CAPABILITIES[fid] ?? 0;
  if (capabilities & NAMESPACE_SPECIFIC) {
    if (c.nsid !== BROADCAST_NSID) {
      if (!nsidValid(c.nsid, ctx.maxNamespaces)) return { status: STATUS.INVALID_NSID | DNR };
      if (!ctx.namespace(c.nsid)) return { status: STATUS.INVALID_FIELD | DNR };
    }
  } else if (c.nsid !== 0 && c.nsid !== BROADCAST_NSID) {
    if (!nsidValid(c.nsid, ctx.maxNamespaces)) return { status: STATUS.INVALID_NSID | DNR };
    return { status: STATUS.FEATURE_NOT_NAMESPACE_SPECIFIC | DNR };
  }
  if (!(capabilities & CHANGEABLE)) return { status: STATUS.FEATURE_NOT_CHANGEABLE | DNR };
  const f = ctx.features;
  switch (fid) {
    case FEATURE.TEMPERATURE_THRESHOLD: {
      if (((c.cdw11 >>> 16) & 0xf) !== COMPOSITE_SENSOR) break;
      const which = (c.cdw11 >>> 20) & 0x3;
      if (which === 0) f.temperatureOver = c.cdw11 & 0xffff;
      else if (which === 1) f.temperatureUnder = c.cdw11 & 0xffff;
      else return { status: STATUS.INVALID_FIELD | DNR };
      // Checked when a threshold is set, not as the temperature goes (QEMU's never changes).
      if (temperatureBeyondThreshold(f) && f.asyncEventConfig & AEC_TEMPERATURE)
        ctx.enqueueEvent(EVENT_TYPE.SMART, EVENT_INFO.TEMPERATURE_THRESHOLD, LOG_PAGE.SMART);
      break;
    }
    case FEATURE.ERROR_RECOVERY: {
      const apply = (nsid: number) => {
        const ns = ctx.namespace(nsid);
        if (ns) ns.errorRecovery = c.cdw11;
      };
      if (c.nsid === BROADCAST_NSID) for (let i = 1; i <= ctx.maxNamespaces; i++) apply(i);
      else apply(c.nsid);
      break;
    }
    case FEATURE.VOLATILE_WRITE_CACHE:
      f.volatileWriteCache = (c.cdw11 & 1) === 1;
      break;
    case FEATURE.NUMBER_OF_QUEUES:
      if (ctx.queuesCreated) return { status: STATUS.COMMAND_SEQUENCE_ERROR | DNR };
      if ((c.cdw11 & 0xffff) === 0xffff || c.cdw11 >>> 16 === 0xffff) return { status: STATUS.INVALID_FIELD | DNR };
      // The controller keeps its own count whatever the host asked for, and says so.
      return { status: STATUS.SUCCESS, result: queueCounts(ctx) };
    case FEATURE.ASYNC_EVENT_CONFIG:
      f.asyncEventConfig = c.cdw11;
      break;
    case FEATURE.TIMESTAMP: {
      const data = ctx.fromHost(c, 8);
      if (!(data instanceof Uint8Array)) return data;
      f.timestampMs = new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true) & ((1n << 48n) - 1n);
      f.timestampSetAt = ctx.nowMicroseconds;
      f.timestampSetByHost = true;
      break;
    }
    case FEATURE.HOST_BEHAVIOR: {
      const data = ctx.fromHost(c, 512);
      if (!(data instanceof Uint8Array)) return data;
      f.hostBehavior = data;
      break;
    }
    case FEATURE.COMMAND_SET_PROFILE:
      if (c.cdw11 & 0x1ff) return { status: 0x002b | DNR }; // I/O Command Set Combination Rejected
      break;
  }
  return { status: STATUS.SUCCESS };
}

/** NSQA and NCQA, 0's based: the controller's I/O queue pairs. */
function queueCounts(ctx: AdminContext): number {
  const n = ctx.ioQueuePairs - 1;
  return (n | (n << 16)) >>> 0;
}

/** The Timestamp feature's 8 bytes: milliseconds in 47:0, Synch 48 (0), origin 51:49 (1 when set by the host). */
function timestamp(ctx: AdminContext): Uint8Array {
  const f = ctx.features;
  const elapsedMs = BigInt(Math.floor((ctx.nowMicroseconds - f.timestampSetAt) / 1000));
  const ms = (f.timestampMs + elapsedMs) & ((1n << 48n) - 1n);
  const value = ms | (f.timestampSetByHost ? 1n << 49n : 0n);
  const d = new Uint8Array(8);
  new DataView(d.buffer).setBigUint64(0, value, true);
  return d;
}

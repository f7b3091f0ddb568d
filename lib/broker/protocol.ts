/**
 * The broker's wire format: one SOCK_SEQPACKET message per request or reply, so a message is
 * never split or merged. Every message is a fixed header and a UTF-8 JSON body:
 *
 *   offset 0  u32  magic 'VFBK' (0x4b424656 little-endian)
 *   offset 4  u16  protocol version (BROKER_PROTOCOL_VERSION)
 *   offset 6  u16  message type (MessageType)
 *   offset 8  u32  body length in bytes; the message is exactly 12 + this long
 *   offset 12      body: a JSON object whose fields the type defines (u64s as decimal strings)
 *
 * Decoding checks all of it — size limits, magic, version, exact length, JSON, and each field's
 * type and range — and fails with a ProtocolError naming what was wrong, so the broker can refuse
 * a garbage message with a reason and keep serving. Fds travel beside the bytes (SCM_RIGHTS):
 * only a GRANTED reply carries any (the iommufd, then the device cdev).
 */

/** The version this library speaks; a message of another version is refused (ERR_VERSION). */
export const BROKER_PROTOCOL_VERSION = 1;
/** 'VFBK' read as a little-endian u32. */
const MAGIC = 0x4b424656;
const HEADER = 12;
/** The longest message either side sends or accepts (header included). */
export const MAX_MESSAGE_BYTES = 4096;
const U64_MAX = (1n << 64n) - 1n;

/** Message types; requests from the client, replies from the broker. */
export const MessageType = {
  /** Request: hand me the device `bdf` (iommufd + device cdev). */
  GRANT: 1,
  /** Request: I am done with `bdf`; the broker lets go of its references. */
  RELEASE: 2,
  /** Request (noiommu): the physical runs of [iova, iova+length) in IOAS `ioasId` of the granted iommufd. */
  GET_PA: 3,
  /** Reply to GRANT: fds [iommufd, device] attached. */
  GRANTED: 0x81,
  /** Reply to RELEASE. */
  RELEASED: 0x82,
  /** Reply to GET_PA. */
  PHYSICAL: 0x83,
  /** Reply to anything refused: `code` (an errno name or ERR_*) and `message`. */
  ERROR: 0xff,
} as const;

/** A request a client sends. */
export type BrokerRequest =
  | { readonly type: 'grant'; readonly bdf: string }
  | { readonly type: 'release'; readonly bdf: string }
  | { readonly type: 'get-pa'; readonly bdf: string; readonly ioasId: number; readonly iova: bigint; readonly length: bigint };

/** One physically contiguous run a GET_PA reply lists. */
export interface PhysicalRun {
  readonly iova: bigint;
  readonly phys: bigint;
  readonly length: bigint;
}

/** A reply the broker sends. */
export type BrokerReply =
  | { readonly type: 'granted'; readonly bdf: string; readonly noiommu: boolean; readonly deviceId?: number }
  | { readonly type: 'released'; readonly bdf: string }
  | { readonly type: 'physical'; readonly runs: readonly PhysicalRun[] }
  | { readonly type: 'error'; readonly code: string; readonly message: string };

/** A message that is not a valid broker message; `code` says which check failed. */
export class ProtocolError extends Error {
  constructor(
    /** ERR_SIZE, ERR_MAGIC, ERR_VERSION, ERR_LENGTH, ERR_JSON, ERR_TYPE or ERR_FIELD. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** The most runs one PHYSICAL reply lists (so the reply fits MAX_MESSAGE_BYTES). */
export const MAX_RUNS_PER_REPLY = 48;

export function encodeRequest(r: BrokerRequest): Buffer {
  switch (r.type) {
    case 'grant':
      return frame(MessageType.GRANT, { bdf: r.bdf });
    case 'release':
      return frame(MessageType.RELEASE, { bdf: r.bdf });
    case 'get-pa':
      return frame(MessageType.GET_PA, { bdf: r.bdf, ioasId: r.ioasId, iova: r.iova.toString(), length: r.length.toString() });
  }
}

export function encodeReply(r: BrokerReply): Buffer {
  switch (r.type) {
    case 'granted':
      return frame(MessageType.GRANTED, { bdf: r.bdf, noiommu: r.noiommu, ...(r.deviceId === undefined ? {} : { deviceId: r.deviceId }) });
    case 'released':
      return frame(MessageType.RELEASED, { bdf: r.bdf });
    case 'physical':
      return frame(MessageType.PHYSICAL, {
        runs: r.runs.map((x) => ({ iova: x.iova.toString(), phys: x.phys.toString(), length: x.length.toString() })),
      });
    case 'error':
      return frame(MessageType.ERROR, { code: r.code, message: r.message.slice(0, 1024) });
  }
}

export function decodeRequest(bytes: Uint8Array): BrokerRequest {
  const { type, body } = unframe(bytes);
  switch (type) {
    case MessageType.GRANT:
      return { type: 'grant', bdf: bdfField(body) };
    case MessageType.RELEASE:
      return { type: 'release', bdf: bdfField(body) };
    case MessageType.GET_PA: {
      const ioasId = body['ioasId'];
      if (typeof ioasId !== 'number' || !Number.isInteger(ioasId) || ioasId < 1 || ioasId > 0xffff_ffff) {
        throw new ProtocolError('ERR_FIELD', 'ioasId must be an integer in [1, 2^32)');
      }
      const iova = u64Field(body, 'iova');
      const length = u64Field(body, 'length');
      if (length === 0n) throw new ProtocolError('ERR_FIELD', 'length must not be 0');
      if (iova + length - 1n > U64_MAX) throw new ProtocolError('ERR_FIELD', 'iova+length ends past 2^64');
      return { type: 'get-pa', bdf: bdfField(body), ioasId, iova, length };
    }
    default:
      throw new ProtocolError('ERR_TYPE', `message type 0x${type.toString(16)} is not a request`);
  }
}

export function decodeReply(bytes: Uint8Array): BrokerReply {
  const { type, body } = unframe(bytes);
  switch (type) {
    case MessageType.GRANTED:
      if (typeof body['noiommu'] !== 'boolean') throw new ProtocolError('ERR_FIELD', 'noiommu must be a boolean');
      if (
        body['deviceId'] !== undefined &&
        !(Number.isInteger(body['deviceId']) && (body['deviceId'] as number) > 0 && (body['deviceId'] as number) <= 0xffff_ffff)
      )
        throw new ProtocolError('ERR_FIELD', 'deviceId must be a u32 device id');
      return {
        type: 'granted',
        bdf: bdfField(body),
        noiommu: body['noiommu'],
        ...(body['deviceId'] === undefined ? {} : { deviceId: body['deviceId'] as number }),
      };
    case MessageType.RELEASED:
      return { type: 'released', bdf: bdfField(body) };
    case MessageType.PHYSICAL: {
      const runs = body['runs'];
      if (!Array.isArray(runs) || runs.length > MAX_RUNS_PER_REPLY) throw new ProtocolError('ERR_FIELD', 'runs must be an array');
      return {
        type: 'physical',
        runs: runs.map((x: unknown) => {
          if (typeof x !== 'object' || x === null) throw new ProtocolError('ERR_FIELD', 'a run must be an object');
          const o = x as Record<string, unknown>;
          return { iova: u64Field(o, 'iova'), phys: u64Field(o, 'phys'), length: u64Field(o, 'length') };
        }),
      };
    }
    case MessageType.ERROR:
      if (typeof body['code'] !== 'string' || typeof body['message'] !== 'string')
        throw new ProtocolError('ERR_FIELD', 'code and message must be strings');
      return { type: 'error', code: body['code'], message: body['message'] };
    default:
      throw new ProtocolError('ERR_TYPE', `message type 0x${type.toString(16)} is not a reply`);
  }
}

function frame(type: number, body: object): Buffer {
  const json = Buffer.from(JSON.stringify(body), 'utf8');
  const out = Buffer.alloc(HEADER + json.length);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt16LE(BROKER_PROTOCOL_VERSION, 4);
  out.writeUInt16LE(type, 6);
  out.writeUInt32LE(json.length, 8);
  json.copy(out, HEADER);
  if (out.length > MAX_MESSAGE_BYTES) throw new RangeError(`broker message of ${out.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  return out;
}

function unframe(bytes: Uint8Array): { type: number; body: Record<string, unknown> } {
  if (bytes.length > MAX_MESSAGE_BYTES)
    throw new ProtocolError('ERR_SIZE', `message of ${bytes.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  if (bytes.length < HEADER)
    throw new ProtocolError('ERR_SIZE', `message of ${bytes.length} bytes is shorter than the ${HEADER}-byte header`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (b.readUInt32LE(0) !== MAGIC) throw new ProtocolError('ERR_MAGIC', 'not a broker message (bad magic)');
  const version = b.readUInt16LE(4);
  if (version !== BROKER_PROTOCOL_VERSION)
    throw new ProtocolError('ERR_VERSION', `protocol version ${version}, this side speaks ${BROKER_PROTOCOL_VERSION}`);
  const length = b.readUInt32LE(8);
  if (HEADER + length !== b.length)
    throw new ProtocolError('ERR_LENGTH', `header says a ${length}-byte body, the message has ${b.length - HEADER}`);
  let body: unknown;
  try {
    body = JSON.parse(b.subarray(HEADER).toString('utf8'));
  } catch {
    throw new ProtocolError('ERR_JSON', 'the body is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ProtocolError('ERR_JSON', 'the body is not a JSON object');
  return { type: b.readUInt16LE(6), body: body as Record<string, unknown> };
}

function bdfField(body: Record<string, unknown>): string {
  const bdf = body['bdf'];
  // Only a canonical address: never a path, never something a sysfs lookup would resolve elsewhere.
  if (typeof bdf !== 'string' || bdf.length > 16 || !/^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/.test(bdf)) {
    throw new ProtocolError('ERR_FIELD', `bdf must be a PCI address like 0000:00:03.0, got ${JSON.stringify(bdf)?.slice(0, 64)}`);
  }
  return bdf;
}

function u64Field(body: Record<string, unknown>, name: string): bigint {
  const v = body[name];
  if (typeof v !== 'string' || !/^\d{1,20}$/.test(v) || BigInt(v) > U64_MAX)
    throw new ProtocolError('ERR_FIELD', `${name} must be a u64 as a decimal string`);
  return BigInt(v);
}

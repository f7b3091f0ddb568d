/** Decoding the Identify data this driver uses (NVMe 1.4 figures 245 and 247). */

export interface ControllerIdentity {
  readonly vendorId: number;
  readonly subsystemVendorId: number;
  readonly serial: string;
  readonly model: string;
  readonly firmware: string;
  /** Largest transfer in bytes (MDTS applied to the minimum page size); Infinity for no limit. */
  readonly maxTransferBytes: number;
  readonly controllerId: number;
  /** VER as major.minor.tertiary. */
  readonly version: string;
  /** NN. */
  readonly namespaceCount: number;
  readonly volatileWriteCache: boolean;
  /** ONCS bit 3. */
  readonly writeZeroes: boolean;
}

export interface NamespaceIdentity {
  readonly nsid: number;
  readonly blocks: bigint;
  readonly capacityBlocks: bigint;
  readonly blockSize: number;
  readonly metadataBytes: number;
  /** LBA formats offered (NLBAF + 1) and the one in use. */
  readonly formats: number;
  readonly format: number;
}

const text = (d: Uint8Array, at: number, length: number) => String.fromCharCode(...d.subarray(at, at + length)).replace(/[\s\0]+$/, '');

export function decodeController(d: Uint8Array, minPageSize: number): ControllerIdentity {
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const mdts = d[77]!;
  const ver = v.getUint32(80, true);
  return {
    vendorId: v.getUint16(0, true),
    subsystemVendorId: v.getUint16(2, true),
    serial: text(d, 4, 20),
    model: text(d, 24, 40),
    firmware: text(d, 64, 8),
    maxTransferBytes: mdts === 0 ? Infinity : minPageSize * 2 ** mdts,
    controllerId: v.getUint16(78, true),
    version: `${ver >>> 16}.${(ver >>> 8) & 0xff}.${ver & 0xff}`,
    namespaceCount: v.getUint32(516, true),
    volatileWriteCache: (d[525]! & 1) === 1,
    writeZeroes: (v.getUint16(520, true) & (1 << 3)) !== 0,
  };
}

export function decodeNamespace(nsid: number, d: Uint8Array): NamespaceIdentity {
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const format = d[26]! & 0xf;
  const lbaf = 128 + format * 4;
  return {
    nsid,
    blocks: v.getBigUint64(0, true),
    capacityBlocks: v.getBigUint64(8, true),
    blockSize: 2 ** d[lbaf + 2]!,
    metadataBytes: v.getUint16(lbaf, true),
    formats: d[25]! + 1,
    format,
  };
}

export function decodeNamespaceList(d: Uint8Array): number[] {
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const out: number[] = [];
  for (let i = 0; i < d.byteLength / 4; i++) {
    const nsid = v.getUint32(i * 4, true);
    if (nsid === 0) break;
    out.push(nsid);
  }
  return out;
}

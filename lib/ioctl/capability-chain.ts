/**
 * VFIO info capability chains. GET_INFO-style ioctls append a linked list of capabilities after
 * the fixed struct: each starts with vfio_info_cap_header {id, version, next}, where `next` is
 * the offset of the following one from the start of the whole buffer (0 ends the list).
 */
import { VfioInfoCapHeader } from '../uapi/vfio';

/**
 * One capability of a VFIO info chain.
 *
 * @category Ioctl results
 */
export interface InfoCapability {
  /** Capability id (its meaning depends on the ioctl: region, device or IOMMU info). */
  readonly id: number;
  /** Capability structure version. */
  readonly version: number;
  /** Offset of this capability in the info buffer. */
  readonly offset: number;
  /** The capability's bytes, header included, up to the next one (or the end of the buffer). */
  readonly bytes: Uint8Array;
}

/**
 * Walks the chain that starts at `firstOffset`. A malformed chain (offset outside the buffer, a
 * loop) is a kernel bug; it raises an Error rather than looping forever.
 *
 * @category Ioctl results
 */
export function readCapabilityChain(buffer: Uint8Array, firstOffset: number): InfoCapability[] {
  const caps: InfoCapability[] = [];
  const seen = new Set<number>();
  let offset = firstOffset;
  while (offset !== 0) {
    if (seen.has(offset)) throw new Error(`VFIO capability chain loops at offset ${offset}`);
    if (offset + VfioInfoCapHeader.size > buffer.length) {
      throw new Error(`VFIO capability at offset ${offset} lies outside the ${buffer.length}-byte info buffer`);
    }
    seen.add(offset);
    const header = VfioInfoCapHeader.decode(buffer, offset);
    const end = header.next > offset && header.next <= buffer.length ? header.next : buffer.length;
    caps.push({ id: header.id, version: header.version, offset, bytes: buffer.subarray(offset, end) });
    offset = header.next;
  }
  return caps;
}

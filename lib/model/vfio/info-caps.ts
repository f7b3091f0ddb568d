/**
 * VFIO "info capability chains" (vfio_info_cap_add / vfio_info_cap_shift in vfio_main.c): extra
 * structs appended after an info struct, each starting with vfio_info_cap_header and padded to 8
 * bytes, linked by `next` offsets. The kernel builds the chain with offsets relative to the chain,
 * and shifts them by sizeof(info) when it copies the chain after the info struct.
 */
import { VfioInfoCapHeader } from '../../uapi/vfio';

export class InfoCapChain {
  private buf = Buffer.alloc(0);

  get size(): number {
    return this.buf.length;
  }

  /** Appends a capability whose body (after the 8-byte header) is `body`. */
  add(id: number, version: number, body: Uint8Array = new Uint8Array(0)): void {
    const size = Math.ceil((VfioInfoCapHeader.size + body.length) / 8) * 8;
    const at = this.buf.length;
    const next = Buffer.alloc(at + size);
    this.buf.copy(next);
    VfioInfoCapHeader.encode({ id, version, next: 0 }, next, at);
    next.set(body, at + VfioInfoCapHeader.size);
    // Link the previous tail to the new capability.
    if (at > 0) {
      let tail = 0;
      while (VfioInfoCapHeader.get(next, 'next', tail)) tail = VfioInfoCapHeader.get(next, 'next', tail);
      VfioInfoCapHeader.set(next, 'next', at, tail);
    }
    this.buf = next;
  }

  /** The chain with every `next` shifted by `offset` (where it lands in the user's buffer). */
  shifted(offset: number): Buffer {
    const out = Buffer.from(this.buf);
    let at = 0;
    for (;;) {
      const next = VfioInfoCapHeader.get(out, 'next', at);
      if (!next) break;
      VfioInfoCapHeader.set(out, 'next', next + offset, at);
      at = next;
    }
    return out;
  }
}

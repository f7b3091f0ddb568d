/**
 * Builds a trace line as UTF-8 bytes in one reused buffer: the tracer's hot paths (ioctls with a
 * struct, MMIO accesses) write each record this way instead of building an object or a string
 * and stringifying it, which costs several times the call being recorded, mostly in garbage
 * collection. What comes out is ordinary JSON (test/trace checks it against JSON.stringify).
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const DIGITS = 0x30;
const HEX = new TextEncoder().encode('0123456789abcdef');
/** Printable ASCII: its UTF-8 is its UTF-16 units, one byte each. */
const PLAIN = /^[\x20-\x7e]*$/;

export class LineEncoder {
  private buf = new Uint8Array(1024);
  private n = 0;

  reset(): void {
    this.n = 0;
  }

  /** The buffer holding the line so far, valid until the next reset or write (see length). */
  get buffer(): Uint8Array {
    return this.buf;
  }

  /** Bytes of the line so far. */
  get length(): number {
    return this.n;
  }

  /** The text from byte `from` on, for a sink that wants records. */
  text(from = 0): string {
    return decoder.decode(this.buf.subarray(from, this.n));
  }

  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.buf.subarray(0, this.n));
    this.buf = bigger;
  }

  /** One ASCII byte (a quote, brace, comma). */
  byte(c: number): void {
    if (this.n === this.buf.length) this.room(1);
    this.buf[this.n++] = c;
  }

  /** Text known to be ASCII without anything JSON must escape (keys, names, hex). */
  ascii(s: string): void {
    const len = s.length;
    this.room(len);
    const b = this.buf;
    let n = this.n;
    for (let k = 0; k < len; k++) b[n++] = s.charCodeAt(k);
    this.n = n;
  }

  /** Text as it is (already JSON), in UTF-8. */
  text8(s: string): void {
    if (PLAIN.test(s)) {
      this.ascii(s);
      return;
    }
    this.room(s.length * 3);
    this.n += encoder.encodeInto(s, this.buf.subarray(this.n)).written;
  }

  /** Any string, quoted and escaped as JSON. */
  string(s: string): void {
    const json = JSON.stringify(s);
    if (PLAIN.test(json)) {
      this.ascii(json);
      return;
    }
    this.room(json.length * 3);
    this.n += encoder.encodeInto(json, this.buf.subarray(this.n)).written;
  }

  /** A safe integer (may be negative). */
  int(v: number): void {
    this.room(24);
    const b = this.buf;
    if (v < 0) {
      b[this.n++] = 0x2d;
      v = -v;
    }
    if (v < 0x8000_0000) {
      // Small integers (fds, sizes, indices, microseconds) in int32 arithmetic.
      let x = v | 0;
      const digits =
        x < 10
          ? 1
          : x < 100
            ? 2
            : x < 1000
              ? 3
              : x < 10000
                ? 4
                : x < 100000
                  ? 5
                  : x < 1000000
                    ? 6
                    : x < 10000000
                      ? 7
                      : x < 100000000
                        ? 8
                        : x < 1000000000
                          ? 9
                          : 10;
      let at = this.n + digits;
      this.n = at;
      do {
        const q = (x / 10) | 0;
        b[--at] = DIGITS + (x - q * 10);
        x = q;
      } while (x > 0);
      return;
    }
    this.ascii(String(v));
  }

  /** `0x…` (lowercase, no leading zeros) of the 64-bit value hi:lo, each half a u32. */
  hex64(lo: number, hi: number): void {
    this.room(18);
    const b = this.buf;
    b[this.n++] = 0x30;
    b[this.n++] = 0x78;
    if (hi === 0) {
      this.hexDigits(lo, false);
      return;
    }
    this.hexDigits(hi, false);
    this.hexDigits(lo, true);
  }

  private hexDigits(v: number, pad: boolean): void {
    const b = this.buf;
    let shift = 28;
    if (!pad) shift = v === 0 ? 0 : (7 - (Math.clz32(v) >> 2)) * 4;
    let n = this.n;
    for (; shift >= 0; shift -= 4) b[n++] = HEX[(v >>> shift) & 0xf]!;
    this.n = n;
  }

  /** A number or bigint as `0x…`, like schema.hex. */
  hex(v: number | bigint): void {
    if (typeof v === 'number' && v >= 0 && v <= 0xffff_ffff && Number.isInteger(v)) this.hex64(v, 0);
    else this.ascii(`0x${v.toString(16)}`);
  }
}

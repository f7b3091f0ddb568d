/**
 * Detaching an ArrayBuffer without copying it: structuredClone with a transfer list moves the
 * backing store into a new ArrayBuffer and leaves the old one detached (byteLength 0; any typed
 * array over it throws TypeError). munmap uses this so a stale Mapping can no longer touch memory
 * while the bytes themselves survive for whoever still holds the frames (pins, memfd pages).
 */
export function detach(buffer: ArrayBuffer): ArrayBuffer {
  return structuredClone(buffer, { transfer: [buffer] });
}

/**
 * The NVMe bench's random LBAs, the same sequence as bench/c/nvme-io.c's: xorshift32 from the
 * same seed, the state modulo the number of 4 KiB I/O slots in the namespace, times the 512-byte
 * blocks per slot. The state lives in a typed array and the divisor is a u32: a u32 in a
 * closure's variable is a heap number once above 2^31 (one per I/O) and its remainder a
 * floating-point one; this stays in 32 bits.
 */
export function randomLbas(slots: number, blocksPerSlot: number): () => number {
  const seed = new Uint32Array([0x9e3779b9]);
  // The seed is below 2^32, so on 2^32 slots or more the remainder is the seed either way (but for the seed 2^32 - 1).
  const slotCount = Math.min(slots, 0xffff_ffff) >>> 0;
  return () => {
    let x = seed[0]!;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    seed[0] = x;
    return (seed[0] % slotCount) * blocksPerSlot;
  };
}

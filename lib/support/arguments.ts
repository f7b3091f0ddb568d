/**
 * Checks of the values a caller passes to the public API, for callers in plain JavaScript too:
 * each throws a TypeError (wrong kind of value) or RangeError (out of range) naming the method and
 * the parameter, before anything reaches the kernel, so a bad value can never act half-way (the
 * kernel maps, then a later `+` of a number and a bigint throws) or be truncated into another value
 * (`value >>> 0`).
 */

const U64_LIMIT = 1n << 64n;

/** `value` as an integer number in [min, max]. */
export function checkInteger(value: unknown, where: string, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${where}: ${name} must be a number, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${where}: ${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** `value` as an unsigned integer of `bits` bits (a register or field value). */
export function checkUnsigned(value: unknown, where: string, name: string, bits: 8 | 16 | 32): number {
  return checkInteger(value, where, name, 0, 2 ** bits - 1);
}

/** `value` as a bigint in [min, 2^64-1]. */
export function checkU64(value: unknown, where: string, name: string, min = 0n): bigint {
  if (typeof value !== 'bigint') throw new TypeError(`${where}: ${name} must be a bigint, got ${describe(value)}`);
  if (value < min || value >= U64_LIMIT) throw new RangeError(`${where}: ${name} must be from ${min} to 2^64-1, got ${value}`);
  return value;
}

/** A byte count or offset given as a number or a bigint, as a bigint in [min, 2^64-1]. */
export function checkSize(value: unknown, where: string, name: string, min = 0n): bigint {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new RangeError(`${where}: ${name} must be a safe integer or a bigint, got ${String(value)}`);
    return checkU64(BigInt(value), where, name, min);
  }
  return checkU64(value, where, name, min);
}

/** `value` as a boolean (an optional flag is checked only when given). */
export function checkBoolean(value: unknown, where: string, name: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${where}: ${name} must be a boolean, got ${describe(value)}`);
  return value;
}

/** `value` as one of `choices`. */
export function checkChoice<T extends string>(value: unknown, where: string, name: string, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new TypeError(`${where}: ${name} must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null) return 'null';
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  if (typeof value === 'function') return 'a function';
  // What is left is a number, boolean, symbol or undefined, each of which String() spells out.
  return `${typeof value} ${String(value as number | boolean | symbol | undefined)}`;
}

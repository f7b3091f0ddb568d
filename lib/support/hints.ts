/**
 * Environment hints the typed API can give because it knows what it was doing (pinning N bytes,
 * opening the device at some BDF), beyond what lib/sys/errors.ts infers from an errno alone.
 */
import type { Kernel } from '../sys/kernel';
import { VfioError } from '../sys/errors';
import { U64_MAX } from '../uapi/codec';

/** Human-readable byte count: 64 KiB, 8 MiB. */
export function formatBytes(n: bigint): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (i < units.length - 1 && v >= 1024n && v % 1024n === 0n) {
    v /= 1024n;
    i++;
  }
  return `${v} ${units[i]}`;
}

/** The hint for a pinning failure, with the limit in force right now. */
export function memlockHint(kernel: Kernel, pinning: bigint): string {
  let limit: string;
  try {
    const l = kernel.memlockLimit();
    limit = l === U64_MAX ? 'unlimited' : formatBytes(l);
  } catch {
    limit = 'unknown';
  }
  return (
    `pinning ${formatBytes(pinning)} counts against RLIMIT_MEMLOCK, currently ${limit}; ` +
    'raise it (ulimit -l, systemd LimitMEMLOCK) or grant CAP_IPC_LOCK'
  );
}

/** Is this a pinning failure that RLIMIT_MEMLOCK usually explains? */
export function isPinningFailure(e: unknown): boolean {
  return e instanceof VfioError && (e.code === 'ENOMEM' || e.code === 'EPERM' || e.code === 'EAGAIN');
}

/**
 * One command repeated along a range (GET_PA over a buffer): through the kernel's `ioctlRuns`
 * where it has one (the native addon does the loop in one call), else the same loop here over
 * `ioctl`. Both follow the contract of Kernel.ioctlRuns, so callers see one behaviour.
 */
import type { Kernel } from '../sys/kernel';
import type { IoctlRequest } from '../uapi/requests';
import { invoke } from './invoke';
import { VfioError } from '../sys/errors';

/** `offsets`: the byte offsets in `command` of the cursor, remaining-length and value fields. */
export function ioctlRuns(
  kernel: Kernel,
  fd: number,
  request: IoctlRequest,
  command: Uint8Array,
  offsets: Uint32Array,
  start: bigint,
  length: bigint,
  out: BigUint64Array,
): number {
  if (kernel.ioctlRuns) {
    try {
      return kernel.ioctlRuns(fd, request.number, command, offsets, start, length, out);
    } catch (e) {
      throw VfioError.wrap(e, { ioctl: request.name });
    }
  }
  const view = new DataView(command.buffer, command.byteOffset, command.byteLength);
  const cursorAt = offsets[0]!;
  const remainingAt = offsets[1]!;
  const valueAt = offsets[2]!;
  let cursor = start;
  let remaining = length;
  let steps = 0;
  while (steps < out.length / 3 && remaining > 0n) {
    view.setBigUint64(cursorAt, cursor, true);
    view.setBigUint64(remainingAt, remaining, true);
    view.setBigUint64(valueAt, 0n, true);
    invoke(kernel, fd, request, command);
    const reach = view.getBigUint64(remainingAt, true);
    if (reach === 0n || reach > remaining) break;
    const value = view.getBigUint64(valueAt, true);
    if (steps > 0 && value === out[steps * 3 - 2]! + out[steps * 3 - 1]!) {
      out[steps * 3 - 1] = out[steps * 3 - 1]! + reach;
    } else {
      out[steps * 3] = cursor;
      out[steps * 3 + 1] = value;
      out[steps * 3 + 2] = reach;
      steps++;
    }
    cursor += reach;
    remaining -= reach;
  }
  return steps;
}

/**
 * `kernel` without its ioctlRuns, so that a walk makes one `ioctl` per answer: what every kernel
 * without the addon's loop does, for benches and tests to compare the two paths on one kernel.
 */
export function withoutRunWalk(kernel: Kernel): Kernel {
  return new Proxy(kernel, {
    get(target, key) {
      if (key === 'ioctlRuns') return undefined;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

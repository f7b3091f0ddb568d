/**
 * Raising a PCIe AER error on demand through the kernel's software injector (/dev/aer_inject,
 * CONFIG_PCIEAER_INJECT): the kernel then behaves as if the function had logged the error and its
 * root port had received the message — it counts it, and for an uncorrectable one runs error
 * recovery, which tells vfio-pci's user through the ERR eventfd. What a driver's AER handling is
 * tested with, on real hardware and on the model alike.
 */
import { VfioError } from '../sys/errors';
import { O_WRONLY } from '../sys/constants';
import { kernelFrom, type KernelOptions } from '../support/kernel-options';
import { checkUnsigned } from '../support/arguments';
import { normalizeBdf } from './pci-device';

const AER_INJECT = '/dev/aer_inject';
/** sizeof(struct aer_error_inj): u8 bus, dev, fn; u32 uncor_status, cor_status, header_log[4], domain. */
const INJ_SIZE = 32;

/**
 * The error to raise: bits of the AER Uncorrectable and Correctable Error Status registers
 * (PCIe r6 7.8.4.2 and 7.8.4.5). Whether an uncorrectable one is fatal is the function's severity
 * register's say.
 *
 * @category PCI
 */
export interface AerError {
  /** Uncorrectable error status bits, e.g. 1 << 14 completion timeout, 1 << 4 data link protocol. */
  readonly uncorrectable?: number;
  /** Correctable error status bits, e.g. 1 << 0 receiver error. */
  readonly correctable?: number;
  /** The four header log dwords the error reports. */
  readonly headerLog?: readonly [number, number, number, number];
}

const HINTS: Record<string, string> = {
  ENOENT: 'the kernel has no /dev/aer_inject: it needs CONFIG_PCIEAER_INJECT (modprobe aer_inject where it is a module)',
  EPERM: 'aer_inject needs CAP_SYS_ADMIN',
  EACCES: 'aer_inject needs root (CAP_SYS_ADMIN)',
  EPROTONOSUPPORT:
    'the function (or its root port) has no AER capability: raise the error at the root port above it, which reaches every function below',
  ENODEV:
    'no such function, or no root port above it (a function on the root bus has nowhere to send the message), or the port runs no AER service',
  EINVAL: "the error's bits are all masked in the function's AER mask registers",
};

/**
 * Raises `error` at the function `bdf` through aer_inject. Returns once the kernel has taken it;
 * the handling (counting, recovery, the ERR eventfd) follows asynchronously.
 *
 * @example
 * ```ts
 * const [err] = device.irqs.enable('err');
 * injectAerError('0000:00:06.0', { uncorrectable: 1 << 14 }); // at the root port above the device
 * await err.wait();
 * ```
 *
 * @category PCI
 */
export function injectAerError(bdf: string, error: AerError, options: KernelOptions = {}): void {
  const kernel = kernelFrom(options);
  const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/.exec(normalizeBdf(bdf));
  if (!m) throw new RangeError(`injectAerError: '${bdf}' is not a PCI address`);
  const uncorrectable = error.uncorrectable ?? 0;
  const correctable = error.correctable ?? 0;
  checkUnsigned(uncorrectable, 'injectAerError', 'uncorrectable', 32);
  checkUnsigned(correctable, 'injectAerError', 'correctable', 32);
  const log = error.headerLog ?? [0, 0, 0, 0];
  log.forEach((v, i) => checkUnsigned(v, 'injectAerError', `headerLog[${i}]`, 32));
  const buf = new Uint8Array(INJ_SIZE);
  const dv = new DataView(buf.buffer);
  buf[0] = parseInt(m[2]!, 16);
  buf[1] = parseInt(m[3]!, 16);
  buf[2] = parseInt(m[4]!, 16);
  dv.setUint32(4, uncorrectable, true);
  dv.setUint32(8, correctable, true);
  log.forEach((v, i) => dv.setUint32(12 + 4 * i, v, true));
  dv.setUint32(28, parseInt(m[1]!, 16), true);
  const context = `raising AER error uncorrectable 0x${uncorrectable.toString(16)} correctable 0x${correctable.toString(16)} at ${bdf}`;
  let fd: number;
  try {
    fd = kernel.open(AER_INJECT, O_WRONLY);
  } catch (e) {
    throw withHint(e, context);
  }
  try {
    kernel.pwrite(fd, buf, 0n);
  } catch (e) {
    throw withHint(e, context);
  } finally {
    kernel.close(fd);
  }
}

function withHint(e: unknown, context: string): unknown {
  if (!(e instanceof VfioError)) return e;
  const hint = HINTS[e.code];
  return VfioError.wrap(e, { context, ...(hint ? { hint } : {}) });
}

/**
 * PCIe AER errors at the root port above a function vfio-pci drives, raised through aer_inject
 * (/dev/aer_inject), the same cases on the model and on the real kernel (the lab's multi machine:
 * an edu behind a pcie-root-port, which has AER). What Linux 7.3 does: a correctable error is
 * counted and cleared, nothing more; an uncorrectable one runs recovery over the functions below
 * the port, and vfio-pci's error_detected signals the user's ERR eventfd; a fatal one also resets
 * the secondary bus without restoring anything, so the function's BARs and command register are
 * cleared behind vfio's back until the user writes the command register (vfio_bar_restore).
 *
 * Counters accumulate over the boot (the lab runs every case in one), so the cases compare deltas.
 */
import assert from 'node:assert/strict';
import type { Kernel } from '../../lib/sys/kernel';
import { O_WRONLY } from '../../lib/sys/constants';
import { openDevice } from '../../lib/vfio/open-device';
import { isVfioError } from '../../lib/sys/errors';
import { injectAerError } from '../../lib/pci/aer-inject';
import type { InterruptVector } from '../../lib/vfio/irq';
import { EDU } from '../../lib/selftest/edu-driver';

/** A machine with a function bound to vfio-pci behind a PCIe root port with AER. */
export interface AerBench {
  readonly kernel: Kernel;
  /** The function behind the root port, bound to vfio-pci. */
  readonly bdf: string;
  /** Its root port. */
  readonly rootPort: string;
  /** A function on the root bus (no root port above it). */
  readonly rootBusFunction: string;
  /** How long the kernel may take to handle an error (TCG is slow). */
  readonly settleMs: number;
}

const EDU_IDENTIFICATION = EDU.IDENTIFICATION_VALUE;
const EDU_LIVENESS = EDU.LIVENESS;
const PCI_COMMAND = 0x04;
const PCI_COMMAND_MEMORY = 0x2;
const PCI_BASE_ADDRESS_0 = 0x10;
/** Uncorrectable errors: completion timeout is non-fatal by default, data link protocol fatal. */
const UNC_COMPLETION_TIMEOUT = 1 << 14;
const UNC_DATA_LINK_PROTOCOL = 1 << 4;
/** Correctable: receiver error; corrected internal error is masked at reset. */
const COR_RECEIVER = 1 << 0;
const COR_INTERNAL = 1 << 14;
const AER_UNCOR_STATUS = 0x104;

interface Injection {
  readonly bus: number;
  readonly dev: number;
  readonly fn: number;
  readonly uncor?: number;
  readonly cor?: number;
  readonly size?: number;
}

function parse(bdf: string): { bus: number; dev: number; fn: number } {
  const m = /^[0-9a-f]{4}:([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/.exec(bdf);
  if (!m) throw new Error(`bad BDF ${bdf}`);
  return { bus: parseInt(m[1]!, 16), dev: parseInt(m[2]!, 16), fn: parseInt(m[3]!, 16) };
}

/** One write of a struct aer_error_inj (u8 bus, dev, fn; u32 uncor, cor, header_log[4], domain). */
function inject(kernel: Kernel, e: Injection): number {
  const buf = new Uint8Array(e.size ?? 32);
  const dv = new DataView(buf.buffer);
  buf[0] = e.bus;
  buf[1] = e.dev;
  buf[2] = e.fn;
  if (buf.length >= 12) {
    dv.setUint32(4, e.uncor ?? 0, true);
    dv.setUint32(8, e.cor ?? 0, true);
  }
  const fd = kernel.open('/dev/aer_inject', O_WRONLY);
  try {
    return kernel.pwrite(fd, buf, 0n);
  } finally {
    kernel.close(fd);
  }
}

function errnoOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isVfioError(e)) return e.code;
    throw e;
  }
  return 'no error';
}

/** One counter line ("CmpltTO 3") of an aer_dev_* file, or a whole-number file. */
function counter(kernel: Kernel, path: string, name?: string): number {
  const text = kernel.readFile(path).toString();
  if (name === undefined) return Number(text.trim());
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`${path} has no ${name} line:\n${text}`);
  return Number(line.slice(name.length + 1));
}

async function until(what: string, ms: number, done: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function signalled(vector: InterruptVector, ms: number): Promise<bigint | undefined> {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), ms);
  try {
    return await vector.wait(stop.signal);
  } catch (e) {
    if (isVfioError(e) && e.code === 'ECANCELED') return undefined;
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

export function aerCases(newBench: () => Promise<AerBench>): void {
  let bench: AerBench;
  before(async () => {
    bench = await newBench();
  });
  const rp = () => `/sys/bus/pci/devices/${bench.rootPort}`;

  it('the root port shows its AER counters and ratelimits; the ratelimit interval is stored in jiffies', () => {
    const { kernel } = bench;
    for (const f of ['aer_dev_correctable', 'aer_dev_fatal', 'aer_dev_nonfatal', 'aer_rootport_total_err_cor']) {
      assert.ok(kernel.exists(`${rp()}/${f}`), f);
    }
    assert.match(kernel.readFile(`${rp()}/aer_dev_correctable`).toString(), /^RxErr \d+\nBadTLP \d+\n(.*\n)*TOTAL_ERR_COR \d+\n$/);
    assert.deepEqual(kernel.readdir(`${rp()}/aer`).sort(), [
      'correctable_ratelimit_burst',
      'correctable_ratelimit_interval_ms',
      'nonfatal_ratelimit_burst',
      'nonfatal_ratelimit_interval_ms',
    ]);
    const interval = `${rp()}/aer/nonfatal_ratelimit_interval_ms`;
    const before = kernel.readFile(interval).toString();
    try {
      kernel.writeFile(interval, '1000');
      assert.equal(kernel.readFile(interval).toString(), '250\n', 'msecs_to_jiffies(1000) at HZ=250');
      assert.equal(
        errnoOf(() => kernel.writeFile(interval, 'soon')),
        'EINVAL',
      );
    } finally {
      kernel.writeFile(interval, String((Number(before.trim()) * 1000) / 250));
    }
    assert.equal(kernel.readFile(interval).toString(), before);
    assert.equal(kernel.exists(`/sys/bus/pci/devices/${bench.bdf}/aer_dev_correctable`), false, 'edu has no AER capability');
  });

  it('aer_inject refuses what it cannot inject, each with its errno', () => {
    const { kernel } = bench;
    const at = parse(bench.rootPort);
    assert.equal(
      errnoOf(() => inject(kernel, { ...parse(bench.bdf), cor: COR_RECEIVER })),
      'EPROTONOSUPPORT',
      'no AER capability',
    );
    assert.equal(
      errnoOf(() => inject(kernel, { ...parse(bench.rootBusFunction), cor: COR_RECEIVER })),
      'ENODEV',
      'no root port above',
    );
    assert.equal(
      errnoOf(() => inject(kernel, { bus: 0, dev: 0x1f, fn: 7, cor: COR_RECEIVER })),
      'ENODEV',
      'no such function',
    );
    assert.equal(
      errnoOf(() => inject(kernel, { ...at, cor: COR_RECEIVER, size: 27 })),
      'EINVAL',
      'shorter than offsetof(domain)',
    );
    assert.equal(
      errnoOf(() => inject(kernel, { ...at, cor: COR_RECEIVER, size: 33 })),
      'EINVAL',
      'longer than the struct',
    );
    assert.equal(
      errnoOf(() => inject(kernel, { ...at, cor: COR_INTERNAL })),
      'EINVAL',
      'masked by the device',
    );
    assert.equal(inject(kernel, { ...at }), 32, 'no error at all is accepted and does nothing');
  });

  it('injectAerError: the typed errors carry the errno, the injector and a hint', () => {
    const { kernel } = bench;
    assert.throws(
      () => injectAerError(bench.bdf, { correctable: COR_RECEIVER }, { kernel }),
      (e: unknown) => isVfioError(e, 'EPROTONOSUPPORT') && e.path === '/dev/aer_inject' && /root port/.test(e.hint ?? ''),
    );
    assert.throws(
      () => injectAerError(bench.rootBusFunction, { correctable: COR_RECEIVER }, { kernel }),
      (e: unknown) => isVfioError(e, 'ENODEV') && /root port/.test(e.hint ?? ''),
    );
    assert.throws(
      () => injectAerError(bench.rootPort, { correctable: COR_INTERNAL }, { kernel }),
      (e: unknown) => isVfioError(e, 'EINVAL') && /masked/.test(e.hint ?? ''),
    );
    assert.throws(() => injectAerError('0000:00:06', { correctable: 1 }, { kernel }), TypeError);
    assert.throws(() => injectAerError(bench.rootPort, { correctable: 2 ** 32 }, { kernel }), RangeError);
  });

  it('a correctable error is counted at the root port and cleared; vfio-pci hears nothing', async () => {
    const { kernel, bdf } = bench;
    const device = openDevice(bdf, { kernel });
    try {
      const [err] = device.irqs.enable('err');
      const total = counter(kernel, `${rp()}/aer_rootport_total_err_cor`);
      const rxErr = counter(kernel, `${rp()}/aer_dev_correctable`, 'RxErr');
      assert.equal(inject(kernel, { ...parse(bench.rootPort), cor: COR_RECEIVER, size: 28 }), 28);
      await until(
        'the correctable error to be counted',
        bench.settleMs,
        () => counter(kernel, `${rp()}/aer_rootport_total_err_cor`) === total + 1,
      );
      assert.equal(counter(kernel, `${rp()}/aer_dev_correctable`, 'RxErr'), rxErr + 1);
      assert.equal(await signalled(err!, 200), undefined, 'no ERR for a correctable error');
    } finally {
      device.close();
    }
  });

  it('a non-fatal error signals ERR once and leaves the device working', async () => {
    const { kernel, bdf } = bench;
    const device = openDevice(bdf, { kernel });
    try {
      const [err] = device.irqs.enable('err');
      const bar0 = device.bar(0).mmap();
      const nonfatal = counter(kernel, `${rp()}/aer_rootport_total_err_nonfatal`);
      const timeouts = counter(kernel, `${rp()}/aer_dev_nonfatal`, 'CmpltTO');
      inject(kernel, { ...parse(bench.rootPort), uncor: UNC_COMPLETION_TIMEOUT });
      assert.equal(await signalled(err!, bench.settleMs), 1n, 'ERR signalled once');
      await until('recovery to finish', bench.settleMs, () => counter(kernel, `${rp()}/aer_dev_nonfatal`, 'CmpltTO') === timeouts + 1);
      assert.equal(counter(kernel, `${rp()}/aer_rootport_total_err_nonfatal`), nonfatal + 1);
      assert.equal(bar0.read32(0), EDU_IDENTIFICATION, 'the device still answers');
      bar0.write32(EDU_LIVENESS, 0x12345678);
      assert.equal(bar0.read32(EDU_LIVENESS), ~0x12345678 >>> 0);
    } finally {
      device.close();
    }
  });

  it('a non-fatal error while no ERR eventfd is set recovers all the same', async () => {
    const { kernel, bdf } = bench;
    const device = openDevice(bdf, { kernel });
    try {
      const bar0 = device.bar(0).mmap();
      const nonfatal = counter(kernel, `${rp()}/aer_rootport_total_err_nonfatal`);
      inject(kernel, { ...parse(bench.rootPort), uncor: UNC_COMPLETION_TIMEOUT });
      await until(
        'the error to be counted',
        bench.settleMs,
        () => counter(kernel, `${rp()}/aer_rootport_total_err_nonfatal`) === nonfatal + 1,
      );
      assert.equal(bar0.read32(0), EDU_IDENTIFICATION);
    } finally {
      device.close();
    }
  });

  it('a fatal error signals ERR and resets the bus behind vfio; writing the command register restores the BARs; close restores the rest', async () => {
    const { kernel, bdf } = bench;
    const device = openDevice(bdf, { kernel });
    try {
      const [err] = device.irqs.enable('err');
      const bar0 = device.bar(0).mmap();
      const barBefore = device.config.read32(PCI_BASE_ADDRESS_0);
      const fatal = counter(kernel, `${rp()}/aer_rootport_total_err_fatal`);
      const dlp = counter(kernel, `${rp()}/aer_dev_fatal`, 'DLP');
      injectAerError(bench.rootPort, { uncorrectable: UNC_DATA_LINK_PROTOCOL }, { kernel });
      assert.equal(await signalled(err!, bench.settleMs), 1n, 'ERR signalled once');
      await until('the fatal error to be counted', bench.settleMs, () => counter(kernel, `${rp()}/aer_dev_fatal`, 'DLP') === dlp + 1);
      await until('the bus reset', bench.settleMs, () => bar0.read32(0) === 0);
      assert.equal(counter(kernel, `${rp()}/aer_rootport_total_err_fatal`), fatal + 1);
      assert.equal(bar0.read32(0), 0, 'nothing decodes the BAR: a read returns 0');
      assert.equal(device.config.read16(PCI_COMMAND) & PCI_COMMAND_MEMORY, 0, 'memory decoding is off in the hardware');
      assert.equal(device.config.read32(PCI_BASE_ADDRESS_0), barBefore, "vfio's virtual BAR is unchanged");
      const physical = kernel.readFile(`/sys/bus/pci/devices/${bdf}/config`);
      assert.equal(physical.readUInt32LE(PCI_BASE_ADDRESS_0), 0, 'the BAR register itself is cleared');
      const rootConfig = kernel.readFile(`${rp()}/config`);
      assert.equal(
        rootConfig.readUInt32LE(AER_UNCOR_STATUS) & UNC_DATA_LINK_PROTOCOL,
        UNC_DATA_LINK_PROTOCOL,
        'recovery clears only non-fatal status bits',
      );
      device.config.write16(PCI_COMMAND, device.config.read16(PCI_COMMAND) | PCI_COMMAND_MEMORY);
      assert.equal(bar0.read32(0), EDU_IDENTIFICATION, 'vfio_bar_restore put the BARs back');
    } finally {
      device.close();
    }
    const again = openDevice(bdf, { kernel });
    try {
      assert.equal(again.bar(0).mmap().read32(0), EDU_IDENTIFICATION, 'the next open finds the device as vfio saved it');
    } finally {
      again.close();
    }
  });
}

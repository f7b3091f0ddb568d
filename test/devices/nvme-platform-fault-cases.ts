/**
 * The example NVMe driver against the faults the platform raises, the same cases on the model and
 * on the real kernel (the lab's nvme-port machine: QEMU's NVMe controller behind a pcie-root-port
 * with AER and a hotplug slot). A non-fatal AER error changes nothing; a fatal one resets the bus
 * behind vfio-pci, and the driver restores decoding (vfio_bar_restore), programs MSI-X again and
 * brings the controller back with its queues, I/O in flight failing with a typed error or
 * completing, never hanging; a hot-unplug asks for the device (REQ), the driver fails what is
 * outstanding and tells its owner, and the removal completes once the owner has closed it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Kernel } from '../../lib/sys/kernel';
import { DmaBuffer, injectAerError, openDevice } from '../../lib';
import { NvmeCommandError, NvmeControllerError, NvmeTimeoutError } from '../../examples/nvme/errors';
import { NvmeDriver } from '../../examples/nvme/nvme-driver';

export interface NvmePlatformBench {
  readonly kernel: Kernel;
  /** The NVMe controller behind the root port, bound to vfio-pci. */
  readonly bdf: string;
  readonly rootPort: string;
  /** Starts a hot-unplug of `bdf`; resolves when it has completed. */
  unplug(): Promise<void>;
  /** How long the kernel and the controller may take (TCG is slow). */
  readonly settleMs: number;
}

const UNC_COMPLETION_TIMEOUT = 1 << 14;
const UNC_DATA_LINK_PROTOCOL = 1 << 4;
const BLOCKS = 8;
const SIZE = 4096;

async function until(what: string, ms: number, done: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const typed = (e: unknown) => e instanceof NvmeControllerError || e instanceof NvmeCommandError || e instanceof NvmeTimeoutError;

export function nvmePlatformFaultCases(newBench: () => Promise<NvmePlatformBench>): void {
  let bench: NvmePlatformBench;
  before(async () => {
    bench = await newBench();
  });

  async function withDriver(body: (nvme: NvmeDriver, buffer: DmaBuffer) => Promise<void>, onRemoval?: () => void) {
    const device = openDevice(bench.bdf, { kernel: bench.kernel });
    let nvme: NvmeDriver | undefined;
    let buffer: DmaBuffer | undefined;
    try {
      nvme = await NvmeDriver.open(device, { commandTimeoutMs: bench.settleMs, ...(onRemoval ? { onRemovalRequest: onRemoval } : {}) });
      buffer = DmaBuffer.allocate(4 * SIZE, { space: device.dmaSpace });
      await body(nvme, buffer);
    } finally {
      buffer?.close();
      nvme?.close();
      device.close();
    }
  }

  it('a non-fatal AER error: the driver goes on without a reset', async () => {
    await withDriver(async (nvme, buffer) => {
      const pattern = randomBytes(SIZE);
      buffer.bytes.set(pattern, 0);
      await nvme.write(1, 64, BLOCKS, buffer, 0);
      injectAerError(bench.rootPort, { uncorrectable: UNC_COMPLETION_TIMEOUT }, { kernel: bench.kernel });
      await new Promise((r) => setTimeout(r, Math.min(bench.settleMs, 500)));
      await nvme.read(1, 64, BLOCKS, buffer, SIZE);
      assert.ok(Buffer.from(buffer.bytes.subarray(SIZE, 2 * SIZE)).equals(pattern));
      assert.equal(nvme.resets, 0);
    });
  });

  it('a fatal AER error: the driver restores the function, resets the controller, and the data and I/O are there after', async () => {
    await withDriver(async (nvme, buffer) => {
      const pattern = randomBytes(SIZE);
      buffer.bytes.set(pattern, 0);
      await nvme.write(1, 128, BLOCKS, buffer, 0);
      // I/O in flight when the error comes: each completes or fails typed, none hangs.
      const inFlight = Array.from({ length: 8 }, () => nvme.read(1, 128, BLOCKS, buffer, 3 * SIZE));
      injectAerError(bench.rootPort, { uncorrectable: UNC_DATA_LINK_PROTOCOL }, { kernel: bench.kernel });
      const settled = await Promise.allSettled(inFlight);
      for (const s of settled) if (s.status === 'rejected') assert.ok(typed(s.reason), `a typed error, not ${String(s.reason)}`);
      await until('the driver to reset the controller', bench.settleMs * 2, () => nvme.resets >= 1);
      await nvme.read(1, 128, BLOCKS, buffer, SIZE);
      assert.ok(Buffer.from(buffer.bytes.subarray(SIZE, 2 * SIZE)).equals(pattern), 'the namespace kept the data');
      const next = randomBytes(SIZE);
      buffer.bytes.set(next, 2 * SIZE);
      await nvme.write(1, 136, BLOCKS, buffer, 2 * SIZE);
      await nvme.read(1, 136, BLOCKS, buffer, 3 * SIZE);
      assert.ok(Buffer.from(buffer.bytes.subarray(3 * SIZE, 4 * SIZE)).equals(next), 'I/O works after the reset');
      assert.equal(nvme.completion, 'interrupt', 'completions still by MSI-X');
    });
  });

  it('a hot-unplug: the driver fails what is outstanding, tells its owner, and the removal completes once it is closed', async () => {
    const { kernel, bdf } = bench;
    const device = openDevice(bdf, { kernel });
    let asked = false;
    const nvme = await NvmeDriver.open(device, { commandTimeoutMs: bench.settleMs, onRemovalRequest: () => (asked = true) });
    const buffer = DmaBuffer.allocate(SIZE, { space: device.dmaSpace });
    let gone: Promise<void> | undefined;
    try {
      gone = bench.unplug();
      await until('the removal request', bench.settleMs, () => asked);
      await assert.rejects(
        nvme.read(1, 0, BLOCKS, buffer, 0),
        (e: unknown) => e instanceof NvmeControllerError && /asked for the device back/.test(e.message),
      );
    } finally {
      buffer.close();
      nvme.close();
      device.close();
    }
    await gone;
    assert.equal(kernel.exists(`/sys/bus/pci/devices/${bdf}`), false, 'the function has left the bus');
  });
}

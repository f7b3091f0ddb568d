/**
 * Hot-unplug of a function vfio-pci drives, the same cases on the model and on the real kernel
 * (the lab's hotplug machine: edu functions behind pcie-root-ports with hotplug slots). What Linux 7.3
 * does (vfio_unregister_group_dev, vfio_pci_core_request): the device is withdrawn at once — its
 * cdev goes, so nothing new can open it — the user gets the request interrupt, the fds it holds
 * keep working, and the removal waits until the last of them is closed; only then does the
 * function leave sysfs.
 */
import assert from 'node:assert/strict';
import type { Kernel } from '../../lib/sys/kernel';
import { openDevice } from '../../lib/vfio/open-device';
import { isVfioError } from '../../lib/sys/errors';

/** A machine with a hot-pluggable function bound to vfio-pci. */
export interface HotUnplugBench {
  readonly kernel: Kernel;
  /** The function behind the hotplug slot, bound to vfio-pci. */
  readonly bdf: string;
  /** Starts the removal (QEMU device_del / the slot's power file); resolves when it has completed. */
  unplug(): Promise<void>;
  /** Leaves the machine as the next case expects it. */
  restore(): Promise<void>;
  /** How long a removal that does not wait takes to complete at most (TCG is slow). */
  readonly settleMs: number;
}

const EDU_IDENTIFICATION = 0x010000ed;
function settled(p: Promise<void>, ms: number): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  return new Promise((resolve) => setTimeout(() => resolve(done), ms));
}

export function hotUnplugCases(newBench: () => Promise<HotUnplugBench>): void {
  let bench: HotUnplugBench;
  beforeEach(async () => {
    bench = await newBench();
  });
  afterEach(async () => {
    await bench.restore();
  });

  it('an open device: REQ is signalled, the cdev goes at once, the open device still works, and the removal waits for close', async () => {
    const { kernel, bdf } = bench;
    const device = openDevice(bdf, { kernel });
    const cdevs = kernel.readdir(`/sys/bus/pci/devices/${bdf}/vfio-dev`);
    assert.equal(cdevs.length, 1);
    const [req] = device.irqs.enable('req');
    const bar0 = device.bar(0).mmap();
    const gone = bench.unplug();
    const count = await req!.wait();
    assert.ok(count >= 1n, 'the request interrupt arrived');
    assert.equal(kernel.exists(`/dev/vfio/devices/${cdevs[0]!}`), false, 'the cdev node is gone at once');
    assert.throws(
      () => openDevice(bdf, { kernel }),
      (e: unknown) => isVfioError(e),
      'no new open while the removal waits',
    );
    assert.equal(bar0.read32(0), EDU_IDENTIFICATION, 'the open device still answers');
    assert.equal(await settled(gone, bench.settleMs), false, 'the removal waits for the user');
    assert.ok(kernel.exists(`/sys/bus/pci/devices/${bdf}`), 'the function is still on the bus');
    device.close();
    await gone;
    assert.equal(kernel.exists(`/sys/bus/pci/devices/${bdf}`), false, 'the function has left the bus');
  });

  it('an open device without a REQ eventfd: the removal still waits until the user closes it', async () => {
    const { kernel, bdf } = bench;
    const device = openDevice(bdf, { kernel });
    const gone = bench.unplug();
    assert.equal(await settled(gone, bench.settleMs), false, 'the removal waits for the user');
    device.close();
    await gone;
    assert.equal(kernel.exists(`/sys/bus/pci/devices/${bdf}`), false);
  });

  it('a device nobody has open is removed at once', async () => {
    const { kernel, bdf } = bench;
    await bench.unplug();
    assert.equal(kernel.exists(`/sys/bus/pci/devices/${bdf}`), false);
  });
}

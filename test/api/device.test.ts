import assert from 'node:assert/strict';
import * as P from '../../lib/uapi/pci';
import * as V from '../../lib/uapi/vfio';
import { openDevice } from '../../lib/vfio/open-device';
import { VfioDevice } from '../../lib/vfio/device';
import { Iommufd } from '../../lib/iommu/iommufd';
import { PciDevice } from '../../lib/pci/pci-device';
import { isVfioError } from '../../lib/sys/errors';
import { describeOnTargets, skipUnless } from './support/targets';
import { EDU, EDU_DEVICE, EDU_ID, EDU_VENDOR, withTimeout } from './support/edu';

describeOnTargets('VfioDevice on edu', (target) => {
  it('openDevice takes the cdev path where the kernel has it and says why', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    assert.equal(dev.backend.kind, t.traits.cdev ? 'cdev' : 'group');
    assert.equal(dev.backend.noiommu, t.traits.noiommu);
    assert.match(dev.backend.reason, t.traits.cdev ? /device cdev .* and \/dev\/iommu exist/ : /group/);
    if (t.traits.cdev) assert.ok(dev.iommufd && dev.ioas, 'the cdev path binds to an iommufd and attaches to an IOAS');
  });

  it('openDevice falls back to (or is forced onto) the legacy group path', function () {
    const t = target();
    skipUnless(this, t.traits.group, 'this kernel has no VFIO group interface');
    using dev = openDevice(t.bdf, { kernel: t.kernel, prefer: 'group' });
    assert.equal(dev.backend.kind, 'group');
    assert.equal(dev.backend.noiommu, t.traits.noiommu);
    assert.match(dev.backend.reason, t.traits.noiommu ? /VFIO_NOIOMMU_IOMMU.*pagemap/ : /type1/);
    assert.equal(dev.config.vendorId, EDU_VENDOR);
  });

  it('VfioDevice.open resolves the cdev through sysfs, binds and attaches', function () {
    const t = target();
    skipUnless(this, t.traits.cdev, 'needs the device cdev and iommufd');
    using iommufd = Iommufd.open(t.kernel);
    const dev = VfioDevice.open(t.bdf, { iommufd });
    assert.ok(dev.deviceId > 0);
    assert.equal(dev.bdf, t.bdf);
    assert.ok(dev.ioas, 'attached to a new IOAS by default');
    const cdev = PciDevice.get(t.bdf, t.kernel).cdevPath();
    assert.equal(cdev, `/dev/vfio/devices/${t.traits.noiommu ? 'noiommu-' : ''}vfio0`);
    iommufd.close();
    assert.equal(dev.closed, true, 'closing the iommufd closes the devices bound to it');
  });

  it('reports device info, regions and config space of edu', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    assert.ok(dev.info.flags & V.VFIO_DEVICE_FLAGS_PCI);
    assert.equal(dev.info.numRegions, V.VFIO_PCI_NUM_REGIONS);
    assert.equal(dev.info.numIrqs, V.VFIO_PCI_NUM_IRQS);
    const names = dev.regions.map((r) => r.name);
    assert.deepEqual(names.slice(0, 8), ['BAR0', 'BAR1', 'BAR2', 'BAR3', 'BAR4', 'BAR5', 'ROM', 'config']);
    assert.equal(dev.bar(0).size, 1n << 20n);
    assert.ok(dev.bar(0).mappable && dev.bar(0).readable && dev.bar(0).writable);
    assert.equal(dev.bar(1).size, 0n);
    assert.equal(dev.config.vendorId, EDU_VENDOR);
    assert.equal(dev.config.deviceId, EDU_DEVICE);
    assert.equal(dev.config.classCode >>> 16, 0x00);
    const msi = dev.config.msi();
    assert.ok(msi, 'edu has an MSI capability');
    assert.equal(msi.maxVectors, 1);
    assert.equal(msi.is64Bit, true);
    assert.equal(dev.config.msix(), undefined);
    assert.deepEqual(
      dev.config.capabilities().map((c) => c.id),
      [P.PCI_CAP_ID_MSI],
    );
  });

  it('maps BAR0 and accesses registers at exact width', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const bar = dev.bar(0).mmap();
    assert.equal(bar.length, 1n << 20n);
    assert.equal(bar.read32(EDU.ID), EDU_ID);
    bar.write32(EDU.LIVENESS, 0x12345678);
    assert.equal(bar.read32(EDU.LIVENESS), ~0x12345678 >>> 0);
    assert.equal(dev.bar(0).read32(EDU.ID), EDU_ID, 'pread of the region agrees with the mapping');
    dev.bar(0).write32(EDU.LIVENESS, 0);
    assert.equal(bar.read32(EDU.LIVENESS), 0xffffffff);
  });

  // edu's BAR refuses accesses narrower than 4 bytes (they read as 0), answers a 64-bit read below
  // 0x80 with all-ones, and has no register at 0x84: a 64-bit access split in two 32-bit halves
  // would write only the low half and read the high half as all-ones, a 32-bit one split in bytes
  // would read 0. So these values are only seen if each access has exactly its width, also once
  // the loop is hot enough for V8's optimizing compiler to run it.
  it('keeps every access at its width when the access loop is hot (edu rejects other widths)', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const bar = dev.bar(0).mmap();
    assert.equal(bar.direct, t.kernel.kind === 'native', 'a real BAR is accessed directly, a simulated one through the kernel');
    assert.equal(bar.read8(EDU.ID), 0, 'a 1-byte read is refused by edu');
    assert.equal(bar.read16(EDU.ID), 0, 'a 2-byte read is refused by edu');
    assert.equal(bar.read64(EDU.ID), (1n << 64n) - 1n, 'a 64-bit read of a 32-bit register reads all-ones');
    const rounds = t.kernel.kind === 'native' ? 20_000 : 500;
    for (let i = 0; i < rounds; i++) {
      const low = (0x1000 + i * 8) >>> 0;
      const address = (BigInt(i + 1) << 32n) | BigInt(low);
      bar.write64(EDU.DMA_SRC, address);
      const back = bar.read64(EDU.DMA_SRC);
      if (back !== address) assert.fail(`round ${i}: DMA source 0x${address.toString(16)} read back as 0x${back.toString(16)}`);
      const id = bar.read32(EDU.ID);
      if (id !== EDU_ID) assert.fail(`round ${i}: identification read as 0x${id.toString(16)}`);
      bar.write32(EDU.LIVENESS, low);
      const inverted = bar.read32(EDU.LIVENESS);
      if (inverted !== ~low >>> 0)
        assert.fail(`round ${i}: liveness read as 0x${inverted.toString(16)} after writing 0x${low.toString(16)}`);
    }
    bar.write64(EDU.DMA_SRC, 0n);
  });

  it('enables bus mastering through the command register', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    dev.config.disableBusMaster();
    assert.equal(dev.config.command & P.PCI_COMMAND_MASTER, 0);
    dev.config.enableBusMaster();
    assert.equal(dev.config.command & P.PCI_COMMAND_MASTER, P.PCI_COMMAND_MASTER);
  });

  it('delivers an MSI through an eventfd vector, and the iterator ends when the vector closes', async () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const bar = dev.bar(0).mmap();
    dev.config.enableBusMaster();
    const info = dev.irqs.info('msi');
    assert.equal(info.count, 1);
    const [vector] = dev.irqs.enable('msi', 1);
    assert.ok(vector);
    assert.equal(dev.irqs.enabledKind, 'msi');
    const waiting = vector.wait();
    bar.write32(EDU.IRQ_RAISE, 0x1);
    assert.equal(await withTimeout(waiting, 5000, 'MSI'), 1n);
    assert.equal(bar.read32(EDU.IRQ_STATUS) & 1, 1);
    bar.write32(EDU.IRQ_ACK, 0x1);
    const iterator = vector[Symbol.asyncIterator]();
    const next = iterator.next();
    vector.trigger();
    assert.deepEqual(await withTimeout(next, 5000, 'software trigger'), { value: 1n, done: false });
    const pending = iterator.next();
    vector.close();
    assert.deepEqual(await withTimeout(pending, 5000, 'the end of the iteration'), { value: undefined, done: true });
    assert.equal(dev.irqs.enabledKind, undefined, 'closing the only vector disables MSI');
  });

  it('delivers INTx, which stays masked until unmasked', async () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const bar = dev.bar(0).mmap();
    const [intx] = dev.irqs.enable('intx');
    assert.ok(intx);
    bar.write32(EDU.IRQ_RAISE, 0x2);
    assert.equal(await withTimeout(intx.wait(), 5000, 'INTx'), 1n);
    bar.write32(EDU.IRQ_ACK, 0x2);
    dev.irqs.unmask('intx');
    bar.write32(EDU.IRQ_RAISE, 0x4);
    assert.equal(await withTimeout(intx.wait(), 5000, 'INTx after unmask'), 1n);
    bar.write32(EDU.IRQ_ACK, 0x4);
    dev.irqs.disable('intx');
    assert.equal(intx.closed, true);
  });

  it('switching interrupt kinds disables the previous one', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const [intx] = dev.irqs.enable('intx');
    const [msi] = dev.irqs.enable('msi');
    assert.equal(intx!.closed, true);
    assert.equal(msi!.closed, false);
    assert.equal(dev.irqs.enabledKind, 'msi');
    assert.throws(
      () => dev.irqs.enable('msix', 1),
      (e: unknown) => isVfioError(e, 'ERR_VFIO_TOO_MANY_VECTORS') && /no msix capability/.test(e.hint ?? ''),
    );
  });

  it('reset reports that edu has no reset method, with a hint', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    assert.equal(dev.canReset, false);
    assert.throws(
      () => dev.reset(),
      (e: unknown) => isVfioError(e, 'EINVAL') && e.ioctl === 'VFIO_DEVICE_RESET' && /no reset method/.test(e.hint ?? ''),
    );
  });

  it('closing the device closes its mappings and vectors; use after close is EBADF; double close is harmless', () => {
    const t = target();
    const dev = openDevice(t.bdf, { kernel: t.kernel });
    const bar = dev.bar(0).mmap();
    const [vector] = dev.irqs.enable('msi');
    const region = dev.bar(0);
    dev.close();
    assert.equal(bar.closed, true);
    assert.equal(vector!.closed, true);
    for (const use of [
      () => dev.info,
      () => bar.read32(0),
      () => region.read32(0),
      () => dev.irqs,
      () => vector!.eventfd,
      () => dev.config.vendorId,
    ]) {
      assert.throws(use, (e: unknown) => isVfioError(e, 'EBADF') && /is closed/.test(e.message));
    }
    dev.close();
    bar.close();
  });

  it('refuses out-of-range region accesses before they reach the kernel', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    assert.throws(() => dev.bar(0).read(1n << 20n, 4), RangeError);
    assert.throws(() => dev.config.read32(256), RangeError);
    assert.throws(() => dev.bar(1).mmap(), RangeError);
    assert.throws(() => dev.bar(6), RangeError);
  });
});

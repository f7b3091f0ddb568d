import assert from 'node:assert/strict';
import * as P from '../../lib/uapi/pci';
import * as V from '../../lib/uapi/vfio';
import { openDevice } from '../../lib/vfio/open-device';
import { Iommufd } from '../../lib/iommu/iommufd';
import { VfioContainer } from '../../lib/vfio/container';
import { VfioGroup } from '../../lib/vfio/group';
import { PciDevice } from '../../lib/pci/pci-device';
import { isVfioError } from '../../lib/sys/errors';
import { describeOnTargets, skipUnless } from './support/targets';
import { EDU, EDU_ID, withTimeout } from './support/edu';

describeOnTargets('VfioDevice details', (target) => {
  it('reads the config header in one access and field by field alike', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const config = dev.region(V.VFIO_PCI_CONFIG_REGION_INDEX);
    assert.equal(config.name, 'config');
    const header = config.read(0, 64);
    assert.equal(header.length, 64);
    assert.equal(header.readUInt16LE(P.PCI_VENDOR_ID), dev.config.vendorId);
    assert.equal(header.readUInt16LE(P.PCI_SUBSYSTEM_VENDOR_ID), dev.config.subsystemVendorId);
    assert.equal(header.readUInt16LE(P.PCI_SUBSYSTEM_ID), dev.config.subsystemId);
    assert.equal(header[P.PCI_REVISION_ID], dev.config.revision);
    assert.equal(header[P.PCI_INTERRUPT_PIN], dev.config.interruptPin);
    assert.equal(dev.config.headerType, 0, 'edu is an endpoint');
    assert.equal(dev.config.interruptPin, 1, 'edu uses INTA');
    assert.equal(dev.config.size, 256n, 'edu is conventional PCI: no extended config space');
    assert.deepEqual(dev.config.extendedCapabilities(), []);
    assert.equal(dev.config.findExtendedCapability(P.PCI_EXT_CAP_ID_ERR), undefined);
    assert.deepEqual(dev.config.findCapability(P.PCI_CAP_ID_MSI), dev.config.capabilities()[0]);
  });

  it('sets and clears command bits', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    dev.config.enableMemory();
    assert.ok(dev.config.command & P.PCI_COMMAND_MEMORY);
    dev.config.disableIntx();
    assert.ok(dev.config.command & P.PCI_COMMAND_INTX_DISABLE);
    dev.config.enableIntx();
    assert.equal(dev.config.command & P.PCI_COMMAND_INTX_DISABLE, 0);
    const value = dev.config.updateCommand(P.PCI_COMMAND_MASTER, P.PCI_COMMAND_MEMORY);
    assert.equal(value & (P.PCI_COMMAND_MASTER | P.PCI_COMMAND_MEMORY), P.PCI_COMMAND_MASTER);
    dev.config.enableMemory();
  });

  it('writes BAR registers through pwrite and reads them back through the mapping', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const bar = dev.bar(0);
    const written = Buffer.alloc(4);
    written.writeUInt32LE(0x0f0f0f0f);
    assert.equal(bar.write(EDU.LIVENESS, written), 4);
    using mmio = bar.mmap(0, 4096);
    assert.equal(mmio.length, 4096n);
    assert.equal(mmio.read32(EDU.LIVENESS), 0xf0f0f0f0);
    assert.equal(bar.read(EDU.ID, 4).readUInt32LE(0), EDU_ID);
    mmio.write64(EDU.DMA_SRC, 0x1234_5678_9abc_def0n);
    assert.equal(mmio.read64(EDU.DMA_SRC), 0x1234_5678_9abc_def0n);
    assert.equal(bar.read64(EDU.DMA_SRC), 0x1234_5678_9abc_def0n);
  });

  it('masks and unmasks INTx; an aborted wait rejects with ECANCELED and the vector lives on', async () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const [intx] = dev.irqs.enable('intx');
    const aborter = new AbortController();
    const waiting = intx!.wait(aborter.signal);
    aborter.abort();
    await assert.rejects(waiting, (e: unknown) => isVfioError(e, 'ECANCELED'));
    assert.equal(intx!.closed, false);
    dev.irqs.mask('intx');
    intx!.trigger();
    assert.equal(await withTimeout(intx!.wait(), 5000, 'INTx software trigger'), 1n, 'a masked INTx still signals a loopback trigger');
    dev.irqs.unmask('intx');
    assert.equal(dev.irqs.info('intx').flags & V.VFIO_IRQ_INFO_AUTOMASKED, V.VFIO_IRQ_INFO_AUTOMASKED);
  });

  it('reports that edu cannot be hot reset (a root-bus device), with a hint', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    assert.throws(
      () => dev.hotResetInfo(),
      (e: unknown) => isVfioError(e, 'ENODEV') && /root bus/.test(e.hint ?? ''),
    );
    // The group path wants the fds of the affected groups (EINVAL without them); cdev: ENODEV.
    assert.throws(
      () => dev.hotReset(),
      (e: unknown) => isVfioError(e) && /^(ENODEV|EINVAL)$/.test(e.code) && e.ioctl === 'VFIO_DEVICE_PCI_HOT_RESET',
    );
  });

  it('refuses dirty tracking on a HWPT not allocated for it, naming the ioctl', function () {
    const t = target();
    skipUnless(this, t.traits.cdev, 'needs iommufd');
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    using hwpt = dev.iommufd!.hwpt(dev, dev.ioas!);
    assert.throws(
      () => hwpt.setDirtyTracking(true),
      (e: unknown) => isVfioError(e) && e.ioctl === 'IOMMU_HWPT_SET_DIRTY_TRACKING',
    );
  });

  it('switches the rlimit accounting mode of an iommufd before anything is pinned', function () {
    const t = target();
    skipUnless(this, t.traits.cdev, 'needs iommufd');
    using iommufd = Iommufd.open(t.kernel);
    assert.equal(iommufd.rlimitMode('user'), 'user');
    assert.equal(iommufd.rlimitMode('process'), 'process');
  });

  it('drives the legacy group and container directly', function () {
    const t = target();
    skipUnless(this, t.traits.group, 'this kernel has no VFIO group interface');
    const pci = PciDevice.get(t.bdf, t.kernel);
    using container = VfioContainer.open(t.kernel);
    using group = VfioGroup.open(pci.iommuGroup!, { noiommu: t.traits.noiommu, kernel: t.kernel });
    assert.deepEqual(group.status(), { viable: true, containerSet: false });
    assert.equal(container.checkExtension(V.VFIO_NOIOMMU_IOMMU), t.traits.noiommu, 'the noiommu model exists only in noiommu mode');
    group.setContainer(container);
    assert.equal(group.status().containerSet, true);
    const model = t.traits.noiommu ? V.VFIO_NOIOMMU_IOMMU : V.VFIO_TYPE1v2_IOMMU;
    assert.equal(container.checkExtension(model), true);
    container.setIommu(model);
    assert.equal(container.iommu, model);
    if (!t.traits.noiommu) {
      const info = container.info();
      assert.ok(info.iovaPageSizes & 4096n);
      assert.ok(info.iovaRanges.length >= 1);
    }
    using dev = group.openDevice(t.bdf, { dmaSpace: container });
    assert.equal(dev.backend.kind, 'group');
    assert.equal(dev.bar(0).mmap().read32(EDU.ID), EDU_ID);
    dev.close();
    group.unsetContainer();
    assert.equal(group.status().containerSet, false);
  });
});

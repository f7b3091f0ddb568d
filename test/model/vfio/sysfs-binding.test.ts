/**
 * Binding edu to vfio-pci through sysfs (drivers/base/bus.c, dd.c, drivers/pci/pci-driver.c) and
 * the nodes VFIO registration creates and removes (vfio_main.c __vfio_register_dev, group.c
 * vfio_group_find_or_alloc / vfio_noiommu_group_alloc, device_cdev.c vfio_init_device_cdev).
 */
import assert from 'node:assert/strict';
import { EDU_BDF, TestHost, expectErrno } from './harness';

const DEV = `/sys/bus/pci/devices/${EDU_BDF}`;

describe('PCI sysfs and vfio-pci binding', () => {
  it("publishes the edu function with the kernel's attribute formats (pci-sysfs.c)", () => {
    const h = new TestHost();
    assert.equal(h.read(`${DEV}/vendor`), '0x1234\n');
    assert.equal(h.read(`${DEV}/device`), '0x11e8\n');
    assert.equal(h.read(`${DEV}/class`), '0x00ff00\n');
    assert.equal(h.read(`${DEV}/subsystem_vendor`), '0x1af4\n');
    assert.equal(h.read(`${DEV}/subsystem_device`), '0x1100\n');
    assert.equal(h.read(`${DEV}/driver_override`), '(null)\n');
    const resource = h.read(`${DEV}/resource`).split('\n');
    assert.equal(resource.length, 8, 'six BARs and the ROM, newline-terminated');
    assert.equal(resource[0], '0x00000000fea00000 0x00000000feafffff 0x0000000000040200');
    assert.equal(resource[1], '0x0000000000000000 0x0000000000000000 0x0000000000000000');
    assert.equal(h.exists(`${DEV}/driver`), false, 'no driver at boot');
    assert.equal(h.exists('/dev/vfio/vfio'), true, 'the container exists from boot');
    assert.equal(h.exists('/dev/vfio/devices'), false);
  });

  it('driver_override + drivers_probe binds vfio-pci and creates the noiommu cdev and group (noiommu host)', () => {
    const h = new TestHost();
    h.bindVfioPci();
    assert.equal(h.readlink(`${DEV}/driver`), '../../../bus/pci/drivers/vfio-pci');
    assert.equal(h.exists('/dev/vfio/devices/noiommu-vfio0'), true);
    assert.equal(h.exists('/dev/vfio/noiommu-0'), true);
    assert.deepEqual([...(h.vfs.lookup(`${DEV}/vfio-dev`) as { children: Map<string, unknown> }).children.keys()], ['noiommu-vfio0']);
    assert.equal(h.readlink(`${DEV}/iommu_group`), '../../../kernel/iommu_groups/0');
    assert.equal(h.read('/sys/kernel/iommu_groups/0/name'), 'vfio-noiommu\n');
    assert.equal(h.machine.vfio.tainted, true);
  });

  it('unbind removes the cdev, the group and the fake IOMMU group (vfio_unregister_group_dev)', () => {
    const h = new TestHost();
    h.bindVfioPci();
    h.write('/sys/bus/pci/drivers/vfio-pci/unbind', EDU_BDF);
    assert.equal(h.exists(`${DEV}/driver`), false);
    assert.equal(h.exists('/dev/vfio/devices'), false, 'devtmpfs removes the emptied directory');
    assert.equal(h.exists('/dev/vfio/noiommu-0'), false);
    assert.equal(h.exists(`${DEV}/iommu_group`), false);
    assert.equal(h.exists('/sys/kernel/iommu_groups/0'), false);
  });

  it('without noiommu mode a device without an IOMMU cannot be bound: probe fails, drivers_probe still succeeds', () => {
    const h = new TestHost({ noiommu: false });
    h.bindVfioPci();
    assert.equal(h.exists(`${DEV}/driver`), false);
    assert.throws(() => h.write('/sys/bus/pci/drivers/vfio-pci/bind', EDU_BDF), expectErrno('EINVAL'));
  });

  it('the noiommu parameter is read as Y/N and takes effect for the next registration', () => {
    const h = new TestHost({ noiommu: false });
    assert.equal(h.read('/sys/module/vfio/parameters/enable_unsafe_noiommu_mode'), 'N\n');
    assert.throws(() => h.write('/sys/module/vfio/parameters/enable_unsafe_noiommu_mode', 'maybe'), expectErrno('EINVAL'));
    h.write('/sys/module/vfio/parameters/enable_unsafe_noiommu_mode', '1\n');
    assert.equal(h.read('/sys/module/vfio/parameters/enable_unsafe_noiommu_mode'), 'Y\n');
    h.bindVfioPci();
    assert.equal(h.exists('/dev/vfio/devices/noiommu-vfio0'), true);
  });

  it('bind without driver_override does not match vfio-pci (override-only ID table): ENODEV', () => {
    const h = new TestHost();
    assert.throws(() => h.write('/sys/bus/pci/drivers/vfio-pci/bind', EDU_BDF), expectErrno('ENODEV'));
  });

  it('new_id makes vfio-pci claim the device at once (new_id_store → driver_attach)', () => {
    const h = new TestHost();
    h.write('/sys/bus/pci/drivers/vfio-pci/new_id', '1234 11e8');
    assert.equal(h.exists('/dev/vfio/devices/noiommu-vfio0'), true);
    assert.throws(() => h.write('/sys/bus/pci/drivers/vfio-pci/new_id', '1234'), expectErrno('EINVAL'));
  });

  it('bind of a bound device is EBUSY; unbind from a driver it is not bound to is ENODEV; unknown names are ENODEV', () => {
    const h = new TestHost();
    h.bindVfioPci();
    assert.throws(() => h.write('/sys/bus/pci/drivers/vfio-pci/bind', EDU_BDF), expectErrno('EBUSY'));
    assert.throws(() => h.write('/sys/bus/pci/drivers/vfio-pci/unbind', '0000:00:04.0'), expectErrno('ENODEV'));
    assert.throws(() => h.write('/sys/bus/pci/drivers_probe', '0000:00:09.0'), expectErrno('ENODEV'));
  });

  it('driver_override shows the name, clears with an empty write', () => {
    const h = new TestHost();
    h.write(`${DEV}/driver_override`, 'vfio-pci\n');
    assert.equal(h.read(`${DEV}/driver_override`), 'vfio-pci\n');
    h.write(`${DEV}/driver_override`, '\n');
    assert.equal(h.read(`${DEV}/driver_override`), '(null)\n');
  });

  it('behind an IOMMU the device has its group from boot and gets /dev/vfio/N and vfioN', () => {
    const h = new TestHost({ iommu: true, noiommu: false, functions: [{ address: EDU_BDF, device: 'edu', options: { iommuGroup: 3 } }] });
    assert.equal(h.readlink(`${DEV}/iommu_group`), '../../../kernel/iommu_groups/3');
    h.bindVfioPci();
    assert.equal(h.exists('/dev/vfio/devices/vfio0'), true);
    assert.equal(h.exists('/dev/vfio/3'), true);
    h.write('/sys/bus/pci/drivers/vfio-pci/unbind', EDU_BDF);
    assert.equal(h.exists('/dev/vfio/3'), false);
    assert.equal(h.readlink(`${DEV}/iommu_group`), '../../../kernel/iommu_groups/3', 'the IOMMU group outlives the binding');
  });

  it('null group (no VFIO group interface): only the noiommu cdev, no /dev/vfio/noiommu-N, no container', () => {
    const h = new TestHost({ kconfig: { group: false, container: false } });
    h.bindVfioPci();
    assert.equal(h.exists('/dev/vfio/devices/noiommu-vfio0'), true);
    assert.equal(h.exists('/dev/vfio/noiommu-0'), false);
    assert.equal(h.exists('/dev/vfio/vfio'), false);
    assert.equal(h.exists(`${DEV}/iommu_group`), false);
  });

  it('pre-7.3 legacy noiommu: group only, the vfio-dev entry is vfio0 and has no device node', () => {
    const h = new TestHost({ kconfig: { iommufdNoiommu: false } });
    h.bindVfioPci();
    assert.equal(h.exists('/dev/vfio/noiommu-0'), true);
    assert.equal(h.exists('/dev/vfio/devices'), false);
    assert.equal(h.exists(`${DEV}/vfio-dev/vfio0`), true);
  });
});

/**
 * bindVfio cannot hurt the host: it refuses devices the host is using (unless forced), checks
 * that vfio-pci exists before it unbinds anything, and gives the device back to its driver when
 * a later step fails; unbind takes only driver names for `restore`.
 */
import assert from 'node:assert/strict';
import { createModelKernel, profiles, type ModelKernel, type Profile } from '../../lib/model';
import { PciDevice } from '../../lib/pci/pci-device';
import { isVfioError } from '../../lib/sys/errors';
import { fail } from '../../lib/model/errno';

const EDU = '0000:00:03.0';

function onStub(): ModelKernel {
  const base: Profile = profiles['linux-7.3-iommu'];
  return createModelKernel({ ...base, name: `${base.name}+pci-stub`, pci: base.pci.map((d) => ({ ...d, driver: 'pci-stub' })) });
}

/** Puts a class entry (/sys/class/net/eth0, /sys/block/sda) below the edu device, as the kernel links them. */
function classEntryBelowEdu(kernel: ModelKernel, classDir: string, name: string): string {
  const device = kernel.vfs.realpath(`/sys/bus/pci/devices/${EDU}`);
  const subdir = classDir === '/sys/class/net' ? 'net' : 'block';
  kernel.vfs.add(`${device}/${subdir}/${name}/dev`, { type: 'attr', read: () => '8:0\n' });
  kernel.vfs.add(`${classDir}/${name}`, {
    type: 'link',
    target: () => `${classDir === '/sys/block' ? '..' : '../..'}/devices/${device.split('/sys/devices/')[1]}/${subdir}/${name}`,
  });
  return `${device}/${subdir}/${name}`;
}

describe('bindVfio and unbind cannot hurt the host [model]', () => {
  it('refuses a device with a network interface that is up, and binds it once the interface is down or with force', () => {
    const kernel = onStub();
    const dir = classEntryBelowEdu(kernel, '/sys/class/net', 'eth0');
    let flags = '0x1003';
    kernel.vfs.add(`${dir}/flags`, { type: 'attr', read: () => `${flags}\n` });
    const edu = PciDevice.get(EDU, { kernel });
    assert.throws(
      () => edu.bindVfio(),
      (e: unknown) => isVfioError(e, 'ERR_VFIO_IN_USE') && /eth0 is up/.test(e.message),
    );
    assert.equal(edu.driver, 'pci-stub', 'nothing was changed');
    flags = '0x1002';
    assert.deepEqual(edu.usage(), []);
    flags = '0x1003';
    edu.bindVfio({ force: true });
    assert.equal(edu.driver, 'vfio-pci');
  });

  it('refuses a device whose disk or partition is mounted, active swap or held', () => {
    const kernel = onStub();
    const disk = classEntryBelowEdu(kernel, '/sys/block', 'sda');
    kernel.vfs.add(`${disk}/sda1/partition`, { type: 'attr', read: () => '1\n' });
    const edu = PciDevice.get(EDU, { kernel });
    assert.deepEqual(edu.usage(), [], 'a disk nobody uses');
    kernel.vfs.add('/proc/mounts', { type: 'attr', read: () => '/dev/sda1 / ext4 rw 0 0\nproc /proc proc rw 0 0\n' });
    kernel.vfs.add('/proc/swaps', { type: 'attr', read: () => 'Filename Type Size Used Priority\n/dev/sda /dev/sda partition 1 0 -2\n' });
    kernel.vfs.add(`${disk}/holders/dm-0`, { type: 'link', target: () => '../../dm-0' });
    assert.deepEqual(edu.usage(), ['/dev/sda is active swap', '/dev/sda is held by dm-0', '/dev/sda1 is mounted']);
    assert.throws(
      () => edu.bindVfio(),
      (e: unknown) => isVfioError(e, 'ERR_VFIO_IN_USE'),
    );
    assert.equal(edu.driver, 'pci-stub');
  });

  it('refuses a bridge with devices below it and the boot VGA device', () => {
    const kernel = onStub();
    const device = kernel.vfs.realpath(`/sys/bus/pci/devices/${EDU}`);
    kernel.vfs.add(`${device}/0000:01:00.0/vendor`, { type: 'attr', read: () => '0x8086\n' });
    kernel.vfs.add(`${device}/boot_vga`, { type: 'attr', read: () => '1\n' });
    const edu = PciDevice.get(EDU, { kernel });
    assert.deepEqual(edu.usage(), ['it is a bridge with 0000:01:00.0 below it', 'it is the boot VGA device']);
    assert.throws(
      () => edu.bindVfio(),
      (e: unknown) => isVfioError(e, 'ERR_VFIO_IN_USE'),
    );
  });

  it('checks that vfio-pci exists before unbinding the current driver', () => {
    const kernel = onStub();
    kernel.vfs.remove('/sys/bus/pci/drivers/vfio-pci');
    const edu = PciDevice.get(EDU, { kernel });
    assert.throws(
      () => edu.bindVfio(),
      (e: unknown) => isVfioError(e, 'ERR_VFIO_NOT_BOUND') && /modprobe vfio-pci/.test(e.message),
    );
    assert.equal(edu.driver, 'pci-stub', 'the device keeps its driver');
  });

  it('gives the device back to its driver when a step after the unbind fails', () => {
    const kernel = onStub();
    kernel.vfs.add('/sys/bus/pci/drivers_probe', { type: 'attr', mode: 0o200, write: () => fail('EIO') });
    const edu = PciDevice.get(EDU, { kernel });
    assert.throws(
      () => edu.bindVfio(),
      (e: unknown) => isVfioError(e, 'EIO'),
    );
    assert.equal(edu.driver, 'pci-stub', 'rolled back to the previous driver');
    assert.equal(kernel.readFile(`${edu.path}/driver_override`).toString().trim(), '(null)');
    assert.equal(edu.previousDriver, undefined);
  });

  it('unbind --restore takes driver names only: ".", "..", "" and paths are refused before anything is written', () => {
    const kernel = createModelKernel('linux-7.3-iommu');
    const edu = PciDevice.get(EDU, { kernel });
    for (const restore of ['.', '..', '', '../vfio-pci', 'a/b', ' nvme']) {
      assert.throws(
        () => edu.unbind({ restore }),
        (e: unknown) => e instanceof TypeError && /options\.restore must be a driver name/.test(e.message),
        restore,
      );
    }
    assert.equal(edu.driver, 'vfio-pci', 'still bound: nothing was written');
    edu.unbind({ restore: 'pci-stub' });
    assert.equal(edu.driver, 'pci-stub');
  });
});

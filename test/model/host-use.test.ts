/**
 * What the host uses, as Linux 7.3 shows it: /sys/class/net links into the NIC function's net/
 * directory (net-sysfs.c), /sys/block links to the disks below an NVMe controller and a SCSI
 * device (genhd.c), /proc/mounts lines (proc_namespace.c), and what a host driver's .remove
 * takes away when the function moves to vfio-pci.
 */
import assert from 'node:assert/strict';
import { createModelKernel, profiles } from '../../lib/model';
import { AHCI, EDU, NIC_DOWN, NIC_UP, NVME, hostUseKernel, hostUseProfile } from './host-use.fixture';

const text = (k: ReturnType<typeof hostUseKernel>, path: string) => k.readFile(path).toString('utf8');

describe('model: the host uses its NICs and disks (Linux 7.3 sysfs and procfs)', () => {
  it('/sys/class/net has lo and one link per NIC function, into <function>/net/<ifname>', () => {
    const k = hostUseKernel();
    assert.deepEqual(k.readdir('/sys/class/net').sort(), ['enp0s2', 'enp0s4', 'lo']);
    assert.equal(k.readlink('/sys/class/net/enp0s2'), `../../devices/pci0000:00/${NIC_UP}/net/enp0s2`);
    assert.equal(k.readlink('/sys/class/net/lo'), '../../devices/virtual/net/lo');
    assert.equal(k.readlink(`/sys/bus/pci/devices/${NIC_UP}/net/enp0s2/device`), `../../../${NIC_UP}`);
    assert.equal(k.readlink('/sys/class/net/enp0s2/subsystem'), '../../../../../class/net');
    assert.equal(k.exists('/sys/class/net/lo/device'), false, 'a virtual device has no device link');
    assert.deepEqual(k.readdir(`/sys/bus/pci/devices/${NIC_DOWN}/net`), ['enp0s4']);
  });

  it('an interface that is up has IFF_UP and a carrier; one that is down fails carrier with EINVAL', () => {
    const k = hostUseKernel();
    assert.equal(text(k, '/sys/class/net/enp0s2/operstate'), 'up\n');
    assert.equal(text(k, '/sys/class/net/enp0s2/flags'), '0x1003\n');
    assert.equal(text(k, '/sys/class/net/enp0s2/carrier'), '1\n');
    assert.equal(text(k, '/sys/class/net/enp0s4/operstate'), 'down\n');
    assert.equal(text(k, '/sys/class/net/enp0s4/flags'), '0x1002\n');
    assert.throws(() => k.readFile('/sys/class/net/enp0s4/carrier'), /EINVAL/);
    assert.equal(text(k, '/sys/class/net/enp0s4/address'), '52:54:00:ab:cd:ef\n');
    assert.equal(text(k, '/sys/class/net/enp0s2/address'), '52:54:00:12:34:56\n');
    // lo registers first (ifindex 1), the NICs in probe order.
    assert.equal(text(k, '/sys/class/net/lo/ifindex'), '1\n');
    assert.equal(text(k, '/sys/class/net/enp0s2/ifindex'), '2\n');
    assert.equal(text(k, '/sys/class/net/enp0s4/ifindex'), '3\n');
    assert.equal(text(k, '/sys/class/net/enp0s2/uevent'), 'INTERFACE=enp0s2\nIFINDEX=2\n');
    assert.equal(text(k, '/sys/class/net/lo/flags'), '0x8\n');
  });

  it('/sys/block has the NVMe namespace below its controller and the SATA disk below its SCSI device', () => {
    const k = hostUseKernel();
    assert.deepEqual(k.readdir('/sys/block').sort(), ['nvme0n1', 'sda']);
    assert.equal(k.readlink('/sys/block/nvme0n1'), `../devices/pci0000:00/${NVME}/nvme/nvme0/nvme0n1`);
    assert.equal(k.readlink('/sys/block/nvme0n1/device'), '../../nvme0');
    assert.equal(k.readlink('/sys/block/sda'), `../devices/pci0000:00/${AHCI}/ata1/host0/target0:0:0/0:0:0:0/block/sda`);
    assert.equal(k.readlink('/sys/block/sda/device'), '../../../0:0:0:0');
    assert.equal(k.readlink('/sys/class/nvme/nvme0'), `../../devices/pci0000:00/${NVME}/nvme/nvme0`);
    assert.equal(text(k, '/sys/class/nvme/nvme0/address'), `${NVME}\n`);
    // Partitions live in the disk's directory; /sys/block lists whole disks only.
    const parts = k.readdir('/sys/block/nvme0n1').filter((n) => n.startsWith('nvme0n1'));
    assert.deepEqual(parts, ['nvme0n1p1', 'nvme0n1p2']);
    assert.equal(text(k, '/sys/block/nvme0n1/dev'), '259:0\n');
    assert.equal(text(k, '/sys/block/nvme0n1/nvme0n1p2/dev'), '259:2\n');
    assert.equal(text(k, '/sys/block/nvme0n1/nvme0n1p2/partition'), '2\n');
    assert.equal(text(k, '/sys/block/nvme0n1/size'), '262144\n');
    assert.equal(text(k, '/sys/block/sda/dev'), '8:0\n');
    assert.equal(text(k, '/sys/block/sda/sda1/dev'), '8:1\n');
    assert.equal(text(k, '/sys/block/sda/range'), '16\n');
    assert.equal(k.readlink('/sys/class/block/nvme0n1p1'), `../../devices/pci0000:00/${NVME}/nvme/nvme0/nvme0n1/nvme0n1p1`);
    assert.equal(k.readlink('/sys/dev/block/259:0'), `../../devices/pci0000:00/${NVME}/nvme/nvme0/nvme0n1`);
    assert.deepEqual(k.readdir('/sys/block/nvme0n1/nvme0n1p2/holders'), []);
  });

  it('/proc/mounts is a link to self/mounts, proc and sysfs first, then the profile mounts with escaped spaces', () => {
    const k = createModelKernel({
      ...hostUseProfile(),
      host: { ...hostUseProfile().host, mounts: [{ source: '/dev/sda1', target: '/mnt/my disk', fstype: 'vfat' }] },
    });
    assert.equal(k.readlink('/proc/mounts'), 'self/mounts');
    assert.equal(
      text(k, '/proc/mounts'),
      'proc /proc proc rw,relatime 0 0\nsysfs /sys sysfs rw,relatime 0 0\n/dev/sda1 /mnt/my\\040disk vfat rw,relatime 0 0\n',
    );
    assert.equal(text(k, '/proc/swaps'), 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n');
  });

  it('a preset host has lo and no disks, and no host driver the lab kernel lacks', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    assert.deepEqual(k.readdir('/sys/class/net'), ['lo']);
    assert.deepEqual(k.readdir('/sys/block'), []);
    assert.deepEqual(k.readdir('/sys/bus/pci/drivers').sort(), ['pci-stub', 'vfio-pci']);
    assert.equal(text(k, '/proc/self/mounts'), 'proc /proc proc rw,relatime 0 0\nsysfs /sys sysfs rw,relatime 0 0\n');
  });

  it('a host driver bound at boot leaves no driver_override; its interface and disks go with unbind and come back down on bind', () => {
    const k = hostUseKernel();
    assert.equal(text(k, `/sys/bus/pci/devices/${NIC_UP}/driver_override`), '(null)\n');
    k.writeFile(`/sys/bus/pci/drivers/e1000e/unbind`, NIC_UP);
    assert.equal(k.exists('/sys/class/net/enp0s2'), false);
    assert.equal(k.exists(`/sys/bus/pci/devices/${NIC_UP}/net`), false);
    k.writeFile(`/sys/bus/pci/drivers/e1000e/bind`, NIC_UP);
    assert.equal(text(k, '/sys/class/net/enp0s2/operstate'), 'down\n', 'nothing brings it up again');
    assert.equal(text(k, '/sys/class/net/enp0s2/ifindex'), '4\n', 'ifindex values are not reused');
    k.writeFile(`/sys/bus/pci/drivers/nvme/unbind`, NVME);
    assert.deepEqual(k.readdir('/sys/block'), ['sda']);
    assert.equal(k.exists('/sys/dev/block/259:0'), false);
    assert.match(text(k, '/proc/mounts'), /^\/dev\/nvme0n1p2 \/srv\/data ext4 rw,noatime 0 0$/m, 'the mount outlives its disk');
    // drivers_probe finds nvme again by its class: the same names and numbers.
    k.writeFile('/sys/bus/pci/drivers_probe', NVME);
    assert.equal(k.readlink('/sys/block/nvme0n1'), `../devices/pci0000:00/${NVME}/nvme/nvme0/nvme0n1`);
    assert.equal(text(k, '/sys/block/nvme0n1/nvme0n1p1/dev'), '259:1\n');
    assert.equal(k.readlink(`/sys/bus/pci/devices/${EDU}/driver`), '../../../bus/pci/drivers/vfio-pci');
  });

  it('rejects a profile whose interface or disk is on a function no host driver owns at boot', () => {
    const p = hostUseProfile();
    assert.throws(
      () => createModelKernel({ ...p, host: { interfaces: [{ function: EDU, name: 'eth9', up: true }] } }),
      /interface eth9 needs 0000:00:03\.0 bound to a NIC driver \(e1000e\) at boot/,
    );
    assert.throws(
      () => createModelKernel({ ...p, host: { disks: [{ function: NIC_UP }] } }),
      /a disk needs 0000:00:02\.0 bound to a storage driver/,
    );
    assert.throws(
      () => createModelKernel({ ...p, host: { interfaces: [{ function: NIC_UP, name: 'a/b', up: true }] } }),
      /not a valid interface name/,
    );
    const base = profiles['linux-7.3-noiommu'];
    assert.throws(
      () =>
        createModelKernel({
          ...base,
          pci: [
            ...base.pci,
            { address: '0000:00:04.0', device: 'platform', driver: 'e1000e', options: { vendor: 0x8086, device: 0x100e, class: 0x020000 } },
          ],
        }),
      /boot driver 'e1000e' does not match 0000:00:04\.0/,
    );
  });
});

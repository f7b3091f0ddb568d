/**
 * First contact with the real kernel in the lab guest: the device nodes and sysfs entries that
 * the library relies on exist as the mode and the kernel build say they should, and a child
 * process can be started without CAP_SYS_RAWIO. Each check prints what it saw, so a lab log
 * documents the real kernel's layout.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { addonStatus } from '../../lib/sys/addon';
import { nativeKernel } from '../../lib/sys/native-kernel';
import { openDevice } from '../../lib/vfio/open-device';
import type { VfioDevice } from '../../lib/vfio/device';
import { requireLab, type LabEnvironment } from './lab-environment';
import { CAP_SYS_RAWIO, effectiveCapabilities, findSetpriv, hasCapability, runNodeWithoutRawio } from './unprivileged';

function saw(what: string): void {
  console.log(`      saw: ${what}`);
}

function guestUptime(): number {
  return Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

/** "major:minor" of a device node, in the format of sysfs `dev` files. */
function deviceNumber(node: string): string {
  const rdev = fs.statSync(node, { bigint: true }).rdev;
  // glibc's dev_t: major in bits 8..19 and 32..43, minor in bits 0..7 and 20..31.
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n);
  return `${major}:${minor}`;
}

describe('lab smoke: real Linux 7.3 with the edu device', function () {
  let lab: LabEnvironment;
  const loadedAtUptime = guestUptime();

  before(function () {
    lab = requireLab(this);
    saw(
      `mode ${lab.mode}, kernel ${lab.kernel}, edu at ${lab.bdf}, kernel release ${fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}`,
    );
    saw(`node + mocha start-up until this file loaded: ${(loadedAtUptime - lab.commandStartUptime).toFixed(2)} s`);
  });

  function vfioCdevName(): string {
    const names = fs.readdirSync(path.join(lab.sysfsDevice, 'vfio-dev'));
    assert.equal(names.length, 1, `one vfio cdev expected for ${lab.bdf}, sysfs lists ${JSON.stringify(names)}`);
    return names[0]!;
  }

  function iommuGroupId(): string | null {
    try {
      return path.basename(fs.readlinkSync(path.join(lab.sysfsDevice, 'iommu_group')));
    } catch {
      return null;
    }
  }

  it('finds edu (1234:11e8) bound to vfio-pci', function () {
    assert.equal(fs.readFileSync(path.join(lab.sysfsDevice, 'vendor'), 'utf8').trim(), '0x1234');
    assert.equal(fs.readFileSync(path.join(lab.sysfsDevice, 'device'), 'utf8').trim(), '0x11e8');
    const driver = path.basename(fs.readlinkSync(path.join(lab.sysfsDevice, 'driver')));
    saw(`driver ${driver}, iommu_group ${iommuGroupId() ?? '(none)'}`);
    assert.equal(driver, 'vfio-pci');
  });

  it('has /dev/iommu as a character device', function () {
    const stat = fs.statSync('/dev/iommu');
    saw(`/dev/iommu ${deviceNumber('/dev/iommu')}`);
    assert.ok(stat.isCharacterDevice());
  });

  it('sets the noiommu module parameter as the mode asks', function () {
    const value = fs.readFileSync('/sys/module/vfio/parameters/enable_unsafe_noiommu_mode', 'utf8').trim();
    saw(`vfio.enable_unsafe_noiommu_mode=${value}`);
    assert.equal(value, lab.mode === 'noiommu' ? 'Y' : 'N');
  });

  it('lists the device cdev in sysfs under the name the mode gives it', function () {
    const name = vfioCdevName();
    saw(`${lab.sysfsDevice}/vfio-dev/${name}`);
    assert.equal(name, lab.mode === 'noiommu' ? 'noiommu-vfio0' : 'vfio0');
  });

  it('has the cdev node in /dev/vfio/devices with the device number sysfs gives', function () {
    const name = vfioCdevName();
    const node = path.join('/dev/vfio/devices', name);
    const sysfsNumber = fs.readFileSync(path.join(lab.sysfsDevice, 'vfio-dev', name, 'dev'), 'utf8').trim();
    saw(`${node} ${deviceNumber(node)}, sysfs dev ${sysfsNumber}; /dev/vfio/devices: ${fs.readdirSync('/dev/vfio/devices').join(' ')}`);
    assert.ok(fs.statSync(node).isCharacterDevice());
    assert.equal(deviceNumber(node), sysfsNumber);
  });

  it('has the legacy group nodes exactly when the kernel is built with groups', function () {
    const entries = fs.readdirSync('/dev/vfio').sort();
    const group = iommuGroupId();
    saw(`/dev/vfio: ${entries.join(' ')}; iommu_group of edu: ${group ?? '(none)'}`);
    if (lab.kernel === 'nullgroup') {
      assert.deepEqual(entries, ['devices'], 'a kernel without VFIO_GROUP has neither group nodes nor /dev/vfio/vfio');
      return;
    }
    assert.ok(group !== null, 'a group kernel puts the device in an iommu group');
    const groupNode = lab.mode === 'noiommu' ? `noiommu-${group}` : group;
    assert.ok(fs.statSync(path.join('/dev/vfio', groupNode)).isCharacterDevice(), `/dev/vfio/${groupNode}`);
    assert.ok(fs.statSync('/dev/vfio/vfio').isCharacterDevice(), 'the container node /dev/vfio/vfio');
    assert.deepEqual(entries, [groupNode, 'devices', 'vfio'].sort());
  });

  it('opens the device cdev read-write with full capabilities', function () {
    const node = path.join('/dev/vfio/devices', vfioCdevName());
    const fd = fs.openSync(node, fs.constants.O_RDWR);
    fs.closeSync(fd);
  });

  it('starts a child without CAP_SYS_RAWIO and with the rest of its capabilities', function () {
    if (findSetpriv() === null) {
      console.log('    skipped: setpriv (util-linux) is not installed in the host root');
      this.skip();
    }
    const own = effectiveCapabilities(fs.readFileSync('/proc/self/status', 'utf8'));
    const child = runNodeWithoutRawio("process.stdout.write(require('fs').readFileSync('/proc/self/status', 'utf8'))");
    assert.equal(child.status, 0, child.stderr);
    const childCaps = effectiveCapabilities(child.stdout);
    saw(`CapEff parent ${own.toString(16)}, child ${childCaps.toString(16)}`);
    assert.ok(hasCapability(own, CAP_SYS_RAWIO), 'the test process runs with CAP_SYS_RAWIO');
    assert.ok(!hasCapability(childCaps, CAP_SYS_RAWIO), 'the child lost CAP_SYS_RAWIO');
    assert.equal(childCaps | (1n << BigInt(CAP_SYS_RAWIO)), own, 'the child kept every other capability');
  });

  it('refuses the noiommu cdev to a process without CAP_SYS_RAWIO (EPERM), not an IOMMU-backed one', function () {
    if (findSetpriv() === null) {
      console.log('    skipped: setpriv (util-linux) is not installed in the host root');
      this.skip();
    }
    const node = path.join('/dev/vfio/devices', vfioCdevName());
    const child = runNodeWithoutRawio(
      `try { require('fs').closeSync(require('fs').openSync(${JSON.stringify(node)}, 'r+')); console.log('opened'); }` +
        ` catch (e) { console.log(e.code); }`,
    );
    assert.equal(child.status, 0, child.stderr);
    const outcome = child.stdout.trim();
    saw(`open(${node}) without CAP_SYS_RAWIO: ${outcome}`);
    assert.equal(outcome, lab.mode === 'noiommu' ? 'EPERM' : 'opened');
  });

  describe('through the native addon', function () {
    /** edu's identification register (BAR0 offset 0): version 1.0 and the 0xed signature. */
    const EDU_IDENTIFICATION = 0x010000ed;
    /** edu's liveness register (BAR0 offset 4) reads back the bitwise NOT of what was written. */
    const EDU_LIVENESS = 0x04;

    before(function () {
      const status = addonStatus();
      if (!status.available) {
        console.log(`    skipped: the native addon is not built (${status.reason})`);
        this.skip();
      }
      saw(`addon ${status.source}`);
    });

    it('reports CAP_SYS_RAWIO in the capabilities of the test process', function () {
      const caps = nativeKernel().capabilities();
      saw(`capabilities ${JSON.stringify(caps)}`);
      assert.equal(caps.sysRawio, true);
    });

    function exerciseBar0(device: VfioDevice): void {
      const bar0 = device.bar(0);
      assert.equal(bar0.read32(0), EDU_IDENTIFICATION, 'identification read with pread');
      const mmio = bar0.mmap();
      try {
        assert.equal(mmio.read32(0), EDU_IDENTIFICATION, 'identification read through the mapping');
        mmio.write32(EDU_LIVENESS, 0x12345678);
        assert.equal(mmio.read32(EDU_LIVENESS), ~0x12345678 >>> 0, 'liveness register inverts');
      } finally {
        mmio.close();
      }
    }

    it('opens edu through the device cdev and iommufd and reads BAR0', function () {
      const device = openDevice(lab.bdf, { kernel: nativeKernel(), prefer: 'cdev' });
      try {
        saw(`backend ${JSON.stringify(device.backend)}`);
        assert.equal(device.backend.kind, 'cdev');
        assert.equal(device.backend.noiommu, lab.mode === 'noiommu');
        exerciseBar0(device);
      } finally {
        device.close();
      }
    });

    it('opens edu through the legacy group exactly when the kernel has groups', function () {
      let device: VfioDevice;
      try {
        device = openDevice(lab.bdf, { kernel: nativeKernel(), prefer: 'group' });
      } catch (e) {
        saw(`group path: ${(e as Error).message}`);
        assert.equal(lab.kernel, 'nullgroup', 'only the nullgroup kernel lacks the group path');
        return;
      }
      try {
        saw(`backend ${JSON.stringify(device.backend)}`);
        assert.equal(lab.kernel, 'group', 'a nullgroup kernel has no group path');
        assert.equal(device.backend.kind, 'group');
        exerciseBar0(device);
      } finally {
        device.close();
      }
    });
  });
});

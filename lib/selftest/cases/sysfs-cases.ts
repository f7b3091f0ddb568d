/**
 * The sysfs layout a tool reads to find and classify a VFIO device, as the kernel builds it:
 * the PCI function's links (driver, iommu, iommu_group), the vfio-dev class device of its cdev
 * (drivers/vfio/device_cdev.c, vfio_main.c vfio_device_add), the IOMMU group directory
 * (drivers/iommu/iommu.c group attributes; VFIO's fake "vfio-noiommu" group in
 * drivers/vfio/group.c), the IOMMU class device (drivers/iommu/iommu-sysfs.c) and the vfio group
 * class device. Symlink targets are compared exactly: tools resolve them relative to the link.
 */
import { defineCase, type ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import { casesOn, defineFixture } from '../fixture';
import type { FixtureValue } from '../struct-call';

const PCI_DEVICES = '/sys/bus/pci/devices';

function text(t: CaseContext, path: string): string {
  return t.ok(`read ${path}`, () => t.kernel.readFile(path).toString());
}

function linkOf(t: CaseContext, path: string): string {
  return t.ok(`readlink ${path}`, () => t.kernel.readlink(path));
}

/** "pci0000:00" for "0000:00:03.0": the host bridge directory under /sys/devices. */
function hostBridge(bdf: string): string {
  return `pci${bdf.slice(0, 7)}`;
}

/**
 * The function's directory under /sys/devices, from its bus/pci/devices link: the host bridge of
 * the root bus, every PCI bridge on the way down (a function below a root port sits in the port's
 * directory), then the function ("pci0000:00/0000:00:06.0/0000:01:00.0").
 */
function devicePath(t: CaseContext, bdf: string): string {
  const prefix = '../../../devices/';
  const link = linkOf(t, `${PCI_DEVICES}/${bdf}`);
  t.check(link.startsWith(prefix), `bus/pci/devices/${bdf} links into /sys/devices (${link})`);
  const parts = link.slice(prefix.length).split('/');
  t.equal(parts[parts.length - 1]!, bdf, 'the bus/pci/devices entry ends with the function');
  const bridges = parts.slice(1, -1);
  t.equal(parts[0]!, hostBridge(bridges[0] ?? bdf), 'the host bridge of the root bus');
  for (const bridge of bridges) {
    t.check(text(t, `${PCI_DEVICES}/${bridge}/class`).startsWith('0x0604'), `${bridge} above ${bdf} is a PCI-to-PCI bridge`);
  }
  return parts.join('/');
}

/** The kernel has the legacy group interface: vfio_group_init registered the "vfio" class. */
function hasGroupInterface(t: CaseContext): boolean {
  return t.kernel.exists('/sys/class/vfio');
}

function parseDev(t: CaseContext, path: string): { major: number; minor: number } {
  const value = text(t, path);
  const m = /^(\d+):(\d+)\n$/.exec(value);
  if (!m) t.fail(`${path} should read "MAJOR:MINOR\\n", reads ${JSON.stringify(value)}`);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

interface PciFunctionFixture extends FixtureValue {
  readonly bdf: string;
  /** /sys/bus/pci/devices/<bdf>. */
  readonly dir: string;
}

/** The device under test's directory in sysfs (nothing is opened: sysfs is only read). */
const pciFunction = casesOn(
  defineFixture<PciFunctionFixture>({
    name: 'the PCI function in sysfs',
    needs: ['device'],
    setup: (t) => {
      const bdf = t.env.device!.bdf;
      return { t, bdf, dir: `${PCI_DEVICES}/${bdf}` };
    },
  }),
);

export const sysfsCases: ConformanceCase[] = [
  pciFunction.test(
    'sysfs.device-links',
    'the PCI function links to vfio-pci; an iommu link only behind an IOMMU; an iommu_group link unless noiommu without groups',
    (t, { bdf, dir }) => {
      const path = devicePath(t, bdf);
      t.equal(linkOf(t, dir), `../../../devices/${path}`, 'bus/pci/devices entry');
      // From /sys/devices/<path>: one '..' per component of the path reaches /sys/devices.
      const toDevices = '../'.repeat(path.split('/').length);
      t.equal(linkOf(t, `${dir}/driver`), `${toDevices}../bus/pci/drivers/vfio-pci`, 'driver link');
      t.equal(linkOf(t, `${dir}/subsystem`), `${toDevices}../bus/pci`, 'subsystem link');
      if (t.mode === 'iommu') {
        t.equal(linkOf(t, `${dir}/iommu`), `${toDevices}virtual/iommu/dmar0`, 'iommu link (VT-d unit)');
      } else {
        t.check(!t.kernel.exists(`${dir}/iommu`), 'no iommu link without an IOMMU');
      }
      const groupLink = t.kernel.exists(`${dir}/iommu_group`);
      const groupExpected = t.mode === 'iommu' || hasGroupInterface(t);
      t.check(
        groupLink === groupExpected,
        `iommu_group link ${groupLink ? 'present' : 'absent'}, expected ${groupExpected ? 'present' : 'absent'} (mode ${t.mode}, group interface ${hasGroupInterface(t) ? 'built' : 'not built'})`,
      );
      if (groupLink)
        t.check(
          new RegExp(`^${toDevices}\\.\\./kernel/iommu_groups/\\d+$`).test(linkOf(t, `${dir}/iommu_group`)),
          'iommu_group link points into /sys/kernel/iommu_groups',
        );
      for (const attr of [
        'class',
        'config',
        'device',
        'driver_override',
        'enable',
        'irq',
        'modalias',
        'resource',
        'revision',
        'subsystem_device',
        'subsystem_vendor',
        'vendor',
        'vfio-dev',
      ]) {
        t.check(t.kernel.exists(`${dir}/${attr}`), `${dir}/${attr} exists`);
      }
    },
  ),
  pciFunction.test(
    'sysfs.device-attributes',
    "the function's uevent agrees with its ID attributes; vfio-pci leaves the 32-bit DMA mask, D0, MSI allowed",
    (t, { bdf, dir }) => {
      const id = (name: string) => Number(text(t, `${dir}/${name}`).trim());
      const h = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, '0');
      const expected =
        `DRIVER=vfio-pci\nPCI_CLASS=${h(id('class'), 4)}\nPCI_ID=${h(id('vendor'), 4)}:${h(id('device'), 4)}\n` +
        `PCI_SUBSYS_ID=${h(id('subsystem_vendor'), 4)}:${h(id('subsystem_device'), 4)}\nPCI_SLOT_NAME=${bdf}\nMODALIAS=${text(t, `${dir}/modalias`)}`;
      t.equal(text(t, `${dir}/uevent`), expected, 'uevent (pci_uevent)');
      t.expectErrno('write "bogus" to uevent', () => t.kernel.writeFile(`${dir}/uevent`, 'bogus'), 'EINVAL');
      t.equal(text(t, `${dir}/dma_mask_bits`), '32\n', 'dma_mask_bits: vfio-pci sets no DMA mask');
      t.equal(text(t, `${dir}/consistent_dma_mask_bits`), '32\n', 'consistent_dma_mask_bits');
      t.equal(text(t, `${dir}/power_state`), 'D0\n', 'power_state');
      t.equal(text(t, `${dir}/msi_bus`), '1\n', 'msi_bus');
      t.equal(text(t, `${dir}/broken_parity_status`), '0\n', 'broken_parity_status');
      t.equal(text(t, `${dir}/ari_enabled`), '0\n', 'ari_enabled (root bus, no ARI)');
      // local_cpus is a hex mask, local_cpulist the same CPUs as ranges.
      const mask = BigInt(`0x${text(t, `${dir}/local_cpus`).trim().replace(/,/g, '')}`);
      let fromList = 0n;
      for (const range of text(t, `${dir}/local_cpulist`).trim().split(',')) {
        const [first, last] = range.split('-').map(Number);
        for (let cpu = first!; cpu <= (last ?? first!); cpu++) fromList |= 1n << BigInt(cpu);
      }
      t.equal(fromList, mask, 'local_cpulist names the CPUs of local_cpus');
    },
  ),
  defineCase({
    id: 'sysfs.vfio-dev',
    title: 'vfio-dev/<cdev> holds dev, device, subsystem and uevent, names the /dev node, and is linked from /sys/class/vfio-dev',
    needs: ['device'],
    run(t) {
      const device = t.env.device!;
      const name = device.cdevPath.slice(device.cdevPath.lastIndexOf('/') + 1);
      t.equal(name.startsWith('noiommu-'), t.mode === 'noiommu', `cdev name ${name} says the mode`);
      const dir = `${PCI_DEVICES}/${device.bdf}/vfio-dev`;
      t.equal(JSON.stringify(t.kernel.readdir(dir)), JSON.stringify([name]), 'vfio-dev has one entry, the cdev');
      t.equal(
        JSON.stringify(t.kernel.readdir(`${dir}/${name}`).sort()),
        JSON.stringify(['dev', 'device', 'subsystem', 'uevent']),
        `${name}'s attributes`,
      );
      t.equal(linkOf(t, `${dir}/${name}/device`), `../../../${device.bdf}`, 'device link');
      t.equal(
        linkOf(t, `${dir}/${name}/subsystem`),
        `${'../'.repeat(devicePath(t, device.bdf).split('/').length + 3)}class/vfio-dev`,
        'subsystem link',
      );
      const dev = parseDev(t, `${dir}/${name}/dev`);
      t.equal(text(t, `${dir}/${name}/uevent`), `MAJOR=${dev.major}\nMINOR=${dev.minor}\nDEVNAME=vfio/devices/${name}\n`, 'uevent');
      t.equal(linkOf(t, `/sys/class/vfio-dev/${name}`), `../../devices/${devicePath(t, device.bdf)}/vfio-dev/${name}`, 'class link');
      if (hasGroupInterface(t)) {
        // vfio_init sets up the group char region before the cdev one; dynamic majors go downwards.
        const groups = t.kernel.readdir('/sys/class/vfio');
        t.check(groups.length > 0, 'a vfio group exists for the device');
        const group = parseDev(t, `/sys/class/vfio/${groups[0]}/dev`);
        t.equal(group.major, dev.major + 1, 'group major is the one allocated just before the cdev major');
      }
    },
  }),
  defineCase({
    id: 'sysfs.iommu-group',
    title: 'the IOMMU group: VT-d\'s DMA group with its MSI window, or VFIO\'s fake "vfio-noiommu" group with none',
    needs: ['device'],
    run(t) {
      const bdf = t.env.device!.bdf;
      const linkPath = `${PCI_DEVICES}/${bdf}/iommu_group`;
      if (!t.kernel.exists(linkPath))
        t.skip('the device has no IOMMU group (noiommu without the group interface; sysfs.device-links checks that)');
      const id = Number(linkOf(t, linkPath).split('/').pop());
      const dir = `/sys/kernel/iommu_groups/${id}`;
      t.equal(linkOf(t, `${dir}/devices/${bdf}`), `../../../../devices/${devicePath(t, bdf)}`, 'group member link');
      if (t.mode === 'noiommu') {
        t.equal(
          JSON.stringify(t.kernel.readdir(dir).sort()),
          JSON.stringify(['devices', 'name', 'reserved_regions', 'type']),
          'group attributes',
        );
        t.equal(text(t, `${dir}/name`), 'vfio-noiommu\n', 'name');
        t.equal(text(t, `${dir}/type`), 'unknown\n', 'type (no default domain)');
        t.equal(text(t, `${dir}/reserved_regions`), '', 'reserved_regions (none without an IOMMU)');
      } else {
        t.equal(JSON.stringify(t.kernel.readdir(dir).sort()), JSON.stringify(['devices', 'reserved_regions', 'type']), 'group attributes');
        t.check(/^DMA(-FQ)?\n$/.test(text(t, `${dir}/type`)), `type is a DMA domain (${JSON.stringify(text(t, `${dir}/type`))})`);
        t.check(
          text(t, `${dir}/reserved_regions`).split('\n').includes('0x00000000fee00000 0x00000000feefffff msi'),
          'reserved_regions lists the MSI window',
        );
      }
      if (hasGroupInterface(t)) {
        const name = t.mode === 'noiommu' ? `noiommu-${id}` : String(id);
        t.equal(linkOf(t, `/sys/class/vfio/${name}`), `../../devices/virtual/vfio/${name}`, 'vfio group class link');
        const dev = parseDev(t, `/sys/devices/virtual/vfio/${name}/dev`);
        t.equal(
          text(t, `/sys/devices/virtual/vfio/${name}/uevent`),
          `MAJOR=${dev.major}\nMINOR=${dev.minor}\nDEVNAME=vfio/${name}\n`,
          'vfio group uevent',
        );
        t.equal(linkOf(t, `/sys/devices/virtual/vfio/${name}/subsystem`), '../../../../class/vfio', 'vfio group subsystem link');
      }
    },
  }),
  defineCase({
    id: 'sysfs.iommu-class',
    title: "/sys/class/iommu: empty without an IOMMU; VT-d's dmar0 with its registers and a link to every translated function",
    run(t) {
      t.check(t.kernel.exists('/sys/class/iommu'), '/sys/class/iommu exists (the IOMMU core is built in)');
      const units = t.kernel.readdir('/sys/class/iommu').sort();
      const device = t.env.device;
      if (t.mode === 'noiommu') {
        if (units.length === 0) {
          t.equal(JSON.stringify(units), '[]', 'no IOMMU units');
          return;
        }
        // A host can have IOMMU units that do not translate the noiommu device under test.
        if (device)
          for (const unit of units)
            t.check(!t.kernel.exists(`/sys/class/iommu/${unit}/devices/${device.bdf}`), `${unit} does not translate ${device.bdf}`);
        return;
      }
      if (units.length === 0) t.skip('the host reports no IOMMU unit in /sys/class/iommu (no VFIO device is translated here)');
      const vtd = units.filter((u) => /^dmar\d+$/.test(u));
      if (vtd.length === 0) t.skip(`the host's IOMMU units (${units.join(', ')}) are not VT-d; only VT-d's layout is known to this case`);
      t.note(`IOMMU units: ${units.join(', ')}`);
      for (const unit of vtd) {
        t.equal(linkOf(t, `/sys/class/iommu/${unit}`), `../../devices/virtual/iommu/${unit}`, `${unit} class link`);
        const dir = `/sys/devices/virtual/iommu/${unit}`;
        t.equal(
          JSON.stringify(t.kernel.readdir(dir).sort()),
          JSON.stringify(['devices', 'intel-iommu', 'subsystem', 'uevent']),
          `${unit} entries`,
        );
        t.equal(linkOf(t, `${dir}/subsystem`), '../../../../class/iommu', `${unit} subsystem link`);
        const regs = `${dir}/intel-iommu`;
        t.equal(
          JSON.stringify(t.kernel.readdir(regs).sort()),
          JSON.stringify(['address', 'cap', 'domains_supported', 'domains_used', 'ecap', 'version']),
          `${unit} intel-iommu attributes`,
        );
        const cap = text(t, `${regs}/cap`);
        t.check(/^[0-9a-f]+\n$/.test(cap), `${unit} cap is hex (${JSON.stringify(cap)})`);
        // cap_ndoms: the ND field (bits 2:0) gives 2^(4 + 2*ND) domain IDs.
        t.equal(
          text(t, `${regs}/domains_supported`),
          `${1n << (4n + 2n * (BigInt(`0x${cap.trim()}`) & 7n))}\n`,
          `${unit} domains_supported follows CAP.ND`,
        );
        t.check(/^\d+:\d+\n$/.test(text(t, `${regs}/version`)), `${unit} version is "major:minor"`);
      }
      if (device) {
        const owner = vtd.find((u) => t.kernel.exists(`/sys/devices/virtual/iommu/${u}/devices/${device.bdf}`));
        t.check(owner !== undefined, `a VT-d unit lists ${device.bdf}`);
        t.equal(
          linkOf(t, `/sys/devices/virtual/iommu/${owner}/devices/${device.bdf}`),
          `../../../../${devicePath(t, device.bdf)}`,
          'the unit links the device under test',
        );
      }
    },
  }),
];

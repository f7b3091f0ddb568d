import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCli } from '../../lib/cli/main';
import { parsePciIds } from '../../lib/cli/pci-names';
import { NvmeController } from '../../lib/devices/nvme';
import { createModelKernel, profiles } from '../../lib/model';
import type { Kernel } from '../../lib/sys/kernel';

/** Runs the CLI in-process and captures what it prints. */
async function vfio(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  return vfioOn(undefined, ...argv);
}

async function vfioOn(kernel: Kernel | undefined, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) }, kernel);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** A lab-like noiommu host whose edu device starts unbound and noiommu mode switched off. */
function hostWithUnboundEdu(noiommu: boolean): Kernel {
  return hostWithEduOn(null, noiommu);
}

/** A lab-like noiommu host whose edu device is bound to `driver` at boot. */
function hostWithEduOn(driver: string | null, noiommu = true): Kernel {
  const base = profiles['linux-7.3-noiommu'];
  return createModelKernel({ ...base, name: 'test-edu-driver', noiommu, pci: base.pci.map((d) => ({ ...d, driver })) });
}

describe('vfio command', () => {
  it('prints usage with --help and lists every command', async () => {
    const r = await vfio('--help');
    assert.equal(r.code, 0);
    for (const c of ['status', 'bind', 'unbind', 'info']) assert.match(r.out, new RegExp(`\\b${c}\\b`));
  });

  it('rejects an unknown command and an unknown option with usage status 2', async () => {
    assert.equal((await vfio('frobnicate')).code, 2);
    const r = await vfio('status', '--model', '--frob');
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown option '--frob'/);
  });

  it('has --help on every command', async () => {
    for (const c of ['status', 'bind', 'unbind', 'info']) {
      const r = await vfio(c, '--help');
      assert.equal(r.code, 0, c);
      assert.match(r.out, /^usage: vfio /);
    }
  });

  it("status lists the model host's edu device, its driver and the noiommu mode", async () => {
    const r = await vfio('status', '--model');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /noiommu mode (enabled|disabled)/);
    assert.match(r.out, /1234:11e8\s+QEMU edu educational device/);
  });

  it('status --json is machine-readable', async () => {
    const r = await vfio('status', '--model', '--json');
    assert.equal(r.code, 0, r.err);
    const parsed = JSON.parse(r.out) as { host: { noiommuMode: string }; devices: { bdf: string; vendorId: string; deviceId: string }[] };
    assert.ok(parsed.devices.some((d) => d.vendorId === '0x1234' && d.deviceId === '0x11e8'));
  });

  it('bind refuses to switch on noiommu mode without --noiommu, with a hint, and changes nothing', async () => {
    const kernel = hostWithUnboundEdu(false);
    const edu = await eduBdf('linux-7.3-noiommu');
    const r = await vfioOn(kernel, 'bind', edu);
    assert.equal(r.code, 1);
    assert.match(r.err, /noiommu/i);
    assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
    assert.equal(kernel.readFile('/sys/module/vfio/parameters/enable_unsafe_noiommu_mode').toString().trim(), 'N');
    assert.equal(kernel.exists(`/sys/bus/pci/devices/${edu}/driver`), false);
  });

  it('bind --noiommu switches noiommu mode on, binds edu to vfio-pci and shows its cdev', async () => {
    const kernel = hostWithUnboundEdu(false);
    const edu = await eduBdf('linux-7.3-noiommu');
    const r = await vfioOn(kernel, 'bind', edu, '--noiommu');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /bound to vfio-pci.*\/dev\/vfio\/devices\/noiommu-vfio\d+/);
    const status = await vfioOn(kernel, 'status');
    assert.match(status.out, /noiommu mode enabled/);
    assert.match(status.out, /Devices using vfio-pci:\n\s+0000:00:03\.0/);
  });

  it('info shows a bound device like lspci -v (BAR address, width, prefetch, MSI decoded) and its VFIO regions and IRQs', async () => {
    const edu = await eduBdf('linux-7.3-noiommu');
    const r = await vfio('info', edu, '--model');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /1234:11e8/);
    assert.match(r.out, /Region 0: Memory \(32-bit, non-prefetchable\) at fea00000 \[size=0x100000\]/);
    assert.match(r.out, /\[040\] MSI: Enable- Count=1\/1 64bit\+ Maskable-/);
    assert.match(r.out, /driver vfio-pci \[\*\] \(driver_override vfio-pci\)/);
    assert.match(r.out, /BAR0\s+size 0x100000/);
    assert.match(r.out, /MSI\s+count 1/);
  });

  it('info shows the reset methods sysfs lists (bus reset behind a root port)', async () => {
    const r = await vfio('info', '0000:01:00.0', '--model=lab-multi-noiommu');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Reset: bus\n/);
    assert.match(r.out, /device flags reset,pci/);
  });

  it('info decodes MSI-X (table size, vector table and PBA location) and a 64-bit BAR', async () => {
    const kernel = createModelKernel({
      base: 'linux-7.3-iommu',
      withoutBaseDevices: true,
      devices: [{ address: '0000:00:04.0', model: new NvmeController() }],
    });
    const r = await vfioOn(kernel, 'info', '0000:00:04.0');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Region 0: Memory \(64-bit, non-prefetchable\) at [0-9a-f]+ \[size=0x[0-9a-f]+\]/);
    assert.match(r.out, /MSI-X: Enable- Count=\d+ Masked-; vector table BAR=\d offset=0x[0-9a-f]{8}; PBA BAR=\d offset=0x[0-9a-f]{8}/);
  });

  it('info works for a device on no driver: the PCI view, and how to bind it in CLI words', async () => {
    const edu = await eduBdf('linux-7.3-noiommu');
    const r = await vfioOn(hostWithUnboundEdu(true), 'info', edu);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /driver \(none\)/);
    assert.match(r.out, /Region 0: Memory/);
    assert.match(r.out, new RegExp(`not bound to vfio-pci \\(vfio bind ${edu} --noiommu to use it\\)`));
  });

  it('info of a device on another driver names that driver', async () => {
    const edu = await eduBdf('linux-7.3-noiommu');
    const r = await vfioOn(hostWithEduOn('pci-stub'), 'info', edu);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /driver pci-stub/);
    assert.match(r.out, /not bound to vfio-pci/);
  });

  it('info --json and status --json share one schema: ids, addresses and sizes as hex strings, counts as numbers', async () => {
    const edu = await eduBdf('linux-7.3-noiommu');
    const info = JSON.parse((await vfio('info', edu, '--model', '--json')).out) as Record<string, unknown> & {
      bars: { index: number; address: string; size: string; bits: number }[];
      vfio: { irqs: { index: number; count: number; flags: string[] }[]; regions: { size: string }[] };
    };
    const status = JSON.parse((await vfio('status', '--model', '--json')).out) as { devices: Record<string, unknown>[] };
    const row = status.devices.find((d) => d['bdf'] === edu)!;
    for (const key of ['bdf', 'vendorId', 'deviceId', 'name', 'classCode', 'driver', 'driverOverride', 'iommuGroup', 'iommu', 'vfioCdev']) {
      assert.deepEqual(info[key], row[key], key);
    }
    assert.equal(info['vendorId'], '0x1234');
    assert.deepEqual(info.bars[0], { index: 0, address: '0xfea00000', size: '0x100000', kind: 'memory', bits: 32, prefetchable: false });
    assert.equal(info.vfio.regions[0]!.size, '0x100000');
    assert.deepEqual(info.vfio.irqs[1], { index: 1, name: 'MSI', count: 1, flags: ['eventfd', 'noresize'] });
  });

  it('bind of an unknown BDF is ENOENT with the sysfs path', async () => {
    const r = await vfio('bind', '0000:7f:1f.7', '--model');
    assert.equal(r.code, 1);
    assert.match(r.err, /ENOENT/);
    assert.match(r.err, /\/sys\/bus\/pci\/devices\/0000:7f:1f\.7/);
  });

  it('bind of something that is not a PCI address is a usage error', async () => {
    const r = await vfio('bind', 'not-a-bdf', '--model');
    assert.equal(r.code, 2);
    assert.match(r.err, /not a PCI address/);
  });

  it('bind moves a device from another driver to vfio-pci, and unbind --restore gives it back', async () => {
    const kernel = hostWithEduOn('pci-stub');
    const edu = await eduBdf('linux-7.3-noiommu');
    const bound = await vfioOn(kernel, 'bind', edu);
    assert.equal(bound.code, 0, bound.err);
    assert.match(bound.out, /bound to vfio-pci \(was pci-stub\)/);
    assert.equal(kernel.exists('/dev/vfio/devices/noiommu-vfio0'), true);
    const back = await vfioOn(kernel, 'unbind', edu, '--restore=pci-stub');
    assert.equal(back.code, 0, back.err);
    assert.match(back.out, /unbound from vfio-pci; now bound to pci-stub/);
    assert.equal(kernel.exists('/dev/vfio/devices/noiommu-vfio0'), false);
  });

  it('unbind takes the device from vfio-pci and its cdev disappears', async () => {
    const kernel = createModelKernel('linux-7.3-noiommu');
    const edu = await eduBdf('linux-7.3-noiommu');
    const r = await vfioOn(kernel, 'unbind', edu);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /unbound from vfio-pci/);
    assert.equal(kernel.exists('/dev/vfio/devices/noiommu-vfio0'), false);
    const again = await vfioOn(kernel, 'unbind', edu);
    assert.match(again.out, /had no driver/);
  });

  it('a profile without CAP_SYS_RAWIO cannot open the noiommu device: EPERM with the capability hint', async () => {
    const edu = await eduBdf('unprivileged');
    const r = await vfio('info', edu, '--model=unprivileged');
    assert.equal(r.code, 1);
    assert.match(r.err, /EPERM/);
    assert.match(r.err, /hint: .*CAP_SYS_RAWIO/);
  });

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(__dirname, '../../../package.json'), 'utf8')) as { version: string };
    for (const argv of [['--version'], ['status', '--version']]) {
      const r = await vfio(...argv);
      assert.equal(r.code, 0);
      assert.equal(r.out, `vfio (node-vfio) ${version}`);
    }
  });

  it('--help lists every model profile', async () => {
    const r = await vfio('--help');
    for (const name of Object.keys(profiles)) assert.match(r.out, new RegExp(`^  ${name.replace(/\./g, '\\.')}\\b`, 'm'));
  });

  it('a stray positional argument is a usage error, not a silently ignored one', async () => {
    const r = await vfio('status', '--model', 'linux-7.3-iommu');
    assert.equal(r.code, 2);
    assert.match(r.err, /status takes no arguments, got 'linux-7\.3-iommu'/);
    assert.equal((await vfio('info', '0000:00:03.0', '0000:00:04.0', '--model')).code, 2);
  });

  it('unbind --restore= with an empty value is a usage error and leaves the device bound', async () => {
    const kernel = createModelKernel('linux-7.3-noiommu');
    const r = await vfioOn(kernel, 'unbind', '0000:00:03.0', '--restore=');
    assert.equal(r.code, 2);
    assert.match(r.err, /'--restore' needs a value/);
    assert.equal(kernel.exists('/sys/bus/pci/devices/0000:00:03.0/driver'), true);
  });

  it('prints a hint once, in the words of the command', async () => {
    const kernel = hostWithUnboundEdu(false);
    const r = await vfioOn(kernel, 'bind', '0000:00:03.0');
    assert.equal(r.code, 1);
    assert.equal(r.err.match(/hint/g)?.length, 1, r.err);
    assert.match(r.err, /--noiommu/);
    assert.doesNotMatch(r.err, /unsafeNoiommu|PciDevice|bindVfio/);
    const missing = await vfio('info', '0000:7f:00.0', '--model');
    assert.equal(missing.code, 1);
    assert.match(missing.err, /hint: list devices with vfio status/);
  });

  it('status marks driver_override [*] and a device the host is using *Active*, with the reason', async () => {
    const r = await vfio('status', '--model=lab-multi-noiommu');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /0000:00:05\.0 .*\[\*\] override=vfio-pci/);
    assert.match(r.out, /0000:00:06\.0 .*\*Active\*/);
    assert.match(r.out, /0000:00:06\.0: it is a bridge with 0000:01:00\.0 below it/);
    const bind = await vfio('bind', '0000:00:06.0', '--model=lab-multi-noiommu', '--noiommu');
    assert.equal(bind.code, 1);
    assert.match(bind.err, /in use by the host/);
    assert.match(bind.err, /--force/);
  });

  it('names devices from a pci.ids file', () => {
    const names = parsePciIds(
      '# comment\n1af4  Red Hat, Inc.\n\t1000  Virtio network device\n\t\t1af4 0001  subsystem\nC 00  Unclassified device\n\t00  x\n',
    );
    assert.equal(names.get('1af4:1000'), 'Red Hat, Inc. Virtio network device');
    assert.equal(names.size, 1);
  });

  it('an unknown model profile is a clear error', async () => {
    const r = await vfio('status', '--model=no-such-profile');
    assert.notEqual(r.code, 0);
    assert.match(r.err, /no-such-profile/);
  });
});

async function eduBdf(profile: string): Promise<string> {
  const r = await vfio('status', `--model=${profile}`, '--json');
  assert.equal(r.code, 0, r.err);
  const parsed = JSON.parse(r.out) as { devices: { bdf: string; vendorId: string; deviceId: string }[] };
  const edu = parsed.devices.find((d) => d.vendorId === '0x1234' && d.deviceId === '0x11e8');
  assert.ok(edu, `the ${profile} profile has an edu device`);
  return edu.bdf;
}

/** PCI devices of this host that have a network interface up, derived from sysfs here, not by the CLI's code. */
function hostPciDevicesWithUpInterface(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const netDir = '/sys/class/net';
  if (process.platform !== 'linux' || !fs.existsSync(netDir)) return found;
  for (const name of fs.readdirSync(netDir)) {
    let operstate: string;
    let devicePath: string;
    try {
      operstate = fs.readFileSync(path.join(netDir, name, 'operstate'), 'utf8').trim();
      devicePath = fs.realpathSync(path.join(netDir, name, 'device'));
    } catch {
      continue; // a virtual interface: no device link
    }
    if (operstate !== 'up') continue;
    // The nearest PCI function above the interface's device (virtio-net's device is a virtio bus device below it).
    const bdf = devicePath
      .split('/')
      .reverse()
      .find((part) => /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(part));
    if (bdf !== undefined) found.set(bdf, [...(found.get(bdf) ?? []), name]);
  }
  return found;
}

describe('vfio status on this host (native)', () => {
  it('marks a PCI device with an interface that is up *Active*, with the interface name', async function () {
    const active = hostPciDevicesWithUpInterface();
    if (active.size === 0) {
      console.log('      (skipped: this host has no PCI device with a network interface up in /sys/class/net)');
      this.skip();
    }
    const r = await vfio('status');
    assert.equal(r.code, 0, r.err);
    for (const [bdf, names] of active) {
      const line = r.out.split('\n').find((l) => l.includes(bdf) && !l.trimStart().startsWith(`${bdf}:`));
      assert.ok(line !== undefined, `no status line for ${bdf}:\n${r.out}`);
      assert.match(line, /\*Active\*/, line);
      for (const name of names) assert.match(line, new RegExp(`if=(\\S+,)?${name}\\b`), line);
      assert.match(r.out, new RegExp(`^  ${bdf.replace(/\./g, '\\.')}: .*network interface ${names[0]} is up`, 'm'));
    }
  });
});

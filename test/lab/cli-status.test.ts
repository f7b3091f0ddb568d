/**
 * `vfio status --json` in the lab guest against the real Linux 7.3 kernel, checked against what
 * the guest's own sysfs and procfs say, read here without the library: every PCI function is
 * listed with its driver; the e1000e NIC at 00:02.0 with exactly the interfaces /sys/class/net
 * links below it (and whether they are up); the devices the guest's init bound to vfio-pci with
 * their cdev; and *Active* on exactly the functions the host uses (an interface up, a mounted or
 * held disk, a bridge with functions below it, the boot VGA device). An active device is then
 * refused by `vfio bind` without --force, before anything is written, so the guest is unchanged.
 * The model cases of the same rules are test/cli/status-active.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { requireLab } from './lab-environment';

const run = promisify(execFile);
const cli = path.resolve(__dirname, '../../lib/cli/main.js');
const BDF = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;
const IFF_UP = 0x1;
const E1000E = '0000:00:02.0';

interface StatusRow {
  bdf: string;
  vendorId: string;
  deviceId: string;
  driver: string | null;
  vfioCdev: string | null;
  interfaces: string[];
  active: string[];
}

function read(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function entries(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Entries of a class directory whose device path runs through `bdf`. */
function below(classDir: string, bdf: string): string[] {
  return entries(classDir)
    .filter((n) => {
      try {
        return fs.realpathSync(path.join(classDir, n)).split('/').includes(bdf);
      } catch {
        return false;
      }
    })
    .sort();
}

/** The first column of /proc/mounts or /proc/swaps. */
function sources(file: string): Set<string> {
  return new Set((read(file) ?? '').split('\n').map((l) => l.split(/\s+/)[0] ?? ''));
}

/** What the guest says the host uses a function for, from sysfs and procfs directly. */
function guestUse(bdf: string): { interfaces: string[]; up: string[]; reasons: string[] } {
  const interfaces = below('/sys/class/net', bdf);
  const up = interfaces.filter((n) => (Number.parseInt(read(`/sys/class/net/${n}/flags`) ?? '0', 16) & IFF_UP) !== 0);
  const reasons = up.map((n) => `interface ${n} up`);
  const mounts = sources('/proc/mounts');
  const swaps = sources('/proc/swaps');
  for (const disk of below('/sys/block', bdf)) {
    for (const part of [disk, ...entries(`/sys/block/${disk}`).filter((n) => n.startsWith(disk))]) {
      if (mounts.has(`/dev/${part}`)) reasons.push(`/dev/${part} mounted`);
      if (swaps.has(`/dev/${part}`)) reasons.push(`/dev/${part} swap`);
      const dir = part === disk ? `/sys/block/${disk}` : `/sys/block/${disk}/${part}`;
      if (entries(`${dir}/holders`).length > 0) reasons.push(`/dev/${part} held`);
    }
  }
  const children = entries(`/sys/bus/pci/devices/${bdf}/`).filter((n) => BDF.test(n));
  if (children.length > 0) reasons.push(`bridge over ${children.join(',')}`);
  if (read(`/sys/bus/pci/devices/${bdf}/boot_vga`) === '1') reasons.push('boot VGA');
  return { interfaces, up, reasons };
}

function driverOf(bdf: string): string | null {
  try {
    return path.basename(fs.readlinkSync(`/sys/bus/pci/devices/${bdf}/driver`));
  } catch {
    return null;
  }
}

describe('lab: vfio status --json on the real kernel matches the guest sysfs', function () {
  this.timeout(120_000);
  let rows: StatusRow[] = [];

  before(async function () {
    requireLab(this);
    const { stdout } = await run(process.execPath, [cli, 'status', '--json'], { timeout: 60_000, maxBuffer: 16 << 20 });
    rows = (JSON.parse(stdout) as { devices: StatusRow[] }).devices;
  });

  it('lists every PCI function with the driver sysfs names', () => {
    const functions = entries('/sys/bus/pci/devices').sort();
    assert.deepEqual(rows.map((r) => r.bdf).sort(), functions);
    for (const r of rows) assert.equal(r.driver, driverOf(r.bdf), r.bdf);
  });

  it('shows the e1000e NIC at 00:02.0 with exactly the interfaces below it in /sys/class/net, marked by whether they are up', () => {
    const nic = rows.find((r) => r.bdf === E1000E);
    assert.ok(nic, `no row for ${E1000E}`);
    assert.deepEqual([nic.vendorId, nic.deviceId], ['0x8086', '0x10d3']);
    const use = guestUse(E1000E);
    console.log(
      `      ${E1000E}: driver ${driverOf(E1000E) ?? 'none'}, interfaces [${use.interfaces.join(', ')}], up [${use.up.join(', ')}]`,
    );
    assert.deepEqual([...nic.interfaces].sort(), use.interfaces);
    for (const n of use.up)
      assert.ok(
        nic.active.some((a) => a.includes(`network interface ${n} is up`)),
        nic.active.join('; '),
      );
    for (const n of use.interfaces.filter((i) => !use.up.includes(i)))
      assert.ok(!nic.active.some((a) => a.includes(`interface ${n} `)), `${n} is down but reported: ${nic.active.join('; ')}`);
  });

  it('shows the devices the guest bound to vfio-pci with their cdev, not *Active*', function () {
    const lab = requireLab(this);
    for (const bdf of lab.bdfs) {
      const r = rows.find((x) => x.bdf === bdf);
      assert.ok(r, `no row for ${bdf}`);
      assert.equal(r.driver, 'vfio-pci');
      assert.ok(r.vfioCdev !== null && fs.existsSync(r.vfioCdev), `${bdf}: cdev ${r.vfioCdev ?? 'none'} exists`);
      assert.equal(path.basename(r.vfioCdev), entries(`/sys/bus/pci/devices/${bdf}/vfio-dev`).sort()[0]);
      assert.deepEqual(r.active, []);
    }
  });

  it('marks *Active* exactly the functions the guest uses, each reason among what sysfs shows', () => {
    for (const r of rows) {
      const use = guestUse(r.bdf);
      assert.deepEqual([...r.interfaces].sort(), use.interfaces, `${r.bdf} interfaces`);
      assert.equal(
        r.active.length > 0,
        use.reasons.length > 0,
        `${r.bdf}: status says [${r.active.join('; ')}], sysfs says [${use.reasons.join('; ')}]`,
      );
      assert.equal(r.active.length, use.reasons.length, `${r.bdf}: [${r.active.join('; ')}] vs [${use.reasons.join('; ')}]`);
    }
    const active = rows.filter((r) => r.active.length > 0);
    console.log(`      active: ${active.map((r) => `${r.bdf} (${r.active.join('; ')})`).join(', ') || 'none'}`);
  });

  it('vfio bind refuses an active function without --force, exit 1, and leaves its driver', async function () {
    const target = rows.find((r) => r.active.length > 0 && r.driver !== 'vfio-pci');
    if (!target) {
      console.log('      (skipped: no function of this machine is in use by the host)');
      this.skip();
    }
    const before = driverOf(target.bdf);
    const overrideBefore = read(`/sys/bus/pci/devices/${target.bdf}/driver_override`);
    let failure: { code?: number; stderr?: string } | undefined;
    try {
      await run(process.execPath, [cli, 'bind', target.bdf], { timeout: 60_000 });
    } catch (e) {
      failure = e as { code?: number; stderr?: string };
    }
    assert.ok(failure, `vfio bind ${target.bdf} succeeded on an active device`);
    assert.equal(failure.code, 1, failure.stderr);
    assert.match(failure.stderr ?? '', /ERR_VFIO_IN_USE/);
    assert.match(failure.stderr ?? '', /--force/);
    assert.equal(driverOf(target.bdf), before);
    assert.equal(read(`/sys/bus/pci/devices/${target.bdf}/driver_override`), overrideBefore);
  });
});

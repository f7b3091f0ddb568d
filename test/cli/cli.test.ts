import assert from 'node:assert/strict';
import { runCli } from '../../lib/cli/main';
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

  it('status lists the model host\'s edu device, its driver and the noiommu mode', async () => {
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

  it('info shows regions, IRQs and capabilities of a bound device', async () => {
    const edu = await eduBdf('linux-7.3-noiommu');
    const r = await vfio('info', edu, '--model');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /1234:11e8/);
    assert.match(r.out, /BAR0\s+size 0x100000/);
    assert.match(r.out, /MSI\s+count 1/);
    assert.match(r.out, /0x0[0-9a-f]{2}\s+0x05\s+MSI/);
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

  it('info of a device bound to no driver says it is not bound to vfio-pci', async () => {
    const edu = await eduBdf('linux-7.3-noiommu');
    const r = await vfioOn(hostWithUnboundEdu(true), 'info', edu);
    assert.equal(r.code, 1);
    assert.match(r.err, /not vfio-pci/);
    assert.match(r.err, /hint: .*bindVfio/);
  });

  it('info of a device bound to another driver names that driver and how to bind it', async () => {
    const edu = await eduBdf('linux-7.3-noiommu');
    const r = await vfioOn(hostWithEduOn('pci-stub'), 'info', edu);
    assert.equal(r.code, 1);
    assert.match(r.err, /bound to pci-stub, not vfio-pci/);
    assert.match(r.err, /hint: bind it first/);
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

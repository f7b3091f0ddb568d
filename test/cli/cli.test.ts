import assert from 'node:assert/strict';
import { runCli } from '../../lib/cli/main';

/** Runs the CLI in-process and captures what it prints. */
async function vfio(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
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

  it('bind refuses to switch on noiommu mode without --noiommu, with a hint', async () => {
    const edu = await eduBdf('linux-7.3-noiommu-off');
    const r = await vfio('bind', edu, '--model=linux-7.3-noiommu-off');
    assert.equal(r.code, 1);
    assert.match(r.err, /noiommu/i);
    assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
  });

  it('bind --noiommu binds the model\'s edu to vfio-pci and shows its cdev', async () => {
    const edu = await eduBdf('linux-7.3-noiommu');
    const r = await vfio('bind', edu, '--noiommu', '--model');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /bound to vfio-pci.*\/dev\/vfio\/devices\/noiommu-vfio\d+/);
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

  it('info of a device bound to another driver (or none) says it is not bound to vfio-pci', async () => {
    const edu = await eduBdf('linux-7.3-noiommu');
    const r = await vfio('info', edu, '--model');
    assert.equal(r.code, 1);
    assert.match(r.err, /not vfio-pci/);
    assert.match(r.err, /hint: .*bindVfio/);
  });

  it('unbind of a device with no driver reports it and succeeds', async () => {
    const edu = await eduBdf('linux-7.3-noiommu');
    const r = await vfio('unbind', edu, '--model');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /had no driver|unbound from/);
  });

  it('a profile without CAP_SYS_RAWIO cannot open the noiommu device: EPERM with the capability hint', async () => {
    const edu = await eduBdf('unprivileged');
    const r = await vfio('info', edu, '--model=unprivileged');
    assert.notEqual(r.code, 0);
    assert.match(r.err, /EPERM|EACCES|not vfio-pci/);
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

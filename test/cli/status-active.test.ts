/**
 * `vfio status` and `vfio bind` on a model host that uses some of its devices: the NIC whose
 * interface is up and the NVMe controller with a mounted partition are *Active*, the NIC whose
 * interface is down, the AHCI controller with an unmounted disk and the edu device are not; bind
 * refuses the active ones unless --force, as on a real host.
 */
import assert from 'node:assert/strict';
import { runCli } from '../../lib/cli/main';
import { PciDevice } from '../../lib/pci/pci-device';
import type { Kernel } from '../../lib/sys/kernel';
import { AHCI, EDU, NIC_DOWN, NIC_UP, NVME, hostUseKernel } from '../model/host-use.fixture';

async function vfioOn(kernel: Kernel, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) }, kernel);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

interface StatusRow {
  bdf: string;
  driver: string | null;
  interfaces: string[];
  active: string[];
}

const deviceLine = (out: string, bdf: string) => out.split('\n').find((l) => l.startsWith(`  ${bdf}  `));

describe('vfio status and bind on a model host that uses its devices', () => {
  for (const mode of ['linux-7.3-iommu', 'linux-7.3-noiommu'] as const) {
    it(`${mode}: marks exactly the NIC that is up and the NVMe with a mounted partition *Active*, with the reasons`, async () => {
      const r = await vfioOn(hostUseKernel(mode), 'status');
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /Devices using e1000e:/);
      assert.match(r.out, /Devices using nvme:/);
      assert.match(r.out, /Devices using ahci:/);
      assert.match(deviceLine(r.out, NIC_UP) ?? '', /if=enp0s2 \*Active\*$/);
      assert.match(deviceLine(r.out, NIC_DOWN) ?? '', /if=enp0s4$/);
      assert.match(deviceLine(r.out, NVME) ?? '', /\*Active\*$/);
      for (const quiet of [NIC_DOWN, AHCI, EDU]) assert.doesNotMatch(deviceLine(r.out, quiet) ?? 'missing *Active*', /\*Active\*/, quiet);
      const reasons =
        r.out
          .split('*Active*: in use by the host')[1]
          ?.split('\n')
          .filter((l) => l.startsWith('  ')) ?? [];
      assert.deepEqual(reasons, [`  ${NIC_UP}: network interface enp0s2 is up`, `  ${NVME}: /dev/nvme0n1p2 is mounted`]);
    });
  }

  it('status --json reports the interfaces and the reasons per device', async () => {
    const r = await vfioOn(hostUseKernel(), 'status', '--json');
    assert.equal(r.code, 0, r.err);
    const devices = (JSON.parse(r.out) as { devices: StatusRow[] }).devices;
    const by = new Map(devices.map((d) => [d.bdf, d]));
    assert.deepEqual(
      [NIC_UP, NIC_DOWN, NVME, AHCI, EDU].map((b) => {
        const d = by.get(b)!;
        return [b, d.driver, d.interfaces, d.active];
      }),
      [
        [NIC_UP, 'e1000e', ['enp0s2'], ['network interface enp0s2 is up']],
        [NIC_DOWN, 'e1000e', ['enp0s4'], []],
        [NVME, 'nvme', [], ['/dev/nvme0n1p2 is mounted']],
        [AHCI, 'ahci', [], []],
        [EDU, 'vfio-pci', [], []],
      ],
    );
    assert.deepEqual(
      devices.filter((d) => d.active.length > 0).map((d) => d.bdf),
      [NIC_UP, NVME],
    );
  });

  it('bind refuses an active device without --force (exit 1, the reason and the way out) and leaves it with its driver', async () => {
    const kernel = hostUseKernel();
    for (const [bdf, reason, driver] of [
      [NIC_UP, /network interface enp0s2 is up/, 'e1000e'],
      [NVME, /\/dev\/nvme0n1p2 is mounted/, 'nvme'],
    ] as const) {
      const r = await vfioOn(kernel, 'bind', bdf);
      assert.equal(r.code, 1, r.out);
      assert.match(r.err, /ERR_VFIO_IN_USE/);
      assert.match(r.err, new RegExp(`${bdf.replace(/\./g, '\\.')} is in use by the host`));
      assert.match(r.err, reason);
      assert.match(r.err, /--force/);
      assert.equal(PciDevice.get(bdf, { kernel }).driver, driver);
    }
    assert.equal(kernel.exists('/sys/class/net/enp0s2'), true);
    assert.throws(() => PciDevice.get(NIC_UP, { kernel }).bindVfio(), { code: 'ERR_VFIO_IN_USE' });
  });

  it('bind moves an idle host device, and an active one with --force: its interface or disk goes away', async () => {
    const kernel = hostUseKernel();
    const idle = await vfioOn(kernel, 'bind', NIC_DOWN);
    assert.equal(idle.code, 0, idle.err);
    assert.match(idle.out, new RegExp(`bound to vfio-pci \\(was e1000e\\); device cdev /dev/vfio/devices/vfio\\d`));
    assert.equal(kernel.exists('/sys/class/net/enp0s4'), false);
    const forced = await vfioOn(kernel, 'bind', NVME, '--force');
    assert.equal(forced.code, 0, forced.err);
    assert.deepEqual(kernel.readdir('/sys/block'), ['sda']);
    const after = JSON.parse((await vfioOn(kernel, 'status', '--json')).out) as { devices: StatusRow[] };
    assert.deepEqual(
      after.devices.filter((d) => d.active.length > 0).map((d) => d.bdf),
      [NIC_UP],
      'the mount line stays, but no disk below the NVMe function names it',
    );
  });
});

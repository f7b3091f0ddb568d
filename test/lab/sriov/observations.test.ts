/**
 * What the real kernel and QEMU 7.2 show of the sriov machine's PF and its first VF, next to what
 * the model of that machine (tools/fuzz/lab-sriov-machine.ts) shows, observed the same way through
 * the typed API: the PF's SR-IOV attributes and extended config space, the VF's identity,
 * resources, config header, and its VFIO regions and interrupts. Both must be equal.
 */
import assert from 'node:assert/strict';
import type { Kernel } from '../../../lib/sys/kernel';
import { nativeKernel } from '../../../lib/sys/native-kernel';
import { PciDevice } from '../../../lib/pci/pci-device';
import { PciSriov } from '../../../lib/pci/sriov';
import { openDevice } from '../../../lib/vfio/open-device';
import { deviceGetIrqInfo, deviceGetRegionInfo } from '../../../lib/ioctl/device-ioctls';
import { labModelKernel } from '../../../tools/fuzz/lab-model';
import { requireLab } from '../lab-environment';

const PF = '0000:00:04.0';
const TOKEN = '52ac9bff-3a88-4fbd-901a-0d767c3b6c97';

function hexDump(bytes: Buffer, from: number, to: number): string[] {
  const out: string[] = [];
  for (let o = from; o < Math.min(to, bytes.length); o += 32)
    out.push(`${o.toString(16).padStart(3, '0')}: ${bytes.subarray(o, Math.min(o + 32, to)).toString('hex')}`);
  return out;
}

function observe(kernel: Kernel): Record<string, unknown> {
  const obs: Record<string, unknown> = {};
  const sys = (bdf: string, name: string) => kernel.readFile(`/sys/bus/pci/devices/${bdf}/${name}`).toString('utf8');
  for (const a of ['sriov_totalvfs', 'sriov_numvfs', 'sriov_offset', 'sriov_stride', 'sriov_vf_device', 'sriov_drivers_autoprobe'])
    obs[`pf.${a}`] = sys(PF, a);
  obs['pf.resource'] = sys(PF, 'resource');
  obs['pf.config.ext'] = hexDump(kernel.readFile(`/sys/bus/pci/devices/${PF}/config`), 0x100, 0x160);
  const allowed = PciSriov.vfioPciAllowed({ kernel });
  if (!allowed) PciSriov.allowVfioPci(true, { kernel });
  const sriov = PciDevice.get(PF, { kernel }).sriov!;
  const pf = openDevice(PF, { kernel, prefer: 'cdev', vfToken: TOKEN });
  try {
    const [vf] = sriov.enable(1);
    try {
      obs['vf'] = vf;
      for (const a of ['vendor', 'device', 'class', 'subsystem_vendor', 'subsystem_device', 'revision', 'resource', 'sriov_totalvfs']) {
        try {
          obs[`vf.${a}`] = sys(vf!, a);
        } catch (e) {
          obs[`vf.${a}`] = `ERR ${(e as { code?: string }).code}`;
        }
      }
      obs['pf.sriov_numvfs.after'] = sys(PF, 'sriov_numvfs');
      obs['pf.config.ext.after'] = hexDump(kernel.readFile(`/sys/bus/pci/devices/${PF}/config`), 0x100, 0x160);
      const config = kernel.readFile(`/sys/bus/pci/devices/${vf}/config`);
      obs['vf.config.len'] = config.length;
      obs['vf.config.header'] = hexDump(config, 0, 0x40);
      const device = openDevice(vf!, { kernel, prefer: 'cdev', vfToken: TOKEN });
      try {
        for (let i = 0; i < 9; i++) {
          try {
            const r = deviceGetRegionInfo(kernel, device.fd, i);
            obs[`vf.region.${i}`] = `${r.flags} ${r.size}`;
          } catch (e) {
            obs[`vf.region.${i}`] = `ERR ${(e as { code?: string }).code}`;
          }
        }
        for (let i = 0; i < 5; i++) {
          const q = deviceGetIrqInfo(kernel, device.fd, i);
          obs[`vf.irq.${i}`] = `${q.flags} ${q.count}`;
        }
        const user = Buffer.alloc(0x40);
        for (let o = 0; o < 0x40; o += 4) user.writeUInt32LE(device.config.read32(o) >>> 0, o);
        obs['vf.user.config.header'] = hexDump(user, 0, 0x40);
      } finally {
        device.close();
      }
    } finally {
      sriov.disable();
    }
  } finally {
    pf.close();
    if (!allowed) PciSriov.allowVfioPci(false, { kernel });
  }
  return obs;
}

describe('SR-IOV observations: the real sriov machine against its model', function () {
  this.timeout(120_000);
  it('shows the PF and its VF as the model does', function () {
    const lab = requireLab(this);
    const real = observe(nativeKernel());
    console.log(`      real: ${JSON.stringify(real, null, 1)}`);
    const model = observe(labModelKernel(lab.mode, PF, lab.kernel, 'sriov'));
    assert.deepEqual(model, real);
  });
});

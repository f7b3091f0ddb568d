/**
 * The hot-unplug cases (test/devices/hot-unplug-cases.ts) on the real kernel: the multi machine's
 * edu behind its pcie-root-port (QEMU's slot 1, pciehp's /sys/bus/pci/slots/1). Writing 0 to the
 * slot's power file removes the function and blocks the writer until the removal is done, so a
 * child shell does it; writing 1 brings the function back, and the case binds it to vfio-pci again.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { nativeKernel } from '../../../lib/sys/native-kernel';
import { PciDevice } from '../../../lib/pci/pci-device';
import { hotUnplugCases } from '../../devices/hot-unplug-cases';
import { requireLab, type LabEnvironment } from '../lab-environment';

const SLOTS = '/sys/bus/pci/slots';

/** The hotplug slot whose bus holds `bdf` (its `address` file is domain:bus:device). */
function slotOf(bdf: string): string {
  const entries = fs.existsSync(SLOTS) ? fs.readdirSync(SLOTS) : [];
  const slot = entries.find((s) => {
    try {
      return bdf.startsWith(fs.readFileSync(`${SLOTS}/${s}/address`, 'utf8').trim());
    } catch {
      return false;
    }
  });
  if (!slot) throw new Error(`no hotplug slot holds ${bdf} (slots: ${entries.join(', ') || 'none'}; is CONFIG_HOTPLUG_PCI_PCIE on?)`);
  return slot;
}

function writePower(slot: string, value: '0' | '1'): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `echo ${value} > ${SLOTS}/${slot}/power`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`power=${value} of slot ${slot} failed (${code}): ${err}`))));
  });
}

async function waitFor(what: string, test: () => boolean, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (!test()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('lab: hot-unplug of a function vfio-pci drives', function () {
  this.timeout(180_000);
  let lab: LabEnvironment;
  let bdf: string;
  before(function () {
    lab = requireLab(this);
    const behindPort = lab.bdfs.find((b) => !b.startsWith('0000:00:'));
    if (!behindPort) {
      console.log(`      skipped: machine ${lab.machine} has no function behind a PCIe root port`);
      this.skip();
    }
    bdf = behindPort;
  });

  hotUnplugCases(() => {
    const kernel = nativeKernel();
    const slot = slotOf(bdf);
    return Promise.resolve({
      kernel,
      bdf,
      unplug: () => writePower(slot, '0'),
      restore: async () => {
        const path = `/sys/bus/pci/devices/${bdf}`;
        if (!fs.existsSync(path)) {
          await writePower(slot, '1');
          await waitFor(`${bdf} to come back`, () => fs.existsSync(path));
        }
        const pci = PciDevice.get(bdf, { kernel });
        if (pci.driver !== 'vfio-pci') pci.bindVfio({ unsafeNoiommu: lab.mode === 'noiommu' });
        await waitFor(`${bdf}'s VFIO cdev`, () => pci.cdevPath() !== null);
      },
      settleMs: 1500,
    });
  });
});

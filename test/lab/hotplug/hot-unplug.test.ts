/**
 * The hot-unplug cases (test/devices/hot-unplug-cases.ts) on the real kernel: the hotplug machine's
 * three edu functions, each behind a pcie-root-port whose slot pciehp drives (/sys/bus/pci/slots/N).
 * Writing 0 to a slot's power file removes its function and blocks the writer until the removal
 * is done, so a child shell does it. QEMU deletes a device whose slot is powered off, so every
 * case takes a function of its own and none comes back.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { nativeKernel } from '../../../lib/sys/native-kernel';
import { hotUnplugCases } from '../../devices/hot-unplug-cases';
import { requireLab } from '../lab-environment';

const SLOTS = '/sys/bus/pci/slots';

/** The hotplug slot whose bus holds `bdf` (its `address` file is domain:bus:device). */
function slotOf(bdf: string): string {
  const entries = fs.existsSync(SLOTS) ? fs.readdirSync(SLOTS) : [];
  const slot = entries.find((s) => {
    try {
      return bdf.startsWith(fs.readFileSync(`${SLOTS}/${s}/address`, 'utf8').trim() + '.');
    } catch {
      return false;
    }
  });
  if (!slot) throw new Error(`no hotplug slot holds ${bdf} (slots: ${entries.join(', ') || 'none'}; is CONFIG_HOTPLUG_PCI_PCIE on?)`);
  return slot;
}

function powerOff(slot: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `echo 0 > ${SLOTS}/${slot}/power`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`powering slot ${slot} off failed (${code}): ${err}`))));
  });
}

describe('lab: hot-unplug of a function vfio-pci drives', function () {
  this.timeout(180_000);
  let unused: string[] = [];
  before(function () {
    const lab = requireLab(this);
    unused = lab.bdfs.filter((b) => !b.startsWith('0000:00:'));
    if (unused.length === 0) {
      console.log(`      skipped: machine ${lab.machine} has no function behind a PCIe root port`);
      this.skip();
    }
  });

  hotUnplugCases(() => {
    const bdf = unused.shift();
    if (!bdf) throw new Error('the hotplug machine has fewer functions behind root ports than there are cases');
    const slot = slotOf(bdf);
    return Promise.resolve({
      kernel: nativeKernel(),
      bdf,
      unplug: () => powerOff(slot),
      restore: () => Promise.resolve(),
      settleMs: 1500,
    });
  });
});

/**
 * PCIe hotplug slots in the lab guest (pciehp, /sys/bus/pci/slots/N): which slot holds a function,
 * and powering one off, which removes its function and blocks the writer until the removal is
 * done, so a child shell does it. QEMU deletes a device whose slot is powered off.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';

const SLOTS = '/sys/bus/pci/slots';

/** The hotplug slot whose bus holds `bdf` (its `address` file is domain:bus:device). */
export function slotOf(bdf: string): string {
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

export function powerOff(slot: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `echo 0 > ${SLOTS}/${slot}/power`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`powering slot ${slot} off failed (${code}): ${err}`))));
  });
}

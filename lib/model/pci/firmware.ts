/**
 * What the machine's firmware (SeaBIOS on QEMU's q35, as in the lab) leaves in each function's
 * config space before Linux boots: an address for every BAR the device did not fix itself (see
 * bar-windows.ts), I/O, memory decoding and SERR enabled in the command register (whatever BARs
 * the function has), and the interrupt line of its INTx pin from the q35 PIRQ routing (IRQ 10 or
 * 11, rotating with the slot). Linux and vfio-pci start from these values: the lab's edu shows
 * command 0x0103 and interrupt line 11 before and after a VFIO session.
 */
import { PCI_BASE_ADDRESS_0, PCI_COMMAND, PCI_COMMAND_IO, PCI_COMMAND_MEMORY, PCI_COMMAND_SERR, PCI_INTERRUPT_LINE } from '../../uapi/pci';
import type { PciSlot } from './host';

export function firmwareInit(slot: PciSlot): void {
  const d = slot.device;
  const c = d.config;
  for (const bar of d.bars) {
    if (!bar || d.barAddress(bar.index) !== 0n) continue;
    const address = slot.barWindows.assign(slot.name, d, bar);
    const reg = PCI_BASE_ADDRESS_0 + bar.index * 4;
    c.write(reg, 4, Number(address & 0xffff_ffffn));
    if (bar.is64bit) c.write(reg + 4, 4, Number(address >> 32n));
  }
  c.write(PCI_COMMAND, 2, c.read(PCI_COMMAND, 2) | PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_SERR);
  if (d.interruptPin) c.write(PCI_INTERRUPT_LINE, 1, slot.irqLine.irq);
}

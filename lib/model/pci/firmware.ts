/**
 * What the machine's firmware (SeaBIOS on QEMU's q35, as in the lab) leaves in each function's
 * config space before Linux boots: I/O, memory decoding and SERR enabled in the command register
 * (whatever BARs the function has), and the interrupt line of its INTx pin from the q35 PIRQ
 * routing (IRQ 10 or 11, rotating with the slot). Linux and vfio-pci start from these values: the
 * lab's edu shows command 0x0103 and interrupt line 11 before and after a VFIO session.
 */
import { PCI_COMMAND, PCI_COMMAND_IO, PCI_COMMAND_MEMORY, PCI_COMMAND_SERR, PCI_INTERRUPT_LINE } from '../../uapi/pci';
import type { PciSlot } from './host';

export function firmwareInit(slot: PciSlot): void {
  const c = slot.device.config;
  c.write(PCI_COMMAND, 2, c.read(PCI_COMMAND, 2) | PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_SERR);
  if (slot.device.interruptPin) c.write(PCI_INTERRUPT_LINE, 1, slot.irqLine.irq);
}

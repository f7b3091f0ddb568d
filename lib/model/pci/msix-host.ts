/**
 * The host kernel's side of a function's MSI-X (drivers/pci/msi/msi.c, as x86 with its PCI/MSI
 * domain runs it): what pci_alloc_irq_vectors(PCI_IRQ_MSIX), pci_msix_alloc_irq_at,
 * request_irq/free_irq and pci_free_irq_vectors do to the function's capability and its vector
 * table in the BAR:
 *   - enable: MSI-X on with the function masked while it is set up, one host vector per
 *     requested entry with its message written into the table, INTx disabled, every table entry
 *     masked, then the function mask cleared;
 *   - allocate at an index (dynamic MSI-X): one more host vector, its message written, masked;
 *   - request_irq unmasks the entry, free_irq masks it again (the vector stays allocated);
 *   - disable: every allocated entry masked, MSI-X off, INTx allowed again, the messages cleared
 *     as the interrupt domain deactivates them, the host vectors freed.
 * A message is the x86 interrupt window address (destination CPU 0) with the host vector as data,
 * so the MsiController hands the write to whatever handler the vector has.
 */
import {
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_MSIX_ENTRY_CTRL_MASKBIT,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_LOWER_ADDR,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_UPPER_ADDR,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_TABLE,
  PCI_MSIX_TABLE_BIR,
} from '../../uapi/pci';
import { MSI_ADDRESS_BASE, type MsiController } from './host';

/** How the PCI core reaches the function: its config space and the BAR holding the table. */
export interface MsixFunctionAccess {
  readonly capability: number;
  readonly msi: MsiController;
  readConfig(offset: number, width: 1 | 2 | 4): number;
  writeConfig(offset: number, width: 1 | 2 | 4, value: number): void;
  mmioWrite(bar: number, offset: bigint, width: 32, value: bigint): void;
}

export class MsixHostVectors {
  /** Table index → host vector, for the entries allocated so far. */
  private readonly vectors = new Map<number, number>();
  /** Entries whose vector has a handler (unmasked), for pci_restore_msi_state after a reset. */
  private readonly unmasked = new Set<number>();

  constructor(private readonly fn: MsixFunctionAccess) {}

  /** Table entries the function has (the capability's table size). */
  get tableSize(): number {
    return (this.fn.readConfig(this.fn.capability + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE) + 1;
  }

  /** The host vector behind table entry `index`, if it is allocated (pci_irq_vector). */
  hostVector(index: number): number | undefined {
    return this.vectors.get(index);
  }

  /** msix_capability_init for `count` entries from index 0. */
  enable(count: number): void {
    this.setCtrl(PCI_MSIX_FLAGS_ENABLE, 0);
    this.setCtrl(0, PCI_MSIX_FLAGS_MASKALL | PCI_MSIX_FLAGS_ENABLE);
    for (let index = 0; index < count; index++) this.allocate(index);
    this.intx(false);
    for (let index = 0; index < this.tableSize; index++) this.writeEntry(index, PCI_MSIX_ENTRY_VECTOR_CTRL, PCI_MSIX_ENTRY_CTRL_MASKBIT);
    this.setCtrl(PCI_MSIX_FLAGS_MASKALL, 0);
  }

  /** pci_msix_alloc_irq_at: a vector for one more entry, its message written, the entry masked. */
  allocate(index: number): number {
    const vector = this.fn.msi.allocate(1);
    this.vectors.set(index, vector);
    this.writeEntry(index, PCI_MSIX_ENTRY_VECTOR_CTRL, PCI_MSIX_ENTRY_CTRL_MASKBIT);
    this.writeMessage(index);
    return vector;
  }

  /** pci_write_msi_msg with the cached message of the entry's vector. */
  writeMessage(index: number): void {
    const vector = this.vectors.get(index);
    if (vector === undefined) return;
    this.writeEntry(index, PCI_MSIX_ENTRY_LOWER_ADDR, Number(MSI_ADDRESS_BASE));
    this.writeEntry(index, PCI_MSIX_ENTRY_UPPER_ADDR, 0);
    this.writeEntry(index, PCI_MSIX_ENTRY_DATA, vector);
  }

  /** request_irq (unmask) / free_irq (mask) of the entry's vector. */
  setMasked(index: number, masked: boolean): void {
    if (masked) this.unmasked.delete(index);
    else this.unmasked.add(index);
    this.writeEntry(index, PCI_MSIX_ENTRY_VECTOR_CTRL, masked ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
  }

  /**
   * __pci_restore_msix_state after a reset cleared the function: MSI-X enabled again with every
   * allocated entry's message and mask rewritten from the kernel's cache. Nothing when MSI-X is off.
   */
  restore(): void {
    if (this.vectors.size === 0) return;
    this.intx(false);
    this.setCtrl(0, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    for (const index of this.vectors.keys()) {
      this.writeMessage(index);
      this.writeEntry(index, PCI_MSIX_ENTRY_VECTOR_CTRL, this.unmasked.has(index) ? 0 : PCI_MSIX_ENTRY_CTRL_MASKBIT);
    }
    this.setCtrl(PCI_MSIX_FLAGS_MASKALL, 0);
  }

  /** pci_free_irq_vectors with MSI-X on (pci_msix_shutdown, then the domain frees the vectors). */
  disable(): void {
    for (const index of this.vectors.keys()) this.setMasked(index, true);
    this.setCtrl(PCI_MSIX_FLAGS_ENABLE, 0);
    this.intx(true);
    for (const [index, vector] of this.vectors) {
      for (const reg of [PCI_MSIX_ENTRY_LOWER_ADDR, PCI_MSIX_ENTRY_UPPER_ADDR, PCI_MSIX_ENTRY_DATA]) this.writeEntry(index, reg, 0);
      this.fn.msi.free(vector, 1);
    }
    this.vectors.clear();
    this.unmasked.clear();
  }

  /** pci_msix_clear_and_set_ctrl. */
  private setCtrl(clear: number, set: number): void {
    const at = this.fn.capability + PCI_MSIX_FLAGS;
    const ctrl = this.fn.readConfig(at, 2);
    this.fn.writeConfig(at, 2, (ctrl & ~clear) | set);
  }

  /** pci_intx_for_msi: INTx off while MSI-X is on, back on after. */
  private intx(enable: boolean): void {
    const cmd = this.fn.readConfig(PCI_COMMAND, 2);
    const next = enable ? cmd & ~PCI_COMMAND_INTX_DISABLE : cmd | PCI_COMMAND_INTX_DISABLE;
    if (next !== cmd) this.fn.writeConfig(PCI_COMMAND, 2, next);
  }

  private writeEntry(index: number, register: number, value: number): void {
    const table = this.fn.readConfig(this.fn.capability + PCI_MSIX_TABLE, 4);
    const offset = BigInt((table & ~PCI_MSIX_TABLE_BIR) >>> 0) + BigInt(index * PCI_MSIX_ENTRY_SIZE + register);
    this.fn.mmioWrite(table & PCI_MSIX_TABLE_BIR, offset, 32, BigInt(value >>> 0));
  }
}

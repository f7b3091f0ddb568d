/**
 * The device side of MSI-X, with QEMU hw/pci/msix.c's semantics:
 *   - the vector table (16 bytes per entry: address low/high, data, vector control) and the
 *     pending-bit array live in memory BARs and are reached with 4- or 8-byte aligned accesses;
 *     other widths are decode errors. Writes to the PBA are ignored.
 *   - a vector is masked while MSI-X is disabled, the function mask is set, or its entry's mask
 *     bit is set. Signalling a masked vector sets its pending bit instead of sending; unmasking a
 *     vector with its pending bit set clears the bit and sends the message then.
 *   - enabling MSI-X releases INTx; a reset masks every entry and clears the table and PBA.
 * The message itself (address, 32-bit data) goes to the host's interrupt sink, where the host side
 * (vfio-pci's MSI-X support) turns it into the vector's eventfd.
 */
import { PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, PCI_MSIX_FLAGS_MASKALL, PCI_MSIX_FLAGS_QSIZE } from '../../uapi/pci';
import { PCI_MSIX_ENTRY_CTRL_MASKBIT, PCI_MSIX_ENTRY_SIZE, PCI_MSIX_ENTRY_VECTOR_CTRL } from '../../uapi/pci';
import type { PciConfigSpace } from '../pci/physical-config-space';
import type { MsixLayout } from './config-layout';
import type { AccessWidth } from './definition';
import type { MessageSender } from './msi';

export class MsixFunction {
  readonly table: Uint8Array;
  readonly pba: Uint8Array;
  private readonly tableView: DataView;
  private readonly pbaView: DataView;
  private functionMasked = true;

  constructor(
    private readonly config: PciConfigSpace,
    readonly layout: MsixLayout,
    private readonly send: MessageSender,
  ) {
    this.table = new Uint8Array(layout.vectors * PCI_MSIX_ENTRY_SIZE);
    this.pba = new Uint8Array(Math.ceil(layout.vectors / 64) * 8);
    this.tableView = new DataView(this.table.buffer);
    this.pbaView = new DataView(this.pba.buffer);
    this.maskAll();
  }

  get tableSize(): number {
    return this.table.length;
  }

  get enabled(): boolean {
    return (this.config.getRaw(this.layout.at + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_ENABLE) !== 0;
  }

  /** Masked by the function (disabled or function mask) or by the entry's own mask bit. */
  masked(vector: number): boolean {
    this.checkVector(vector);
    return this.vectorMasked(vector, this.functionMasked);
  }

  pending(vector: number): boolean {
    this.checkVector(vector);
    return (this.pba[vector >> 3]! & (1 << (vector & 7))) !== 0;
  }

  /** The programmed message of a vector. */
  message(vector: number): { address: bigint; data: number } {
    this.checkVector(vector);
    const at = vector * PCI_MSIX_ENTRY_SIZE;
    const address = (BigInt(this.tableView.getUint32(at + 4, true)) << 32n) | BigInt(this.tableView.getUint32(at, true));
    return { address, data: this.tableView.getUint32(at + 8, true) };
  }

  notify(vector: number): void {
    this.checkVector(vector);
    if (this.vectorMasked(vector, this.functionMasked)) {
      this.setPending(vector, true);
      return;
    }
    const m = this.message(vector);
    this.send(`MSI-X vector ${vector}`, m.address, m.data);
  }

  tableRead(offset: number, width: AccessWidth): bigint {
    if (width === 64) return this.tableView.getBigUint64(offset, true);
    return BigInt(this.tableView.getUint32(offset, true));
  }

  tableWrite(offset: number, width: AccessWidth, value: bigint): void {
    // The table is implemented in dwords: an 8-byte write is two dword writes, low one first.
    this.tableDword(offset, Number(value & 0xffff_ffffn));
    if (width === 64) this.tableDword(offset + 4, Number(value >> 32n));
  }

  pbaRead(offset: number, width: AccessWidth): bigint {
    if (width === 64) return this.pbaView.getBigUint64(offset, true);
    return BigInt(this.pbaView.getUint32(offset, true));
  }

  /**
   * msix_write_config: a write covering the byte with the enable and function-mask bits updates
   * the function mask; while enabled it releases INTx (returns true) and, if the function mask
   * changed, sends what became unmasked and is pending.
   */
  configWritten(offset: number, width: number): boolean {
    const enableByte = this.layout.at + PCI_MSIX_FLAGS + 1;
    if (offset > enableByte || offset + width <= enableByte) return false;
    const wasMasked = this.functionMasked;
    this.updateFunctionMasked();
    if (!this.enabled) return false;
    if (this.functionMasked !== wasMasked) {
      for (let v = 0; v < this.layout.vectors; v++) this.maskUpdate(v, this.vectorMasked(v, wasMasked));
    }
    return true;
  }

  /** The table size the capability advertises (1..the entries declared); the table keeps every entry. */
  get advertisedSize(): number {
    return (this.config.getRaw(this.layout.at + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE) + 1;
  }

  set advertisedSize(entries: number) {
    const flags = this.config.getRaw(this.layout.at + PCI_MSIX_FLAGS, 2);
    this.config.setRaw(this.layout.at + PCI_MSIX_FLAGS, 2, (flags & ~PCI_MSIX_FLAGS_QSIZE) | (entries - 1));
  }

  /** msix_reset: disabled, function mask clear, table and PBA zero, every entry masked. */
  reset(): void {
    const flags = this.config.getRaw(this.layout.at + PCI_MSIX_FLAGS, 2);
    this.config.setRaw(this.layout.at + PCI_MSIX_FLAGS, 2, flags & ~(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL));
    this.table.fill(0);
    this.pba.fill(0);
    this.maskAll();
    this.updateFunctionMasked();
  }

  private tableDword(offset: number, value: number): void {
    const vector = Math.floor(offset / PCI_MSIX_ENTRY_SIZE);
    const wasMasked = this.vectorMasked(vector, this.functionMasked);
    this.tableView.setUint32(offset, value >>> 0, true);
    this.maskUpdate(vector, wasMasked);
  }

  private maskUpdate(vector: number, wasMasked: boolean): void {
    const isMasked = this.vectorMasked(vector, this.functionMasked);
    if (isMasked === wasMasked || isMasked || !this.pending(vector)) return;
    this.setPending(vector, false);
    this.notify(vector);
  }

  private vectorMasked(vector: number, functionMasked: boolean): boolean {
    return functionMasked || (this.table[vector * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL]! & PCI_MSIX_ENTRY_CTRL_MASKBIT) !== 0;
  }

  private updateFunctionMasked(): void {
    const flags = this.config.getRaw(this.layout.at + PCI_MSIX_FLAGS, 2);
    this.functionMasked = !(flags & PCI_MSIX_FLAGS_ENABLE) || (flags & PCI_MSIX_FLAGS_MASKALL) !== 0;
  }

  private setPending(vector: number, on: boolean): void {
    const bit = 1 << (vector & 7);
    this.pba[vector >> 3] = on ? this.pba[vector >> 3]! | bit : this.pba[vector >> 3]! & ~bit;
  }

  private maskAll(): void {
    for (let v = 0; v < this.layout.vectors; v++)
      this.table[v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
  }

  private checkVector(vector: number): void {
    if (!Number.isInteger(vector) || vector < 0 || vector >= this.layout.vectors) {
      throw new RangeError(`MSI-X vector ${vector} does not exist (the table has ${this.layout.vectors})`);
    }
  }
}

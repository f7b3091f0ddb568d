/**
 * The device side of MSI (QEMU hw/pci/msi.c semantics): a vector is a posted write of the
 * programmed data, with the vector number in its low bits, to the programmed address. It is
 * dropped while MSI is disabled, for a vector beyond the enabled count, or while the vector's mask
 * bit is set (per-vector masking; MSI keeps no pending state the host can see here). A software
 * write to an enabled capability clamps the enabled count to the maximum and releases INTx.
 */
import {
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_32,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSI_MASK_32,
  PCI_MSI_MASK_64,
} from '../../uapi/pci';
import type { PciConfigSpace } from '../pci/physical-config-space';
import type { MsiLayout } from './config-layout';

/** Where a message goes once the function decided to send it. */
export type MessageSender = (what: string, address: bigint, data: number) => void;

export class MsiFunction {
  private readonly length: number;

  constructor(
    private readonly config: PciConfigSpace,
    private readonly layout: MsiLayout,
    private readonly send: MessageSender,
  ) {
    this.length = 10 + (layout.is64bit ? 4 : 0) + (layout.perVectorMask ? 10 : 0);
  }

  get enabled(): boolean {
    return (this.config.getRaw(this.layout.at + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE) !== 0;
  }

  notify(vector: number): void {
    if (!this.enabled) return;
    const pos = this.layout.at;
    const flags = this.config.getRaw(pos + PCI_MSI_FLAGS, 2);
    const is64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
    const enabledVectors = 1 << ((flags & PCI_MSI_FLAGS_QSIZE) >> 4);
    if (vector >= enabledVectors) return;
    if (flags & PCI_MSI_FLAGS_MASKBIT) {
      const mask = this.config.getRaw(pos + (is64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32), 4);
      if (mask & (1 << vector)) return;
    }
    const lo = BigInt(this.config.getRaw(pos + PCI_MSI_ADDRESS_LO, 4));
    const hi = is64 ? BigInt(this.config.getRaw(pos + PCI_MSI_ADDRESS_HI, 4)) : 0n;
    const data = this.config.getRaw(pos + (is64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 2);
    const vectorBits = enabledVectors - 1;
    this.send(`MSI vector ${vector}`, (hi << 32n) | lo, (data & ~vectorBits) | (vector & vectorBits));
  }

  /** msi_write_config; returns true when INTx must be released (MSI is enabled). */
  configWritten(offset: number, width: number): boolean {
    const pos = this.layout.at;
    if (offset >= pos + this.length || offset + width <= pos || !this.enabled) return false;
    let flags = this.config.getRaw(pos + PCI_MSI_FLAGS, 2);
    const logMax = (flags & PCI_MSI_FLAGS_QMASK) >> 1;
    if ((flags & PCI_MSI_FLAGS_QSIZE) >> 4 > logMax) {
      flags = (flags & ~PCI_MSI_FLAGS_QSIZE) | (logMax << 4);
      this.config.setRaw(pos + PCI_MSI_FLAGS, 2, flags);
    }
    return true;
  }
}

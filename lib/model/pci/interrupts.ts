/**
 * How a simulated function signals the host. INTx is a level: the function drives its pin and the
 * host's interrupt controller sees the level (after the function's own INTx-disable gating).
 * MSI is a posted memory write of `data` to `address`, which the host's interrupt controller
 * decodes into a vector; the host programs address/data into the function's MSI capability
 * when it allocates vectors, exactly like pci_alloc_irq_vectors does.
 *
 * @category Device-model SDK
 */
export interface InterruptSink {
  /** The INTx line as seen outside the function changed to `asserted`. */
  intxLevel(asserted: boolean): void;
  /** An MSI/MSI-X message write. */
  messageWrite(address: bigint, data: number): void;
}

export const DISCONNECTED_INTERRUPTS: InterruptSink = {
  intxLevel() {
    /* no host: the line goes nowhere */
  },
  messageWrite() {
    /* no host: the write goes nowhere */
  },
};

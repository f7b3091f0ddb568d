/**
 * QEMU 7.2 edu (hw/misc/edu.c) on the model, driven directly through its config space and BAR0
 * like the host would: registers, access widths, factorial, DMA in both directions, interrupts
 * (INTx level and MSI message) and the faults QEMU turns into a VM abort.
 */
import assert from 'node:assert/strict';
import {
  EduDevice,
  EDU_DMA_CMD_IRQ,
  EDU_DMA_CMD_START,
  EDU_DMA_CMD_TO_RAM,
  EDU_IDENTIFICATION,
  EDU_IRQ_DMA,
  EDU_IRQ_FACT,
  EDU_REG,
  EDU_STATUS_COMPUTING,
  EDU_STATUS_IRQ_FACT,
} from '../../../lib/devices/edu';
import { DmaFault, type DmaPort } from '../../../lib/model/pci/dma';
import type { InterruptSink } from '../../../lib/model/pci/interrupts';
import {
  PCI_CAPABILITY_LIST,
  PCI_CAP_ID_MSI,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_INTERRUPT_PIN,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_INTERRUPT,
  PCI_BASE_ADDRESS_0,
} from '../../../lib/uapi/pci';

/** A flat "physical memory" of a few pages at a fixed base; anything else is not memory. */
class TestMemory implements DmaPort {
  readonly bytes = new Uint8Array(0x4000);
  constructor(readonly base: bigint) {}
  private index(address: bigint, length: number, dir: 'read' | 'write'): number {
    if (address < this.base || address + BigInt(length) > this.base + BigInt(this.bytes.length)) {
      throw new DmaFault('no-memory', address, length, dir);
    }
    return Number(address - this.base);
  }
  read(address: bigint, length: number): Uint8Array {
    const i = this.index(address, length, 'read');
    return this.bytes.slice(i, i + length);
  }
  write(address: bigint, data: Uint8Array): void {
    this.bytes.set(data, this.index(address, data.length, 'write'));
  }
}

class TestInterrupts implements InterruptSink {
  intx = false;
  intxChanges = 0;
  messages: { address: bigint; data: number }[] = [];
  intxLevel(asserted: boolean): void {
    this.intx = asserted;
    this.intxChanges++;
  }
  messageWrite(address: bigint, data: number): void {
    this.messages.push({ address, data });
  }
}

const FULL_MASK = (1n << 64n) - 1n;

function setup(opts: { sync?: boolean; dmaMask?: bigint } = {}) {
  const edu = new EduDevice({ timing: opts.sync === false ? { mode: 'immediate' } : { mode: 'sync' }, dmaMask: opts.dmaMask ?? FULL_MASK });
  const memory = new TestMemory(0x1_2340_0000n);
  const irq = new TestInterrupts();
  edu.connect({ dma: memory, interrupts: irq });
  edu.config.write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  const r32 = (off: number) => Number(edu.mmioRead(0, BigInt(off), 32));
  const w32 = (off: number, v: number) => edu.mmioWrite(0, BigInt(off), 32, BigInt(v));
  const w64 = (off: number, v: bigint) => edu.mmioWrite(0, BigInt(off), 64, v);
  return { edu, memory, irq, r32, w32, w64 };
}

describe('edu device model (QEMU 7.2 hw/misc/edu.c)', () => {
  describe('identity and config space (pci_edu_realize, edu_class_init)', () => {
    it('has the IDs, class, pin, MSI capability and BAR0 of QEMU edu', () => {
      const { edu } = setup();
      const c = edu.config;
      assert.equal(c.read(0, 4), 0x11e81234);
      assert.equal(c.read(PCI_CLASS_PROG - 1, 4) >>> 8, 0x00ff00);
      assert.equal(c.read(PCI_CLASS_PROG - 1, 1), 0x10);
      assert.equal(c.read(PCI_INTERRUPT_PIN, 1), 1);
      assert.ok(c.read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
      assert.equal(c.read(PCI_CAPABILITY_LIST, 1), 0x40);
      assert.equal(c.read(0x40, 1), PCI_CAP_ID_MSI);
      assert.equal(c.read(0x41, 1), 0, 'MSI is the only capability');
      assert.equal(c.read(0x40 + PCI_MSI_FLAGS, 2), PCI_MSI_FLAGS_64BIT, '64-bit, one vector, no masking');
      assert.equal(edu.bars[0]?.size, 1n << 20n);
      assert.equal(edu.supportsFunctionReset, false);
    });

    it('sizes BAR0 as 1 MiB of 32-bit non-prefetchable memory (pci_register_bar)', () => {
      const { edu } = setup();
      edu.config.write(PCI_BASE_ADDRESS_0, 4, 0xffff_ffff);
      assert.equal(edu.config.read(PCI_BASE_ADDRESS_0, 4), 0xfff0_0000);
      edu.config.write(PCI_BASE_ADDRESS_0 + 4, 4, 0xffff_ffff);
      assert.equal(edu.config.read(PCI_BASE_ADDRESS_0 + 4, 4), 0, 'BAR1 is unimplemented');
    });

    it('keeps QEMU command-register write mask (IO, MEM, MASTER, SERR, INTX_DISABLE only)', () => {
      const { edu } = setup();
      edu.config.write(PCI_COMMAND, 2, 0xffff);
      assert.equal(edu.config.read(PCI_COMMAND, 2), 0x0507);
    });
  });

  describe('registers (edu_mmio_read / edu_mmio_write)', () => {
    it('reads the identification register 0x010000ed', () => {
      const { r32 } = setup();
      assert.equal(r32(EDU_REG.ID), EDU_IDENTIFICATION);
    });

    it('liveness returns the bitwise NOT of the last write', () => {
      const { r32, w32 } = setup();
      assert.equal(r32(EDU_REG.LIVENESS), 0);
      w32(EDU_REG.LIVENESS, 0x12345678);
      assert.equal(r32(EDU_REG.LIVENESS), 0xedcba987);
    });

    it('answers all ones to 8-byte reads below 0x80 and to unknown registers', () => {
      const { edu, r32 } = setup();
      assert.equal(edu.mmioRead(0, 0n, 64), FULL_MASK);
      assert.equal(r32(0x10), 0xffff_ffff);
      assert.equal(r32(0x84), 0xffff_ffff, 'the upper half of a 64-bit DMA register is not decoded');
      assert.equal(edu.mmioRead(0, 0x1000n, 64), FULL_MASK);
    });

    it('treats 1- and 2-byte accesses as invalid: they read 0 and write nothing', () => {
      const { edu, r32 } = setup();
      assert.equal(edu.mmioRead(0, 0n, 8), 0n);
      assert.equal(edu.mmioRead(0, 0n, 16), 0n);
      edu.mmioWrite(0, BigInt(EDU_REG.LIVENESS), 16, 0x1234n);
      assert.equal(r32(EDU_REG.LIVENESS), 0);
      assert.ok(edu.events.some((e) => e.kind === 'guest-error'));
    });

    it('DMA registers take 8-byte and 4-byte accesses; a 4-byte write zero-extends', () => {
      const { edu, r32, w32, w64 } = setup();
      w64(EDU_REG.DMA_SRC, 0x1_2345_6789n);
      assert.equal(edu.mmioRead(0, BigInt(EDU_REG.DMA_SRC), 64), 0x1_2345_6789n);
      assert.equal(r32(EDU_REG.DMA_SRC), 0x2345_6789, 'a 4-byte read returns the low half');
      w32(EDU_REG.DMA_SRC, 0xabcd);
      assert.equal(edu.mmioRead(0, BigInt(EDU_REG.DMA_SRC), 64), 0xabcdn);
    });
  });

  describe('factorial (edu_fact_thread)', () => {
    it('computes n! mod 2^32 and clears the computing bit', () => {
      const { r32, w32 } = setup();
      w32(EDU_REG.FACTORIAL, 5);
      assert.equal(r32(EDU_REG.FACTORIAL), 120);
      w32(EDU_REG.FACTORIAL, 13);
      assert.equal(r32(EDU_REG.FACTORIAL), 1932053504, '13! wraps at 32 bits');
      w32(EDU_REG.FACTORIAL, 0);
      assert.equal(r32(EDU_REG.FACTORIAL), 1);
    });

    it('completes asynchronously: the driver must poll the status register', async () => {
      const { r32, w32 } = setup({ sync: false });
      w32(EDU_REG.FACTORIAL, 10);
      assert.equal(r32(EDU_REG.STATUS) & EDU_STATUS_COMPUTING, EDU_STATUS_COMPUTING);
      w32(EDU_REG.FACTORIAL, 3);
      assert.equal(r32(EDU_REG.FACTORIAL), 10, 'writes while computing are ignored; the input is still visible');
      await new Promise((r) => setImmediate(r));
      assert.equal(r32(EDU_REG.STATUS) & EDU_STATUS_COMPUTING, 0);
      assert.equal(r32(EDU_REG.FACTORIAL), 3628800);
    });

    it('raises interrupt 0x1 when status bit 7 is set; the computing bit is read-only', () => {
      const { r32, w32, irq } = setup();
      w32(EDU_REG.STATUS, EDU_STATUS_IRQ_FACT | EDU_STATUS_COMPUTING);
      assert.equal(r32(EDU_REG.STATUS), EDU_STATUS_IRQ_FACT);
      w32(EDU_REG.FACTORIAL, 4);
      assert.equal(r32(EDU_REG.IRQ_STATUS), EDU_IRQ_FACT);
      assert.equal(irq.intx, true);
    });
  });

  describe('interrupts (edu_raise_irq / edu_lower_irq)', () => {
    it('drives INTx while any status bit is set, with the PCI status bit, until acknowledged', () => {
      const { edu, r32, w32, irq } = setup();
      w32(EDU_REG.IRQ_RAISE, 0x5);
      assert.equal(r32(EDU_REG.IRQ_STATUS), 0x5);
      assert.equal(irq.intx, true);
      assert.ok(edu.config.read(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
      w32(EDU_REG.IRQ_ACK, 0x1);
      assert.equal(irq.intx, true, 'bit 2 is still pending');
      w32(EDU_REG.IRQ_ACK, 0x4);
      assert.equal(irq.intx, false);
      assert.equal(edu.config.read(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
    });

    it('INTx disable in the command register gates the line but not the status bit', () => {
      const { edu, w32, irq } = setup();
      edu.config.write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
      w32(EDU_REG.IRQ_RAISE, 1);
      assert.equal(irq.intx, false);
      assert.ok(edu.config.read(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
      edu.config.write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
      assert.equal(irq.intx, true);
    });

    it('sends the programmed MSI message when MSI is enabled, on every raise (msi_notify)', () => {
      const { edu, w32, irq } = setup();
      edu.config.write(0x40 + PCI_MSI_ADDRESS_LO, 4, 0xfee0_0000);
      edu.config.write(0x40 + PCI_MSI_ADDRESS_HI, 4, 0);
      edu.config.write(0x40 + PCI_MSI_DATA_64, 2, 0x4041);
      edu.config.write(0x40 + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE);
      w32(EDU_REG.IRQ_RAISE, 1);
      w32(EDU_REG.IRQ_RAISE, 1);
      assert.deepEqual(irq.messages, [
        { address: 0xfee0_0000n, data: 0x4041 },
        { address: 0xfee0_0000n, data: 0x4041 },
      ]);
      assert.equal(irq.intx, false, 'no INTx while MSI is enabled');
    });

    it('drops the MSI write when bus mastering is off (it goes through the bus master address space)', () => {
      const { edu, w32, irq } = setup();
      edu.config.write(0x40 + PCI_MSI_ADDRESS_LO, 4, 0xfee0_0000);
      edu.config.write(0x40 + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE);
      edu.config.write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
      w32(EDU_REG.IRQ_RAISE, 1);
      assert.equal(irq.messages.length, 0);
      assert.ok(edu.events.some((e) => e.kind === 'dma-blocked'));
    });
  });

  describe('DMA (edu_dma_timer)', () => {
    function transfer(t: ReturnType<typeof setup>, src: bigint, dst: bigint, count: number, cmd: number) {
      t.w64(EDU_REG.DMA_SRC, src);
      t.w64(EDU_REG.DMA_DST, dst);
      t.w64(EDU_REG.DMA_COUNT, BigInt(count));
      t.w64(EDU_REG.DMA_CMD, BigInt(cmd));
    }

    it('round-trips RAM to device to RAM with the exact bytes', () => {
      const t = setup();
      const src = t.memory.base + 0x100n;
      const dst = t.memory.base + 0x2000n;
      const pattern = Uint8Array.from({ length: 4095 }, (_, i) => (i * 7 + 3) & 0xff);
      t.memory.bytes.set(pattern, 0x100);
      transfer(t, src, 0x40000n, 4095, EDU_DMA_CMD_START);
      transfer(t, 0x40000n, dst, 4095, EDU_DMA_CMD_START | EDU_DMA_CMD_TO_RAM);
      assert.deepEqual(t.memory.bytes.slice(0x2000, 0x2000 + 4095), pattern);
    });

    it('is busy until the transfer completes, then raises interrupt 0x100 when asked', async () => {
      const t = setup({ sync: false });
      transfer(t, t.memory.base, 0x40000n, 16, EDU_DMA_CMD_START | EDU_DMA_CMD_IRQ);
      assert.equal(t.r32(EDU_REG.DMA_CMD) & EDU_DMA_CMD_START, EDU_DMA_CMD_START);
      t.w64(EDU_REG.DMA_COUNT, 32n);
      assert.equal(t.r32(EDU_REG.DMA_COUNT), 16, 'registers are frozen while a transfer runs');
      await new Promise((r) => setImmediate(r));
      assert.equal(t.r32(EDU_REG.DMA_CMD) & EDU_DMA_CMD_START, 0);
      assert.equal(t.r32(EDU_REG.IRQ_STATUS), EDU_IRQ_DMA);
      assert.equal(t.irq.intx, true);
    });

    it('ignores a command write without the start bit', () => {
      const t = setup();
      t.w64(EDU_REG.DMA_CMD, BigInt(EDU_DMA_CMD_IRQ));
      assert.equal(t.r32(EDU_REG.DMA_CMD), 0);
    });

    it('a transfer of the full 4096 bytes is a hardware error (QEMU 7.2 aborts the VM), not corruption', () => {
      const t = setup();
      t.memory.bytes.fill(0xaa, 0, 4096);
      transfer(t, t.memory.base, 0x40000n, 4096, EDU_DMA_CMD_START);
      assert.equal(t.edu.failed, true);
      assert.ok(t.edu.events.some((e) => e.kind === 'hardware-error'));
      assert.ok(
        t.edu.bufferContents().every((b) => b === 0),
        'the buffer was not written',
      );
      assert.equal(t.r32(EDU_REG.ID), 0xffff_ffff, 'a dead device reads all ones');
    });

    it('a zero-length transfer also fails the range check', () => {
      const t = setup();
      transfer(t, t.memory.base, 0x40000n, 0, EDU_DMA_CMD_START);
      assert.equal(t.edu.failed, true);
    });

    it('a device-side window that ends inside the buffer is accepted', () => {
      const t = setup();
      t.memory.bytes.set([1, 2, 3, 4], 0);
      transfer(t, t.memory.base, 0x40ff0n, 4, EDU_DMA_CMD_START);
      assert.deepEqual([...t.edu.bufferContents().slice(0xff0, 0xff4)], [1, 2, 3, 4]);
      assert.equal(t.edu.failed, false);
    });

    it('a DMA to memory that does not exist is a recorded fault: reads give zeros, writes are dropped', () => {
      const t = setup();
      transfer(t, 0x9000_0000n, 0x40000n, 8, EDU_DMA_CMD_START);
      const fault = t.edu.events.find((e) => e.kind === 'dma-fault');
      assert.equal(fault?.fault?.reason, 'no-memory');
      assert.equal(fault?.fault?.address, 0x9000_0000n);
      assert.equal(t.r32(EDU_REG.DMA_CMD) & EDU_DMA_CMD_START, 0, 'the transfer still completes');
    });

    it('without bus mastering the transfer never reaches memory', () => {
      const t = setup();
      t.edu.config.write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
      t.edu.mmioWrite(0, BigInt(EDU_REG.DMA_CMD), 64, 0n);
      t.memory.bytes.fill(0x55, 0, 8);
      transfer(t, 0x40000n, t.memory.base, 8, EDU_DMA_CMD_START | EDU_DMA_CMD_TO_RAM);
      assert.deepEqual([...t.memory.bytes.slice(0, 8)], [0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55]);
      assert.ok(t.edu.events.some((e) => e.kind === 'dma-blocked'));
    });

    it('clamps bus addresses to the default 28-bit DMA mask like QEMU', () => {
      const t = setup({ dmaMask: (1n << 28n) - 1n });
      transfer(t, t.memory.base + 0x10n, 0x40000n, 4, EDU_DMA_CMD_START);
      const fault = t.edu.events.find((e) => e.kind === 'dma-fault');
      assert.equal(fault?.fault?.address, (t.memory.base + 0x10n) & ((1n << 28n) - 1n));
      assert.ok(t.edu.events.some((e) => e.kind === 'guest-error' && /clamping/.test(e.message)));
    });
  });
});

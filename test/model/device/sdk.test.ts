/**
 * The device-model SDK on its own and on a model machine: definitions the hardware could not have
 * are refused naming the device and the rule; BAR handlers by width; a throwing handler fails
 * the access and leaves the kernel usable; MSI-X table, masks and pending bits as QEMU's msix.c;
 * the clock's modes; resets; placement with derived IOMMU groups and cdev numbers; and vfio-pci
 * showing the SDK's capabilities through its virtualised config space.
 */
import assert from 'node:assert/strict';
import {
  createModelKernel,
  DeviceEventError,
  DeviceModel,
  DeviceModelError,
  extendedCapability,
  ModelClock,
  msiCapability,
  msixCapability,
  pcieCapability,
  pmCapability,
  vendorCapability,
  type DeviceDefinition,
  type DmaPort,
  type InterruptSink,
} from '../../../lib/model';
import { openDevice, PciDevice } from '../../../lib';
import {
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PM,
  PCI_CAP_ID_VNDR,
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
} from '../../../lib/uapi/pci';

const ID = { vendorId: 0x1234, deviceId: 0x0042, classCode: 0x088000 };

class Plain extends DeviceModel {
  constructor(extra: Partial<DeviceDefinition> = {}) {
    super({ model: 'plain', identity: ID, bars: [{ index: 0, size: 0x4000n, type: 'memory64' }], ...extra });
  }
}

function refused(make: () => unknown, rule: RegExp): void {
  assert.throws(make, (e: unknown) => e instanceof DeviceModelError && e.device === 'plain' && rule.test(e.message));
}

class Messages implements InterruptSink {
  readonly sent: { address: bigint; data: number }[] = [];
  intx = false;
  intxLevel(asserted: boolean): void {
    this.intx = asserted;
  }
  messageWrite(address: bigint, data: number): void {
    this.sent.push({ address, data });
  }
}

const NO_MEMORY: DmaPort = {
  read: () => {
    throw new Error('unused');
  },
  write: () => {
    throw new Error('unused');
  },
};

function connected<T extends DeviceModel>(d: T, clock?: ModelClock): { d: T; irq: Messages } {
  const irq = new Messages();
  d.connect({ dma: NO_MEMORY, interrupts: irq, ...(clock ? { clock } : {}) });
  d.config.write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  return { d, irq };
}

describe('device-model SDK', () => {
  describe('definitions the hardware could not have are refused at construction', () => {
    it('BAR rules: power-of-two size, registers and addresses that do not overlap, 64-bit placement', () => {
      refused(() => new Plain({ bars: [{ index: 0, size: 0x3000n, type: 'memory32' }] }), /BAR size is a power of two: BAR 0/);
      refused(
        () =>
          new Plain({
            bars: [
              { index: 0, size: 0x1000n, type: 'memory64' },
              { index: 1, size: 0x1000n, type: 'memory32' },
            ],
          }),
        /overlapping BARs: BAR 1 needs register 1/,
      );
      refused(
        () =>
          new Plain({
            bars: [
              { index: 0, size: 0x1000n, type: 'memory32', address: 0xc000_0000n },
              { index: 1, size: 0x2000n, type: 'memory32', address: 0xc000_0000n },
            ],
          }),
        /overlapping BARs: BAR 1 at 0xc0000000/,
      );
      refused(() => new Plain({ bars: [{ index: 5, size: 0x1000n, type: 'memory64' }] }), /cannot start at 5/);
      refused(() => new Plain({ bars: [{ index: 0, size: 0x1000n, type: 'memory32', address: 0x800n }] }), /BAR address/);
      refused(() => new Plain({ bars: [{ index: 0, size: 0x1000n, type: 'io' }] }), /I\/O BAR size/);
    });

    it('capabilities that do not fit, overlap, or need PCI Express', () => {
      refused(
        () => new Plain({ capabilities: [vendorCapability(new Uint8Array(200)), vendorCapability(new Uint8Array(100))] }),
        /capability does not fit/,
      );
      refused(
        () => new Plain({ capabilities: [msiCapability({ at: 0x40 }), pmCapability({ at: 0x44 })] }),
        /capabilities overlap: pm capability at 0x44/,
      );
      refused(
        () => new Plain({ capabilities: [extendedCapability({ id: 3, data: new Uint8Array(8) })] }),
        /extended capabilities need PCI Express/,
      );
      refused(() => new Plain({ capabilities: [msiCapability({ vectors: 3 })] }), /MSI vector count/);
    });

    it('MSI-X table and PBA inside a memory BAR, aligned, apart', () => {
      refused(
        () =>
          new Plain({ capabilities: [msixCapability({ vectors: 64, table: { bar: 0, offset: 0x3e00 }, pba: { bar: 0, offset: 0x100 } })] }),
        /MSI-X table inside its BAR: 1024 bytes at BAR 0\+0x3e00/,
      );
      refused(
        () => new Plain({ capabilities: [msixCapability({ vectors: 4, table: { bar: 2, offset: 0 }, pba: { bar: 0, offset: 0 } })] }),
        /MSI-X table in a memory BAR: BAR 2 is not declared/,
      );
      refused(
        () => new Plain({ capabilities: [msixCapability({ vectors: 4, table: { bar: 0, offset: 0x1004 }, pba: { bar: 0, offset: 0 } })] }),
        /MSI-X table alignment/,
      );
      refused(
        () => new Plain({ capabilities: [msixCapability({ vectors: 4, table: { bar: 0, offset: 0 }, pba: { bar: 0, offset: 0x20 } })] }),
        /table and PBA do not overlap/,
      );
    });
  });

  describe('BAR handlers', () => {
    it('pass accepted widths to the handler and turn others into guest errors that read as the device says', () => {
      const { d } = connected(new Plain());
      const seen: string[] = [];
      d.handleMmio(0, {
        widths: [32],
        invalidRead: 'ones',
        read: (o, w) => {
          seen.push(`r${w}@${o}`);
          return 0x1_2345_6789n;
        },
        write: (o, w, v) => {
          seen.push(`w${w}@${o}=${v}`);
        },
      });
      assert.equal(d.mmioRead(0, 8n, 32), 0x2345_6789n, 'the result is masked to the width');
      assert.equal(d.mmioRead(0, 8n, 16), 0xffffn);
      assert.equal(d.mmioRead(0, 6n, 32), 0xffff_ffffn, 'misaligned');
      d.mmioWrite(0, 12n, 32, 0x1_0000_0005n);
      assert.deepEqual(seen, ['r32@8', 'w32@12=5']);
      assert.deepEqual(
        d.events.map((e) => e.kind),
        ['guest-error', 'guest-error'],
      );
      assert.match(d.events[0]!.message, /invalid 2-byte MMIO read at BAR0\+0x8: plain accepts 4-byte aligned accesses/);
    });

    it('a RAM BAR is bytes at any width', () => {
      const { d } = connected(new Plain({ bars: [{ index: 2, size: 0x1000n, type: 'memory32', ram: true }] }));
      d.mmioWrite(2, 1n, 32, 0xdead_beefn);
      assert.equal(d.mmioRead(2, 2n, 8), 0xben);
      assert.deepEqual([...d.ram(2).subarray(1, 5)], [0xef, 0xbe, 0xad, 0xde]);
    });

    it('a throwing handler fails the access like a broken device, logs why, and leaves the machine working', () => {
      class Broken extends DeviceModel {
        constructor() {
          super({ model: 'broken', identity: ID, bars: [{ index: 0, size: 0x1000n, type: 'memory32' }] });
          this.handleMmio(0, {
            read: (o) => {
              if (o === 4) throw new Error('boom');
              return 7n;
            },
            write: () => {
              throw new Error('bang');
            },
          });
        }
      }
      const model = new Broken();
      const kernel = createModelKernel({ base: 'linux-7.3-noiommu', devices: [{ address: '0000:00:06.0', model }] });
      using device = openDevice('0000:00:06.0', { kernel });
      using mmio = device.bar(0).mmap();
      assert.equal(mmio.read32(4), 0xffff_ffff);
      mmio.write32(0, 1);
      assert.equal(mmio.read32(0), 7, 'the next access works');
      assert.deepEqual(
        model.events.map((e) => e.kind),
        ['model-error', 'model-error'],
      );
      assert.match(model.events[0]!.message, /device model 'broken': BAR0 read handler at 0x4 \(32-bit\) threw: boom/);
      assert.equal(device.config.read16(0), 0x1234, 'config space still answers');
    });
  });

  describe('MSI-X (QEMU hw/pci/msix.c)', () => {
    class Vectors extends Plain {
      constructor() {
        super({ capabilities: [msixCapability({ vectors: 3, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 } })] });
      }
    }
    const cap = (d: DeviceModel) => d.config.findCapability(PCI_CAP_ID_MSIX);

    it('holds a masked vector as pending and sends it when unmasked', () => {
      const { d, irq } = connected(new Vectors());
      d.config.write(cap(d) + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
      d.mmioWrite(0, 0x2010n, 64, 0xfee0_1000n);
      d.mmioWrite(0, 0x2018n, 32, 0x41n);
      assert.equal(d.msixMasked(1), true, 'entries start masked');
      d.notifyMsix(1);
      assert.deepEqual(irq.sent, []);
      assert.equal(d.mmioRead(0, 0x3000n, 32), 0b010n, 'pending bit of vector 1');
      d.mmioWrite(0, 0x201cn, 32, 0n);
      assert.deepEqual(irq.sent, [{ address: 0xfee0_1000n, data: 0x41 }]);
      assert.equal(d.msixPending(1), false);
      d.notifyMsix(1);
      assert.equal(irq.sent.length, 2, 'unmasked: sent at once');
    });

    it('the function mask holds every vector; clearing it delivers what is pending', () => {
      const { d, irq } = connected(new Vectors());
      d.mmioWrite(0, 0x200cn, 32, 0n);
      d.config.write(cap(d) + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
      d.notifyMsix(0);
      assert.equal(d.msixPending(0), true);
      d.config.write(cap(d) + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
      assert.equal(irq.sent.length, 1);
    });

    it('table accesses other than aligned 4 or 8 bytes are decode errors; PBA writes are ignored', () => {
      const { d } = connected(new Vectors());
      assert.equal(d.mmioRead(0, 0x2000n, 16), 0n);
      d.mmioWrite(0, 0x3000n, 32, 0xffn);
      assert.equal(d.mmioRead(0, 0x3000n, 32), 0n);
      assert.equal(d.events.length, 1);
    });
  });

  describe('clock', () => {
    it('manual: work runs at its deadline in order when the test advances time', () => {
      const clock = new ModelClock('manual');
      const ran: string[] = [];
      clock.after(5, () => ran.push('b'));
      clock.after(2, () => ran.push('a'));
      clock.after(5, () => ran.push('c'));
      clock.advance(4);
      assert.deepEqual(ran, ['a']);
      assert.equal(clock.now, 4000n);
      clock.advance(1);
      assert.deepEqual(ran, ['a', 'b', 'c']);
    });

    it('auto: runs by itself on a later turn, with virtual time jumping to the deadline', async () => {
      const clock = new ModelClock();
      const at = await new Promise<bigint>((resolve) => clock.after(1_000_000, () => resolve(clock.now)));
      assert.equal(at, 1_000_000_000n, 'a virtual second, without waiting one');
    });

    it('work a device scheduled is cancelled by a reset, and its exceptions become model errors', () => {
      const clock = new ModelClock('manual');
      const { d } = connected(new Plain({ capabilities: [pcieCapability({ flr: true })] }), clock);
      let ran = false;
      d.clock.after(1, () => {
        ran = true;
      });
      d.functionReset();
      clock.advance(2);
      assert.equal(ran, false);
      d.clock.after(1, () => {
        throw new Error('late');
      });
      clock.advance(1);
      assert.match(d.events.at(-1)!.message, /scheduled work .* threw: late/);
    });
  });

  describe('resets and strict mode', () => {
    it('a device with PCIe FLR supports function reset and comes back with MSI-X disabled and its own state cleared', () => {
      let resets = 0;
      class Resettable extends Plain {
        constructor() {
          super({
            capabilities: [
              pcieCapability({ flr: true }),
              msixCapability({ vectors: 1, table: { bar: 0, offset: 0 }, pba: { bar: 0, offset: 0x800 } }),
            ],
          });
        }
        override onReset(): void {
          resets++;
        }
      }
      const { d } = connected(new Resettable());
      assert.equal(d.supportsFunctionReset, true);
      assert.equal(new Plain().supportsFunctionReset, false);
      assert.equal(new Plain({ capabilities: [pmCapability({ noSoftReset: false })] }).supportsFunctionReset, true, 'PM reset');
      d.config.write(d.config.findCapability(PCI_CAP_ID_MSIX) + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
      d.functionReset();
      assert.equal(d.msixEnabled, false);
      assert.equal(d.config.read(PCI_COMMAND, 2), 0);
      const pcie = d.config.findCapability(PCI_CAP_ID_EXP);
      d.config.write(pcie + 8, 2, 0x8000);
      assert.equal(resets, 2, 'writing Initiate FLR resets too');
      d.busReset();
      assert.equal(resets, 3);
    });

    it('strict mode throws the event where it happens', () => {
      const { d } = connected(new Plain());
      d.handleMmio(0, { widths: [32], read: () => 0n, write: () => undefined });
      d.strict();
      assert.throws(() => d.mmioRead(0, 0n, 8), DeviceEventError);
      d.strict(false);
      assert.equal(d.mmioRead(0, 0n, 8), 0n);
    });
  });

  describe('placing devices', () => {
    it('derives IOMMU groups and cdev numbers from the bus order and binds vfio-pci', () => {
      const kernel = createModelKernel({
        base: 'linux-7.3-iommu',
        devices: [
          { address: '0000:00:07.0', model: new Plain() },
          { address: '0000:00:05.0', model: new Plain() },
        ],
      });
      const group = (bdf: string) => kernel.readlink(`/sys/bus/pci/devices/${bdf}/iommu_group`).split('/').pop();
      assert.deepEqual(['0000:00:03.0', '0000:00:05.0', '0000:00:07.0'].map(group), ['3', '0', '1']);
      assert.deepEqual(
        ['0000:00:03.0', '0000:00:05.0', '0000:00:07.0'].map((b) => kernel.readdir(`/sys/bus/pci/devices/${b}/vfio-dev`)[0]),
        ['vfio0', 'vfio1', 'vfio2'],
      );
      assert.equal(PciDevice.get('0000:00:05.0', kernel).driver, 'vfio-pci');
      const bar = kernel.readFile('/sys/bus/pci/devices/0000:00:05.0/resource').toString().split('\n')[0]!;
      assert.match(bar, /^0x0000008000000000 0x0000008000003fff /, 'firmware placed the 64-bit BAR in the 64-bit window');
    });

    it('refuses a device placed twice, or on an occupied address, naming it', () => {
      const model = new Plain();
      assert.throws(
        () =>
          createModelKernel({
            base: 'linux-7.3-noiommu',
            devices: [
              { address: '0000:00:05.0', model },
              { address: '0000:00:06.0', model },
            ],
          }),
        /'plain' is placed twice/,
      );
      assert.throws(
        () => createModelKernel({ base: 'linux-7.3-noiommu', devices: [{ address: '0000:00:03.0', model: new Plain() }] }),
        /two PCI functions at 0000:00:03.0/,
      );
    });

    it('vfio-pci shows the SDK capabilities through its virtualised config space', () => {
      const model = new Plain({
        capabilities: [
          pmCapability(),
          pcieCapability(),
          msixCapability({ vectors: 8, table: { bar: 0, offset: 0x1000 }, pba: { bar: 0, offset: 0x1800 } }),
          vendorCapability(new Uint8Array([1, 2, 3, 4, 5])),
          extendedCapability({ id: 0x0003, data: new Uint8Array(8).fill(0x5a) }),
        ],
      });
      const kernel = createModelKernel({
        base: 'linux-7.3-noiommu',
        devices: [{ address: '0000:00:05.0', model }],
        withoutBaseDevices: true,
      });
      using device = openDevice('0000:00:05.0', { kernel });
      const ids: number[] = [];
      for (let pos = device.config.read8(0x34); pos; pos = device.config.read8(pos + 1)) ids.push(device.config.read8(pos));
      assert.deepEqual(ids, [PCI_CAP_ID_PM, PCI_CAP_ID_EXP, PCI_CAP_ID_MSIX, PCI_CAP_ID_VNDR]);
      assert.equal(device.config.read32(0x100) & 0xffff, 0x0003, 'the serial-number extended capability at 0x100');
      assert.equal(device.irqs.info('msix').count, 8);
    });
  });
});

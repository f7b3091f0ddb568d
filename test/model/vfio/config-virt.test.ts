/**
 * vfio-pci config space virtualisation (drivers/vfio/pci/vfio_pci_config.c) over the edu model's
 * physical config space: what a VFIO user reads and writes through the config region.
 */
import assert from 'node:assert/strict';
import { EduDevice } from '../../../lib/devices/edu';
import { VfioPciConfig, type ConfigOwner } from '../../../lib/model/vfio/config-virt';
import {
  PCI_BASE_ADDRESS_0,
  PCI_CAPABILITY_LIST,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_ROM_ADDRESS,
  PCI_STATUS,
  PCI_VENDOR_ID,
  PCI_MSI_ADDRESS_LO,
} from '../../../lib/uapi/pci';
import { KernelError } from '../../../lib/model/errno';

function setup(opts: { intxUsable?: boolean; msiActive?: boolean; qmax?: number } = {}) {
  const edu = new EduDevice({ timing: { mode: 'sync' } });
  edu.config.write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
  const calls: string[] = [];
  const owner: ConfigOwner = {
    bars: [{ start: edu.barAddress(0), length: 1n << 20n, io: false, prefetchable: false, is64bit: false }],
    intxUsable: opts.intxUsable ?? true,
    msiActive: () => opts.msiActive ?? false,
    msiQmax: () => opts.qmax ?? 0,
    intxMask: () => calls.push('mask'),
    intxUnmask: () => calls.push('unmask'),
    setPowerState: (s) => calls.push(`power ${s}`),
    tryFunctionReset: () => calls.push('reset'),
  };
  const cfg = new VfioPciConfig(
    { size: edu.config.size, read: (o, w) => edu.config.read(o, w), write: (o, w, v) => edu.config.write(o, w, v) },
    owner,
  );
  const read = (pos: number, n: number) => {
    const b = Buffer.alloc(n);
    cfg.rw(b, pos, false);
    return n === 1 ? b.readUInt8(0) : n === 2 ? b.readUInt16LE(0) : b.readUInt32LE(0);
  };
  const write = (pos: number, n: number, v: number) => {
    const b = Buffer.alloc(n);
    if (n === 1) b.writeUInt8(v);
    else if (n === 2) b.writeUInt16LE(v);
    else b.writeUInt32LE(v >>> 0);
    cfg.rw(b, pos, true);
  };
  return { edu, cfg, read, write, calls };
}

describe('vfio-pci config virtualisation (vfio_pci_config.c)', () => {
  it('passes IDs through and shows the capability list (vfio_cap_init)', () => {
    const { read } = setup();
    assert.equal(read(PCI_VENDOR_ID, 4), 0x11e81234);
    assert.equal(read(PCI_CAPABILITY_LIST, 1), 0x40);
    assert.equal(read(0x40, 1), 0x05);
    assert.equal(read(0x41, 1), 0);
  });

  it('reads a whole dword range across header and capability in one pread (vfio_pci_config_rw)', () => {
    const { cfg, edu } = setup();
    const all = Buffer.alloc(256);
    assert.equal(cfg.rw(all, 0, false), 256);
    assert.equal(all.readUInt16LE(0), 0x1234);
    assert.equal(all[0x40], 5);
    assert.equal(all.readUInt32LE(0x60), edu.config.read(0x60, 4), 'unassigned bytes pass through raw');
  });

  it('refuses accesses past config space with EFAULT (vfio_pci_config_rw_single)', () => {
    const { cfg } = setup();
    assert.throws(
      () => cfg.rw(Buffer.alloc(4), 254, false),
      (e: unknown) => e instanceof KernelError && e.code === 'EFAULT',
    );
    assert.throws(
      () => cfg.rw(Buffer.alloc(1), 256, false),
      (e: unknown) => e instanceof KernelError && e.code === 'EFAULT',
    );
  });

  it('sizes BAR0 against the resource: writing ones reads back the size mask (vfio_bar_fixup)', () => {
    const { read, write, edu } = setup();
    const orig = read(PCI_BASE_ADDRESS_0, 4);
    assert.equal(BigInt(orig), edu.barAddress(0));
    write(PCI_BASE_ADDRESS_0, 4, 0xffff_ffff);
    assert.equal(read(PCI_BASE_ADDRESS_0, 4), 0xfff0_0000);
    assert.equal(BigInt(edu.config.read(PCI_BASE_ADDRESS_0, 4)), edu.barAddress(0), 'the real BAR is untouched');
    write(PCI_BASE_ADDRESS_0 + 4, 4, 0xffff_ffff);
    assert.equal(read(PCI_BASE_ADDRESS_0 + 4, 4), 0, 'unimplemented BAR1 reads 0');
    write(PCI_ROM_ADDRESS, 4, 0xffff_ffff);
    assert.equal(read(PCI_ROM_ADDRESS, 4), 0, 'no ROM');
  });

  it('bus master goes to the device; INTx disable is virtualised and masks INTx (vfio_basic_config_write)', () => {
    const { read, write, edu, calls } = setup();
    write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    assert.equal(edu.busMasterEnabled, true);
    write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
    assert.equal(read(PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE, PCI_COMMAND_INTX_DISABLE);
    assert.equal(edu.config.read(PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE, 0, 'the physical bit follows the IRQ code, not the write');
    write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    assert.deepEqual(calls, ['mask', 'unmask']);
  });

  it('tracks memory enable virtually for BAR access checks', () => {
    const { cfg, write } = setup();
    assert.equal(cfg.memoryEnabled, true);
    write(PCI_COMMAND, 2, 0);
    assert.equal(cfg.memoryEnabled, false);
  });

  it('drops writes to the status register, IDs and the interrupt pin; interrupt line is virtual', () => {
    const { read, write, edu } = setup();
    write(PCI_STATUS, 2, 0xffff);
    assert.equal(read(PCI_STATUS, 2), edu.config.read(PCI_STATUS, 2));
    write(PCI_VENDOR_ID, 4, 0);
    assert.equal(read(PCI_VENDOR_ID, 4), 0x11e81234);
    write(PCI_INTERRUPT_PIN, 1, 3);
    assert.equal(read(PCI_INTERRUPT_PIN, 1), 1);
    write(PCI_INTERRUPT_LINE, 1, 0x42);
    assert.equal(read(PCI_INTERRUPT_LINE, 1), 0x42);
    assert.notEqual(edu.config.read(PCI_INTERRUPT_LINE, 1), 0x42);
  });

  it('hides the INTx pin when INTx is unusable (vfio_config_init)', () => {
    const { read } = setup({ intxUsable: false });
    assert.equal(read(PCI_INTERRUPT_PIN, 1), 0);
  });

  it('virtualises MSI: the enable bit only sticks while MSI is on through SET_IRQS (vfio_msi_config_write)', () => {
    const { read, write, edu } = setup();
    write(0x40 + PCI_MSI_FLAGS, 2, read(0x40 + PCI_MSI_FLAGS, 2) | PCI_MSI_FLAGS_ENABLE);
    assert.equal(read(0x40 + PCI_MSI_FLAGS, 2), PCI_MSI_FLAGS_64BIT);
    assert.equal(edu.msiEnabled, false);
    write(0x40 + PCI_MSI_ADDRESS_LO, 4, 0x1234_5678);
    assert.equal(read(0x40 + PCI_MSI_ADDRESS_LO, 4), 0x1234_5678, 'address is virtual');
    assert.equal(edu.config.read(0x40 + PCI_MSI_ADDRESS_LO, 4), 0, 'and never reaches the device');
  });

  it('reports the enabled MSI vector count in QMASK (vfio_msi_config_read)', () => {
    const { read, write } = setup({ msiActive: true, qmax: 0 });
    write(0x40 + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_ENABLE | 0x70);
    assert.equal(read(0x40 + PCI_MSI_FLAGS, 2), PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_ENABLE, 'QSIZE clamped to qmax');
  });

  it('the whole low byte of MSI flags is virtual and writable, even the 64-bit bit (init_pci_cap_msi_perm)', () => {
    const { read, write, edu } = setup();
    write(0x40 + PCI_MSI_FLAGS, 2, 0);
    assert.equal(read(0x40 + PCI_MSI_FLAGS, 2), 0, 'a careless write clears the virtual 64-bit flag');
    assert.equal(edu.config.read(0x40 + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_64BIT, PCI_MSI_FLAGS_64BIT);
  });

  it('unassigned config space is raw read/write to the device (unassigned_perms)', () => {
    const { read, write, edu } = setup();
    write(0x80, 4, 0xdeadbeef);
    assert.equal(read(0x80, 4), 0xdeadbeef);
    assert.equal(edu.config.read(0x80, 4), 0xdeadbeef);
  });
});

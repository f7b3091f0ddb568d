/**
 * SR-IOV as drivers/pci/iov.c implements it, for one physical function (struct pci_sriov): the
 * capability is read from the PF's config space (TotalVFs, First VF Offset, VF Stride, VF Device
 * ID), sysfs shows sriov_totalvfs, sriov_numvfs, sriov_offset, sriov_stride, sriov_vf_device and
 * sriov_drivers_autoprobe, and a write of N to sriov_numvfs goes to the PF driver's
 * sriov_configure, which calls `enable` (pci_enable_sriov) or `disable` (pci_disable_sriov).
 *
 * sriov_numvfs_store's errnos: EINVAL for a value that is not a u16, ERANGE above TotalVFs, ENOENT
 * with no PF driver or one without sriov_configure, EBUSY when VFs are enabled and a different
 * non-zero count is asked; the same count as now is accepted and does nothing. Enabling sets
 * NumVFs, then VF Enable and VF MSE, and adds each VF at routing ID PF + offset + n × stride
 * (pci_iov_add_virtfn: a `virtfnN` link in the PF, `physfn` in the VF); disabling removes them
 * last first, then clears VF Enable and NumVFs.
 */
import { findExtendedCapability } from './ext-capability';
import { fail } from '../errno';
import type { Vfs } from '../vfs';
import { link, roAttr, rwAttr } from '../fs/nodes';
import type { PciAddress } from './address';
import type { PciBus } from './bus';
import type { PciDeviceModel } from './device-model';
import type { PciSlot } from './host';

const PCI_EXT_CAP_ID_SRIOV = 0x10;
const REG = {
  CTRL: 0x08,
  TOTAL_VF: 0x0e,
  NUM_VF: 0x10,
  VF_OFFSET: 0x14,
  VF_STRIDE: 0x16,
  VF_DID: 0x1a,
  SYS_PGSIZE: 0x20,
  BAR: 0x24,
} as const;
/**
 * Where the kernel puts VF BARs that firmware left unassigned (SeaBIOS does not know SR-IOV):
 * the start of q35's 64-bit window above the lab guest's 2 GiB of RAM, 4 GiB, as the lab's NVMe
 * PF shows it (VF BAR0 at 0x100000000).
 */
const IOV_WINDOW_BASE = 0x1_0000_0000n;

/** One of the PF's VF BARs (an IOV resource): VF n's BAR is at start + n × size. */
export interface IovResource {
  readonly index: number;
  readonly start: bigint;
  /** One VF's BAR size. */
  readonly size: bigint;
  readonly is64bit: boolean;
  readonly prefetchable: boolean;
}
const CTRL_VFE = 0x01,
  CTRL_MSE = 0x08;

/** The SR-IOV capability's offset in a function's config space (0: not a PF). */
export function sriovCapabilityOffset(device: PciDeviceModel): number {
  return findExtendedCapability(device, PCI_EXT_CAP_ID_SRIOV);
}

/** What iov.c needs of the rest of the machine to add and remove a VF (pci_iov_add_virtfn's device_add). */
export interface SriovMachinePort {
  readonly vfs: Vfs;
  readonly bus: PciBus;
  /** The function's sysfs directory. */
  devicePath(slot: PciSlot): string;
  /** Puts a VF on the bus: plugged in, firmware-visible, in sysfs, in an IOMMU group on an IOMMU host. */
  addFunction(address: PciAddress, device: PciDeviceModel, upstream: PciSlot | undefined): PciSlot;
  /** Takes a VF off the bus again (its driver is already gone). */
  removeFunction(slot: PciSlot): void;
}

/** Which PF a VF belongs to (pci_physfn), for whoever holds only the VF's slot. */
const physfns = new WeakMap<PciSlot, PciSlot>();

/** The VF's PF (pdev->physfn), or undefined for a function that is not a VF. */
export function physfnOf(slot: PciSlot): PciSlot | undefined {
  return physfns.get(slot);
}

/** The functions pci_iov_init made PFs (pdev->is_physfn: an SR-IOV capability and CONFIG_PCI_IOV). */
const physicalFunctions = new WeakMap<PciSlot, PciSriov>();

/** pdev->is_physfn. */
export function isPhysfn(slot: PciSlot): boolean {
  return physicalFunctions.has(slot);
}

/**
 * pci_restore_iov_state (part of pci_restore_state, after a reset): unless VFs are enabled, the
 * VF BARs, system page size, NumVFs and control go back to what was saved.
 */
export function restoreIovState(slot: PciSlot, saved: Uint8Array): void {
  const sriov = physicalFunctions.get(slot);
  if (!sriov) return;
  const c = slot.device.config;
  const pos = sriov.pos;
  if (c.getRaw(pos + REG.CTRL, 2) & CTRL_VFE) return;
  const dv = new DataView(saved.buffer, saved.byteOffset, saved.byteLength);
  const ctrl = dv.getUint16(pos + REG.CTRL, true);
  c.write(pos + REG.CTRL, 2, ctrl & ~CTRL_VFE);
  for (let off = REG.BAR; off < REG.BAR + 24; off += 4) c.write(pos + off, 4, dv.getUint32(pos + off, true));
  c.write(pos + REG.SYS_PGSIZE, 4, dv.getUint32(pos + REG.SYS_PGSIZE, true));
  c.write(pos + REG.NUM_VF, 2, dv.getUint16(pos + REG.NUM_VF, true));
  c.write(pos + REG.CTRL, 2, ctrl);
}

export class PciSriov {
  private readonly virtfns: PciSlot[] = [];
  private autoprobe = true;
  /** The VF BARs as sriov_init sized them and the kernel assigned them at boot. */
  readonly resources: readonly IovResource[];

  constructor(
    readonly pf: PciSlot,
    readonly pos: number,
    private readonly port: SriovMachinePort,
    windowBase: bigint = IOV_WINDOW_BASE,
  ) {
    this.resources = this.assignResources(windowBase);
    physicalFunctions.set(pf, this);
    const dir = port.devicePath(pf);
    const vfs = port.vfs;
    vfs.add(
      `${dir}/sriov_totalvfs`,
      roAttr(() => `${this.totalVfs}\n`),
    );
    vfs.add(
      `${dir}/sriov_numvfs`,
      rwAttr(
        () => `${this.numVfs}\n`,
        (data) => this.storeNumVfs(data),
        0o664,
      ),
    );
    vfs.add(
      `${dir}/sriov_offset`,
      roAttr(() => `${this.offset}\n`),
    );
    vfs.add(
      `${dir}/sriov_stride`,
      roAttr(() => `${this.stride}\n`),
    );
    // "%x": no 0x, no padding (the lab's NVMe PF shows "10").
    vfs.add(
      `${dir}/sriov_vf_device`,
      roAttr(() => `${this.reg(REG.VF_DID, 2).toString(16)}\n`),
    );
    vfs.add(
      `${dir}/sriov_drivers_autoprobe`,
      rwAttr(
        () => (this.autoprobe ? '1\n' : '0\n'),
        (data) => {
          const text = data.toString('latin1').trim();
          if (!/^(?:0|1|y|n|Y|N|on|off)$/i.test(text)) fail('EINVAL', `'${text}' is not a boolean`);
          this.autoprobe = /^(?:1|y|on)$/i.test(text);
        },
      ),
    );
  }

  /**
   * sriov_init's BAR sizing (write all ones, read back) of each VF BAR register, then the
   * assignment of TotalVFs × size, naturally aligned, from the window.
   */
  private assignResources(windowBase: bigint): IovResource[] {
    const c = this.pf.device.config;
    const out: IovResource[] = [];
    let next = windowBase;
    for (let i = 0; i < 6; i++) {
      const reg = this.pos + REG.BAR + 4 * i;
      const original = c.getRaw(reg, 4);
      if (original & 0x1) continue;
      const is64bit = (original & 0x6) === 0x4;
      c.write(reg, 4, 0xffff_ffff);
      let mask = BigInt(c.getRaw(reg, 4) & ~0xf) & 0xffff_ffffn;
      c.write(reg, 4, original);
      if (is64bit) {
        const hi = c.getRaw(reg + 4, 4);
        c.write(reg + 4, 4, 0xffff_ffff);
        mask |= BigInt(c.getRaw(reg + 4, 4)) << 32n;
        c.write(reg + 4, 4, hi);
      } else {
        mask |= 0xffff_ffff_0000_0000n;
      }
      // An unimplemented VF BAR reads back 0 (the 64-bit upper half of nothing too).
      if ((mask & 0xffff_fff0n) === 0n && (!is64bit || mask >> 32n === 0n)) {
        if (is64bit) i++;
        continue;
      }
      const size = (~mask & ((1n << 64n) - 1n)) + 1n;
      const total = size * BigInt(Math.max(1, this.totalVfs));
      const start = ((next + size - 1n) / size) * size;
      next = start + total;
      c.write(reg, 4, Number(start & 0xffff_fff0n) | (original & 0xf));
      if (is64bit) c.write(reg + 4, 4, Number(start >> 32n));
      out.push({ index: i, start, size, is64bit, prefetchable: (original & 0x8) !== 0 });
      if (is64bit) i++;
    }
    return out;
  }

  private reg(offset: number, width: 2 | 4): number {
    return this.pf.device.config.getRaw(this.pos + offset, width);
  }
  private setReg(offset: number, width: 2, value: number): void {
    this.pf.device.config.write(this.pos + offset, width, value);
  }

  /** pci_sriov_get_totalvfs (no driver_max_VFs lowering in the model's drivers). */
  get totalVfs(): number {
    return this.reg(REG.TOTAL_VF, 2);
  }
  get offset(): number {
    return this.reg(REG.VF_OFFSET, 2);
  }
  get stride(): number {
    return this.reg(REG.VF_STRIDE, 2);
  }
  /** pdev->sriov->num_VFs. */
  get numVfs(): number {
    return this.virtfns.length;
  }
  /** The enabled VFs, VF 0 first. */
  get functions(): readonly PciSlot[] {
    return this.virtfns;
  }

  /** The routing ID of VF `id` (pci_iov_virtfn_bus / pci_iov_virtfn_devfn). */
  virtfnAddress(id: number): PciAddress {
    const a = this.pf.address;
    const rid = ((a.device << 3) | a.func) + this.offset + this.stride * id;
    return { domain: a.domain, bus: a.bus + (rid >> 8), device: (rid >> 3) & 0x1f, func: rid & 7 };
  }

  /** sriov_numvfs_store. */
  private storeNumVfs(data: Buffer): void {
    const n = parseU16(data.toString('latin1'));
    if (n > this.totalVfs) fail('ERANGE', `${n} VFs asked, the PF has ${this.totalVfs}`);
    if (n === this.numVfs) return;
    const driver = this.port.bus.driverOf(this.pf);
    if (!driver) fail('ENOENT', 'no driver bound to the PF; cannot configure SR-IOV');
    if (!driver.sriovConfigure) fail('ENOENT', `driver ${driver.name} does not support SR-IOV configuration via sysfs`);
    if (n !== 0 && this.numVfs) fail('EBUSY', `${this.numVfs} VFs already enabled; disable them before enabling ${n}`);
    driver.sriovConfigure(this.pf, n);
  }

  /**
   * pci_enable_sriov → sriov_enable. `beforeProbe` runs for each VF after it is on the bus and
   * before a driver is looked for (the PF driver's bus notifier: vfio-pci sets driver_override).
   */
  enable(n: number, beforeProbe: (vf: PciSlot) => void = () => undefined): void {
    if (n === 0) return;
    if (this.numVfs) fail('EINVAL', 'VFs are already enabled');
    if (n > this.totalVfs) fail('EINVAL', `${n} VFs asked, the PF has ${this.totalVfs}`);
    const last = this.virtfnAddress(n - 1);
    if (last.bus !== this.pf.address.bus) fail('ENOMEM', 'the VFs would need a bus the model does not create');
    const devices: PciDeviceModel[] = [];
    for (let id = 0; id < n; id++) {
      const vf = this.pf.device.createVirtualFunction?.(id);
      if (!vf) fail('ENODEV', `device model '${this.pf.device.model}' created no VF ${id}`);
      devices.push(vf);
    }
    this.setReg(REG.NUM_VF, 2, n);
    this.setReg(REG.CTRL, 2, this.reg(REG.CTRL, 2) | CTRL_VFE | CTRL_MSE);
    const pfDir = this.port.devicePath(this.pf);
    for (let id = 0; id < n; id++) {
      // pci_iov_add_virtfn: VF id's resources are the PF's IOV resources shifted by id × size.
      for (const r of this.resources) devices[id]!.setVirtualFunctionBar?.(r.index, r.start + BigInt(id) * r.size);
      const vf = this.port.addFunction(this.virtfnAddress(id), devices[id]!, this.pf.upstream);
      physfns.set(vf, this.pf);
      this.virtfns.push(vf);
      this.port.vfs.add(`${pfDir}/virtfn${id}`, link(`../${vf.name}`));
      this.port.vfs.add(`${this.port.devicePath(vf)}/physfn`, link(`../${this.pf.name}`));
      beforeProbe(vf);
      if (this.autoprobe) this.port.bus.probeDevice(vf);
    }
  }

  /**
   * pci_disable_sriov: the VFs go last first, each released by its driver (vfio-pci refuses while
   * a user holds the VF open: the real kernel would wait for that user instead).
   */
  disable(): void {
    const pfDir = this.port.devicePath(this.pf);
    while (this.virtfns.length) {
      const id = this.virtfns.length - 1;
      const vf = this.virtfns[id]!;
      this.port.bus.detach(vf);
      this.virtfns.pop();
      this.port.vfs.remove(`${pfDir}/virtfn${id}`);
      physfns.delete(vf);
      this.port.removeFunction(vf);
    }
    this.setReg(REG.CTRL, 2, this.reg(REG.CTRL, 2) & ~(CTRL_VFE | CTRL_MSE));
    this.setReg(REG.NUM_VF, 2, 0);
  }
}

/** kstrtou16(buf, 0): decimal, 0x hex or 0 octal, one trailing newline, at most 65535. */
function parseU16(text: string): number {
  const t = text.replace(/\n$/, '');
  const m = /^\+?(?:0[xX]([0-9a-fA-F]+)|0([0-7]*)|([1-9][0-9]*))$/.exec(t);
  if (!m) fail('EINVAL', `'${t}' is not a number`);
  const v = m[1] !== undefined ? parseInt(m[1], 16) : m[2] !== undefined ? (m[2] === '' ? 0 : parseInt(m[2], 8)) : parseInt(m[3]!, 10);
  if (v > 0xffff) fail('EINVAL', `${v} does not fit in 16 bits`);
  return v;
}

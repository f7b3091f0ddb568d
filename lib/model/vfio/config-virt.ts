/**
 * vfio-pci's view of config space (drivers/vfio/pci/vfio_pci_config.c): the user reads and writes
 * the config region, and each byte is served according to the capability that owns it. Per bit,
 * a field is either passed through to the device or "virtualised" (kept in a shadow copy,
 * vconfig), and writes are only allowed where the permission table has a 1. On top of that a few
 * registers have handlers: the command register (memory/IO enable tracking, emulated INTx
 * disable), BARs (sizing against the real resource sizes), MSI flags (queue size and the
 * enable bit, which only the SET_IRQS ioctl can turn on), PM control, PCIe FLR.
 *
 * Capabilities the kernel does not know the length of are hidden from the user's capability
 * list; bytes owned by no capability are raw read/write ("unassigned"), as in the kernel.
 */
import { fail } from '../errno';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_5,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_BIST,
  PCI_CACHE_LINE_SIZE,
  PCI_CAPABILITY_LIST,
  PCI_CAP_ID_AF,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_HT,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_PCIX,
  PCI_CAP_ID_PM,
  PCI_CAP_ID_SATA,
  PCI_CAP_ID_VNDR,
  PCI_CAP_ID_VPD,
  PCI_CAP_LIST_NEXT,
  PCI_CFG_SPACE_SIZE,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_DEVICE_ID,
  PCI_EXT_CAP_ID_ERR,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_LATENCY_TIMER,
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
  PCI_ROM_ADDRESS,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STD_HEADER_SIZEOF,
  PCI_VENDOR_ID,
} from '../../uapi/pci';

/** Capability IDs and sizes from pci_regs.h that lib/uapi/pci.ts does not carry. */
const PCI_CAP_ID_BASIC = 0; // vfio's fake ID for the standard header
const PCI_CAP_ID_MAX = 0x14; // PCI_CAP_ID_EA
const PCI_EXT_CAP_ID_MAX = 0x31; // PCI_EXT_CAP_ID_PL_64GT
const PCI_EXT_CAP_ID_PWR = 0x04;
const PCI_EXT_CAP_ID_VNDR = 0x0b;
const PCI_EXT_CAP_ID_DVSEC = 0x23;
const PCI_EXT_CAP_ID_VC = 0x02;
const PCI_EXT_CAP_ID_MFVC = 0x08;
const PCI_EXT_CAP_ID_VC9 = 0x09;
const PCI_EXT_CAP_ID_ACS = 0x0d;
const PCI_EXT_CAP_ID_REBAR = 0x15;
const PCI_EXT_CAP_ID_DPA = 0x16;
const PCI_EXT_CAP_ID_TPH = 0x17;
const PCI_VC_PORT_CAP1 = 4;
const PCI_VC_CAP1_EVCC = 0x7;
const PCI_VC_PORT_CAP2 = 8;
const PCI_VC_CAP2_32_PHASE = 0x02;
const PCI_VC_CAP2_64_PHASE = 0x04;
const PCI_VC_CAP2_128_PHASE = 0x08;
const PCI_CAP_VC_BASE_SIZEOF = 0x10;
const PCI_CAP_VC_PER_VC_SIZEOF = 0x0c;
const PCI_ACS_CAP = 4;
const PCI_ACS_EC = 0x20;
const PCI_ACS_EGRESS_BITS = 5;
const PCI_REBAR_CTRL = 8;
const PCI_REBAR_CTRL_NBAR_MASK = 0xe0;
const PCI_REBAR_CTRL_NBAR_SHIFT = 5;
const PCI_DPA_CAP = 4;
const PCI_DPA_CAP_SUBSTATE_MASK = 0x1f;
const PCI_DPA_BASE_SIZEOF = 16;
const PCI_TPH_CAP = 4;
const PCI_TPH_CAP_LOC_MASK = 0x600;
const PCI_TPH_LOC_CAP = 0x200;
const PCI_TPH_CAP_ST_MASK = 0x07ff_0000;
const PCI_TPH_CAP_ST_SHIFT = 16;
const PCI_TPH_BASE_SIZEOF = 0xc;
const CAP_ID_INVALID = 0xff; // unassigned: raw access
const CAP_ID_INVALID_VIRT = 0xfe; // virtualised filler
const PCI_CAP_SIZEOF = 4;
const PCI_CAP_FLAGS = 2;
const PCI_PM_PMC = 2;
const PCI_PM_CTRL = 4;
const PCI_PM_CAP_PME_MASK = 0xf800;
const PCI_PM_CTRL_PME_ENABLE = 0x0100;
const PCI_PM_CTRL_PME_STATUS = 0x8000;
const PCI_PM_CTRL_STATE_MASK = 0x0003;
const PCI_VPD_ADDR = 2;
const PCI_VPD_DATA = 4;
const PCI_X_CMD = 2;
const PCI_X_ECC_CSR = 4;
const PCI_EXP_FLAGS = 2;
const PCI_EXP_DEVCAP = 4;
const PCI_EXP_DEVCAP_FLR = 0x1000_0000;
const PCI_EXP_DEVCTL = 8;
const PCI_EXP_DEVCTL_BCR_FLR = 0x8000;
const PCI_EXP_DEVCTL_PAYLOAD = 0x00e0;
const PCI_EXP_DEVCTL_READRQ = 0x7000;
const PCI_EXP_DEVCTL_PHANTOM = 0x0200;
const PCI_EXP_DEVCTL2 = 0x28;
const PCI_EXP_DEVCTL2_ARI = 0x0020;
const PCI_EXP_TYPE_RC_END = 0x9;
const PCI_AF_CAP = 3;
const PCI_AF_CTRL = 4;
const PCI_AF_CAP_TP = 0x01;
const PCI_AF_CAP_FLR = 0x02;
const PCI_AF_CTRL_FLR = 0x01;
const PCI_MSI_PENDING_32 = 0x10;
const PCI_MSI_PENDING_64 = 0x14;
const PCI_PWR_DATA = 0x08;
const PCI_ERR_UNCOR_STATUS = 0x04;
const PCI_ERR_UNCOR_MASK = 0x08;
const PCI_ERR_UNCOR_SEVER = 0x0c;
const PCI_ERR_COR_STATUS = 0x10;
const PCI_ERR_COR_MASK = 0x14;
const PCI_ERR_CAP = 0x18;

/** Standard capability lengths vfio knows (pci_cap_length): 0 hides it, 0xff is variable. */
const CAP_LENGTH: Record<number, number> = {
  [PCI_CAP_ID_BASIC]: PCI_STD_HEADER_SIZEOF,
  [PCI_CAP_ID_PM]: 8,
  0x02 /* AGP */: 12,
  [PCI_CAP_ID_VPD]: 8,
  0x04: 0,
  [PCI_CAP_ID_MSI]: 0xff,
  0x06: 0,
  [PCI_CAP_ID_PCIX]: 0xff,
  [PCI_CAP_ID_HT]: 0xff,
  [PCI_CAP_ID_VNDR]: 0xff,
  0x0a: 0,
  0x0b: 0,
  0x0c: 0,
  0x0d: 0,
  0x0e: 0,
  0x0f: 0,
  [PCI_CAP_ID_EXP]: 0xff,
  0x11: 12,
  [PCI_CAP_ID_SATA]: 0xff,
  [PCI_CAP_ID_AF]: 6,
};

/** Extended capability lengths (pci_ext_cap_length). */
const EXT_CAP_LENGTH: Record<number, number> = {
  [PCI_EXT_CAP_ID_ERR]: 0x2c,
  0x02: 0xff,
  0x03: 12,
  [PCI_EXT_CAP_ID_PWR]: 0x10,
  0x05: 0,
  0x06: 0,
  0x07: 0,
  0x08: 0xff,
  0x09: 0xff,
  0x0a: 0,
  [PCI_EXT_CAP_ID_VNDR]: 0xff,
  0x0c: 0,
  0x0d: 0xff,
  0x0e: 8,
  0x0f: 8,
  0x10: 0x40,
  0x11: 0,
  0x12: 40,
  0x13: 16,
  0x14: 0,
  0x15: 0xff,
  0x16: 0xff,
  0x17: 0xff,
  0x18: 8,
  0x19: 0,
  0x1a: 0,
  0x1b: 0,
  [PCI_EXT_CAP_ID_DVSEC]: 0xff,
};

/** How the device's config space is reached (pci_user_read_config_* / pci_user_write_config_*). */
export interface PhysicalConfig {
  readonly size: number;
  read(offset: number, width: 1 | 2 | 4): number;
  write(offset: number, width: 1 | 2 | 4, value: number): void;
}

export interface BarResource {
  /** pci_resource_start: 0 when the host did not assign the BAR. */
  readonly start: bigint;
  readonly length: bigint;
  readonly io: boolean;
  readonly prefetchable: boolean;
  readonly is64bit: boolean;
}

/** The parts of vfio_pci_core_device the config code consults or drives. */
export interface ConfigOwner {
  readonly bars: readonly (BarResource | undefined)[];
  /** INTx is usable (CONFIG_VFIO_PCI_INTX, pdev->irq connected, not a nointx quirk). */
  readonly intxUsable: boolean;
  /** For an SR-IOV VF (pdev->is_virtfn): the IDs the PCI core gave it (pdev->vendor, pdev->device). */
  readonly virtfn?: { readonly vendorId: number; readonly deviceId: number };
  /** vdev->irq_type is MSI. */
  msiActive(): boolean;
  /** vdev->msi_qmax (log2 of vectors enabled through SET_IRQS). */
  msiQmax(): number;
  /** INTx disable emulation (vfio_pci_intx_mask / unmask). */
  intxMask(): void;
  intxUnmask(): void;
  /** PM control wrote a new D-state (vfio_pci_set_power_state). */
  setPowerState(state: 0 | 1 | 2 | 3): void;
  /** PCIe or AF FLR requested through the virtualised bit (pci_try_reset_function). */
  tryFunctionReset(): void;
}

type ReadFn = (pos: number, count: number, perm: Perm, offset: number) => number;
type WriteFn = (pos: number, count: number, perm: Perm, offset: number, val: number) => void;

interface Perm {
  virt: Uint8Array;
  write: Uint8Array;
  readFn?: ReadFn;
  writeFn?: WriteFn;
}

function allocPerm(size: number): Perm {
  const n = (size + 3) & ~3;
  return { virt: new Uint8Array(n), write: new Uint8Array(n) };
}

function setPerm(p: Perm, off: number, width: 1 | 2 | 4, virt: number, write: number): void {
  for (let i = 0; i < width; i++) {
    p.virt[off + i] = (virt >>> (8 * i)) & 0xff;
    p.write[off + i] = (write >>> (8 * i)) & 0xff;
  }
}

function getLe(bytes: Uint8Array, off: number, count: number): number {
  let v = 0;
  for (let i = count - 1; i >= 0; i--) v = v * 256 + (bytes[off + i] ?? 0);
  return v >>> 0;
}

function putLe(bytes: Uint8Array, off: number, count: number, v: number): void {
  for (let i = 0; i < count; i++) bytes[off + i] = (v >>> (8 * i)) & 0xff;
}

const ONES = (count: number) => (count === 4 ? 0xffff_ffff : (1 << (count * 8)) - 1);

export class VfioPciConfig {
  readonly vconfig: Uint8Array;
  /** The capability owning each byte (pci_config_map). */
  readonly map: Uint8Array;
  private bardirty = true;
  private virqDisabled = false;
  private readonly rbar: number[];
  private extendedCaps = false;
  private readonly capPerms = new Map<number, Perm>();
  private readonly ecapPerms = new Map<number, Perm>();
  private msiPerm: Perm | undefined;
  private readonly directRo: Perm;
  private readonly unassigned: Perm;
  private readonly virtOnly: Perm;

  constructor(
    private readonly phys: PhysicalConfig,
    private readonly owner: ConfigOwner,
  ) {
    this.directRo = { virt: new Uint8Array(4), write: new Uint8Array(4), readFn: this.directRead };
    this.unassigned = { virt: new Uint8Array(4), write: new Uint8Array(4), readFn: this.rawRead, writeFn: this.rawWrite };
    this.virtOnly = { virt: new Uint8Array(4), write: new Uint8Array(4), readFn: this.virtRead, writeFn: this.virtWrite };
    this.initPerms();
    const size = phys.size;
    this.map = new Uint8Array(size).fill(CAP_ID_INVALID);
    this.map.fill(PCI_CAP_ID_BASIC, 0, PCI_STD_HEADER_SIZEOF);
    this.vconfig = new Uint8Array(size);
    this.fillVconfig(0, PCI_STD_HEADER_SIZEOF);
    this.rbar = [0, 1, 2, 3, 4, 5].map((i) => getLe(this.vconfig, PCI_BASE_ADDRESS_0 + 4 * i, 4));
    this.rbar.push(getLe(this.vconfig, PCI_ROM_ADDRESS, 4));
    if (!owner.intxUsable) this.vconfig[PCI_INTERRUPT_PIN] = 0;
    if (owner.virtfn) {
      // vfio_config_init: a VF's own ID registers read 0xffff, its pin must be ignored, and it has
      // no memory enable bit (no_command_memory), so the virtual one starts set.
      putLe(this.vconfig, PCI_VENDOR_ID, 2, owner.virtfn.vendorId);
      putLe(this.vconfig, PCI_VENDOR_ID + 2, 2, owner.virtfn.deviceId);
      this.vconfig[PCI_INTERRUPT_PIN] = 0;
      putLe(this.vconfig, PCI_COMMAND, 2, getLe(this.vconfig, PCI_COMMAND, 2) | PCI_COMMAND_MEMORY);
    }
    this.capInit();
    this.ecapInit();
  }

  /** vfio_pci_config_rw: a pread/pwrite of the config region at `pos` (region-relative). */
  rw(buf: Uint8Array, pos: number, iswrite: boolean): number {
    let done = 0;
    let count = buf.length;
    while (count) {
      const n = this.rwSingle(buf.subarray(done), count, pos, iswrite);
      count -= n;
      done += n;
      pos += n;
    }
    return done;
  }

  /** The user-visible interrupt pin (vfio_pci_get_irq_count for INTx reads it). */
  get virtualInterruptPin(): number {
    return this.vconfig[PCI_INTERRUPT_PIN]!;
  }

  /** Virtual memory-enable, as __vfio_pci_memory_enabled checks it. */
  get memoryEnabled(): boolean {
    return (getLe(this.vconfig, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY) !== 0;
  }

  /** The user's INTx-disable bit (vdev->virq_disabled). */
  get intxDisabledByUser(): boolean {
    return this.virqDisabled;
  }

  private rwSingle(buf: Uint8Array, count: number, pos: number, iswrite: boolean): number {
    const size = this.phys.size;
    if (pos < 0 || pos >= size || pos + count > size) {
      fail('EFAULT', 'config region access beyond config space');
    }
    count = Math.min(count, this.remainingDword(pos));
    if (count >= 4 && pos % 4 === 0) count = 4;
    else if (count >= 2 && pos % 2 === 0) count = 2;
    else count = 1;
    const capId = this.map[pos]!;
    let perm: Perm;
    let capStart = 0;
    if (capId === CAP_ID_INVALID) {
      perm = this.unassigned;
      capStart = pos;
    } else if (capId === CAP_ID_INVALID_VIRT) {
      perm = this.virtOnly;
      capStart = pos;
    } else if (pos >= PCI_CFG_SPACE_SIZE) {
      perm = capId > PCI_EXT_CAP_ID_MAX ? this.directRo : (this.ecapPerms.get(capId) ?? this.directRo);
      capStart = this.findCapStart(pos);
    } else {
      perm = capId === PCI_CAP_ID_MSI && this.msiPerm ? this.msiPerm : (this.capPerms.get(capId) ?? this.directRo);
      if (capId > PCI_CAP_ID_BASIC) capStart = this.findCapStart(pos);
    }
    const offset = pos - capStart;
    if (iswrite) {
      if (!perm.writeFn) return count;
      perm.writeFn(pos, count, perm, offset, getLe(buf, 0, count));
    } else {
      const val = perm.readFn ? perm.readFn(pos, count, perm, offset) : 0;
      putLe(buf, 0, count, val);
    }
    return count;
  }

  private remainingDword(pos: number): number {
    const cap = this.map[pos];
    let i = 1;
    while ((pos + i) % 4 && this.map[pos + i] === cap) i++;
    return i;
  }

  private findCapStart(pos: number): number {
    const base = pos >= PCI_CFG_SPACE_SIZE ? PCI_CFG_SPACE_SIZE : PCI_STD_HEADER_SIZEOF;
    const cap = this.map[pos];
    if (cap === PCI_CAP_ID_BASIC) return 0;
    while (pos - 1 >= base && this.map[pos - 1] === cap) pos--;
    return pos;
  }

  // ---- read/write functions (vfio_*_config_read/write) ----

  private physRead(pos: number, count: number): number {
    return this.phys.read(pos, count as 1 | 2 | 4);
  }

  private readonly defaultRead: ReadFn = (pos, count, perm, offset) => {
    let val = getLe(this.vconfig, pos, count);
    const virt = getLe(perm.virt, offset, count);
    if (virt !== ONES(count)) {
      const p = this.physRead(pos, count);
      val = ((p & ~virt) | (val & virt)) >>> 0;
    }
    return val;
  };

  private readonly defaultWrite: WriteFn = (pos, count, perm, offset, val) => {
    const write = getLe(perm.write, offset, count);
    if (!write) return;
    const virt = getLe(perm.virt, offset, count);
    if (write & virt) {
      let v = getLe(this.vconfig, pos, count);
      v = ((v & ~(write & virt)) | (val & (write & virt))) >>> 0;
      putLe(this.vconfig, pos, count, v);
    }
    if (write & ~virt) {
      let p = this.physRead(pos, count);
      p = ((p & ~(write & ~virt)) | (val & (write & ~virt))) >>> 0;
      this.phys.write(pos, count as 1 | 2 | 4, p);
    }
  };

  /** Pass-through read, except the capability ID/next bytes come from vconfig (list surgery). */
  private readonly directRead: ReadFn = (pos, count, _perm, offset) => {
    let val = this.physRead(pos, count);
    if (pos >= PCI_CFG_SPACE_SIZE) {
      if (offset < 4) val = getLe(this.vconfig, pos, count);
    } else if (pos >= PCI_STD_HEADER_SIZEOF) {
      if (offset === 0 && count > 1) {
        const n = Math.min(PCI_CAP_FLAGS, count);
        const mask = ONES(n);
        val = ((val & ~mask) | (getLe(this.vconfig, pos, n) & mask)) >>> 0;
      } else if (offset === PCI_CAP_LIST_NEXT) {
        val = ((val & ~0xff) | this.vconfig[pos]!) >>> 0;
      }
    }
    return val;
  };

  private readonly rawRead: ReadFn = (pos, count) => this.physRead(pos, count);
  private readonly rawWrite: WriteFn = (pos, count, _p, _o, val) => this.phys.write(pos, count as 1 | 2 | 4, val);
  private readonly virtRead: ReadFn = (pos, count) => getLe(this.vconfig, pos, count);
  private readonly virtWrite: WriteFn = (pos, count, _p, _o, val) => putLe(this.vconfig, pos, count, val);

  private readonly basicRead: ReadFn = (pos, count, perm, offset) => {
    if (isBar(offset)) this.barFixup();
    return this.defaultRead(pos, count, perm, offset);
  };

  private readonly basicWrite: WriteFn = (pos, count, perm, offset, val) => {
    let newCmd = 0;
    if (offset === PCI_COMMAND) {
      const physCmd = this.physRead(PCI_COMMAND, 2);
      const virtCmd = getLe(this.vconfig, PCI_COMMAND, 2);
      newCmd = val & 0xffff;
      const physMem = !!(physCmd & PCI_COMMAND_MEMORY),
        virtMem = !!(virtCmd & PCI_COMMAND_MEMORY);
      const newMem = !!(newCmd & PCI_COMMAND_MEMORY);
      const physIo = !!(physCmd & PCI_COMMAND_IO),
        virtIo = !!(virtCmd & PCI_COMMAND_IO),
        newIo = !!(newCmd & PCI_COMMAND_IO);
      if ((newMem && virtMem && !physMem) || (newIo && virtIo && !physIo) || this.needBarRestore()) this.barRestore();
    }
    this.defaultWrite(pos, count, perm, offset, val);
    if (offset === PCI_COMMAND) {
      const mask = PCI_COMMAND_MEMORY | PCI_COMMAND_IO;
      const v = getLe(this.vconfig, PCI_COMMAND, 2);
      putLe(this.vconfig, PCI_COMMAND, 2, (v & ~mask) | (newCmd & mask));
    }
    if (offset >= PCI_COMMAND && offset <= PCI_COMMAND + 1) {
      const virtIntxDisable = !!(getLe(this.vconfig, PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE);
      if (virtIntxDisable && !this.virqDisabled) {
        this.virqDisabled = true;
        this.owner.intxMask();
      } else if (!virtIntxDisable && this.virqDisabled) {
        this.virqDisabled = false;
        this.owner.intxUnmask();
      }
    }
    if (isBar(offset)) this.bardirty = true;
  };

  private readonly msiRead: ReadFn = (pos, count, perm, offset) => {
    if (offset <= PCI_MSI_FLAGS && offset + count >= PCI_MSI_FLAGS) {
      const start = this.findCapStart(pos);
      let flags = getLe(this.vconfig, start, 2);
      flags = (flags & ~PCI_MSI_FLAGS_QMASK) | (this.owner.msiQmax() << 1);
      putLe(this.vconfig, start, 2, flags);
    }
    return this.defaultRead(pos, count, perm, offset);
  };

  private readonly msiWrite: WriteFn = (pos, count, perm, offset, val) => {
    this.defaultWrite(pos, count, perm, offset, val);
    if (offset <= PCI_MSI_FLAGS && offset + count >= PCI_MSI_FLAGS) {
      const start = this.findCapStart(pos);
      let flags = getLe(this.vconfig, start + PCI_MSI_FLAGS, 2);
      if (!this.owner.msiActive()) flags &= ~PCI_MSI_FLAGS_ENABLE;
      const qmax = this.owner.msiQmax();
      if ((flags & PCI_MSI_FLAGS_QSIZE) >> 4 > qmax) flags = (flags & ~PCI_MSI_FLAGS_QSIZE) | (qmax << 4);
      putLe(this.vconfig, start + PCI_MSI_FLAGS, 2, flags);
      this.phys.write(start + PCI_MSI_FLAGS, 2, flags);
    }
  };

  private readonly pmWrite: WriteFn = (pos, count, perm, offset, val) => {
    this.defaultWrite(pos, count, perm, offset, val);
    if (offset === PCI_PM_CTRL) this.owner.setPowerState((val & PCI_PM_CTRL_STATE_MASK) as 0 | 1 | 2 | 3);
  };

  private readonly expWrite: WriteFn = (pos, count, perm, offset, val) => {
    const ctrlAt = pos - offset + PCI_EXP_DEVCTL;
    this.defaultWrite(pos, count, perm, offset, val);
    const ctrl = getLe(this.vconfig, ctrlAt, 2);
    if (ctrl & PCI_EXP_DEVCTL_BCR_FLR) {
      putLe(this.vconfig, ctrlAt, 2, ctrl & ~PCI_EXP_DEVCTL_BCR_FLR);
      const cap = this.physRead(pos - offset + PCI_EXP_DEVCAP, 4);
      if (cap & PCI_EXP_DEVCAP_FLR) this.owner.tryFunctionReset();
    }
  };

  private readonly afWrite: WriteFn = (pos, count, perm, offset, val) => {
    const ctrlAt = pos - offset + PCI_AF_CTRL;
    this.defaultWrite(pos, count, perm, offset, val);
    if (this.vconfig[ctrlAt]! & PCI_AF_CTRL_FLR) {
      this.vconfig[ctrlAt] = this.vconfig[ctrlAt]! & ~PCI_AF_CTRL_FLR;
      const cap = this.physRead(pos - offset + PCI_AF_CAP, 1);
      if (cap & PCI_AF_CAP_FLR && cap & PCI_AF_CAP_TP) this.owner.tryFunctionReset();
    }
  };

  // ---- BAR virtualisation ----

  private barFixup(): void {
    if (!this.bardirty) return;
    for (let i = 0; i < 6; i++) {
      const at = PCI_BASE_ADDRESS_0 + 4 * i;
      const res = this.owner.bars[i];
      if (!res || res.start === 0n) {
        putLe(this.vconfig, at, 4, 0);
        continue;
      }
      const mask = ~(res.length - 1n) & ((1n << 64n) - 1n);
      const flags = res.io
        ? PCI_BASE_ADDRESS_SPACE_IO
        : (res.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0) | (res.is64bit ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0);
      let v = getLe(this.vconfig, at, 4);
      v = ((v & Number(mask & 0xffff_ffffn)) | flags) >>> 0;
      putLe(this.vconfig, at, 4, v);
      if (v & PCI_BASE_ADDRESS_MEM_TYPE_64 && !res.io) {
        const hi = getLe(this.vconfig, at + 4, 4) & Number(mask >> 32n);
        putLe(this.vconfig, at + 4, 4, hi >>> 0);
        i++;
      }
    }
    // No ROM on the modelled devices: the ROM BAR reads 0 (no resource, no shadow ROM).
    putLe(this.vconfig, PCI_ROM_ADDRESS, 4, 0);
    this.bardirty = false;
  }

  private needBarRestore(): boolean {
    for (let i = 0; i < 6; i++) {
      if (this.rbar[i] && this.physRead(PCI_BASE_ADDRESS_0 + 4 * i, 4) !== this.rbar[i]) return true;
    }
    return false;
  }

  private barRestore(): void {
    for (let i = 0; i < 6; i++) this.phys.write(PCI_BASE_ADDRESS_0 + 4 * i, 4, this.rbar[i]!);
    this.phys.write(PCI_ROM_ADDRESS, 4, this.rbar[6]!);
  }

  // ---- capability discovery (vfio_cap_init / vfio_ecap_init) ----

  private fillVconfig(offset: number, size: number): void {
    while (size) {
      let n: 1 | 2 | 4;
      if (size >= 4 && offset % 4 === 0) n = 4;
      else if (size >= 2 && offset % 2 === 0) n = 2;
      else n = 1;
      putLe(this.vconfig, offset, n, this.phys.read(offset, n));
      offset += n;
      size -= n;
    }
  }

  private capInit(): void {
    const status = this.phys.read(PCI_STATUS, 2);
    if (!(status & PCI_STATUS_CAP_LIST)) return;
    let pos = this.phys.read(PCI_CAPABILITY_LIST, 1);
    let prev = PCI_CAPABILITY_LIST;
    let loops = (PCI_CFG_SPACE_SIZE - PCI_STD_HEADER_SIZEOF) / PCI_CAP_SIZEOF;
    let caps = 0;
    while (pos && loops--) {
      const cap = this.phys.read(pos, 1);
      const next = this.phys.read(pos + PCI_CAP_LIST_NEXT, 1);
      let len = 0;
      if (cap && cap <= PCI_CAP_ID_MAX) {
        len = CAP_LENGTH[cap] ?? 0;
        if (len === 0xff) len = this.capLength(cap, pos);
      }
      if (!len) {
        this.vconfig[prev] = next;
        pos = next;
        continue;
      }
      this.map.fill(cap, pos, pos + len);
      this.fillVconfig(pos, len);
      if (cap === PCI_CAP_ID_PM) {
        putLe(this.vconfig, pos + PCI_PM_PMC, 2, getLe(this.vconfig, pos + PCI_PM_PMC, 2) & ~PCI_PM_CAP_PME_MASK);
        putLe(
          this.vconfig,
          pos + PCI_PM_CTRL,
          2,
          getLe(this.vconfig, pos + PCI_PM_CTRL, 2) & ~(PCI_PM_CTRL_PME_ENABLE | PCI_PM_CTRL_PME_STATUS),
        );
      }
      prev = pos + PCI_CAP_LIST_NEXT;
      pos = next;
      caps++;
    }
    if (!caps) putLe(this.vconfig, PCI_STATUS, 2, getLe(this.vconfig, PCI_STATUS, 2) & ~PCI_STATUS_CAP_LIST);
  }

  private capLength(cap: number, pos: number): number {
    switch (cap) {
      case PCI_CAP_ID_MSI: {
        const flags = this.phys.read(pos + PCI_MSI_FLAGS, 2);
        const len = 10 + (flags & PCI_MSI_FLAGS_64BIT ? 4 : 0) + (flags & PCI_MSI_FLAGS_MASKBIT ? 10 : 0);
        if (!this.msiPerm) this.msiPerm = this.makeMsiPerm(len, flags);
        return len;
      }
      case PCI_CAP_ID_PCIX: {
        const cmd = this.phys.read(pos + PCI_X_CMD, 2);
        if ((cmd >> 12) & 3) {
          if (this.phys.size > PCI_CFG_SPACE_SIZE) this.extendedCaps = this.phys.read(PCI_CFG_SPACE_SIZE, 4) !== 0;
          return 24;
        }
        return 8;
      }
      case PCI_CAP_ID_VNDR:
        return this.phys.read(pos + PCI_CAP_FLAGS, 1);
      case PCI_CAP_ID_EXP: {
        if (this.phys.size > PCI_CFG_SPACE_SIZE) this.extendedCaps = this.phys.read(PCI_CFG_SPACE_SIZE, 4) !== 0;
        const flags = this.phys.read(pos + PCI_EXP_FLAGS, 2);
        const type = (flags >> 4) & 0xf;
        if ((flags & 0xf) === 1) return type === PCI_EXP_TYPE_RC_END ? 0xc : 20;
        return type === PCI_EXP_TYPE_RC_END ? 0x2c : 0x34;
      }
      case PCI_CAP_ID_HT:
        return this.phys.read(pos + 3, 1) & 0xe0 ? 24 : 28;
      case PCI_CAP_ID_SATA:
        return (this.phys.read(pos + 4, 1) & 0xf) === 0xf ? 16 : 8;
      default:
        return 0;
    }
  }

  private ecapInit(): void {
    if (!this.extendedCaps) return;
    let epos = PCI_CFG_SPACE_SIZE;
    let loops = (this.phys.size - PCI_CFG_SPACE_SIZE) / PCI_CAP_SIZEOF;
    let prev: number | undefined;
    let ecaps = 0;
    while (loops-- && epos >= PCI_CFG_SPACE_SIZE) {
      const header = this.phys.read(epos, 4);
      const ecap = header & 0xffff;
      const nextOf = (h: number) => (h >>> 20) & 0xffc;
      let len = 0;
      let hidden = false;
      if (ecap <= PCI_EXT_CAP_ID_MAX) {
        len = EXT_CAP_LENGTH[ecap] ?? 0;
        if (len === 0xff) len = this.extCapLength(ecap, epos);
      }
      if (!len) {
        if (prev !== undefined) {
          epos = nextOf(header);
          const pv = getLe(this.vconfig, prev, 4);
          putLe(this.vconfig, prev, 4, ((pv & ~(0xffc << 20)) | (epos << 20)) >>> 0);
          continue;
        }
        len = PCI_CAP_SIZEOF;
        hidden = true;
      }
      this.map.fill(Math.min(ecap, 0xfd), epos, epos + len);
      this.fillVconfig(epos, len);
      if (hidden) putLe(this.vconfig, epos, 4, (getLe(this.vconfig, epos, 4) & (0xffc << 20)) >>> 0);
      else ecaps++;
      prev = epos;
      epos = nextOf(header);
    }
    if (!ecaps) putLe(this.vconfig, PCI_CFG_SPACE_SIZE, 4, 0);
  }

  /**
   * vfio_ext_cap_len: the lengths of the variable-size extended capabilities, from their own
   * registers (vendor-specific and DVSEC carry it in a header; VC/VC9/MFVC, ACS, resizable BAR,
   * DPA and TPH have it implied by counts and flags).
   */
  private extCapLength(ecap: number, epos: number): number {
    const byte = (off: number) => this.phys.read(epos + off, 1);
    switch (ecap) {
      case PCI_EXT_CAP_ID_VNDR:
      case PCI_EXT_CAP_ID_DVSEC:
        return this.phys.read(epos + 4, 4) >>> 20;
      case PCI_EXT_CAP_ID_VC:
      case PCI_EXT_CAP_ID_VC9:
      case PCI_EXT_CAP_ID_MFVC:
        return this.vcCapLength(epos);
      case PCI_EXT_CAP_ID_ACS: {
        if (!(byte(PCI_ACS_CAP) & PCI_ACS_EC)) return 8;
        const egressBits = byte(PCI_ACS_EGRESS_BITS);
        const bits = egressBits ? Math.ceil(egressBits / 32) * 32 : 256;
        return 8 + bits / 8;
      }
      case PCI_EXT_CAP_ID_REBAR:
        return 4 + ((byte(PCI_REBAR_CTRL) & PCI_REBAR_CTRL_NBAR_MASK) >> PCI_REBAR_CTRL_NBAR_SHIFT) * 8;
      case PCI_EXT_CAP_ID_DPA:
        return PCI_DPA_BASE_SIZEOF + (byte(PCI_DPA_CAP) & PCI_DPA_CAP_SUBSTATE_MASK) + 1;
      case PCI_EXT_CAP_ID_TPH: {
        const cap = this.phys.read(epos + PCI_TPH_CAP, 4);
        if ((cap & PCI_TPH_CAP_LOC_MASK) !== PCI_TPH_LOC_CAP) return PCI_TPH_BASE_SIZEOF;
        return PCI_TPH_BASE_SIZEOF + ((cap & PCI_TPH_CAP_ST_MASK) >>> PCI_TPH_CAP_ST_SHIFT) * 2 + 2;
      }
      default:
        return 0;
    }
  }

  /**
   * vfio_vc_cap_len: the base registers, one block per virtual channel, and the VC arbitration
   * table when the port has one (port and function arbitration tables are never writable, so
   * they are not counted).
   */
  private vcCapLength(epos: number): number {
    const evcc = this.phys.read(epos + PCI_VC_PORT_CAP1, 4) & PCI_VC_CAP1_EVCC;
    const cap2 = this.phys.read(epos + PCI_VC_PORT_CAP2, 4);
    const phases = cap2 & PCI_VC_CAP2_128_PHASE ? 128 : cap2 & PCI_VC_CAP2_64_PHASE ? 64 : cap2 & PCI_VC_CAP2_32_PHASE ? 32 : 0;
    const vcArb = phases * 4;
    let len = PCI_CAP_VC_BASE_SIZEOF + (1 + evcc) * PCI_CAP_VC_PER_VC_SIZEOF;
    if (vcArb) len = Math.ceil(len / 16) * 16 + vcArb / 8;
    return len;
  }

  // ---- permission tables (vfio_pci_init_perm_bits) ----

  private initPerms(): void {
    const basic = allocPerm(PCI_STD_HEADER_SIZEOF);
    basic.readFn = this.basicRead;
    basic.writeFn = this.basicWrite;
    setPerm(basic, PCI_VENDOR_ID, 2, 0xffff, 0);
    setPerm(basic, PCI_DEVICE_ID, 2, 0xffff, 0);
    setPerm(basic, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE, 0xffff);
    setPerm(basic, PCI_STATUS, 2, PCI_STATUS_CAP_LIST, 0);
    setPerm(basic, PCI_CACHE_LINE_SIZE, 1, 0, 0xff);
    setPerm(basic, PCI_LATENCY_TIMER, 1, 0, 0xff);
    setPerm(basic, PCI_BIST, 1, 0, 0xff);
    for (let at = PCI_BASE_ADDRESS_0; at <= PCI_BASE_ADDRESS_5; at += 4) setPerm(basic, at, 4, 0xffff_ffff, 0xffff_ffff);
    setPerm(basic, PCI_ROM_ADDRESS, 4, 0xffff_ffff, 0xffff_ffff);
    setPerm(basic, PCI_CAPABILITY_LIST, 1, 0xff, 0);
    setPerm(basic, PCI_INTERRUPT_LINE, 1, 0xff, 0xff);
    setPerm(basic, PCI_INTERRUPT_PIN, 1, 0xff, 0);
    this.capPerms.set(PCI_CAP_ID_BASIC, basic);

    const pm = this.defaultPerm(8);
    pm.writeFn = this.pmWrite;
    setPerm(pm, PCI_CAP_LIST_NEXT, 1, 0xff, 0);
    setPerm(pm, PCI_PM_PMC, 2, PCI_PM_CAP_PME_MASK, 0);
    setPerm(
      pm,
      PCI_PM_CTRL,
      4,
      PCI_PM_CTRL_PME_ENABLE | PCI_PM_CTRL_PME_STATUS,
      ~(PCI_PM_CTRL_PME_ENABLE | PCI_PM_CTRL_PME_STATUS | PCI_PM_CTRL_STATE_MASK) >>> 0,
    );
    this.capPerms.set(PCI_CAP_ID_PM, pm);

    // VPD: the kernel virtualises address/data and performs the VPD access itself; the modelled
    // devices have no VPD, so the registers are plain virtual storage here.
    const vpd = this.defaultPerm(8);
    setPerm(vpd, PCI_CAP_LIST_NEXT, 1, 0xff, 0);
    setPerm(vpd, PCI_VPD_ADDR, 2, 0xffff, 0xffff);
    setPerm(vpd, PCI_VPD_DATA, 4, 0xffff_ffff, 0xffff_ffff);
    this.capPerms.set(PCI_CAP_ID_VPD, vpd);

    const pcix = this.defaultPerm(24);
    setPerm(pcix, PCI_CAP_LIST_NEXT, 1, 0xff, 0);
    setPerm(pcix, PCI_X_CMD, 2, 0, 0xffff);
    setPerm(pcix, PCI_X_ECC_CSR, 4, 0, 0xffff_ffff);
    this.capPerms.set(PCI_CAP_ID_PCIX, pcix);

    this.capPerms.set(PCI_CAP_ID_VNDR, {
      virt: new Uint8Array(4),
      write: new Uint8Array(4),
      readFn: this.directRead,
      writeFn: this.rawWrite,
    });

    const exp = this.defaultPerm(0x34);
    exp.writeFn = this.expWrite;
    setPerm(exp, PCI_CAP_LIST_NEXT, 1, 0xff, 0);
    setPerm(
      exp,
      PCI_EXP_DEVCTL,
      2,
      PCI_EXP_DEVCTL_BCR_FLR | PCI_EXP_DEVCTL_PAYLOAD | PCI_EXP_DEVCTL_READRQ,
      ~PCI_EXP_DEVCTL_PHANTOM & 0xffff,
    );
    setPerm(exp, PCI_EXP_DEVCTL2, 2, 0, ~PCI_EXP_DEVCTL2_ARI & 0xffff);
    this.capPerms.set(PCI_CAP_ID_EXP, exp);

    const af = this.defaultPerm(6);
    af.writeFn = this.afWrite;
    setPerm(af, PCI_CAP_LIST_NEXT, 1, 0xff, 0);
    setPerm(af, PCI_AF_CTRL, 1, PCI_AF_CTRL_FLR, PCI_AF_CTRL_FLR);
    this.capPerms.set(PCI_CAP_ID_AF, af);

    const err = this.defaultPerm(0x2c);
    setPerm(err, 0, 4, 0xffff_ffff, 0);
    // UND DLP SURPDN POISON_TLP FCP COMP_TIME COMP_ABORT UNX_COMP RX_OVER MALF_TLP ECRC UNSUP ACSV INTN MCBTLP ATOMEG TLPPRE
    const unc = 0x03ff_f031;
    setPerm(err, PCI_ERR_UNCOR_STATUS, 4, 0, unc >>> 0);
    setPerm(err, PCI_ERR_UNCOR_MASK, 4, 0, unc >>> 0);
    setPerm(err, PCI_ERR_UNCOR_SEVER, 4, 0, unc >>> 0);
    // RCVR BAD_TLP BAD_DLLP REP_ROLL REP_TIMER ADV_NFAT INTERNAL LOG_OVER
    const cor = 0x0000_f1c1;
    setPerm(err, PCI_ERR_COR_STATUS, 4, 0, cor);
    setPerm(err, PCI_ERR_COR_MASK, 4, 0, cor);
    setPerm(err, PCI_ERR_CAP, 4, 0, 0x0000_0040 /* ECRC_GENE */ | 0x0000_0100 /* ECRC_CHKE */);
    this.ecapPerms.set(PCI_EXT_CAP_ID_ERR, err);

    const pwr = this.defaultPerm(0x10);
    setPerm(pwr, 0, 4, 0xffff_ffff, 0);
    setPerm(pwr, PCI_PWR_DATA, 1, 0, 0xff);
    this.ecapPerms.set(PCI_EXT_CAP_ID_PWR, pwr);

    this.ecapPerms.set(PCI_EXT_CAP_ID_VNDR, {
      virt: new Uint8Array(4),
      write: new Uint8Array(4),
      readFn: this.directRead,
      writeFn: this.rawWrite,
    });
    this.ecapPerms.set(PCI_EXT_CAP_ID_DVSEC, {
      virt: new Uint8Array(4),
      write: new Uint8Array(4),
      readFn: this.directRead,
      writeFn: this.rawWrite,
    });
  }

  private defaultPerm(size: number): Perm {
    const p = allocPerm(size);
    p.readFn = this.defaultRead;
    p.writeFn = this.defaultWrite;
    return p;
  }

  private makeMsiPerm(len: number, flags: number): Perm {
    const p = allocPerm(len);
    p.readFn = this.msiRead;
    p.writeFn = this.msiWrite;
    setPerm(p, PCI_CAP_LIST_NEXT, 1, 0xff, 0);
    setPerm(p, PCI_MSI_FLAGS, 1, 0xff, 0xff);
    setPerm(p, PCI_MSI_ADDRESS_LO, 4, 0xffff_ffff, 0xffff_ffff);
    if (flags & PCI_MSI_FLAGS_64BIT) {
      setPerm(p, PCI_MSI_ADDRESS_HI, 4, 0xffff_ffff, 0xffff_ffff);
      setPerm(p, PCI_MSI_DATA_64, 2, 0xffff, 0xffff);
      if (flags & PCI_MSI_FLAGS_MASKBIT) {
        setPerm(p, PCI_MSI_MASK_64, 4, 0, 0xffff_ffff);
        setPerm(p, PCI_MSI_PENDING_64, 4, 0, 0xffff_ffff);
      }
    } else {
      setPerm(p, PCI_MSI_DATA_32, 2, 0xffff, 0xffff);
      if (flags & PCI_MSI_FLAGS_MASKBIT) {
        setPerm(p, PCI_MSI_MASK_32, 4, 0, 0xffff_ffff);
        setPerm(p, PCI_MSI_PENDING_32, 4, 0, 0xffff_ffff);
      }
    }
    return p;
  }
}

function isBar(offset: number): boolean {
  return (offset >= PCI_BASE_ADDRESS_0 && offset < PCI_BASE_ADDRESS_5 + 4) || (offset >= PCI_ROM_ADDRESS && offset < PCI_ROM_ADDRESS + 4);
}

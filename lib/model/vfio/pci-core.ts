/**
 * vfio-pci's device (drivers/vfio/pci/vfio_pci_core.c, vfio_pci_rdwr.c): what happens to the
 * function when the VFIO device is opened and closed, and the device ioctls, region access and
 * BAR mmap a user gets once access is granted.
 *
 * Open (vfio_pci_core_enable): bus mastering off, decoding on, a function reset if the device
 * has a method (edu has none, so reset_works is false and VFIO_DEVICE_RESET answers EINVAL), the
 * config state saved, INTx masking probed, config virtualisation set up.
 * Close (vfio_pci_core_disable): bus mastering off, interrupts torn down, INTx disabled, reset
 * when possible, the saved config state restored.
 */
import { KernelError, fail } from '../errno';
import type { FaultInjector } from '../fault-injection';
import { MAP_SHARED } from '../../sys/constants';
import type { MmapBacking } from '../open-file';
import type { VfToken } from './vf-token';
import { restoreIovState } from '../pci/iov';
import type { PciSlot } from '../pci/host';
import type { AccessWidth } from '../pci/device-model';
import { VfioPciConfig } from './config-virt';
import { InfoCapChain } from './info-caps';
import { VfioPciIrqs, validateIrqSet, type FileLookup } from './pci-intrs';
import type { MsiController } from '../pci/host';
import {
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_MSIX_TABLE,
  PCI_MSIX_TABLE_BIR,
  PCI_STD_HEADER_SIZEOF,
} from '../../uapi/pci';
import {
  VfioDeviceFeature,
  VfioDeviceInfo,
  VfioDeviceIoeventfd,
  VfioIrqInfo,
  VfioIrqSet,
  VfioPciHotReset,
  VfioPciHotResetInfo,
  VfioRegionInfo,
  VfioPciDependentDevice,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MASK,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_IOEVENTFD,
  VFIO_DEVICE_PCI_HOT_RESET,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_PCI_BAR5_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  VFIO_PCI_ROM_REGION_INDEX,
  VFIO_PCI_VGA_REGION_INDEX,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  VFIO_PCI_HOT_RESET_FLAG_DEV_ID,
  VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED,
  VFIO_PCI_DEVID_OWNED,
  VFIO_PCI_DEVID_NOT_OWNED,
  VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
  VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
  VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
  VFIO_DEVICE_FEATURE_PCI_VF_TOKEN,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2,
  VFIO_DEVICE_IOEVENTFD_SIZE_MASK,
} from '../../uapi/vfio';
import { devfn } from '../pci/address';
import { busResettable, resetMethods, type ResetMethod } from '../pci/reset-methods';
import { functionsBelow } from '../pci/topology';

/** Region offsets in the device fd: index << 40 (VFIO_PCI_OFFSET_SHIFT). */
export const VFIO_PCI_OFFSET_SHIFT = 40n;
export const VFIO_PCI_OFFSET_MASK = (1n << VFIO_PCI_OFFSET_SHIFT) - 1n;
export function regionOffset(index: number): bigint {
  return BigInt(index) << VFIO_PCI_OFFSET_SHIFT;
}

/** vfio_pci_priv.h: how many ioeventfds one device may have. */
const VFIO_PCI_IOEVENTFD_MAX = 1000;

export interface VfioPciCoreHost {
  readonly pageSize: number;
  readonly lookup: FileLookup;
  readonly msi: MsiController;
  /** CONFIG_VFIO_PCI_INTX. */
  readonly intxConfigured: boolean;
  /** All functions on the host bus (for hot-reset dependency lists). */
  readonly siblings: () => readonly PciSlot[];
  /**
   * The VFIO side of a function a bus reset would reach, for hot-reset ownership: undefined when
   * vfio-pci does not have it; else the iommufd context it is bound to (none: undefined) with its
   * device ID there, and its IOMMU group.
   */
  readonly vfioPeer?: (slot: PciSlot) => VfioResetPeer | undefined;
  /** IOMMU group ID of a function, for hot-reset info (group path); undefined when it has none. */
  readonly groupIdOf?: (slot: PciSlot) => number | undefined;
  /** The IOMMU group behind a group fd of the caller (VFIO_DEVICE_PCI_HOT_RESET's group array). */
  readonly groupOfFd?: (fd: number) => number | 'not-a-group' | undefined;
  /** The kernel's fault injector (the interrupt context allocations). */
  readonly faults: FaultInjector;
}

export interface VfioResetPeer {
  readonly iommufd: object | undefined;
  readonly devid: number | undefined;
  readonly groupId: number | undefined;
}

export class VfioPciCoreDevice {
  private cfg: VfioPciConfig | undefined;
  private irqs: VfioPciIrqs | undefined;
  private savedConfig: Uint8Array | undefined;
  private barMmapSupported: boolean[] = [];
  /**
   * pci_resource_start of each BAR as the kernel holds it: the BAR registers can lose it behind
   * the kernel's back (a bus reset by error recovery restores nothing), the resource does not.
   */
  private resourceStart: bigint[] = [];
  private ioeventfds = new Map<string, () => void>();
  resetWorks = false;
  needsReset = false;
  /** vdev->pm_runtime_engaged: the user put the device into low power (VFIO_DEVICE_FEATURE). */
  private pmRuntimeEngaged = false;
  private pmWakeEventfd: object | undefined;
  /** Whether the device was opened through its cdev (changes hot-reset semantics). */
  cdevOpened = false;
  /** vdev->vf_token: set when the function is an SR-IOV PF (vf-token.ts). */
  vfToken: VfToken | undefined;
  /** For a VF (is_virtfn): the token of the vfio-pci PF that created it (sriov_pf_core_dev), if any. */
  virtfn: { readonly pfToken: VfToken | undefined } | undefined;
  /** On vfio_pci_sriov_pfs: SR-IOV was enabled through this PF and not disabled since. */
  sriovListed = false;

  constructor(
    readonly slot: PciSlot,
    private readonly host: VfioPciCoreHost,
  ) {}

  get device() {
    return this.slot.device;
  }
  private get config() {
    return this.slot.device.config;
  }
  get isOpen(): boolean {
    return this.cfg !== undefined;
  }

  // ---- open / close ----

  /** vfio_pci_core_enable + vfio_pci_core_finish_enable. */
  enable(): void {
    const dev = this.device;
    this.writeCommand(this.readCommand() & ~PCI_COMMAND_MASTER);
    this.pciEnableDevice();
    this.resetWorks = this.resetMethod() !== undefined;
    if (this.resetWorks) this.functionReset();
    this.savedConfig = this.saveState();
    this.resourceStart = dev.bars.map((b, i) => (b ? dev.barAddress(i) : 0n));
    const pci23 = this.intxMaskSupported();
    const cmd = this.readCommand();
    if (pci23 && cmd & PCI_COMMAND_INTX_DISABLE) this.writeCommand(cmd & ~PCI_COMMAND_INTX_DISABLE);
    const intxUsable = this.host.intxConfigured && this.slot.irqLine.irq !== 0 && dev.interruptPin !== 0;
    const irqHw = {
      irqLine: this.slot.irqLine.irq ? this.slot.irqLine : undefined,
      pci23,
      msiCap: this.config.findCapability(PCI_CAP_ID_MSI),
      msixCap: this.config.findCapability(PCI_CAP_ID_MSIX),
      msi: this.host.msi,
      readConfig: (o: number, w: 1 | 2 | 4) => this.config.read(o, w),
      writeConfig: (o: number, w: 1 | 2 | 4, v: number) => this.config.write(o, w, v),
      mmioWrite: (bar: number, offset: bigint, width: 32, value: bigint) => dev.mmioWrite(bar, offset, width, value),
    };
    const irqs = new VfioPciIrqs(irqHw, this.host.lookup, () => this.cfg?.intxDisabledByUser ?? false, this.host.faults);
    this.irqs = irqs;
    this.cfg = new VfioPciConfig(
      { size: this.config.size, read: (o, w) => this.config.read(o, w), write: (o, w, v) => this.config.write(o, w, v) },
      {
        bars: dev.bars.map(
          (b, i) =>
            b && { start: dev.barAddress(i), length: b.size, io: b.space === 'io', prefetchable: b.prefetchable, is64bit: b.is64bit },
        ),
        intxUsable: intxUsable && !this.virtfn,
        ...(this.virtfn ? { virtfn: { vendorId: dev.vendorId, deviceId: dev.deviceId } } : {}),
        msiActive: () => irqs.irqType === 1,
        msiQmax: () => irqs.msiQmax,
        intxMask: () => {
          irqs.intxMask();
        },
        intxUnmask: () => irqs.intxUnmask(),
        setPowerState: () => undefined,
        tryFunctionReset: () => {
          if (this.resetWorks) this.functionReset();
        },
      },
    );
    // vfio_pci_probe_mmaps: memory BARs of at least a page, or page-aligned smaller ones.
    this.barMmapSupported = dev.bars.map(
      (b, i) =>
        !!b &&
        b.space === 'memory' &&
        b.size > 0n &&
        (b.size >= BigInt(this.host.pageSize) || dev.barAddress(i) % BigInt(this.host.pageSize) === 0n),
    );
    // vfio_pci_core_finish_enable: an open VF is a user of its PF's token.
    if (this.virtfn?.pfToken) this.virtfn.pfToken.users++;
  }

  /** vfio_pci_core_close_device / vfio_pci_core_disable. */
  disable(): void {
    if (this.virtfn?.pfToken) this.virtfn.pfToken.users--;
    this.runtimePmExit();
    this.writeCommand(this.readCommand() & ~PCI_COMMAND_MASTER);
    this.irqs?.shutdown();
    for (const stop of this.ioeventfds.values()) stop();
    this.ioeventfds.clear();
    this.cfg = undefined;
    this.irqs = undefined;
    this.needsReset = true;
    this.writeCommand(PCI_COMMAND_INTX_DISABLE);
    if (this.resetWorks) {
      this.resetLocked();
      this.needsReset = false;
    }
    if (this.savedConfig) this.restoreState(this.savedConfig);
    this.savedConfig = undefined;
    this.writeCommand(this.readCommand() & ~PCI_COMMAND_MASTER);
  }

  /** Unbind while open: the kernel signals REQ and waits; returns whether a REQ eventfd was set. */
  request(): boolean {
    return this.irqs?.request() ?? false;
  }

  /** vfio_pci_core_aer_err_detected: signals ERR if the user set an eventfd for it. */
  errorDetected(): void {
    this.irqs?.signalError();
  }

  // ---- ioctls ----

  ioctl(request: number, arg: Uint8Array | number | null): number {
    switch (request) {
      case VFIO_DEVICE_GET_INFO.number:
        return this.getInfo(struct(arg));
      case VFIO_DEVICE_GET_REGION_INFO.number:
        return this.getRegionInfo(struct(arg));
      case VFIO_DEVICE_GET_IRQ_INFO.number:
        return this.getIrqInfo(struct(arg));
      case VFIO_DEVICE_SET_IRQS.number:
        return this.setIrqs(struct(arg));
      case VFIO_DEVICE_RESET.number:
        return this.reset();
      case VFIO_DEVICE_GET_PCI_HOT_RESET_INFO.number:
        return this.hotResetInfo(struct(arg));
      case VFIO_DEVICE_PCI_HOT_RESET.number:
        return this.hotReset(struct(arg));
      case VFIO_DEVICE_IOEVENTFD.number:
        return this.ioeventfd(struct(arg));
      case VFIO_DEVICE_FEATURE.number:
        return this.feature(struct(arg));
      default:
        fail('ENOTTY', 'not a vfio-pci device ioctl');
    }
  }

  private get open(): { cfg: VfioPciConfig; irqs: VfioPciIrqs } {
    if (!this.cfg || !this.irqs) throw new Error('model vfio-pci: device used while closed');
    return { cfg: this.cfg, irqs: this.irqs };
  }

  /** vfio_pci_ioctl_get_info. */
  private getInfo(arg: Uint8Array): number {
    const minsz = VfioDeviceInfo.endOf('num_irqs');
    need(arg, minsz);
    const argsz = VfioDeviceInfo.get(arg, 'argsz');
    if (argsz < minsz) fail('EINVAL', `argsz ${argsz} < ${minsz}`);
    const out = Math.min(argsz, VfioDeviceInfo.size);
    const info = VfioDeviceInfo.encode({
      argsz,
      flags: VFIO_DEVICE_FLAGS_PCI | (this.resetWorks ? VFIO_DEVICE_FLAGS_RESET : 0),
      num_regions: VFIO_PCI_NUM_REGIONS,
      num_irqs: VFIO_PCI_NUM_IRQS,
      cap_offset: 0,
      pad: 0,
    });
    writeBack(arg, info, out);
    return 0;
  }

  /** vfio_get_region_info + vfio_pci_ioctl_get_region_info. */
  private getRegionInfo(arg: Uint8Array): number {
    const minsz = VfioRegionInfo.endOf('offset');
    need(arg, minsz);
    const req = VfioRegionInfo.decode(arg);
    if (req.argsz < minsz) fail('EINVAL', `argsz ${req.argsz} < ${minsz}`);
    const caps = new InfoCapChain();
    let flags = 0;
    let size = 0n;
    const index = req.index;
    if (index === VFIO_PCI_CONFIG_REGION_INDEX) {
      size = BigInt(this.config.size);
      flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
    } else if (index <= VFIO_PCI_BAR5_REGION_INDEX) {
      const bar = this.device.bars[index];
      size = bar?.size ?? 0n;
      if (size) {
        flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
        if (this.barMmapSupported[index]) {
          flags |= VFIO_REGION_INFO_FLAG_MMAP;
          if (index === this.msixBar()) caps.add(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1);
        }
      }
    } else if (index === VFIO_PCI_ROM_REGION_INDEX) {
      // No ROM BAR and no shadow ROM on the modelled functions.
      size = 0n;
      flags = 0;
    } else if (index === VFIO_PCI_VGA_REGION_INDEX) {
      fail('EINVAL', 'the device has no VGA region');
    } else {
      fail('EINVAL', `region index ${index} does not exist`);
    }
    let argsz = req.argsz;
    let capOffset = 0;
    if (caps.size) {
      flags |= VFIO_REGION_INFO_FLAG_CAPS;
      if (argsz < VfioRegionInfo.size + caps.size) {
        argsz = VfioRegionInfo.size + caps.size;
      } else {
        const chain = caps.shifted(VfioRegionInfo.size);
        need(arg, VfioRegionInfo.size + chain.length);
        arg.set(chain, VfioRegionInfo.size);
        capOffset = VfioRegionInfo.size;
      }
    }
    writeBack(arg, VfioRegionInfo.encode({ argsz, flags, index, cap_offset: capOffset, size, offset: regionOffset(index) }), minsz);
    return 0;
  }

  /** The MSI-X table's BAR, offset and size, if the function has MSI-X. */
  private msixTable(): { bar: number; offset: bigint; size: bigint } | undefined {
    const pos = this.config.findCapability(PCI_CAP_ID_MSIX);
    if (!pos) return undefined;
    const table = this.config.read(pos + PCI_MSIX_TABLE, 4);
    const entries = (this.config.read(pos + 2, 2) & 0x7ff) + 1;
    return { bar: table & PCI_MSIX_TABLE_BIR, offset: BigInt((table & ~PCI_MSIX_TABLE_BIR) >>> 0), size: BigInt(entries * 16) };
  }

  private msixBar(): number {
    const pos = this.config.findCapability(PCI_CAP_ID_MSIX);
    return pos ? this.config.read(pos + PCI_MSIX_TABLE, 4) & PCI_MSIX_TABLE_BIR : 0xff;
  }

  /** vfio_pci_ioctl_get_irq_info. */
  private getIrqInfo(arg: Uint8Array): number {
    const minsz = VfioIrqInfo.endOf('count');
    need(arg, minsz);
    const info = VfioIrqInfo.decode(arg);
    if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS) fail('EINVAL', 'argsz too small or index out of range');
    const { cfg, irqs } = this.open;
    let flags = VFIO_IRQ_INFO_EVENTFD;
    if (info.index === VFIO_PCI_INTX_IRQ_INDEX) flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
    else if (info.index !== VFIO_PCI_MSIX_IRQ_INDEX || !irqs.dynamicMsix) flags |= VFIO_IRQ_INFO_NORESIZE;
    const count = irqs.count(info.index, cfg.virtualInterruptPin);
    writeBack(arg, VfioIrqInfo.encode({ argsz: info.argsz, flags, index: info.index, count }), minsz);
    return 0;
  }

  /** vfio_pci_ioctl_set_irqs. */
  private setIrqs(arg: Uint8Array): number {
    const minsz = VfioIrqSet.endOf('count');
    need(arg, minsz);
    const hdr = VfioIrqSet.decode(arg);
    const { cfg, irqs } = this.open;
    const max = irqs.count(hdr.index, cfg.virtualInterruptPin);
    const dataSize = validateIrqSet(hdr, max, VFIO_PCI_NUM_IRQS);
    let data: Uint8Array | null = null;
    if (dataSize) {
      need(arg, minsz + dataSize);
      data = arg.slice(minsz, minsz + dataSize);
    }
    irqs.set(hdr.flags, hdr.index, hdr.start, hdr.count, data);
    return 0;
  }

  /** The first reset method the PCI core would use (pci_reset_fn_methods order), if any. */
  private resetMethod(): ResetMethod | undefined {
    return resetMethods(this.slot, this.host.siblings())[0];
  }

  /** __pci_reset_function_locked: the reset itself, no state saved around it. */
  private resetLocked(): void {
    if (this.resetMethod() === 'bus') this.device.busReset();
    else this.device.functionReset();
  }

  /** vfio_pci_ioctl_reset: EINVAL unless the function has a reset method. */
  private reset(): number {
    if (!this.resetWorks) fail('EINVAL', 'the device has no reset method (reset_works is false)');
    this.functionReset();
    return 0;
  }

  /**
   * vfio_pci_ioctl_get_pci_hot_reset_info: a function on the root bus has neither a slot nor a
   * bridge to reset through, so the kernel answers ENODEV; otherwise it lists the functions the
   * bus reset would affect.
   */
  private hotResetInfo(arg: Uint8Array): number {
    const minsz = VfioPciHotResetInfo.endOf('count');
    need(arg, minsz);
    const hdr = VfioPciHotResetInfo.decode(arg);
    if (hdr.argsz < minsz) fail('EINVAL', `argsz ${hdr.argsz} < ${minsz}`);
    const affected = this.busResetScope();
    const count = affected.length;
    const entry = VfioPciDependentDevice.size;
    if (count > Math.floor((hdr.argsz - VfioPciHotResetInfo.size) / entry)) {
      writeBack(arg, VfioPciHotResetInfo.encode({ argsz: hdr.argsz, flags: 0, count }), minsz);
      fail('ENOSPC', `${count} dependent devices do not fit; count tells how many`);
    }
    let flags = 0;
    if (this.cdevOpened) flags |= VFIO_PCI_HOT_RESET_FLAG_DEV_ID | VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
    need(arg, VfioPciHotResetInfo.size + count * entry);
    const mine = this.host.vfioPeer?.(this.slot)?.iommufd;
    affected.forEach((s, i) => {
      const at = VfioPciHotResetInfo.size + i * entry;
      let id: number;
      if (flags & VFIO_PCI_HOT_RESET_FLAG_DEV_ID) {
        const peer = this.host.vfioPeer?.(s);
        id = peer ? this.ownership(s, peer, mine) : VFIO_PCI_DEVID_NOT_OWNED;
        if (id === VFIO_PCI_DEVID_NOT_OWNED) flags &= ~VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
      } else {
        const group = this.host.groupIdOf?.(s);
        if (group === undefined) fail('EPERM', 'a dependent device has no IOMMU group');
        id = group;
      }
      VfioPciDependentDevice.encode(
        { group_id: id >>> 0, segment: s.address.domain, bus: s.address.bus, devfn: devfn(s.address) },
        arg,
        at,
      );
    });
    writeBack(arg, VfioPciHotResetInfo.encode({ argsz: hdr.argsz, flags, count }), minsz);
    return 0;
  }

  /**
   * What a slot or bus reset of this function reaches (vfio_pci_for_each_slot_or_bus): every
   * function on its bus and below. A function on the root bus has no bridge to reset through:
   * pci_probe_reset_slot and pci_probe_reset_bus fail and VFIO answers ENODEV.
   */
  private busResetScope(): PciSlot[] {
    const bridge = this.slot.upstream;
    if (!bridge || !busResettable(this.slot)) fail('ENODEV', 'the function is on the root bus: no slot or bus reset exists');
    return functionsBelow(bridge, this.host.siblings());
  }

  /**
   * vfio_pci_ioctl_pci_hot_reset: argument checks, the reset scope, then every function it
   * reaches must be a vfio-pci device the caller owns — through the groups it passed (group
   * path), or bound to the caller's iommufd or in a group that iommufd owns (cdev path, empty
   * array) — before the bridge resets the bus (pci_reset_bus saves and restores every function).
   */
  private hotReset(arg: Uint8Array): number {
    const minsz = VfioPciHotReset.endOf('count');
    need(arg, minsz);
    const hdr = VfioPciHotReset.decode(arg);
    if (hdr.argsz < minsz || hdr.flags) fail('EINVAL', 'argsz too small or flags set');
    if ((hdr.count !== 0) === this.cdevOpened) {
      fail('EINVAL', 'a zero-length group array is only for cdev-opened devices, and cdev-opened devices must pass one');
    }
    const scope = this.busResetScope();
    let groups: Set<number> | undefined;
    if (hdr.count) {
      if (hdr.count > scope.length) fail('EINVAL', `${hdr.count} group fds for ${scope.length} affected devices`);
      need(arg, minsz + 4 * hdr.count);
      const fds = Buffer.from(arg.buffer, arg.byteOffset + minsz, 4 * hdr.count);
      groups = new Set();
      for (let i = 0; i < hdr.count; i++) {
        const group = this.host.groupOfFd?.(fds.readInt32LE(4 * i));
        if (group === undefined) fail('EBADF', `group fd ${fds.readInt32LE(4 * i)} is not open`);
        if (group === 'not-a-group') fail('EINVAL', `fd ${fds.readInt32LE(4 * i)} is not a VFIO group`);
        groups.add(group);
      }
    }
    const mine = this.host.vfioPeer?.(this.slot)?.iommufd;
    for (const s of scope) {
      const peer = this.host.vfioPeer?.(s);
      if (!peer) fail('EINVAL', `${s.name} is affected by the reset but not bound to vfio-pci`);
      const owned = groups
        ? peer.groupId !== undefined && groups.has(peer.groupId)
        : this.ownership(s, peer, mine) !== VFIO_PCI_DEVID_NOT_OWNED;
      if (!owned) fail('EINVAL', `${s.name} is affected by the reset but not owned by the caller`);
    }
    const saved = scope.map((s) => ({ s, state: saveState(s) }));
    for (const s of scope) s.device.busReset();
    for (const { s, state } of saved) {
      restoreState(s, state);
      restoreIovState(s, state);
    }
    this.irqs?.restoreAfterReset();
    return 0;
  }

  /**
   * vfio_iommufd_get_dev_id for a function the reset reaches: its devid when it is bound to the
   * caller's iommufd, "owned" when it is bound to none but its group has a device bound there,
   * else "not owned".
   */
  private ownership(s: PciSlot, peer: VfioResetPeer, mine: object | undefined): number {
    if (mine && peer.iommufd === mine && peer.devid !== undefined) return peer.devid;
    if (peer.iommufd === undefined && mine && peer.groupId !== undefined) {
      const groupOwned = this.host.siblings().some((o) => {
        const p = this.host.vfioPeer?.(o);
        return o !== s && p?.iommufd === mine && p.groupId === peer.groupId;
      });
      if (groupOwned) return VFIO_PCI_DEVID_OWNED;
    }
    return VFIO_PCI_DEVID_NOT_OWNED;
  }

  /** vfio_pci_ioctl_ioeventfd: a write of `data` to a BAR whenever the eventfd is signalled. */
  private ioeventfd(arg: Uint8Array): number {
    const minsz = VfioDeviceIoeventfd.endOf('fd');
    need(arg, minsz);
    const io = VfioDeviceIoeventfd.decode(arg);
    if (io.argsz < minsz || io.flags & ~VFIO_DEVICE_IOEVENTFD_SIZE_MASK) fail('EINVAL', 'argsz too small or unknown flags');
    const count = io.flags & VFIO_DEVICE_IOEVENTFD_SIZE_MASK;
    if ([1, 2, 4, 8].indexOf(count) < 0 || io.fd < -1) fail('EINVAL', 'size must be one of 1, 2, 4, 8 and fd >= -1');
    const bar = Number(io.offset >> VFIO_PCI_OFFSET_SHIFT);
    const pos = io.offset & VFIO_PCI_OFFSET_MASK;
    // vfio_pci_ioeventfd, in its order.
    if (bar > VFIO_PCI_BAR5_REGION_INDEX) fail('EINVAL', 'only BARs take ioeventfds');
    const b = this.device.bars[bar];
    if (pos + BigInt(count) > (b?.size ?? 0n)) fail('EINVAL', 'offset beyond the BAR');
    const msix = this.msixTable();
    if (msix && bar === msix.bar && !(pos + BigInt(count) <= msix.offset || pos >= msix.offset + msix.size)) {
      fail('EINVAL', 'the write would land in the MSI-X table');
    }
    if (count === 8) fail('EINVAL', '8-byte ioeventfds are refused');
    const key = `${io.offset}:${io.data}:${count}`;
    const existing = this.ioeventfds.get(key);
    if (io.fd === -1) {
      if (!existing) fail('ENODEV', 'no such ioeventfd');
      existing();
      this.ioeventfds.delete(key);
      return 0;
    }
    if (existing) fail('EEXIST', 'the same ioeventfd exists');
    if (this.ioeventfds.size >= VFIO_PCI_IOEVENTFD_MAX) fail('ENOSPC', `at most ${VFIO_PCI_IOEVENTFD_MAX} ioeventfds`);
    const file = this.host.lookup(io.fd);
    if (!file) fail('EBADF', `fd ${io.fd} is not open`);
    if (!file.onReadable || !file.readable || file.kind !== 'eventfd') fail('EINVAL', `fd ${io.fd} is not an eventfd`);
    const width = (count * 8) as AccessWidth;
    const fire = () => {
      while (file.readable!()) {
        (file as unknown as { read(): bigint }).read();
        if (this.cfg?.memoryEnabled) this.device.mmioWrite(bar, pos, width, io.data & ((1n << BigInt(width)) - 1n));
      }
    };
    const unsubscribe = file.onReadable(fire);
    this.ioeventfds.set(key, unsubscribe);
    fire();
    return 0;
  }

  /**
   * vfio_ioctl_device_feature: argument rules, then the features vfio-pci has. Migration and
   * dirty logging need driver support vfio-pci lacks (ENOTTY); low-power entry/exit follow
   * vfio_pci_core_pm_entry/_exit as built without CONFIG_PM (nothing resumes the device behind the
   * user's back, so the wake-up eventfd is only held); the VF token needs an SR-IOV PF (ENOTTY).
   */
  private feature(arg: Uint8Array): number {
    const minsz = VfioDeviceFeature.endOf('flags');
    need(arg, minsz);
    const f = VfioDeviceFeature.decode(arg);
    if (f.argsz < minsz) fail('EINVAL', `argsz ${f.argsz} < ${minsz}`);
    if (f.flags & ~(VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_PROBE)) {
      fail('EINVAL', 'unknown flags');
    }
    if (!(f.flags & VFIO_DEVICE_FEATURE_PROBE) && f.flags & VFIO_DEVICE_FEATURE_SET && f.flags & VFIO_DEVICE_FEATURE_GET) {
      fail('EINVAL', 'GET and SET together need PROBE');
    }
    const argsz = f.argsz - minsz;
    /** vfio_check_feature: 0 for a successful probe, 1 to go on. */
    const check = (supported: number, size: number): number => {
      if (f.flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET) & ~supported)
        fail('EINVAL', 'operation not supported by this feature');
      if (f.flags & VFIO_DEVICE_FEATURE_PROBE) return 0;
      if (!(f.flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET))) fail('EINVAL', 'GET or SET is required');
      if (argsz < size) fail('EINVAL', `the feature needs ${size} bytes of data`);
      return 1;
    };
    switch (f.flags & VFIO_DEVICE_FEATURE_MASK) {
      case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY:
        if (check(VFIO_DEVICE_FEATURE_SET, 0) !== 1) return 0;
        this.runtimePmEntry(undefined);
        return 0;
      case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP: {
        if (check(VFIO_DEVICE_FEATURE_SET, 8) !== 1) return 0;
        need(arg, minsz + 8);
        const fd = Buffer.from(arg.buffer, arg.byteOffset + minsz, 4).readInt32LE(0);
        if (fd < 0) fail('EINVAL', 'wakeup_eventfd is negative');
        const file = this.host.lookup(fd);
        if (!file) fail('EBADF', `fd ${fd} is not open`);
        if (file.kind !== 'eventfd') fail('EINVAL', `fd ${fd} is not an eventfd`);
        this.runtimePmEntry(file);
        return 0;
      }
      case VFIO_DEVICE_FEATURE_LOW_POWER_EXIT:
        if (check(VFIO_DEVICE_FEATURE_SET, 0) !== 1) return 0;
        this.runtimePmExit();
        return 0;
      case VFIO_DEVICE_FEATURE_PCI_VF_TOKEN: {
        // vfio_pci_core_feature_token: only a PF has one, and it can be set, never read back.
        const token = this.vfToken;
        if (!token) fail('ENOTTY', 'the VF token feature exists only on an SR-IOV PF');
        if (check(VFIO_DEVICE_FEATURE_SET, 16) !== 1) return 0;
        need(arg, minsz + 16);
        token.uuid = arg.slice(minsz, minsz + 16);
        return 0;
      }
      default: {
        const known = [
          VFIO_DEVICE_FEATURE_MIGRATION,
          VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
          VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
          VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
          VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
          VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
          VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2,
        ];
        const feature = f.flags & VFIO_DEVICE_FEATURE_MASK;
        fail(
          'ENOTTY',
          known.includes(feature)
            ? 'the device has no migration or dirty-logging support'
            : `feature ${feature} is not supported by vfio-pci for this device`,
        );
      }
    }
  }

  /** vfio_pci_runtime_pm_entry: BAR mappings fault (SIGBUS) until LOW_POWER_EXIT. */
  private runtimePmEntry(wake: object | undefined): void {
    if (this.pmRuntimeEngaged) fail('EINVAL', 'the device is already in low power');
    this.pmRuntimeEngaged = true;
    this.pmWakeEventfd = wake;
  }

  /** __vfio_pci_runtime_pm_exit. */
  private runtimePmExit(): void {
    this.pmRuntimeEngaged = false;
    this.pmWakeEventfd = undefined;
  }

  // ---- region read/write (vfio_pci_rw) ----

  rw(buf: Uint8Array, offset: bigint, iswrite: boolean): number {
    if (buf.length === 0) return 0;
    const index = Number(offset >> VFIO_PCI_OFFSET_SHIFT);
    const pos = offset & VFIO_PCI_OFFSET_MASK;
    if (index >= VFIO_PCI_NUM_REGIONS) fail('EINVAL', `region index ${index} does not exist`);
    const { cfg } = this.open;
    if (index === VFIO_PCI_CONFIG_REGION_INDEX) return cfg.rw(buf, Number(pos > 0xffffn ? 0xffffn : pos), iswrite);
    if (index === VFIO_PCI_ROM_REGION_INDEX) {
      fail('EINVAL', iswrite ? 'the ROM region is read-only' : 'the device has no ROM');
    }
    if (index === VFIO_PCI_VGA_REGION_INDEX) fail('EINVAL', 'the device has no VGA region');
    return this.barRw(index, buf, pos, iswrite, cfg);
  }

  /** vfio_pci_bar_rw + vfio_pci_core_do_io_rw: split into the widest naturally aligned accesses. */
  private barRw(bar: number, buf: Uint8Array, pos: bigint, iswrite: boolean, cfg: VfioPciConfig): number {
    const b = this.device.bars[bar];
    if (!b || !this.resourceStart[bar]) fail('EINVAL', `BAR ${bar} is absent (the device does not decode it)`);
    if (pos >= b.size) fail('EINVAL', `offset 0x${pos.toString(16)} is beyond BAR ${bar}`);
    const count = Number(b.size - pos < BigInt(buf.length) ? b.size - pos : BigInt(buf.length));
    const testMem = b.space === 'memory';
    const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    let done = 0;
    let off = pos;
    while (done < count) {
      const fillable = count - done;
      let n: 1 | 2 | 4 | 8;
      if (fillable >= 8 && off % 8n === 0n) n = 8;
      else if (fillable >= 4 && off % 4n === 0n) n = 4;
      else if (fillable >= 2 && off % 2n === 0n) n = 2;
      else n = 1;
      if (testMem && !cfg.memoryEnabled) {
        fail('EIO', 'memory decoding is disabled in the command register');
      }
      const width = (n * 8) as AccessWidth;
      if (iswrite) {
        const v = n === 8 ? view.readBigUInt64LE(done) : BigInt(view.readUIntLE(done, n));
        if (this.decodes(bar)) this.device.mmioWrite(bar, off, width, v);
      } else {
        const v = this.decodes(bar) ? this.device.mmioRead(bar, off, width) : 0n;
        if (n === 8) view.writeBigUInt64LE(v, done);
        else view.writeUIntLE(Number(v), done, n);
      }
      done += n;
      off += BigInt(n);
    }
    return done;
  }

  // ---- mmap (vfio_pci_core_mmap) ----

  mmap(length: bigint, flags: number, offset: bigint): MmapBacking {
    const page = BigInt(this.host.pageSize);
    const index = Number(offset >> VFIO_PCI_OFFSET_SHIFT);
    const bad = (context: string) => new KernelError('EINVAL', context);
    if (offset % page !== 0n) throw bad('offset is not page aligned');
    if (index >= VFIO_PCI_NUM_REGIONS) throw bad(`region index ${index} does not exist`);
    if (!(flags & MAP_SHARED)) throw bad('BARs can only be mapped MAP_SHARED');
    if (index >= VFIO_PCI_ROM_REGION_INDEX) throw bad(`region ${index} cannot be mapped`);
    if (!this.barMmapSupported[index]) throw bad(`BAR ${index} cannot be mapped`);
    const b = this.device.bars[index]!;
    const physLen = ((b.size + page - 1n) / page) * page;
    const start = offset & VFIO_PCI_OFFSET_MASK;
    if (start + length > physLen) throw bad('the mapping extends beyond the BAR');
    const device = this.device;
    const faultable = () => !!this.cfg && this.cfg.memoryEnabled && !this.pmRuntimeEngaged;
    const access = () => {
      // vfio_pci_mmap_page_fault: with memory decoding off the access raises SIGBUS.
      if (!faultable()) {
        fail('EFAULT', 'SIGBUS: BAR access with memory decoding disabled, the device in low power, or closed');
      }
    };
    // vma_to_pfn: pci_resource_start of the BAR (what enumeration assigned), plus the offset.
    const physAddress = (this.resourceStart[index] ?? device.barAddress(index)) + start;
    const decodes = () => this.decodes(index);
    return {
      kind: 'mmio',
      physAddress,
      faultable,
      read(off: number, width: 8 | 16 | 32 | 64): bigint {
        access();
        return decodes() ? device.mmioRead(index, start + BigInt(off), width) : 0n;
      },
      write(off: number, width: 8 | 16 | 32 | 64, value: bigint): void {
        access();
        if (decodes()) device.mmioWrite(index, start + BigInt(off), width, value);
      },
    };
  }

  /**
   * Whether an access to the BAR's resource reaches the function: its decode enable is on and the
   * BAR register still holds the resource. Otherwise nothing claims the address, and on q35 a read
   * of it returns 0 (seen in the lab after a fatal AER error's bus reset) and a write goes nowhere.
   */
  private decodes(bar: number): boolean {
    const b = this.device.bars[bar];
    if (!b) return false;
    const cmd = this.readCommand();
    const enabled = b.space === 'io' ? cmd & PCI_COMMAND_IO : cmd & PCI_COMMAND_MEMORY;
    const start = this.resourceStart[bar];
    return enabled !== 0 && (start === undefined || this.device.barAddress(bar) === start);
  }

  // ---- helpers: the PCI core operations vfio-pci calls ----

  private readCommand(): number {
    return this.config.read(PCI_COMMAND, 2);
  }
  private writeCommand(v: number): void {
    this.config.write(PCI_COMMAND, 2, v);
  }

  /** pci_enable_device: turn on decoding for the BAR types present. */
  private pciEnableDevice(): void {
    let cmd = this.readCommand();
    for (const b of this.device.bars) {
      if (!b) continue;
      cmd |= b.space === 'io' ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
    }
    this.writeCommand(cmd);
  }

  /** pci_intx_mask_supported: does INTx disable stick? */
  private intxMaskSupported(): boolean {
    const orig = this.readCommand();
    this.writeCommand(orig ^ PCI_COMMAND_INTX_DISABLE);
    const changed = ((this.readCommand() ^ orig) & PCI_COMMAND_INTX_DISABLE) !== 0;
    this.writeCommand(orig);
    return changed;
  }

  private saveState(): Uint8Array {
    return saveState(this.slot);
  }

  /** pci_try_reset_function: save, reset, restore. */
  private functionReset(): void {
    const saved = this.saveState();
    this.writeCommand(PCI_COMMAND_INTX_DISABLE);
    this.resetLocked();
    this.restoreState(saved);
    this.irqs?.restoreAfterReset();
  }

  private restoreState(saved: Uint8Array): void {
    restoreState(this.slot, saved);
    restoreIovState(this.slot, saved);
  }
}

/** pci_save_state: the standard header and capability registers. */
function saveState(slot: PciSlot): Uint8Array {
  const config = slot.device.config;
  const c = new Uint8Array(config.size);
  for (let i = 0; i < config.size; i += 4) new DataView(c.buffer).setUint32(i, config.read(i, 4), true);
  return c;
}

/** pci_restore_state: rewrite header dwords that changed (BARs and command last first, like the kernel). */
function restoreState(slot: PciSlot, saved: Uint8Array): void {
  const config = slot.device.config;
  const dv = new DataView(saved.buffer);
  const order = [10, 11, 12, 13, 14, 15, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3].reverse();
  for (const i of order) {
    if (i * 4 >= PCI_STD_HEADER_SIZEOF) continue;
    const want = dv.getUint32(i * 4, true);
    if (config.read(i * 4, 4) !== want) config.write(i * 4, 4, want);
  }
}

function struct(arg: Uint8Array | number | null): Uint8Array {
  if (!(arg instanceof Uint8Array)) fail('EFAULT', 'the argument must point to a struct');
  return arg;
}

/** copy_from_user of `n` bytes: a shorter user buffer is a fault. */
function need(arg: Uint8Array, n: number): void {
  if (arg.length < n) fail('EFAULT', `the kernel reads ${n} bytes, the buffer has ${arg.length}`);
}

/** copy_to_user of the first `n` bytes: EFAULT when the caller's buffer is shorter (argsz lied). */
function writeBack(arg: Uint8Array, data: Uint8Array, n: number): void {
  const count = Math.min(n, data.length);
  if (arg.length < count) fail('EFAULT', `the kernel writes ${count} bytes, the buffer has ${arg.length}`);
  arg.set(data.subarray(0, count), 0);
}

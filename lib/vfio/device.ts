/**
 * A VFIO device: regions (BARs, config space), interrupts, reset. Opened through its cdev and
 * bound to an iommufd (`VfioDevice.open`), or through a legacy group (lib/vfio/group.ts, chosen by
 * `openDevice`). Closing it closes its BAR mappings and interrupt vectors first.
 */
import { checkVfToken, vfTokenBytes, vfTokenHint } from './vf-token';
import type { Kernel } from '../sys/kernel';
import { O_CLOEXEC, O_RDWR } from '../sys/constants';
import { VfioError, isVfioError } from '../sys/errors';
import * as V from '../uapi/vfio';
import { FileDescriptor, Resource } from '../support/resource';
import * as io from '../ioctl/device-ioctls';
import type { DependentDevice, DeviceInfo, HotResetInfo } from '../ioctl/device-ioctls';
import { isPinningFailure, memlockHint } from '../support/hints';
import { Region, type RegionOwner } from './region';
import { ConfigSpace } from './config-space';
import { Irqs, type IrqOwner } from './irq';
import type { Mmio } from './mmio';
import { Iommufd } from '../iommu/iommufd';
import type { BoundDevice } from '../iommu/iommufd-handle';
import { Ioas } from '../iommu/ioas';
import { Hwpt } from '../iommu/hwpt';
import { PciDevice, isBdf, normalizeBdf } from '../pci/pci-device';
import type { DmaSpace } from '../dma/dma-space';
import { DmaBuffer, type DmaAllocateOptions } from '../dma/buffer';
import { checkInteger } from '../support/arguments';
import { expectFd } from './fd-identity';

/**
 * How the device was reached, and why that way.
 *
 * @category Devices
 */
export interface DeviceBackend {
  /** 'cdev': /dev/vfio/devices + iommufd; 'group': legacy /dev/vfio group + container. */
  readonly kind: 'cdev' | 'group';
  /** No IOMMU: the device DMAs to physical addresses. */
  readonly noiommu: boolean;
  /** Why this path was taken, in words (what exists, what is missing). */
  readonly reason: string;
}

/**
 * Options of `VfioDevice.open`.
 *
 * @category Devices
 */
export interface VfioDeviceOpenOptions {
  /** The iommufd to bind to; it owns the device from then on (closing it closes the device). */
  readonly iommufd: Iommufd;
  /** Attach to this IOAS or HWPT; default: a new IOAS of the iommufd; false: stay unattached. */
  readonly attach?: Ioas | Hwpt | false;
  /**
   * The device takes ownership of the iommufd instead of the other way round: the device holds
   * the iommufd open, and closing the device closes the iommufd too, unless someone still holds
   * it (what openDevice does with the iommufd it opens).
   */
  readonly ownIommufd?: boolean;
  /** Why this path was chosen, for `backend.reason`. */
  readonly reason?: string;
  /**
   * The SR-IOV VF token (a UUID string) to bind with: required for a VF whose PF is bound to
   * vfio-pci and for such a PF while its VFs are open; for a PF without open VFs it sets the token.
   */
  readonly vfToken?: string;
}

/**
 * Options of `VfioDevice.adopt`: how the given fd reaches DMA.
 *
 * @category Devices
 */
export type VfioDeviceAdoptOptions = {
  /** The PCI address, when the sender said (for messages and PciDevice lookups). */
  readonly bdf?: string;
  /** Why the fd is adopted (e.g. 'received from the broker'), shown as `backend.reason`. */
  readonly reason?: string;
  /** Resources the device keeps open until it closes, e.g. the broker connection the fd came over. */
  readonly holds?: readonly Resource[];
} & (
  | {
      /** The iommufd to bind an unbound cdev to, or the one the sender bound it to. */
      readonly iommufd: Iommufd;
      /** The id the sender's VFIO_DEVICE_BIND_IOMMUFD answered (an already-bound cdev only). */
      readonly deviceId?: number;
      /** An IOAS or HWPT to attach to; default: a new IOAS for an unbound cdev, none for a bound one. */
      readonly attach?: Ioas | Hwpt | false;
      /** The device takes the iommufd over (closing the device closes it), as `openDevice` arranges. */
      readonly ownIommufd?: boolean;
    }
  | {
      /** The container a group's device maps DMA into. */
      readonly dmaSpace: DmaSpace & {
        /** The kernel the container lives on; the device fd is used through the same one. */
        readonly kernel: Kernel;
      };
      /** The group is a noiommu group (the sender knows; a group fd cannot say). Default false. */
      readonly noiommu?: boolean;
    }
);

/** @internal How a device came to be, for the constructor. */
export interface DeviceInit {
  readonly bdf: string | undefined;
  readonly backend: DeviceBackend;
  readonly iommufd?: Iommufd;
  readonly deviceId?: number;
  readonly dmaSpace?: DmaSpace;
  /** Resources the device holds open until it has closed (its iommufd, or its group and container). */
  readonly holds?: readonly Resource[];
}

/**
 * An open VFIO device. Get one with `openDevice(bdf)` (chooses the path) or
 * `VfioDevice.open(bdf, { iommufd })` (cdev + iommufd explicitly).
 */
/**
 * What a reset did.
 *
 * @category Devices
 */
export interface DeviceReset {
  /** 'function': VFIO_DEVICE_RESET of this function alone; 'bus': a hot reset of its bus or slot. */
  readonly kind: 'function' | 'bus';
  /**
   * The method the kernel used: the first of `methods` for a function reset ('flr', 'pm',
   * 'bus' when the function is alone on its bus, …; 'device-specific' when sysfs names none).
   */
  readonly method: string;
  /** The function's reset methods in the kernel's order (sysfs reset_method). */
  readonly methods: readonly string[];
  /** For a hot reset: every device it reset, this one included. */
  readonly affected?: readonly DependentDevice[];
}

export class VfioDevice extends Resource implements RegionOwner, IrqOwner, BoundDevice {
  /** PCI address, when known. */
  readonly bdf: string | undefined;
  /** How the device was reached, and why. */
  readonly backend: DeviceBackend;
  /** The iommufd the device is bound to (cdev path). */
  readonly iommufd: Iommufd | undefined;
  private readonly boundId: number | undefined;
  private readonly file: FileDescriptor;
  private legacySpace: DmaSpace | undefined;
  private attachedTo: Ioas | Hwpt | undefined;
  private cachedInfo: DeviceInfo | undefined;
  private readonly regionCache = new Map<number, Region>();
  private configSpace: ConfigSpace | undefined;
  private irqManager: Irqs | undefined;
  private closing = false;

  /** @internal Use VfioDevice.open or openDevice. */
  constructor(kernel: Kernel, file: FileDescriptor, init: DeviceInit) {
    super(kernel, `VFIO device ${init.bdf ?? file.path}`);
    this.file = file;
    this.bdf = init.bdf;
    this.backend = init.backend;
    this.iommufd = init.iommufd;
    this.boundId = init.deviceId;
    this.legacySpace = init.dmaSpace;
    this.armSafetyNet(() => file.close());
    for (const resource of init.holds ?? []) this.hold(resource);
  }

  /**
   * Opens a device through its cdev (a BDF, resolved through
   * /sys/bus/pci/devices/<bdf>/vfio-dev/, or a /dev/vfio/devices path), binds it to `iommufd` and
   * attaches it (by default to a new IOAS).
   */
  static open(device: string, options: VfioDeviceOpenOptions): VfioDevice {
    const { iommufd } = options;
    const kernel = iommufd.kernel;
    const { path, bdf } = resolveCdev(kernel, device);
    const noiommu = path.slice(path.lastIndexOf('/') + 1).startsWith('noiommu-');
    const token = options.vfToken === undefined ? undefined : vfTokenBytes(checkVfToken(options.vfToken, 'options.vfToken'));
    let fd: number;
    try {
      fd = kernel.open(path, O_RDWR | O_CLOEXEC);
    } catch (e) {
      throw VfioError.wrap(e, { context: `opening ${bdf ?? path}`, path });
    }
    const file = new FileDescriptor(kernel, fd, path);
    let deviceId: number;
    try {
      deviceId = io.deviceBindIommufd(kernel, fd, iommufd.fd, token);
    } catch (e) {
      file.close();
      const hint = vfTokenHint(e, token !== undefined);
      throw VfioError.wrap(e, { context: `binding ${bdf ?? path} to the iommufd`, path, ...(hint ? { hint } : {}) });
    }
    const created = new VfioDevice(kernel, file, {
      bdf,
      iommufd,
      deviceId,
      backend: { kind: 'cdev', noiommu, reason: options.reason ?? `opened the device cdev ${path} directly` },
      ...(options.ownIommufd ? { holds: [iommufd] } : {}),
    });
    // Owning the iommufd: the caller's claim on it passes to the device, which holds it open.
    if (options.ownIommufd) iommufd.close();
    const dev = options.ownIommufd ? created : iommufd.own(created);
    try {
      if (options.attach !== false) dev.attach(options.attach ?? iommufd.ioas());
    } catch (e) {
      dev.close();
      throw e;
    }
    return dev;
  }

  /**
   * Takes over a device fd this process was given (ERR_VFIO_WRONG_FD when it is no VFIO device):
   * - a device cdev not yet bound: bound to `iommufd` and attached as `open` does; whether it is
   *   a noiommu device is asked of the iommufd (IOMMU_GET_HW_INFO is EOPNOTSUPP for one);
   * - a cdev already bound by the sender: `iommufd` (adopted too) and the `deviceId` the bind
   *   answered, which only the binder learns;
   * - a device taken from a group: `dmaSpace`, the container it maps DMA into (and `noiommu`).
   * Opening a noiommu cdev needs CAP_SYS_RAWIO, which the sender had; what the adopting process
   * still needs for DMA is stated in docs/privileges.md.
   */
  static adopt(fd: number, options: VfioDeviceAdoptOptions): VfioDevice {
    const kernel = 'iommufd' in options ? options.iommufd.kernel : options.dmaSpace.kernel;
    const id = expectFd(kernel, fd, ['vfio-device', 'vfio-cdev-unbound'], 'a VFIO device');
    const bdf = options.bdf === undefined ? undefined : normalizeBdf(options.bdf);
    const file = new FileDescriptor(kernel, fd, id.path);
    if (!('iommufd' in options)) {
      if (id.kind !== 'vfio-device') {
        throw VfioError.condition('ERR_VFIO_WRONG_FD', {
          check: `fd ${fd} is a device cdev not bound to an iommufd; a container cannot reach it`,
          hint: 'pass { iommufd } to bind it',
        });
      }
      return new VfioDevice(kernel, file, {
        bdf,
        dmaSpace: options.dmaSpace,
        holds: [...(options.dmaSpace instanceof Resource ? [options.dmaSpace] : []), ...(options.holds ?? [])],
        backend: {
          kind: 'group',
          noiommu: options.noiommu ?? false,
          reason: options.reason ?? `adopted device fd ${fd} (${id.path}) from a group`,
        },
      });
    }
    const { iommufd } = options;
    let deviceId: number;
    if (id.kind === 'vfio-cdev-unbound') {
      if (options.deviceId !== undefined)
        throw VfioError.condition('ERR_VFIO_WRONG_FD', { check: `fd ${fd} is not bound to an iommufd, yet a deviceId was given` });
      try {
        deviceId = io.deviceBindIommufd(kernel, fd, iommufd.fd);
      } catch (e) {
        // Past the fd check the device fd is the adopter's: a refused bind (a VF without its
        // token: EACCES) must not leave it open.
        file.close();
        throw VfioError.wrap(e, {
          context: `binding adopted device fd ${fd} to the iommufd`,
          path: id.path,
          ...(vfTokenHint(e, false) ? { hint: vfTokenHint(e, false)! } : {}),
        });
      }
    } else {
      if (options.deviceId === undefined) {
        throw new TypeError(`deviceId: fd ${fd} is already bound to an iommufd; pass the id VFIO_DEVICE_BIND_IOMMUFD answered the sender`);
      }
      deviceId = checkInteger(options.deviceId, 'VfioDevice.adopt', 'deviceId', 1, 0xffff_ffff);
    }
    let noiommu: boolean;
    try {
      iommufd.hwInfo({ deviceId });
      noiommu = false;
    } catch (e) {
      if (isVfioError(e, 'EOPNOTSUPP')) noiommu = true;
      else {
        if (id.kind === 'vfio-cdev-unbound') file.close();
        throw VfioError.wrap(e, {
          context: `asking the iommufd about device ${deviceId} of adopted fd ${fd}`,
          hint: 'is deviceId the one the sender bound, in this iommufd?',
        });
      }
    }
    const created = new VfioDevice(kernel, file, {
      bdf,
      iommufd,
      deviceId,
      backend: { kind: 'cdev', noiommu, reason: options.reason ?? `adopted device fd ${fd} (${id.path})` },
      holds: [...(options.ownIommufd ? [iommufd] : []), ...(options.holds ?? [])],
    });
    // Owning the iommufd: the caller's claim on it passes to the device, which holds it open.
    if (options.ownIommufd) iommufd.close();
    const dev = options.ownIommufd ? created : iommufd.own(created);
    try {
      if (options.attach !== undefined && options.attach !== false) dev.attach(options.attach);
      else if (options.attach === undefined && id.kind === 'vfio-cdev-unbound') dev.attach(iommufd.ioas());
    } catch (e) {
      dev.close();
      throw e;
    }
    return dev;
  }

  /** The device's id in its iommufd (cdev path only). */
  get deviceId(): number {
    this.assertOpen('VfioDevice.deviceId');
    if (this.boundId === undefined) throw new TypeError(`${this.description} was opened through a group and has no iommufd device id`);
    return this.boundId;
  }

  /** The device fd. */
  get fd(): number {
    return this.liveFd('VfioDevice.fd');
  }

  /** @internal The fd, after checking the device is open. */
  liveFd(operation: string): number {
    this.assertOpen(operation);
    return this.file.fd;
  }

  /** @internal */
  get tearingDown(): boolean {
    return this.closing;
  }

  /** The IOAS the device is attached to (directly or through a HWPT). */
  get ioas(): Ioas | undefined {
    const t = this.attachedTo;
    return t instanceof Ioas ? t : t?.parent instanceof Ioas ? t.parent : undefined;
  }

  /** Attaches (or re-attaches, replacing) the device to an IOAS or HWPT. Returns the id attached. */
  attach(target: Ioas | Hwpt): number {
    const fd = this.liveFd('VfioDevice.attach');
    let id: number;
    try {
      id = io.deviceAttachIommufdPt(this.kernel, fd, target.id);
    } catch (e) {
      // Attaching the first device pins everything already mapped in the IOAS.
      const ioas = target instanceof Ioas ? target : target.parent instanceof Ioas ? target.parent : undefined;
      throw VfioError.wrap(e, {
        context: `attaching ${this.description}`,
        ...(ioas && isPinningFailure(e) ? { hint: memlockHint(this.kernel, ioas.mappedBytes()) } : {}),
      });
    }
    this.ioas?.noteAttached(this.deviceId, null);
    this.attachedTo = target;
    this.ioas?.noteAttached(this.deviceId, this.backend.noiommu ? 'physical' : 'iova');
    return id;
  }

  /** Detaches from the current IOAS/HWPT. */
  detach(): void {
    const fd = this.liveFd('VfioDevice.detach');
    io.deviceDetachIommufdPt(this.kernel, fd);
    this.ioas?.noteAttached(this.deviceId, null);
    this.attachedTo = undefined;
  }

  /** Where DMA buffers for this device are mapped: its IOAS, or the legacy container. */
  get dmaSpace(): DmaSpace {
    this.assertOpen('VfioDevice.dmaSpace');
    const space = this.ioas ?? this.legacySpace;
    if (!space) {
      throw VfioError.condition('ERR_VFIO_NOT_ATTACHED', {
        check: `${this.description} is not attached to an IOAS`,
        hint: 'attach it first: device.attach(iommufd.ioas())',
      });
    }
    return space;
  }

  /** Allocates a DMA buffer mapped for this device (see DmaBuffer.allocate). */
  allocateDma(size: bigint | number, options: Omit<DmaAllocateOptions, 'space'> = {}): DmaBuffer {
    return DmaBuffer.allocate(size, { ...options, space: this.dmaSpace });
  }

  /**
   * `allocateDma` that also works where the physical addresses come from a broker (a device
   * opened with `{ broker }` on a noiommu host); the same buffer as allocateDma elsewhere.
   */
  allocateDmaAsync(size: bigint | number, options: Omit<DmaAllocateOptions, 'space'> = {}): Promise<DmaBuffer> {
    return DmaBuffer.allocateAsync(size, { ...options, space: this.dmaSpace });
  }

  /** VFIO_DEVICE_GET_INFO (cached: it does not change while the device is open). */
  get info(): DeviceInfo {
    const fd = this.liveFd('VfioDevice.info');
    this.cachedInfo ??= io.deviceGetInfo(this.kernel, fd);
    return this.cachedInfo;
  }

  /** Whether VFIO_DEVICE_RESET is available. */
  get canReset(): boolean {
    return (this.info.flags & V.VFIO_DEVICE_FLAGS_RESET) !== 0;
  }

  /** A region by index (0-5 BARs, 6 ROM, 7 config, 8 VGA, then device-specific). */
  region(index: number): Region {
    checkInteger(index, 'VfioDevice.region', 'index', 0, 0xffff_ffff);
    const fd = this.liveFd('VfioDevice.region');
    let r = this.regionCache.get(index);
    if (!r) {
      r = new Region(this, io.deviceGetRegionInfo(this.kernel, fd, index));
      this.regionCache.set(index, r);
    }
    return r;
  }

  /**
   * All regions the device has, including empty ones (size 0: unimplemented BARs). Indexes the
   * kernel refuses with EINVAL (the VGA region of a non-VGA device) are left out.
   */
  get regions(): Region[] {
    const regions: Region[] = [];
    for (let i = 0; i < this.info.numRegions; i++) {
      try {
        regions.push(this.region(i));
      } catch (e) {
        if (!isVfioError(e, 'EINVAL')) throw e;
      }
    }
    return regions;
  }

  /** BAR `n` (0-5). */
  bar(n: number): Region {
    if (!Number.isInteger(n) || n < 0 || n > 5) throw new RangeError(`BAR index must be 0..5, got ${n}`);
    return this.region(V.VFIO_PCI_BAR0_REGION_INDEX + n);
  }

  /** Typed PCI configuration space. */
  get config(): ConfigSpace {
    this.assertOpen('VfioDevice.config');
    this.configSpace ??= new ConfigSpace(this.region(V.VFIO_PCI_CONFIG_REGION_INDEX));
    return this.configSpace;
  }

  /** Interrupts (INTx, MSI, MSI-X) as eventfd-backed vectors. */
  get irqs(): Irqs {
    this.assertOpen('VfioDevice.irqs');
    this.irqManager ??= new Irqs(this);
    return this.irqManager;
  }

  /**
   * The reset methods the PCI core has for this function, in the order it tries them (sysfs
   * `reset_method`: 'flr', 'pm', 'bus', …); empty when it has none or the address is unknown.
   */
  get resetMethods(): readonly string[] {
    this.liveFd('VfioDevice.resetMethods');
    if (this.bdf === undefined) return [];
    try {
      return this.kernel.readFile(`/sys/bus/pci/devices/${this.bdf}/reset_method`).toString().trim().split(/\s+/).filter(Boolean);
    } catch {
      // No attribute: the kernel found no way to reset the function on its own.
      return [];
    }
  }

  /**
   * Sets the SR-IOV VF token of this PF (VFIO_DEVICE_FEATURE_PCI_VF_TOKEN): its VFs then open
   * only with `token`. The kernel has no way to read a token back.
   */
  setVfToken(token: string): void {
    const bytes = vfTokenBytes(checkVfToken(token, 'token'));
    const fd = this.liveFd('VfioDevice.setVfToken');
    try {
      io.deviceSetVfToken(this.kernel, fd, bytes);
    } catch (e) {
      const notPf = e instanceof VfioError && e.code === 'ENOTTY';
      throw VfioError.wrap(e, {
        context: `setting the VF token of ${this.description}`,
        ...(notPf ? { hint: 'only an SR-IOV PF bound to vfio-pci has a VF token (and kernels before 5.7 lack the feature)' } : {}),
      });
    }
  }

  /**
   * Function-level (or device-specific) reset: VFIO_DEVICE_RESET. Returns the method the kernel
   * uses for it — the first of `resetMethods` — so a driver knows whether it got an FLR, a PM
   * D3hot/D0 cycle or a reset of the function's whole bus.
   */
  reset(): DeviceReset {
    const fd = this.liveFd('VfioDevice.reset');
    const methods = this.resetMethods;
    try {
      io.deviceReset(this.kernel, fd);
    } catch (e) {
      throw VfioError.wrap(e, {
        context: `resetting ${this.description}`,
        ...(!this.canReset
          ? { hint: 'the device reports no reset method (VFIO_DEVICE_FLAGS_RESET clear); a bus reset (hotReset) may work' }
          : {}),
      });
    }
    return { kind: 'function', method: methods[0] ?? 'device-specific', methods };
  }

  /** The devices a bus/slot reset would also reset. */
  hotResetInfo(): HotResetInfo {
    try {
      return io.deviceGetPciHotResetInfo(this.kernel, this.liveFd('VfioDevice.hotResetInfo'));
    } catch (e) {
      throw VfioError.wrap(
        e,
        isVfioError(e, 'ENODEV')
          ? { hint: 'neither the slot nor the bus of this device can be reset (e.g. a device on the root bus)' }
          : {},
      );
    }
  }

  /**
   * Bus/slot reset (VFIO_DEVICE_PCI_HOT_RESET). On the cdev path the empty fd array says "every
   * affected device is bound to my iommufd"; on the group path pass the fds of all affected groups.
   * Returns the devices the reset affected, as VFIO_DEVICE_GET_PCI_HOT_RESET_INFO named them.
   */
  hotReset(groupFds: readonly number[] = []): DeviceReset {
    const fd = this.liveFd('VfioDevice.hotReset');
    // Asked before the reset, which needs the same answer to be possible; if the question fails
    // the reset's own error is the one worth reporting.
    let affected: readonly DependentDevice[] | undefined;
    try {
      affected = io.deviceGetPciHotResetInfo(this.kernel, fd).devices;
    } catch {
      affected = undefined;
    }
    io.devicePciHotReset(this.kernel, fd, groupFds);
    return { kind: 'bus', method: 'bus', methods: this.resetMethods, ...(affected ? { affected } : {}) };
  }

  /** @internal RegionOwner */
  ownMmio(mmio: Mmio): Mmio {
    return this.adopt(mmio);
  }

  /** @internal IrqOwner */
  ownVector<T extends Resource>(vector: T): T {
    return this.adopt(vector);
  }

  override close(): void {
    if (this.closed) return;
    this.closing = true;
    this.irqManager?.forget();
    try {
      super.close();
    } finally {
      this.closing = false;
    }
  }

  protected release(): void {
    const ioas = this.ioas;
    try {
      this.file.close();
    } finally {
      if (ioas && this.boundId !== undefined) ioas.noteAttached(this.boundId, null);
      this.attachedTo = undefined;
    }
  }
}

/** Resolves a BDF or cdev path to the cdev path (and the BDF when known). */
function resolveCdev(kernel: Kernel, device: string): { path: string; bdf: string | undefined } {
  if (device.startsWith('/')) {
    const name = device.slice(device.lastIndexOf('/') + 1);
    const link = `/sys/class/vfio-dev/${name}/device`;
    let bdf: string | undefined;
    if (kernel.exists(link)) {
      const target = kernel.readlink(link);
      const last = target.slice(target.lastIndexOf('/') + 1);
      if (isBdf(last)) bdf = normalizeBdf(last);
    }
    return { path: device, bdf };
  }
  const pci = PciDevice.get(device, { kernel });
  const path = pci.cdevPath();
  if (path === null) {
    const driver = pci.driver;
    throw VfioError.condition('ERR_VFIO_NO_CDEV', {
      check: `${pci.path}/vfio-dev names no VFIO device cdev of ${pci.bdf}`,
      hint:
        driver !== 'vfio-pci'
          ? `the device is bound to ${driver ?? 'no driver'}, not vfio-pci: PciDevice.get('${pci.bdf}').bindVfio()`
          : 'the kernel has no device cdev for it (needs CONFIG_VFIO_DEVICE_CDEV; for a device without an IOMMU, Linux 7.3+ with noiommu mode on); openDevice() falls back to the group path',
    });
  }
  return { path, bdf: pci.bdf };
}

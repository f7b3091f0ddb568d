/**
 * What machine and kernel the model simulates. A profile fixes everything a driver could observe
 * from the host: kernel version and build options, whether noiommu mode is on, whether an IOMMU
 * translates DMA (and what it reserves), the process's credentials and RLIMIT_MEMLOCK, and the
 * physical memory (size, page size, how fragmented free frames are, huge page pools).
 *
 * Named presets describe the machines the project cares about; `resolveProfile` accepts a preset
 * name, a full profile, or a preset plus overrides (`{ ...profiles['linux-7.3-noiommu'], ... }`).
 */
import type { Capabilities } from '../sys/kernel';
import type { DeviceModel } from './device';

/**
 * A kernel release the model knows how to behave like.
 *
 * @category Model
 */
export interface KernelVersion {
  /** Major version, e.g. 7 for 7.3; what version-dependent behaviour is decided on. */
  readonly major: number;
  /** Minor version, e.g. 3 for 7.3. */
  readonly minor: number;
  /** As `uname -r` prints it. */
  readonly release: string;
}

/**
 * Kconfig switches that change what user space sees. Names follow the kernel's CONFIG_ names
 * without the prefix.
 *
 * @category Model
 */
export interface KernelConfig {
  /** /dev/iommu exists. */
  readonly IOMMUFD: boolean;
  /** The vfio noiommu mode can be enabled at all (CONFIG_VFIO_NOIOMMU). */
  readonly VFIO_NOIOMMU: boolean;
  /** The legacy VFIO container (/dev/vfio/vfio provided by vfio itself). */
  readonly VFIO_CONTAINER: boolean;
  /** /dev/vfio/vfio provided by iommufd instead (IOMMUFD_VFIO_CONTAINER). */
  readonly IOMMUFD_VFIO_CONTAINER: boolean;
  /** The VFIO group interface (/dev/vfio/N). */
  readonly VFIO_GROUP: boolean;
  /** Per-device cdevs (/dev/vfio/devices/vfioN). */
  readonly VFIO_DEVICE_CDEV: boolean;
  /** INTx support in vfio-pci (VFIO_PCI_INTX). */
  readonly VFIO_PCI_INTX: boolean;
  /** Transparent huge pages: raises the IOVA alignment iommufd picks to 2 MiB (HPAGE_SIZE). */
  readonly TRANSPARENT_HUGEPAGE: boolean;
  /**
   * SR-IOV (PCI_IOV, default off): PFs get sriov_* attributes and can create VFs, and every
   * function's `resource` lists the six IOV resources after the ROM (13 lines instead of 7).
   */
  readonly PCI_IOV?: boolean;
  /**
   * PCIe AER (PCIEAER, default off): functions with an AER capability get error counters in sysfs
   * and reporting enabled, root ports run error recovery (vfio-pci signals ERR).
   */
  readonly PCIEAER?: boolean;
  /** /dev/aer_inject (PCIEAER_INJECT, needs PCIEAER). */
  readonly PCIEAER_INJECT?: boolean;
}

/**
 * An IOVA range an IOMMU driver reserves for every device behind it (iommu_get_resv_regions).
 *
 * @category Model
 */
export interface ReservedIovaRegion {
  /** First IOVA of the region. */
  readonly start: bigint;
  /** Last IOVA of the region (inclusive, as the kernel reports it). */
  readonly last: bigint;
  /** 'msi': the interrupt window; 'direct': an RMRR-like identity range. */
  readonly kind: 'msi' | 'direct';
}

/**
 * The IOMMU hardware that translates DMA of the devices behind it.
 *
 * @category Model
 */
export interface IommuUnit {
  /** Only Intel VT-d is modelled (what QEMU's intel-iommu presents). */
  readonly type: 'intel-vtd';
  /** Input address width of the second-stage table: the domain aperture is [0, 2^width - 1]. */
  readonly addressWidth: number;
  /** Reserved regions reported for every device (VT-d: the IOAPIC/MSI window 0xfee00000-0xfeefffff). */
  readonly reservedRegions: readonly ReservedIovaRegion[];
  /** VT-d capability and extended capability registers, as IOMMU_GET_HW_INFO reports them. */
  readonly capReg: bigint;
  /** VT-d Extended Capability register (ECAP_REG). */
  readonly ecapReg: bigint;
}

/**
 * The process the driver runs as.
 *
 * @category Model
 */
export interface ProcessCredentials {
  /** Effective user id: 0 is root; others need `deviceNodeAccess` to open the VFIO nodes. */
  readonly uid: number;
  /** Effective group id, as SO_PEERCRED reports it; the uid when absent. */
  readonly gid?: number;
  /** The capabilities of the Kernel interface plus CAP_SYS_RESOURCE (IOMMU_OPTION_RLIMIT_MODE). */
  readonly capabilities: Capabilities & {
    /** CAP_SYS_RESOURCE: needed to change iommufd's RLIMIT accounting mode. */
    readonly sysResource: boolean;
  };
  /** RLIMIT_MEMLOCK in bytes; 2^64-1 is RLIM_INFINITY. */
  readonly memlockLimit: bigint;
  /** RLIMIT_NOFILE (the soft limit): fds are numbered below it; 1024, a shell's, when absent. */
  readonly openFilesLimit?: number;
  /**
   * Device nodes (/dev/iommu, /dev/vfio/...) were handed to this user (a udev rule or chown), so
   * a non-root process can open them; without it they are root-only.
   */
  readonly deviceNodeAccess: boolean;
}

/**
 * The simulated machine's RAM: page size, amount, how fragmented, and its huge page pools.
 *
 * @category Model
 */
export interface MemoryConfig {
  /** Base page size in bytes (4096 on x86-64). */
  readonly pageSize: number;
  /** Installed RAM in bytes. */
  readonly size: bigint;
  /**
   * 0..1: how scattered free 4 KiB frames are. 0 hands out long physically contiguous runs, 1 hands
   * out every page from a different place. Huge pages are always contiguous.
   */
  readonly fragmentation: number;
  /** Seed of the deterministic PRNG behind fragmentation and address-space randomisation. */
  readonly seed: number;
  /** Persistent huge page pools reserved at boot (nr_hugepages per size). */
  readonly hugepages: {
    /** 2 MiB pages reserved (a DmaBuffer allocated with hugePage: '2M' draws from them). */
    readonly '2M': number;
    /** 1 GiB pages reserved. */
    readonly '1G': number;
  };
}

/**
 * A PCI function of the simulated machine. The VFIO/device side of the model reads these; the
 * fields beyond `address` and `device` belong to that side.
 *
 * @category Model
 */
export interface PciDeviceSpec {
  /** Domain:bus:device.function, e.g. '0000:00:03.0'. */
  readonly address: string;
  /** A built-in device model by name, e.g. 'edu', or a DeviceModel written on the SDK. */
  readonly device: string | DeviceModel;
  /** The driver it is bound to at boot ('vfio-pci', or null for none). */
  readonly driver?: string | null;
  /** Options for the built-in model or the VFIO side, e.g. `{ iommuGroup: 5 }`. */
  readonly options?: Readonly<Record<string, unknown>>;
}

/**
 * A network interface the host has on a NIC function (what the NIC driver registers when it
 * probes the function, with the name udev gave it and whether the host brought it up).
 *
 * @category Model
 */
export interface HostInterfaceSpec {
  /** The PCI function, which the profile binds to a NIC driver (`e1000e`) at boot. */
  readonly function: string;
  /** The interface name as the host shows it (udev's `enp0s2`, or the kernel's `eth0`). */
  readonly name: string;
  /** The host brought it up at boot (IFF_UP, operstate `up`); down otherwise. */
  readonly up: boolean;
  /** The MAC address (`52:54:00:12:34:56`, QEMU's first default, when absent). */
  readonly address?: string;
}

/**
 * A disk the host sees on a storage function: an NVMe namespace (the function bound to `nvme`)
 * or a SATA disk on an AHCI port (bound to `ahci`). The kernel names it: `nvme<C>n<N>` after the
 * controller's instance (functions bound to nvme count from 0 in probe order) and the namespace
 * (the disk's position among the function's disks, from 1); `sd<letter>` for SCSI disks in probe
 * order. Partitions are `nvme0n1p1`, `sda1`, ….
 *
 * @category Model
 */
export interface HostDiskSpec {
  /** The PCI function, which the profile binds to `nvme` or `ahci` at boot. */
  readonly function: string;
  /** Capacity in 512-byte sectors (default 131072: the lab's 64 MiB image). */
  readonly sectors?: bigint;
  /** Partitions the kernel's partition scan finds, equal in size, from sector 2048 (default 0). */
  readonly partitions?: number;
}

/**
 * A mounted file system, one line of /proc/mounts.
 *
 * @category Model
 */
export interface HostMountSpec {
  /** What was mounted (`/dev/nvme0n1p1`, `proc`, a 9p tag). */
  readonly source: string;
  /** The mount point. */
  readonly target: string;
  /** The file system type (`ext4`, `proc`). */
  readonly fstype: string;
  /** The options as /proc/mounts prints them (default `rw,relatime`). */
  readonly options?: string;
}

/**
 * What the host itself uses on the simulated machine, as `vfio status` and dpdk-devbind look for
 * it: network interfaces of functions bound to a NIC driver, disks of functions bound to a
 * storage driver, and mounted file systems. The host drivers these need (e1000e, nvme, ahci)
 * exist in the model kernel when some function of the profile is bound to them at boot, as on a
 * kernel that has them built in; the lab kernel has none of them.
 *
 * @example
 * ```ts
 * const kernel = createModelKernel({
 *   ...profiles['linux-7.3-iommu'],
 *   pci: [...profiles['linux-7.3-iommu'].pci, { address: '0000:00:04.0', device: 'nvme', driver: 'nvme' }],
 *   host: {
 *     disks: [{ function: '0000:00:04.0', partitions: 1 }],
 *     mounts: [{ source: '/dev/nvme0n1p1', target: '/data', fstype: 'ext4' }],
 *   },
 * });
 * ```
 *
 * @category Model
 */
export interface HostUse {
  /** Network interfaces by function; a NIC function not listed gets `eth<N>`, down. */
  readonly interfaces?: readonly HostInterfaceSpec[];
  /** Disks by function; an nvme function not listed has one namespace without partitions. */
  readonly disks?: readonly HostDiskSpec[];
  /** /proc/mounts after proc and sysfs, which are always there. */
  readonly mounts?: readonly HostMountSpec[];
}

/**
 * A whole simulated machine: kernel release and config, IOMMU, process, memory and PCI devices.
 * Start from a preset with `{ ...profiles['linux-7.3-noiommu'], … }` to vary one thing.
 *
 * @example
 * ```ts
 * // the noiommu host, but with vfio's noiommu mode left off at boot
const kernel = createModelKernel({ ...profiles['linux-7.3-noiommu'], noiommu: false });
 * ```
 *
 * @category Model
 */
export interface Profile {
  /** The name messages and `Kernel.description` show. */
  readonly name: string;
  /** The kernel release the model behaves like. */
  readonly kernel: KernelVersion;
  /** The Kconfig switches that decide which interfaces exist. */
  readonly config: KernelConfig;
  /** vfio.enable_unsafe_noiommu_mode at boot. */
  readonly noiommu: boolean;
  /** The IOMMU translating PCI devices, or null when there is none (noiommu hosts). */
  readonly iommu: IommuUnit | null;
  /** The process the program runs as: uid, capabilities, rlimits. */
  readonly process: ProcessCredentials;
  /** The machine's physical memory. */
  readonly memory: MemoryConfig;
  /** The PCI functions on the bus at boot. */
  readonly pci: readonly PciDeviceSpec[];
  /** Online CPUs (sysfs local_cpus/local_cpulist); default 2, as the QEMU lab guest has. */
  readonly cpus?: number;
  /** What the host uses: interfaces, disks, mounts (default: nothing beyond proc and sysfs). */
  readonly host?: HostUse;
}

/**
 * The preset machines of `profiles`, by name.
 *
 * @category Model
 */
export type ProfileName =
  | 'linux-7.3-noiommu'
  | 'linux-7.3-iommu'
  | 'linux-7.3-noiommu-nullgroup'
  | 'linux-6.x-legacy-noiommu'
  | 'unprivileged'
  | 'lab-multi-noiommu'
  | 'lab-multi-iommu'
  | 'lab-edu-noiommu'
  | 'lab-edu-iommu'
  | 'lab-nvme-noiommu'
  | 'lab-nvme-iommu';

export const RLIM_INFINITY = (1n << 64n) - 1n;
const GiB = 1n << 30n;
const MiB = 1n << 20n;

/**
 * Whether this kernel has the iommufd noiommu support of 7.3 (noiommu cdev, NOIOMMU_GET_PA).
 *
 * @category Model
 */
export function hasIommufdNoiommu(p: Profile): boolean {
  // VFIO_NOIOMMU selects IOMMUFD_NOIOMMU when VFIO_DEVICE_CDEV is on (7.3 and later).
  return p.config.IOMMUFD && p.config.VFIO_NOIOMMU && p.config.VFIO_DEVICE_CDEV && atLeast(p.kernel, 7, 3);
}

export function atLeast(v: KernelVersion, major: number, minor: number): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

const KERNEL_7_3: KernelVersion = { major: 7, minor: 3, release: '7.3.0-rc7' };
const KERNEL_6_12: KernelVersion = { major: 6, minor: 12, release: '6.12.48' };

const FULL_CONFIG: KernelConfig = {
  IOMMUFD: true,
  VFIO_NOIOMMU: true,
  VFIO_CONTAINER: true,
  IOMMUFD_VFIO_CONTAINER: false,
  VFIO_GROUP: true,
  VFIO_DEVICE_CDEV: true,
  VFIO_PCI_INTX: true,
  TRANSPARENT_HUGEPAGE: true,
};

/** The lab kernels' configuration (scripts/lab/kernel/base.config + group.config): everything above plus SR-IOV. */
const LAB_KERNEL_CONFIG: KernelConfig = { ...FULL_CONFIG, PCI_IOV: true, PCIEAER: true, PCIEAER_INJECT: true };

/** The QEMU lab's edu device, bound to vfio-pci at boot as the lab's init script does. */
const LAB_PCI: readonly PciDeviceSpec[] = [
  // iommuGroup: behind intel-iommu the lab's edu is in IOMMU group 3 (one group per root-bus function, bus order).
  { address: '0000:00:03.0', device: 'edu', driver: 'vfio-pci', options: { dma_mask: 0xffff_ffff_ffff_ffffn, iommuGroup: 3 } },
];

/**
 * The functions every QEMU lab machine (q35, scripts/lab) has besides its own devices: the MCH
 * host bridge, the VGA, the e1000e NIC, the two virtio-9p transports of the -virtfs shares (in
 * the first free slots after the machine's -device entries, `ninePSlots`) and the ICH9 LPC, AHCI
 * and SMBus functions at 1f. They take IOMMU group numbers like any function.
 *
 * @category Model
 */
export function labPlatformFunctions(ninePSlots: readonly [number, number]): PciDeviceSpec[] {
  const fn = (address: string, vendor: number, device: number, cls: number): PciDeviceSpec => ({
    address,
    device: 'platform',
    driver: null,
    options: { vendor, device, class: cls },
  });
  const slot = (n: number) => `0000:00:${n.toString(16).padStart(2, '0')}.0`;
  return [
    fn('0000:00:00.0', 0x8086, 0x29c0, 0x060000),
    fn('0000:00:01.0', 0x1234, 0x1111, 0x030000),
    fn('0000:00:02.0', 0x8086, 0x10d3, 0x020000),
    fn(slot(ninePSlots[0]), 0x1af4, 0x1009, 0x000200),
    fn(slot(ninePSlots[1]), 0x1af4, 0x1009, 0x000200),
    fn('0000:00:1f.0', 0x8086, 0x2918, 0x060100),
    fn('0000:00:1f.2', 0x8086, 0x2922, 0x010601),
    fn('0000:00:1f.3', 0x8086, 0x2930, 0x0c0500),
  ];
}

const LAB_EDU_DMA_MASK = 0xffff_ffff_ffff_ffffn;

/**
 * The lab's 'multi' machine: two edu functions sharing slot 5 (multifunction, conventional PCI,
 * so no ACS: one IOMMU group) and a third edu behind a PCIe root port at 00:06.0 on bus 1 (ACS
 * isolates it; it resets through its bus). BAR addresses are where the lab's SeaBIOS put them.
 */
const LAB_MULTI_PCI: readonly PciDeviceSpec[] = [
  ...labPlatformFunctions([3, 4]),
  { address: '0000:00:05.0', device: 'edu', driver: 'vfio-pci', options: { dma_mask: LAB_EDU_DMA_MASK, bar0: 0xfe80_0000n } },
  { address: '0000:00:05.1', device: 'edu', driver: 'vfio-pci', options: { dma_mask: LAB_EDU_DMA_MASK, bar0: 0xfe90_0000n } },
  { address: '0000:00:06.0', device: 'pcie-root-port', driver: null },
  { address: '0000:01:00.0', device: 'edu', driver: 'vfio-pci', options: { dma_mask: LAB_EDU_DMA_MASK, bar0: 0xfe60_0000n } },
];

/**
 * The lab's 'edu' machine (scripts/lab/common.sh: `-device edu,dma_mask=…` without an address):
 * edu takes the first free slot, 00:03.0, and the two 9p transports the next ones, 04 and 05;
 * with the platform functions that is the nine functions the guest lists. SeaBIOS puts edu's
 * BAR0 at 0xfea00000 (fixtures/edu-lab-7.3-*.txt); IOMMU groups follow bus order (edu's is 3).
 */
const LAB_EDU_PCI: readonly PciDeviceSpec[] = [
  ...labPlatformFunctions([4, 5]),
  { address: '0000:00:03.0', device: 'edu', driver: 'vfio-pci', options: { dma_mask: LAB_EDU_DMA_MASK, bar0: 0xfea0_0000n } },
];

/**
 * The lab's 'nvme' machine: QEMU 7.2's NVMe controller (lib/devices/nvme, serial as the lab sets
 * it) at `addr=0x4`, so the 9p transports take slots 03 and 05.
 */
const LAB_NVME_PCI: readonly PciDeviceSpec[] = [
  ...labPlatformFunctions([3, 5]),
  { address: '0000:00:04.0', device: 'nvme', driver: 'vfio-pci', options: { serial: 'nodevfio0001' } },
];

const ROOT: ProcessCredentials = {
  uid: 0,
  capabilities: { sysRawio: true, sysAdmin: true, ipcLock: true, sysResource: true },
  memlockLimit: 8n * MiB,
  deviceNodeAccess: true,
};

/** The QEMU lab machine: q35, 2 GiB, the edu device at 00:03.0 is added by the device side. */
const LAB_MEMORY: MemoryConfig = {
  pageSize: 4096,
  size: 2n * GiB,
  fragmentation: 0.5,
  seed: 0x5eed,
  hugepages: { '2M': 16, '1G': 0 },
};

/**
 * QEMU 7.2's intel-iommu with its defaults (aw-bits=39, dma-drain, pt) plus intremap=on and
 * caching-mode=on, under TCG (so no EIM: QEMU turns it on only with an in-kernel irqchip). The
 * register values are what QEMU's vtd_init composes for that configuration:
 *   CAP  = DRAIN(54,55) | MAMV=18 | PSI | SLLPS(2M,1G) | FRO=0x22 | MGAW=38 | SAGAW=39-bit | CM | ND=6
 *   ECAP = MHMV=15 | IRO=0xf | PT | IR | QI
 */
const QEMU_VTD: IommuUnit = {
  type: 'intel-vtd',
  addressWidth: 39,
  reservedRegions: [{ start: 0xfee0_0000n, last: 0xfeef_ffffn, kind: 'msi' }],
  capReg: 0x00d2_008c_2226_0286n,
  ecapReg: 0x0000_0000_00f0_0f4an,
};

/** A lab machine (scripts/lab/common.sh) on the lab kernel, as root, in one of the two modes. */
function labPreset(name: ProfileName, mode: 'noiommu' | 'iommu', pci: readonly PciDeviceSpec[]): Profile {
  return {
    name,
    kernel: KERNEL_7_3,
    config: LAB_KERNEL_CONFIG,
    noiommu: mode === 'noiommu',
    iommu: mode === 'iommu' ? QEMU_VTD : null,
    process: ROOT,
    memory: LAB_MEMORY,
    pci,
  };
}

/**
 * The preset machines, by ProfileName: Linux 7.3 hosts with noiommu and with an IOMMU, an older
 * kernel with only the legacy group path, an unprivileged user, and the lab's machines exactly
 * as their guests see them (lab-edu-*, lab-nvme-*, lab-multi-*: every PCI function of the QEMU
 * command line in scripts/lab/common.sh). `createModelKernel(name)` boots one; spread one into a Profile to vary it.
 *
 * @category Model
 */
export const profiles: Readonly<Record<ProfileName, Profile>> = {
  'linux-7.3-noiommu': {
    name: 'linux-7.3-noiommu',
    kernel: KERNEL_7_3,
    config: FULL_CONFIG,
    noiommu: true,
    iommu: null,
    process: ROOT,
    memory: LAB_MEMORY,
    pci: LAB_PCI,
  },
  'linux-7.3-iommu': {
    name: 'linux-7.3-iommu',
    kernel: KERNEL_7_3,
    config: FULL_CONFIG,
    noiommu: false,
    iommu: QEMU_VTD,
    process: ROOT,
    memory: LAB_MEMORY,
    pci: LAB_PCI,
  },
  'linux-7.3-noiommu-nullgroup': {
    name: 'linux-7.3-noiommu-nullgroup',
    kernel: KERNEL_7_3,
    // No group interface and neither container flavour (Kconfig then allows VFIO_NOIOMMU only
    // through the cdev): noiommu devices get no group at all, only the cdev.
    config: { ...FULL_CONFIG, VFIO_GROUP: false, VFIO_CONTAINER: false, IOMMUFD_VFIO_CONTAINER: false },
    noiommu: true,
    iommu: null,
    process: ROOT,
    memory: LAB_MEMORY,
    pci: LAB_PCI,
  },
  'linux-6.x-legacy-noiommu': {
    name: 'linux-6.x-legacy-noiommu',
    kernel: KERNEL_6_12,
    config: FULL_CONFIG,
    noiommu: true,
    iommu: null,
    process: ROOT,
    memory: { ...LAB_MEMORY, fragmentation: 0.8 },
    pci: LAB_PCI,
  },
  unprivileged: {
    name: 'unprivileged',
    kernel: KERNEL_7_3,
    config: FULL_CONFIG,
    noiommu: true,
    iommu: null,
    process: {
      uid: 1000,
      capabilities: { sysRawio: false, sysAdmin: false, ipcLock: false, sysResource: false },
      memlockLimit: 8n * MiB,
      deviceNodeAccess: true,
    },
    memory: LAB_MEMORY,
    pci: LAB_PCI,
  },
  'lab-multi-noiommu': labPreset('lab-multi-noiommu', 'noiommu', LAB_MULTI_PCI),
  'lab-multi-iommu': labPreset('lab-multi-iommu', 'iommu', LAB_MULTI_PCI),
  'lab-edu-noiommu': labPreset('lab-edu-noiommu', 'noiommu', LAB_EDU_PCI),
  'lab-edu-iommu': labPreset('lab-edu-iommu', 'iommu', LAB_EDU_PCI),
  'lab-nvme-noiommu': labPreset('lab-nvme-noiommu', 'noiommu', LAB_NVME_PCI),
  'lab-nvme-iommu': labPreset('lab-nvme-iommu', 'iommu', LAB_NVME_PCI),
};

export function isProfileName(name: string): name is ProfileName {
  return Object.prototype.hasOwnProperty.call(profiles, name);
}

/**
 * A preset by name, or the given profile after checking that it is consistent.
 *
 * @category Model
 */
export function resolveProfile(p: ProfileName | Profile): Profile {
  if (typeof p === 'string') {
    if (!isProfileName(p)) {
      throw new RangeError(`unknown model profile '${String(p)}' (known: ${Object.keys(profiles).join(', ')})`);
    }
    return profiles[p];
  }
  validateProfile(p);
  return p;
}

function validateProfile(p: Profile): void {
  const ps = p.memory.pageSize;
  if (ps < 4096 || (ps & (ps - 1)) !== 0) throw new RangeError(`profile ${p.name}: page size ${ps} is not a power of two ≥ 4096`);
  if (p.memory.size < 64n * MiB) throw new RangeError(`profile ${p.name}: memory size below 64 MiB`);
  if (p.memory.fragmentation < 0 || p.memory.fragmentation > 1)
    throw new RangeError(`profile ${p.name}: fragmentation must be within 0..1`);
  const c = p.config;
  if (c.IOMMUFD_VFIO_CONTAINER && (!c.VFIO_GROUP || c.VFIO_CONTAINER || !c.IOMMUFD)) {
    throw new RangeError(`profile ${p.name}: IOMMUFD_VFIO_CONTAINER needs IOMMUFD and VFIO_GROUP without VFIO_CONTAINER`);
  }
  // Kconfig: VFIO selects VFIO_DEVICE_CDEV when VFIO_GROUP is off, so VFIO always has one of them.
  if (!c.VFIO_GROUP && !c.VFIO_DEVICE_CDEV) {
    throw new RangeError(
      `profile ${p.name}: neither VFIO_GROUP nor VFIO_DEVICE_CDEV (Kconfig selects VFIO_DEVICE_CDEV when VFIO_GROUP is off)`,
    );
  }
  if (c.VFIO_CONTAINER && !c.VFIO_GROUP) throw new RangeError(`profile ${p.name}: VFIO_CONTAINER needs VFIO_GROUP`);
  if (c.VFIO_NOIOMMU && c.VFIO_GROUP && !c.VFIO_CONTAINER && !c.IOMMUFD_VFIO_CONTAINER) {
    throw new RangeError(`profile ${p.name}: VFIO_NOIOMMU with VFIO_GROUP needs a container (VFIO_CONTAINER or IOMMUFD_VFIO_CONTAINER)`);
  }
  if (p.noiommu && !c.VFIO_NOIOMMU) throw new RangeError(`profile ${p.name}: noiommu mode needs VFIO_NOIOMMU`);
  validateHostUse(p);
  if (p.iommu && (p.iommu.addressWidth < 32 || p.iommu.addressWidth > 64))
    throw new RangeError(`profile ${p.name}: IOMMU address width out of range`);
}

/** The host drivers that publish interfaces (NIC) and disks (storage), by kind. */
export const HOST_NIC_DRIVERS: readonly string[] = ['e1000e'];
export const HOST_STORAGE_DRIVERS: readonly string[] = ['nvme', 'ahci'];

function validateHostUse(p: Profile): void {
  const bootDriver = (fn: string) => p.pci.find((f) => f.address === fn)?.driver ?? null;
  for (const i of p.host?.interfaces ?? []) {
    const d = bootDriver(i.function);
    if (d === null || !HOST_NIC_DRIVERS.includes(d))
      throw new RangeError(
        `profile ${p.name}: interface ${i.name} needs ${i.function} bound to a NIC driver (${HOST_NIC_DRIVERS.join(', ')}) at boot`,
      );
    if (!/^[^\s/:]{1,15}$/.test(i.name) || i.name === '.' || i.name === '..')
      throw new RangeError(`profile ${p.name}: '${i.name}' is not a valid interface name (dev_valid_name)`);
  }
  const names = (p.host?.interfaces ?? []).map((i) => i.name);
  if (new Set(names).size !== names.length) throw new RangeError(`profile ${p.name}: two interfaces with one name`);
  for (const d of p.host?.disks ?? []) {
    const drv = bootDriver(d.function);
    if (drv === null || !HOST_STORAGE_DRIVERS.includes(drv))
      throw new RangeError(
        `profile ${p.name}: a disk needs ${d.function} bound to a storage driver (${HOST_STORAGE_DRIVERS.join(', ')}) at boot`,
      );
  }
}

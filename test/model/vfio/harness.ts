/**
 * A minimal host around the PCI/VFIO side for unit tests of that side alone: a file tree, an fd
 * table with eventfds, flat physical memory, and an iommufd stand-in that hands out object IDs
 * and translates IOVAs through a map the test fills. The full kernel model (ModelKernel) is used
 * by the end-to-end tests; this keeps the VFIO rules testable on their own.
 */
import { VfioError } from '../../../lib/sys/errors';
import { KernelError, fail } from '../../../lib/model/errno';
import type { Capabilities } from '../../../lib/sys/kernel';
import { EventFdFile } from '../../../lib/model/eventfd';
import type { OpenFile } from '../../../lib/model/open-file';
import { Vfs } from '../../../lib/model/vfs';
import { DmaFault, type DmaPort } from '../../../lib/model/pci/dma';
import { PciMachine, type PciFunctionSpec } from '../../../lib/model/vfio/machine';
import type { VfioKconfig } from '../../../lib/model/vfio/environment';
import type { IommufdBoundDevice, IommufdContextPort, IommufdPort } from '../../../lib/model/vfio/iommufd-port';

export const EDU_BDF = '0000:00:03.0';

export class FlatMemory implements DmaPort {
  readonly bytes: Uint8Array;
  constructor(
    readonly base: bigint,
    size: number,
  ) {
    this.bytes = new Uint8Array(size);
  }
  private at(address: bigint, length: number, dir: 'read' | 'write'): number {
    if (address < this.base || address + BigInt(length) > this.base + BigInt(this.bytes.length))
      throw new DmaFault('no-memory', address, length, dir);
    return Number(address - this.base);
  }
  read(address: bigint, length: number): Uint8Array {
    const i = this.at(address, length, 'read');
    return this.bytes.slice(i, i + length);
  }
  write(address: bigint, data: Uint8Array): void {
    this.bytes.set(data, this.at(address, data.length, 'write'));
  }
}

/** An iommufd stand-in: IDs from 1, an IOAS per context whose IOVA map the test sets. */
export class FakeIommufd implements OpenFile, IommufdContextPort {
  readonly kind = 'iommufd';
  private nextId = 1;
  readonly ioasId: number;
  readonly iovaMap = new Map<bigint, bigint>(); // page IOVA -> page PA
  compatIoas: number | undefined;
  bound: { id: number; name: string; attachedTo: number | undefined }[] = [];
  constructor(private readonly memory: DmaPort) {
    this.ioasId = this.nextId++;
  }

  bind(device: { name: string }): IommufdBoundDevice {
    const rec = { id: this.nextId++, name: device.name, attachedTo: undefined as number | undefined };
    this.bound.push(rec);
    const self = this;
    return {
      id: rec.id,
      attach(ptId) {
        if (ptId !== self.ioasId) fail('ENOENT', 'no such IOAS');
        rec.attachedTo = ptId;
        return ptId + 100;
      },
      replace(ptId) {
        return this.attach(ptId);
      },
      detach() {
        rec.attachedTo = undefined;
      },
      unbind() {
        self.bound = self.bound.filter((b) => b !== rec);
      },
      dmaPort(): DmaPort | undefined {
        if (rec.attachedTo === undefined) return undefined;
        const translate = (iova: bigint, length: number, dir: 'read' | 'write') => {
          const page = iova & ~0xfffn;
          const pa = self.iovaMap.get(page);
          if (pa === undefined || ((iova + BigInt(length) - 1n) & ~0xfffn) !== page) throw new DmaFault('unmapped-iova', iova, length, dir);
          return pa + (iova - page);
        };
        return {
          read: (iova, length) => self.memory.read(translate(iova, length, 'read'), length),
          write: (iova, data) => self.memory.write(translate(iova, data.length, 'write'), data),
        };
      },
    };
  }
  compatSetNoIommu(): void {
    /* the noiommu compat mode needs nothing here */
  }
  compatIoasCreate(): void {
    this.compatIoas = this.ioasId;
  }
  compatIoasId(): number | undefined {
    return this.compatIoas;
  }
  /** Whether the type1 container asked for vfio_iommu_type1's VM_PFNMAP following. */
  followsPfnmap = false;
  compatFollowPfnmap(): void {
    this.followsPfnmap = true;
  }
}

export interface HostOptions {
  kconfig?: Partial<VfioKconfig>;
  iommu?: boolean;
  noiommu?: boolean;
  caps?: Partial<Capabilities>;
  functions?: PciFunctionSpec[];
}

export const KCONFIG_7_3: VfioKconfig = {
  group: true,
  container: true,
  cdev: true,
  vfioNoiommu: true,
  iommufdNoiommu: true,
  pciIntx: true,
};

export class TestHost {
  readonly vfs = new Vfs();
  readonly fds = new Map<number, OpenFile>();
  readonly memory = new FlatMemory(0x1_0000_0000n, 0x10_0000);
  caps: Capabilities;
  readonly machine: PciMachine;

  constructor(o: HostOptions = {}) {
    this.caps = { sysRawio: true, sysAdmin: true, ipcLock: true, ...o.caps };
    const iommufdPort: IommufdPort = { contextOf: (f) => (f instanceof FakeIommufd ? f : undefined) };
    this.machine = new PciMachine({
      vfs: this.vfs,
      pageSize: 4096,
      kconfig: { ...KCONFIG_7_3, ...o.kconfig },
      iommu: o.iommu ?? false,
      noiommuAtBoot: o.noiommu ?? true,
      functions: o.functions ?? [{ address: EDU_BDF, device: 'edu', options: { dma_mask: (1n << 64n) - 1n, timing: { mode: 'sync' } } }],
      physicalMemory: this.memory,
      iommufd: iommufdPort,
      capabilities: () => this.caps,
      lookup: (fd) => this.fds.get(fd),
      installFd: (f) => this.install(f),
    });
  }

  install(file: OpenFile): number {
    let fd = 3;
    while (this.fds.has(fd)) fd++;
    this.fds.set(fd, file);
    return fd;
  }

  open(path: string): number {
    const node = this.vfs.lookup(path);
    if (!node) throw VfioError.of('ENOENT', { syscall: 'open', path });
    if (node.type !== 'chardev') throw new Error(`${path} is not a device node`);
    return this.install(node.open(0, path));
  }

  close(fd: number): void {
    const f = this.fds.get(fd);
    if (!f) throw VfioError.of('EBADF', { syscall: 'close' });
    this.fds.delete(fd);
    f.release?.();
  }

  file(fd: number): OpenFile {
    return this.fds.get(fd)!;
  }

  ioctl(fd: number, request: number, arg: Uint8Array | number | null): number {
    const f = this.fds.get(fd);
    if (!f) throw VfioError.of('EBADF', { syscall: 'ioctl' });
    if (!f.ioctl) throw VfioError.of('ENOTTY', { syscall: 'ioctl' });
    return f.ioctl(request, arg, { fd });
  }

  newIommufd(): number {
    return this.install(new FakeIommufd(this.memory));
  }
  newEventfd(): number {
    return this.install(new EventFdFile(0, 0));
  }
  eventfd(fd: number): EventFdFile {
    return this.fds.get(fd) as EventFdFile;
  }

  write(path: string, text: string): void {
    const node = this.vfs.lookup(path);
    if (!node) throw VfioError.of('ENOENT', { syscall: 'open', path });
    if (node.type !== 'attr' || !node.write) throw VfioError.of('EACCES', { syscall: 'open', path });
    node.write(Buffer.from(text));
  }

  read(path: string): string {
    const node = this.vfs.lookup(path);
    if (!node || node.type !== 'attr' || !node.read) throw VfioError.of('ENOENT', { syscall: 'open', path });
    return node.read().toString();
  }

  exists(path: string): boolean {
    return this.vfs.lookup(path) !== undefined;
  }

  readlink(path: string): string {
    const node = this.vfs.lookup(path, false);
    if (!node || node.type !== 'link') throw VfioError.of('EINVAL', { syscall: 'readlink', path });
    return node.target();
  }

  /** driver_override + drivers_probe, as the lab's init script binds edu. */
  bindVfioPci(bdf = EDU_BDF): void {
    this.write(`/sys/bus/pci/devices/${bdf}/driver_override`, 'vfio-pci');
    this.write('/sys/bus/pci/drivers_probe', bdf);
  }
}

/**
 * The VFIO side fails with the model's KernelError (these tests call it below the syscall
 * boundary, which alone makes VfioErrors); the test host's own syscalls fail with VfioErrors.
 */
export function expectErrno(code: string): (e: unknown) => boolean {
  return (e: unknown) => {
    if (!(e instanceof KernelError) && !(e instanceof VfioError)) throw e;
    if (e.code !== code) throw new Error(`expected ${code}, got ${e.code}: ${e.message}`);
    return true;
  };
}

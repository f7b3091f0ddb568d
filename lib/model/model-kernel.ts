/**
 * ModelKernel: the simulated Linux 7.3 host behind the `Kernel` syscall boundary.
 *
 * It owns the process's fd table, its address space and physical memory, and the file tree
 * (Vfs). Every syscall resolves its fd or path, runs the model's kernel code, and turns a
 * KernelError into the VfioError a caller sees, with the syscall, ioctl name and path filled in —
 * the same shape NativeKernel produces from errno — and the model's detail kept. This is the only
 * place the model builds a VfioError (test/model/boundary.test.ts holds it to that).
 *
 * Hooks for the rest of the model (the VFIO/PCI side, device models, tests):
 *   vfs                      the file tree; add sysfs/devfs nodes here
 *   profile                  the simulated machine and kernel configuration
 *   memory                   physical memory: dmaRead(pa, len) / dmaWrite(pa, bytes) throw
 *                            PhysicalAccessFault unless every byte is in a live RAM frame
 *   space                    the process address space (user pointers, pinning)
 *   locked                   RLIMIT_MEMLOCK accounting (mm->locked_vm, user->locked_vm)
 *   dmaOwnership             IOMMU group DMA ownership (iommufd bind, legacy containers)
 *   installFile(file, path?, flags?) → fd
 *                            puts an OpenFile in the fd table (lowest free fd from 3; EMFILE,
 *                            with the file released, at openFilesLimit)
 *   fileOf(fd)               the OpenFile behind an fd (EBADF)
 *   holdFile(file) / dropFile(file)
 *                            extra references (like get_file/fput); release() runs when the last
 *                            fd, mapping or hold is gone
 *   iommufdOf(fd)            iommufd_ctx_from_fd: the IommufdContext behind an fd (EBADF, or
 *                            EBADFD when the fd is not an iommufd)
 *   spawnProcess(creds)      a second process on the same machine: its own fd table, address
 *                            space, RLIMIT_MEMLOCK accounting and credentials (a ModelKernel too)
 *
 * Processes: every ModelKernel of one machine shares the file tree, physical memory, the PCI
 * machine, DMA ownership, fault injection and the open files' reference counts; each has its own
 * fds, mm and credentials. Each syscall makes its process the machine's `current` (the model is
 * synchronous, so a syscall runs to its end as the one current task), and the kernel code that
 * Linux runs against `current` — capable(), current->mm, the fd table of fget/fd_install — asks
 * `current`, so a file opened by one process and used by another (passed over a unix socket)
 * checks the caller's credentials and maps the caller's memory, as on Linux.
 */
import { KernelLog } from './kmsg/kernel-log';
import { holdEventLoop } from './event-loop-hold';
import type { Capabilities, Kernel, Mapping, MmapPlacement, MmioWidth } from '../sys/kernel';
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EFD_SEMAPHORE,
  MAP_ANONYMOUS,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  MFD_HUGETLB,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  PROT_WRITE,
} from '../sys/constants';
import { VfioError } from '../sys/errors';
import { ioctlName, type FileKind } from '../uapi/requests';
import { KernelError, fail } from './errno';
import { EventFdFile } from './eventfd';
import { IommufdContext } from './iommufd/iommufd-ctx';
import { iommufdRequestName } from './iommufd/commands';
import { DmaOwnership } from './iommufd/dma-ownership';
import { FaultInjector } from './fault-injection';
import { FdTable } from './fd-table';
import { AddressSpace } from './memory/address-space';
import { LockedMemory } from './memory/locked-memory';
import { MemfdFile } from './memory/memfd';
import { PhysicalMemory } from './memory/physical-memory';
import type { HugePageSize } from '../sys/constants';
import type { OpenFile, SyscallContext } from './open-file';
import { PagemapFile } from './proc/pagemap-file';
import { addMountsFiles } from './proc/mounts-file';
import {
  MAX_OFFSET,
  MAX_U64,
  checkFd,
  checkInteger,
  checkKernelChosenAddress,
  checkPlacement,
  checkString,
  checkUnsignedBigInt,
} from './syscall-args';
import type { Profile } from './profile';
import { AttrFile, DirectoryFile } from './vfs-files';
import { Vfs, type VNode } from './vfs';
import type { PciMachine } from './vfio/machine';
import type { ProcessCredentials } from './profile';
import { ModelSockets, type SocketProcess } from './sockets/model-sockets';
import type { PeerCredentials, SocketCalls } from '../sys/socket-calls';

/** Where a syscall acts, as far as the boundary can name it. */
interface SyscallSite {
  readonly fd?: number | undefined;
  readonly path?: string;
  readonly ioctl?: string;
}

interface FdEntry {
  readonly file: OpenFile;
  readonly path: string;
  readonly flags: number;
  readonly ctx: SyscallContext;
}

const ACCESS_MODE = 3;
/** RLIMIT_NOFILE's soft limit in a login shell. */
const DEFAULT_OPEN_FILES_LIMIT = 1024;
const FILE_KINDS: readonly string[] = ['iommufd', 'vfio-container', 'vfio-group', 'vfio-device'];
/** The pid the first process of a machine gets; spawned ones count up from it. */
const FIRST_PID = 1000;

/**
 * What the processes of one machine share (everything but fds, mm and credentials).
 *
 * @category Model
 */
export interface ModelMachineState {
  /** The file tree. */
  readonly vfs: Vfs;
  /** Physical memory. */
  readonly memory: PhysicalMemory;
  /** IOMMU group DMA ownership. */
  readonly dmaOwnership: DmaOwnership;
  /** Fault injection. */
  readonly faults: FaultInjector;
  /** References on open files, from every process's fds, mappings and holds. */
  readonly fileRefs: Map<OpenFile, number>;
  /** The PCI machine, once booted. */
  pci: PciMachine | null;
  /** The process whose syscall is running (Linux's `current`). */
  current: ModelKernel;
  /** The next pid to hand out. */
  nextPid: number;
  /** Unix sockets: bound paths and socket files. */
  readonly sockets: ModelSockets;
  /** The kernel log (/dev/kmsg). */
  readonly kmsg: KernelLog;
}

/**
 * The simulated Linux host behind the Kernel interface; get one from `createModelKernel`.
 * Besides the Kernel calls it exposes the model's own state (file tree, memory, fd table) so
 * tests and device models can set up and inspect what a real host would not show.
 *
 * @example
 * ```ts
 * const kernel = createModelKernel('linux-7.3-iommu');
 * const dev = await openDevice('0000:00:03.0', { kernel });
 * dev.close();
 * assert.equal(kernel.openFdCount, 0); // nothing leaked
 * ```
 *
 * @category Model
 */
export class ModelKernel implements Kernel {
  readonly kind = 'model' as const;
  readonly description: string;
  readonly pageSize: number;
  /** The file tree (sysfs, /dev, /proc); add nodes here to model more of the host. */
  readonly vfs: Vfs;
  /** Physical memory: where DMA lands; reading outside live RAM throws PhysicalAccessFault. */
  readonly memory: PhysicalMemory;
  /** RLIMIT_MEMLOCK accounting (mm->locked_vm and user->locked_vm), as pinning charges it. */
  readonly locked: LockedMemory;
  /** The process's virtual address space: mappings, user pointers, pinning. */
  readonly space: AddressSpace;
  /** Which IOMMU groups are claimed for user DMA (by an iommufd bind or a legacy container). */
  readonly dmaOwnership: DmaOwnership;
  /** fail_nth-style fault injection for the iommufd paths (tests arm it). */
  readonly faults: FaultInjector;
  /** This process's id (what SO_PEERCRED reports). */
  readonly pid: number;
  /** What this process shares with the other processes of its machine. */
  readonly machine: ModelMachineState;
  /** Unix sockets with fd passing and peer credentials (SOCK_SEQPACKET, SCM_RIGHTS, SO_PEERCRED). */
  readonly sockets: SocketCalls;

  private readonly fds: FdTable<FdEntry>;
  private readonly fileRefs: Map<OpenFile, number>;
  private readonly waiters = new Map<number, Set<(err: VfioError) => void>>();

  /**
   * Use `createModelKernel`, which also boots the PCI machine; a bare ModelKernel has no devices.
   *
   * @param profile The machine it simulates; readable afterwards as `kernel.profile`.
   * @param machine The machine to join as another process (what `spawnProcess` passes); a new one when absent.
   */
  constructor(
    readonly profile: Profile,
    machine?: ModelMachineState,
  ) {
    this.description = `model kernel ${profile.kernel.release} (${profile.name})`;
    this.pageSize = profile.memory.pageSize;
    this.fds = new FdTable(profile.process.openFilesLimit ?? DEFAULT_OPEN_FILES_LIMIT);
    this.machine = machine ?? {
      vfs: new Vfs(),
      memory: new PhysicalMemory(profile.memory),
      dmaOwnership: new DmaOwnership(),
      faults: new FaultInjector(),
      fileRefs: new Map(),
      pci: null,
      current: this,
      nextPid: FIRST_PID,
      sockets: new ModelSockets(),
      kmsg: new KernelLog(),
    };
    this.pid = this.machine.nextPid++;
    this.vfs = this.machine.vfs;
    this.memory = this.machine.memory;
    this.dmaOwnership = this.machine.dmaOwnership;
    this.faults = this.machine.faults;
    this.fileRefs = this.machine.fileRefs;
    this.sockets = this.socketCalls();
    this.locked = new LockedMemory(profile.process.memlockLimit, this.memory.pageShift, profile.process.capabilities.ipcLock);
    this.space = new AddressSpace(
      this.memory,
      this.locked,
      {
        holdFile: (f) => this.holdFile(f),
        dropFile: (f) => this.dropFile(f),
        ipcLock: profile.process.capabilities.ipcLock,
        faults: this.faults,
      },
      profile.memory.seed,
    );
    if (!machine) this.installBaseFiles();
  }

  /** The PCI bus, VFIO and device models (set at boot by createModelKernel; shared by the machine's processes). */
  get pci(): PciMachine | null {
    return this.machine.pci;
  }

  /** Set once, at boot (createModelKernel). */
  set pci(machine: PciMachine | null) {
    this.machine.pci = machine;
  }

  /** The process whose syscall runs now (Linux's `current`): whose credentials, mm and fds kernel code uses. */
  get current(): ModelKernel {
    return this.machine.current;
  }

  /**
   * A new process on the same machine (fork + setuid + capset, or a separate program started by
   * another user): its own fd table (empty), address space, RLIMIT_MEMLOCK accounting and
   * credentials; the devices, file tree and memory are the machine's. Fds reach it only over a
   * unix socket (`sockets`), as between real processes.
   */
  spawnProcess(credentials: ProcessCredentials): ModelKernel {
    return new ModelKernel({ ...this.profile, process: credentials }, this.machine);
  }

  /** This process's credentials as SO_PEERCRED reports them. */
  get credentials(): PeerCredentials {
    const p = this.profile.process;
    return { pid: this.pid, uid: p.uid, gid: p.gid ?? p.uid };
  }

  private socketCalls(): SocketCalls {
    const sockets = this.machine.sockets;
    const proc: SocketProcess = {
      credentials: this.credentials,
      fileOf: (fd) => this.fileOf(fd),
      installFile: (file, path) => this.installFile(file, path),
      holdFile: (f) => this.holdFile(f),
      dropFile: (f) => this.dropFile(f),
      freeFdSlots: () => Math.max(0, this.fds.limit - 3 - this.fds.size),
    };
    const call = <T>(syscall: string, where: SyscallSite, body: () => T): T => {
      this.enter();
      if (where.fd !== undefined) checkFd(where.fd);
      return this.syscall(syscall, where, body);
    };
    return {
      socketPair: () => call('socketpair', { path: 'socketpair' }, () => sockets.socketPair(proc)),
      listen: (path, backlog) => call('bind', { path }, () => sockets.listen(proc, path, backlog)),
      connect: (path) => call('connect', { path }, () => sockets.connect(proc, path)),
      accept: (fd) => call('accept4', { fd }, () => sockets.accept(proc, fd)),
      send: (fd, data, fds) => call('sendmsg', { fd }, () => sockets.send(proc, fd, data, fds)),
      receive: (fd, into) => call('recvmsg', { fd }, () => sockets.receive(proc, fd, into)),
      peerCredentials: (fd) => call('getsockopt', { fd }, () => sockets.peerCredentials(proc, fd)),
      unlink: (path) => call('unlink', { path }, () => sockets.unlink(path)),
    };
  }

  /**
   * The process exits (or is killed): every fd it has is closed, as exit_files does, so a peer of
   * one of its sockets sees the hangup. Its mappings stay until munmap (the model has no teardown
   * of an mm); the kernel view must not be used afterwards.
   */
  exit(): void {
    for (const [fd] of [...this.fds]) this.close(fd);
  }

  /** Makes this process `current` for the syscall it is entering. */
  private enter(): void {
    this.machine.current = this;
  }

  /** /dev/iommu, /proc/self/pagemap and the huge page counters. */
  private installBaseFiles(): void {
    this.machine.kmsg.install(this.vfs);
    if (this.profile.config.IOMMUFD) {
      this.vfs.add('/dev/iommu', { type: 'chardev', mode: 0o660, open: () => this.newIommufd(false) } as VNode);
    }
    if (this.profile.config.IOMMUFD_VFIO_CONTAINER) {
      // iommufd provides the VFIO container, with VFIO's mm-based RLIMIT accounting.
      this.vfs.add('/dev/vfio/vfio', { type: 'chardev', mode: 0o666, open: () => this.newIommufd(true) } as VNode);
    }
    this.vfs.add('/proc/self/pagemap', {
      type: 'chardev',
      // /proc/self: the opener's mm, and the opener's CAP_SYS_ADMIN (file_ns_capable at read).
      open: () => {
        const opener = this.current;
        return new PagemapFile(opener.space, () => opener.profile.process.capabilities.sysAdmin);
      },
    });
    // nr_hugepages: root reserves huge pages at run time (set_max_huge_pages), as lab scripts do.
    const nrHugepages = (size: HugePageSize) => ({
      type: 'attr' as const,
      mode: 0o644,
      read: () => `${this.memory.hugePagesTotal(size)}\n`,
      write: (data: Buffer) => {
        const text = data.toString().trim();
        if (!/^\d+$/.test(text)) fail('EINVAL');
        this.memory.setHugePages(size, Number(text));
      },
    });
    for (const size of ['2M', '1G'] as const) {
      const dir = `/sys/kernel/mm/hugepages/hugepages-${size === '2M' ? 2048 : 1048576}kB`;
      this.vfs.add(`${dir}/nr_hugepages`, nrHugepages(size));
      this.vfs.add(`${dir}/free_hugepages`, { type: 'attr', mode: 0o444, read: () => `${this.memory.hugePagesFree(size)}\n` });
    }
    this.vfs.add('/proc/sys/vm/nr_hugepages', nrHugepages('2M'));
    addMountsFiles(this.vfs, this.profile.host?.mounts ?? []);
    // hugetlb_report_meminfo: a kernel with HUGETLBFS always reports the default huge page size,
    // which is how programs (and the conformance cases) learn it, even with no pages reserved.
    this.vfs.add('/proc/meminfo', { type: 'attr', mode: 0o444, read: () => this.meminfo() });
  }

  private meminfo(): string {
    const kB = (bytes: bigint) => `${(bytes / 1024n).toString().padStart(8)} kB`;
    const total = this.memory.hugePagesTotal('2M');
    const free = this.memory.hugePagesFree('2M');
    const count = (n: number) => `${n.toString().padStart(8)}`;
    return [
      `MemTotal:       ${kB(this.profile.memory.size)}`,
      `HugePages_Total:${count(total)}`,
      `HugePages_Free: ${count(free)}`,
      `HugePages_Rsvd: ${count(0)}`,
      `HugePages_Surp: ${count(0)}`,
      `Hugepagesize:   ${kB(2n << 20n)}`,
      `Hugetlb:        ${kB(BigInt(total) * (2n << 20n))}`,
      '',
    ].join('\n');
  }

  /** A new iommufd context (open of /dev/iommu, or /dev/vfio/vfio with IOMMUFD_VFIO_CONTAINER). */
  newIommufd(asVfioContainer: boolean): IommufdContext {
    this.faults.point('iommufd.ctx-alloc'); // iommufd_fops_open's kzalloc (lib/model/faults.ts)
    const machine = this.machine;
    // An iommufd may be used by any process it reaches (over a unix socket): what Linux takes
    // from `current` (credentials, mm, the fd table) is the calling process's, not the opener's.
    return new IommufdContext(
      {
        faults: this.faults,
        get profile() {
          return machine.current.profile;
        },
        get space() {
          return machine.current.space;
        },
        memory: this.memory,
        get locked() {
          return machine.current.locked;
        },
        dmaOwnership: this.dmaOwnership,
        holdFile: (f) => this.holdFile(f),
        dropFile: (f) => this.dropFile(f),
        fileOf: (fd) => machine.current.fileOf(fd),
        installFile: (file, path) => machine.current.installFile(file, path),
      },
      asVfioContainer,
    );
  }

  // ---- hooks for the rest of the model --------------------------------------------------------

  /** RLIMIT_NOFILE (setrlimit): every fd is below it, EMFILE otherwise. */
  get openFilesLimit(): number {
    return this.fds.limit;
  }

  /** Lowers or raises RLIMIT_NOFILE, e.g. to test EMFILE paths; fds already open stay open. */
  set openFilesLimit(limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`openFilesLimit must be a non-negative integer, got ${limit}`);
    this.fds.limit = limit;
  }

  /**
   * Installs `file` at the lowest free fd (from 3) and returns the fd. With no fd below
   * RLIMIT_NOFILE the file is released (the fput of a file that never got its fd) and the
   * answer is EMFILE.
   */
  installFile(file: OpenFile, path = `anon_inode:[${file.kind}]`, flags = O_RDWR): number {
    let fd: number;
    try {
      fd = this.fds.reserve();
    } catch (e) {
      file.release?.();
      throw e;
    }
    this.placeFile(fd, file, path, flags);
    return fd;
  }

  private placeFile(fd: number, file: OpenFile, path: string, flags: number): void {
    this.fds.install(fd, { file, path, flags, ctx: { fd, path } });
    this.holdFile(file);
  }

  /** The open file behind `fd` (EBADF). */
  fileOf(fd: number): OpenFile {
    const entry = this.fds.get(fd);
    if (!entry) fail('EBADF');
    return entry.file;
  }

  /** Whether `fd` is open (no EBADF, unlike fileOf). */
  hasFd(fd: number): boolean {
    return this.fds.has(fd);
  }

  /** The path `fd` was opened by. */
  pathOf(fd: number): string | undefined {
    return this.fds.get(fd)?.path;
  }

  /** iommufd_ctx_from_fd. */
  iommufdOf(fd: number): IommufdContext {
    const file = this.fileOf(fd);
    if (!(file instanceof IommufdContext)) fail('EBADFD');
    return file;
  }

  /** Takes an extra reference on an open file (get_file), e.g. for a mapping that outlives its fd. */
  holdFile(file: OpenFile): void {
    this.fileRefs.set(file, (this.fileRefs.get(file) ?? 0) + 1);
  }

  /** Drops a reference (fput); the file is released when its last fd, mapping or hold is gone. */
  dropFile(file: OpenFile): void {
    const n = (this.fileRefs.get(file) ?? 0) - 1;
    if (n > 0) {
      this.fileRefs.set(file, n);
      return;
    }
    this.fileRefs.delete(file);
    file.release?.();
  }

  /** Number of open fds (for leak checks in tests). */
  get openFdCount(): number {
    return this.fds.size;
  }

  /** The fd table, read-only (leak checks: what is open, by which path). */
  openFiles(): {
    /** The fd number. */
    readonly fd: number;
    /** The path it was opened by, or anon_inode:[kind]. */
    readonly path: string;
    /** The model's open file behind it. */
    readonly file: OpenFile;
  }[] {
    return [...this.fds].map(([fd, e]) => ({ fd, path: e.path, file: e.file }));
  }

  /** Open files still alive through an fd, a mapping or a hold (leak checks). */
  get liveFileCount(): number {
    return this.fileRefs.size;
  }

  /**
   * Hot-unplugs the PCI function at `address` from its PCIe slot, as QEMU's `device_del` (or the
   * slot's attention button) does to a function behind a pcie-root-port, and pciehp removes it. A
   * function bound to vfio-pci and open is withdrawn at once (its cdev and group entry go, new
   * opens fail), its user gets the request interrupt (VFIO_PCI_REQ_IRQ_INDEX, again every 10 s),
   * and the promise resolves once the user has closed every fd of the device and the function has
   * left the bus. A driver is expected to listen on its `'req'` interrupt and close.
   *
   * @example
   *   const [req] = device.irqs.enable('req');
   *   const gone = kernel.hotUnplug('0000:01:00.0');
   *   await req.wait(); // the kernel wants the device back
   *   device.close();
   *   await gone;
   */
  hotUnplug(address: string): Promise<void> {
    if (!this.pci) return Promise.reject(new Error('hot-unplug: this model kernel has no PCI machine'));
    return this.pci.hotUnplug(address);
  }

  // ---- Kernel: files ---------------------------------------------------------------------------

  open(path: string, flags: number): number {
    this.enter();
    return this.syscall('open', { path }, () => {
      const node = this.vfs.lookup(path);
      if (!node) fail('ENOENT');
      // do_sys_open takes the fd before opening, so at RLIMIT_NOFILE the device is never opened.
      const fd = this.fds.reserve();
      let file: OpenFile;
      try {
        file = this.openNode(node, path, flags);
      } catch (e) {
        this.fds.unreserve(fd);
        throw e;
      }
      this.placeFile(fd, file, path, flags);
      return fd;
    });
  }

  private openNode(node: VNode, path: string, flags: number): OpenFile {
    const access = flags & ACCESS_MODE;
    const wantRead = access === O_RDONLY || access === O_RDWR;
    const wantWrite = access === O_WRONLY || access === O_RDWR;
    const root = this.profile.process.uid === 0;
    switch (node.type) {
      case 'dir':
        if (wantWrite) fail('EISDIR');
        return new DirectoryFile();
      case 'attr': {
        const mode = node.mode ?? (node.write ? 0o644 : 0o444);
        // kernfs_fop_open: the mode must allow the access and the attribute must implement it.
        if (wantRead && (!(mode & 0o444) || !node.read)) fail('EACCES');
        if (wantWrite && (!(mode & 0o222) || !node.write)) fail('EACCES');
        // Attributes belong to root: others get the "other" bits.
        if (!root && ((wantRead && !(mode & 0o004)) || (wantWrite && !(mode & 0o002)))) fail('EACCES');
        return new AttrFile(node);
      }
      case 'chardev': {
        const mode = (node as { mode?: number }).mode ?? 0o600;
        if (!root && !this.profile.process.deviceNodeAccess && ((wantRead && !(mode & 0o004)) || (wantWrite && !(mode & 0o002)))) {
          fail('EACCES');
        }
        return node.open(flags, path);
      }
      case 'link':
        fail('ELOOP');
    }
  }

  close(fd: number): void {
    this.enter();
    checkFd(fd);
    this.syscall('close', { fd }, () => {
      const entry = this.fds.remove(fd);
      if (!entry) fail('EBADF');
      const waiting = this.waiters.get(fd);
      if (waiting) {
        this.waiters.delete(fd);
        for (const reject of waiting)
          reject(VfioError.of('ECANCELED', { syscall: 'poll', path: entry.path, context: 'fd closed while waiting' }));
      }
      this.dropFile(entry.file);
    });
  }

  ioctl(fd: number, request: number, arg: Uint8Array | number | null): number {
    this.enter();
    if (request >>> 0 !== request) checkInteger('request', request, 0, 0xffff_ffff);
    const entry = this.fds.get(fd);
    // The fast path: no closures, names or contexts built unless the call fails.
    if (entry?.file.ioctl) {
      try {
        return entry.file.ioctl(request, arg, entry.ctx);
      } catch (e) {
        throw this.present(e, 'ioctl', { fd, ioctl: this.requestName(entry.file, request) });
      }
    }
    // Only an fd that is not in the table can be one the addon refuses.
    if (!entry) checkFd(fd);
    return this.syscall('ioctl', { fd, ioctl: entry ? this.requestName(entry.file, request) : ioctlName(request) }, () => {
      if (!entry) fail('EBADF');
      fail('ENOTTY');
    });
  }

  private requestName(file: OpenFile, request: number): string {
    if (file.kind === 'iommufd') return iommufdRequestName(request) ?? ioctlName(request);
    if (FILE_KINDS.includes(file.kind)) return ioctlName(request, file.kind as FileKind);
    return ioctlName(request);
  }

  pread(fd: number, into: Uint8Array, offset: bigint): number {
    this.enter();
    checkFd(fd);
    checkUnsignedBigInt('offset', offset, MAX_OFFSET);
    return this.syscall('pread', { fd }, () => {
      const entry = this.fds.get(fd);
      if (!entry) fail('EBADF');
      if ((entry.flags & ACCESS_MODE) === O_WRONLY) fail('EBADF');
      if (!entry.file.pread) fail('EINVAL');
      verifyArea(offset, into.length);
      return entry.file.pread(into, offset, this.ctx(fd));
    });
  }

  pwrite(fd: number, from: Uint8Array, offset: bigint): number {
    this.enter();
    checkFd(fd);
    checkUnsignedBigInt('offset', offset, MAX_OFFSET);
    return this.syscall('pwrite', { fd }, () => {
      const entry = this.fds.get(fd);
      if (!entry) fail('EBADF');
      if ((entry.flags & ACCESS_MODE) === O_RDONLY) fail('EBADF');
      if (!entry.file.pwrite) fail('EINVAL');
      verifyArea(offset, from.length);
      return entry.file.pwrite(from, offset, this.ctx(fd));
    });
  }

  readFile(path: string): Buffer {
    this.enter();
    return this.syscall('open', { path }, () => {
      const node = this.vfs.lookup(path);
      if (!node) fail('ENOENT');
      if (node.type === 'dir') fail('EISDIR');
      const file = this.openNode(node, path, O_RDONLY);
      try {
        if (!file.pread) fail('EINVAL');
        const chunks: Buffer[] = [];
        let offset = 0n;
        for (;;) {
          const chunk = Buffer.alloc(65536);
          const n = file.pread(chunk, offset, { fd: -1, path });
          if (n <= 0) break;
          chunks.push(chunk.subarray(0, n));
          offset += BigInt(n);
          if (offset > 64n << 20n) fail('EFBIG', 'the model reads at most 64 MiB with readFile');
        }
        return Buffer.concat(chunks);
      } finally {
        file.release?.();
      }
    });
  }

  writeFile(path: string, data: string | Uint8Array): void {
    this.enter();
    this.syscall('open', { path }, () => {
      const node = this.vfs.lookup(path);
      if (!node) fail('ENOENT');
      if (node.type === 'dir') fail('EISDIR');
      const file = this.openNode(node, path, O_WRONLY);
      try {
        if (!file.pwrite) fail('EINVAL');
        const bytes = typeof data === 'string' ? Buffer.from(data) : data;
        file.pwrite(bytes, 0n, { fd: -1, path });
      } finally {
        file.release?.();
      }
    });
  }

  readdir(path: string): string[] {
    this.enter();
    return this.syscall('scandir', { path }, () => {
      const node = this.vfs.lookup(path);
      if (!node) fail('ENOENT');
      if (node.type !== 'dir') fail('ENOTDIR');
      return [...node.children.keys()];
    });
  }

  readlink(path: string): string {
    this.enter();
    return this.syscall('readlink', { path }, () => {
      const node = this.vfs.lookup(path, false);
      if (!node) fail('ENOENT');
      if (node.type !== 'link') fail('EINVAL');
      return node.target();
    });
  }

  exists(path: string): boolean {
    this.enter();
    try {
      return this.vfs.lookup(path) !== undefined;
    } catch {
      return false;
    }
  }

  // ---- Kernel: memory ----------------------------------------------------------------------------

  mmap(fd: number, length: bigint, prot: number, flags: number, offset: bigint, placement?: MmapPlacement): Mapping {
    this.enter();
    checkFd(fd, true);
    checkUnsignedBigInt('length', length, MAX_U64);
    checkInteger('prot', prot, 0, 0x7fff_ffff);
    checkInteger('flags', flags, 0, 0x7fff_ffff);
    checkUnsignedBigInt('offset', offset, MAX_OFFSET);
    checkKernelChosenAddress(flags);
    checkPlacement(placement, this.space.memory.pageSize);
    return this.syscall('mmap', { fd: fd >= 0 ? fd : undefined }, () => {
      if (flags & MAP_ANONYMOUS) return this.space.mmap(length, prot, flags, null, offset, null, placement);
      const entry = this.fds.get(fd);
      if (!entry) fail('EBADF');
      const file = entry.file;
      const access = entry.flags & ACCESS_MODE;
      if (access === O_WRONLY) fail('EACCES');
      if (flags & MAP_SHARED && prot & PROT_WRITE && access !== O_RDWR) fail('EACCES');
      const op = file.mmap?.bind(file);
      if (!(file instanceof MemfdFile) && !op) fail('ENODEV');
      const ctx = this.ctx(fd);
      return this.space.mmap(length, prot, flags, file, offset, op ? () => op(length, prot, flags, offset, ctx) : null, placement);
    });
  }

  munmap(mapping: Mapping): void {
    this.enter();
    this.syscall('munmap', {}, () => this.space.munmap(mapping));
  }

  mlock(mapping: Mapping): void {
    this.enter();
    this.syscall('mlock', {}, () => this.space.mlock(mapping));
  }

  mmioRead(mapping: Mapping, offset: number, width: 8 | 16 | 32): number;
  mmioRead(mapping: Mapping, offset: number, width: 64): bigint;
  mmioRead(mapping: Mapping, offset: number, width: MmioWidth): number | bigint;
  mmioRead(mapping: Mapping, offset: number, width: MmioWidth): number | bigint {
    this.enter();
    const vma = this.checkMmio(mapping, offset, width);
    if (vma.backing.kind === 'mmio') {
      let v: bigint;
      try {
        v = vma.backing.read(offset, width);
      } catch (e) {
        throw this.present(e, 'mmio', {});
      }
      return width === 64 ? v : Number(v);
    }
    const view = new DataView(vma.buffer!, offset, width / 8);
    switch (width) {
      case 8:
        return view.getUint8(0);
      case 16:
        return view.getUint16(0, true);
      case 32:
        return view.getUint32(0, true);
      case 64:
        return view.getBigUint64(0, true);
    }
  }

  mmioWrite(mapping: Mapping, offset: number, width: MmioWidth, value: number | bigint): void {
    this.enter();
    const vma = this.checkMmio(mapping, offset, width);
    const max = (1n << BigInt(width)) - 1n;
    const v = BigInt(value);
    if (v < 0n || v > max) throw new RangeError(`mmioWrite: value ${value} does not fit in ${width} bits`);
    if (vma.backing.kind === 'mmio') {
      try {
        vma.backing.write(offset, width, v);
      } catch (e) {
        throw this.present(e, 'mmio', {});
      }
      return;
    }
    const view = new DataView(vma.buffer!, offset, width / 8);
    switch (width) {
      case 8:
        view.setUint8(0, Number(v));
        break;
      case 16:
        view.setUint16(0, Number(v), true);
        break;
      case 32:
        view.setUint32(0, Number(v), true);
        break;
      case 64:
        view.setBigUint64(0, v, true);
        break;
    }
  }

  private checkMmio(mapping: Mapping, offset: number, width: MmioWidth) {
    const vma = this.space.vmaOf(mapping);
    if (!vma) throw new TypeError('mmio access through a mapping that is not mapped (munmapped or foreign)');
    const bytes = width / 8;
    if (![8, 16, 32, 64].includes(width)) throw new RangeError(`mmio width ${width} is not 8, 16, 32 or 64`);
    if (!Number.isInteger(offset) || offset < 0 || offset + bytes > Number(vma.length)) {
      throw new RangeError(`mmio access of ${bytes} bytes at offset ${offset} is outside the ${vma.length}-byte mapping`);
    }
    if (offset % bytes !== 0) throw new RangeError(`mmio access of ${bytes} bytes at offset ${offset} is not naturally aligned`);
    if (this.space.beyondEof(vma, BigInt(offset))) {
      throw this.present(new KernelError('EFAULT', 'SIGBUS: the shared memfd mapping is past the end of the file there'), 'mmio', {});
    }
    return vma;
  }

  memfdCreate(name: string, flags: number): number {
    this.enter();
    // The addon's copy of the name holds 249 bytes, NAME_MAX less memfd_create's "memfd:".
    checkString('name', name, 250);
    checkInteger('flags', flags, 0, 0xffff_ffff);
    return this.syscall('memfd_create', {}, () => {
      const sizeBits = (flags >>> 26) & 0x3f;
      if (flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | (0x3f << 26))) fail('EINVAL');
      if (sizeBits && !(flags & MFD_HUGETLB)) fail('EINVAL');
      let huge: HugePageSize | null = null;
      if (flags & MFD_HUGETLB) {
        if (sizeBits === 0 || sizeBits === 21) huge = '2M';
        else if (sizeBits === 30) huge = '1G';
        else fail('EINVAL');
      }
      return this.installFile(new MemfdFile(name, this.memory, huge), `/memfd:${name} (deleted)`, O_RDWR);
    });
  }

  ftruncate(fd: number, length: bigint): void {
    this.enter();
    checkFd(fd);
    checkUnsignedBigInt('length', length, MAX_OFFSET);
    this.syscall('ftruncate', { fd }, () => {
      const entry = this.fds.get(fd);
      if (!entry) fail('EBADF');
      if (!(entry.file instanceof MemfdFile) || (entry.flags & ACCESS_MODE) === O_RDONLY) fail('EINVAL');
      entry.file.truncate(length);
    });
  }

  // ---- Kernel: eventfd and polling --------------------------------------------------------------

  eventfd(initval: number, flags: number): number {
    this.enter();
    checkInteger('initval', initval, 0, 0xffff_ffff);
    checkInteger('flags', flags, 0, 0x7fff_ffff);
    return this.syscall('eventfd', {}, () => {
      if (flags & ~(EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK)) fail('EINVAL');
      if (!Number.isInteger(initval) || initval < 0 || initval > 0xffff_ffff) fail('EINVAL');
      this.faults.point('eventfd.ctx-alloc'); // do_eventfd's kmalloc (lib/model/faults.ts)
      return this.installFile(new EventFdFile(initval, flags), 'anon_inode:[eventfd]', O_RDWR);
    });
  }

  eventfdRead(fd: number): bigint {
    this.enter();
    checkFd(fd);
    return this.syscall('read', { fd }, () => {
      const file = this.fileOf(fd);
      if (!(file instanceof EventFdFile)) fail('EINVAL');
      return file.read();
    });
  }

  eventfdWrite(fd: number, value: bigint): void {
    this.enter();
    checkFd(fd);
    checkUnsignedBigInt('value', value, MAX_U64);
    this.syscall('write', { fd }, () => {
      const file = this.fileOf(fd);
      if (!(file instanceof EventFdFile)) fail('EINVAL');
      file.write(value);
    });
  }

  waitReadable(fd: number, signal?: AbortSignal): Promise<void> {
    this.enter();
    const entry = this.fds.get(fd);
    if (!entry) return Promise.reject(VfioError.of('EBADF', { syscall: 'poll' }));
    const file = entry.file;
    if (!file.readable || file.readable()) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(VfioError.of('ECANCELED', { syscall: 'poll', path: entry.path, context: 'aborted' }));
    return new Promise<void>((resolve, reject) => {
      let waiting = this.waiters.get(fd);
      if (!waiting) this.waiters.set(fd, (waiting = new Set()));
      const set = waiting;
      const release = holdEventLoop();
      const cleanup = () => {
        release();
        unsubscribe?.();
        set.delete(onClose);
        signal?.removeEventListener('abort', onAbort);
      };
      const onClose = (err: VfioError) => {
        cleanup();
        reject(err);
      };
      const onAbort = () => {
        cleanup();
        reject(VfioError.of('ECANCELED', { syscall: 'poll', path: entry.path, context: 'aborted' }));
      };
      const unsubscribe = file.onReadable?.(() => {
        if (file.readable!()) {
          cleanup();
          resolve();
        }
      });
      set.add(onClose);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  // ---- Kernel: credentials ----------------------------------------------------------------------

  capabilities(): Capabilities {
    const c = this.profile.process.capabilities;
    return { sysRawio: c.sysRawio, sysAdmin: c.sysAdmin, ipcLock: c.ipcLock };
  }

  memlockLimit(): bigint {
    return this.profile.process.memlockLimit;
  }

  // ---- plumbing ---------------------------------------------------------------------------------

  private ctx(fd: number): SyscallContext {
    const path = this.fds.get(fd)?.path;
    return path === undefined ? { fd } : { fd, path };
  }

  /** Runs one syscall's model code; a failure comes out as the caller sees it (present). */
  private syscall<T>(syscall: string, where: SyscallSite, body: () => T): T {
    try {
      return body();
    } catch (e) {
      throw this.present(e, syscall, where);
    }
  }

  /**
   * The one place where the model's KernelError becomes the VfioError a caller sees, shaped like
   * NativeKernel's from errno: the syscall, ioctl name and path known here, and the model's
   * detail (which Linux cannot give) as `detail`. Anything else passes through untouched.
   */
  private present(e: unknown, syscall: string, where: SyscallSite): unknown {
    if (!(e instanceof KernelError)) return e;
    const path = where.path ?? (where.fd !== undefined ? this.fds.get(where.fd)?.path : undefined);
    return VfioError.of(e.code, {
      syscall,
      ...(where.ioctl ? { ioctl: where.ioctl } : {}),
      ...(path ? { path } : {}),
      ...(e.detail ? { detail: e.detail } : {}),
      cause: e,
    });
  }
}

/**
 * rw_verify_area: a positioned read or write whose range would end past the largest loff_t is
 * EINVAL for every file (none of the model's files takes unsigned offsets).
 */
function verifyArea(offset: bigint, count: number): void {
  if (offset + BigInt(count) > MAX_OFFSET) fail('EINVAL', 'the range ends past the largest file offset');
}

/**
 * SR-IOV of a physical function through sysfs (drivers/pci/iov.c): how many VFs it can have
 * (sriov_totalvfs), how many it has (sriov_numvfs), enabling and disabling them, and where they
 * are (the PF's virtfnN links, the First VF Offset and VF Stride). A PF bound to vfio-pci creates
 * VFs only when vfio-pci's enable_sriov module parameter is set; the VFs it creates are bound to
 * vfio-pci too and open only with the PF user's VF token (openDevice(vf, { vfToken })).
 */
import type { Kernel } from '../sys/kernel';
import { VfioError } from '../sys/errors';
import { kernelFrom, type KernelOptions } from '../support/kernel-options';

/**
 * vfio-pci's module parameter that lets it configure SR-IOV (default N).
 *
 * @category PCI
 */
export const VFIO_PCI_ENABLE_SRIOV = '/sys/module/vfio_pci/parameters/enable_sriov';

/**
 * The SR-IOV side of a physical function, from `PciDevice.sriov` (null when the device has no
 * SR-IOV capability).
 *
 * @example
 * ```ts
 * const pf = PciDevice.get('0000:01:00.0', { kernel });
 * const vfs = pf.sriov?.enable(2); // the VFs' addresses; bound to vfio-pci, needs its enable_sriov=1
 * ```
 *
 * @category PCI
 */
export class PciSriov {
  /** @internal Use PciDevice.sriov. */
  constructor(
    private readonly kernel: Kernel,
    /** The PF's PCI address. */
    readonly bdf: string,
    private readonly path: string,
  ) {}

  /** The PF at `path` when it has the SR-IOV capability (an sriov_totalvfs attribute), else null. */
  static at(kernel: Kernel, bdf: string, path: string): PciSriov | null {
    return kernel.exists(`${path}/sriov_totalvfs`) ? new PciSriov(kernel, bdf, path) : null;
  }

  /** Whether vfio-pci may configure SR-IOV on the PFs it drives. */
  static vfioPciAllowed(options: KernelOptions = {}): boolean {
    const kernel = kernelFrom(options);
    if (!kernel.exists(VFIO_PCI_ENABLE_SRIOV)) return false;
    return /^[Yy1]/.test(kernel.readFile(VFIO_PCI_ENABLE_SRIOV).toString('utf8'));
  }

  /** Sets vfio-pci's enable_sriov (root): a PF bound to vfio-pci can then create VFs. */
  static allowVfioPci(allowed: boolean, options: KernelOptions = {}): void {
    const kernel = kernelFrom(options);
    if (!kernel.exists(VFIO_PCI_ENABLE_SRIOV)) {
      throw VfioError.of('ENOENT', {
        syscall: 'open',
        path: VFIO_PCI_ENABLE_SRIOV,
        context: "setting vfio-pci's enable_sriov",
        hint: 'vfio-pci is not loaded, or the kernel lacks CONFIG_PCI_IOV',
      });
    }
    write(kernel, VFIO_PCI_ENABLE_SRIOV, allowed ? 'Y' : 'N', "setting vfio-pci's enable_sriov");
  }

  /** TotalVFs: the most VFs the PF can have. */
  get totalVfs(): number {
    return this.readNumber('sriov_totalvfs');
  }
  /** The VFs enabled now. */
  get numVfs(): number {
    return this.readNumber('sriov_numvfs');
  }
  /** First VF Offset and VF Stride: VF n is at the PF's routing ID + offset + n × stride. */
  get offset(): number {
    return this.readNumber('sriov_offset');
  }
  /** VF Stride: the routing-ID distance between consecutive VFs (see `offset`). */
  get stride(): number {
    return this.readNumber('sriov_stride');
  }

  /** The BDFs of the enabled VFs, VF 0 first (the PF's virtfnN links). */
  virtualFunctions(): string[] {
    const out: string[] = [];
    for (let i = 0; this.kernel.exists(`${this.path}/virtfn${i}`); i++) {
      const target = this.kernel.readlink(`${this.path}/virtfn${i}`);
      out.push(target.slice(target.lastIndexOf('/') + 1));
    }
    return out;
  }

  /**
   * Enables `count` VFs (1..totalVfs) by writing sriov_numvfs; the PF's driver creates them.
   * Enabling a different count while VFs exist is refused (EBUSY): disable first.
   */
  enable(count: number): string[] {
    if (!Number.isInteger(count) || count < 1 || count > 0xffff)
      throw new RangeError(`PciSriov.enable: count must be an integer 1..65535, not ${count}`);
    const total = this.totalVfs;
    if (count > total) throw new RangeError(`PciSriov.enable: ${this.bdf} has at most ${total} VFs, not ${count}`);
    write(this.kernel, `${this.path}/sriov_numvfs`, String(count), `enabling ${count} VFs of ${this.bdf}`, (code) => {
      if (code === 'ENOENT') {
        return PciSriov.vfioPciAllowed({ kernel: this.kernel }) || !this.kernel.exists(`${this.path}/driver`)
          ? `the PF needs a driver that configures SR-IOV (it has ${this.kernel.exists(`${this.path}/driver`) ? 'one that does not' : 'none'})`
          : `vfio-pci configures SR-IOV only with enable_sriov set: PciSriov.allowVfioPci(true) (${VFIO_PCI_ENABLE_SRIOV}) or boot with vfio_pci.enable_sriov=1`;
      }
      if (code === 'EBUSY') return `${this.numVfs} VFs are enabled already: disable() them first`;
      return undefined;
    });
    return this.virtualFunctions();
  }

  /** Removes every VF (sriov_numvfs = 0); a VF still open by a user holds this up. */
  disable(): void {
    write(this.kernel, `${this.path}/sriov_numvfs`, '0', `disabling the VFs of ${this.bdf}`);
  }

  private readNumber(attribute: string): number {
    const path = `${this.path}/${attribute}`;
    try {
      return Number.parseInt(this.kernel.readFile(path).toString('utf8').trim(), 10);
    } catch (e) {
      throw VfioError.wrap(e, { context: `reading ${attribute} of ${this.bdf}`, path });
    }
  }
}

function write(
  kernel: Kernel,
  path: string,
  value: string,
  context: string,
  hintFor: (code: string) => string | undefined = () => undefined,
): void {
  try {
    kernel.writeFile(path, value);
  } catch (e) {
    const hint = e instanceof VfioError ? hintFor(e.code) : undefined;
    throw VfioError.wrap(e, { context, path, ...(hint ? { hint } : {}) });
  }
}

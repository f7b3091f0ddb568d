/**
 * The kernel's vfio_pci_device_test on any device: config space (IDs as sysfs has them, bus
 * mastering clear right after open, then set and cleared again), all six BARs from region info
 * (every mmap-able one maps whole), MSI and MSI-X with as many vectors as the device has (up to
 * their MAX_TEST_MSI, 16), each triggered from userspace with DATA_NONE after checking its eventfd
 * is empty, and reset retried while the kernel answers EAGAIN (a reset lock it could not take).
 * Sources: vfio_pci_core.c (vfio_pci_core_enable, vfio_pci_ioctl_get_region_info,
 * vfio_pci_ioctl_reset), vfio_pci_intrs.c (vfio_pci_set_msi_trigger), vfio_pci_config.c.
 */
import type { ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import * as P from '../../uapi/pci';
import * as V from '../../uapi/vfio';
import { plainIoctl } from '../raw-ioctl';
import { casesOn, forEachVariant, type Variant } from '../fixture';
import { boundDevice, type BoundFixture } from '../fixtures';
import { configRead, configWrite, deviceInfo, eventfds, irqInfo, regionInfo, regionOffset, setIrqs } from '../steps';
import { isVfioError } from '../../sys/errors';

const PCI_STD_NUM_BARS = 6;
/** The kernel test's cap on vectors per index. */
const MAX_TEST_MSI = 16;
/** How often a reset is retried while the kernel says EAGAIN (their vfio_pci_device_reset retries too). */
const RESET_ATTEMPTS = 10;

interface MsiIndex extends Variant {
  readonly name: 'msi' | 'msix';
  readonly index: number;
}

const MSI_INDEXES: readonly MsiIndex[] = [
  { name: 'msi', index: V.VFIO_PCI_MSI_IRQ_INDEX },
  { name: 'msix', index: V.VFIO_PCI_MSIX_IRQ_INDEX },
];

const device = casesOn(boundDevice);

function sysfsId(t: CaseContext, file: 'vendor' | 'device'): number {
  return Number.parseInt(t.kernel.readFile(`/sys/bus/pci/devices/${t.env.device!.bdf}/${file}`).toString().trim(), 16);
}

function resetWithRetry(t: CaseContext, f: BoundFixture): void {
  for (let attempt = 1; ; attempt++) {
    try {
      plainIoctl(t.kernel, f.deviceFd, V.VFIO_DEVICE_RESET);
      t.note(`VFIO_DEVICE_RESET: ok after ${attempt} attempt(s)`);
      return;
    } catch (e) {
      if (!isVfioError(e) || e.code !== 'EAGAIN' || attempt === RESET_ATTEMPTS) t.fail(`VFIO_DEVICE_RESET: ${(e as Error).message}`);
    }
  }
}

export const pciDeviceCases: ConformanceCase[] = [
  device.test(
    'pci-device.config-space-read-write',
    'config space: the IDs sysfs reports, bus mastering clear right after open, then set and cleared',
    (t, f) => {
      t.equal(configRead(t, f.deviceFd, P.PCI_VENDOR_ID, 2), sysfsId(t, 'vendor'), 'vendor ID as sysfs has it');
      t.equal(configRead(t, f.deviceFd, P.PCI_DEVICE_ID, 2), sysfsId(t, 'device'), 'device ID as sysfs has it');
      const command = configRead(t, f.deviceFd, P.PCI_COMMAND, 2);
      t.check((command & P.PCI_COMMAND_MASTER) === 0, `bus mastering clear right after open (command 0x${command.toString(16)})`);
      configWrite(t, f.deviceFd, P.PCI_COMMAND, 2, command | P.PCI_COMMAND_MASTER);
      t.check((configRead(t, f.deviceFd, P.PCI_COMMAND, 2) & P.PCI_COMMAND_MASTER) !== 0, 'bus mastering set');
      configWrite(t, f.deviceFd, P.PCI_COMMAND, 2, command & ~P.PCI_COMMAND_MASTER);
      t.check((configRead(t, f.deviceFd, P.PCI_COMMAND, 2) & P.PCI_COMMAND_MASTER) === 0, 'bus mastering cleared');
    },
  ),
  device.test(
    'pci-device.validate-bars',
    'all six BARs from region info: an mmap-able BAR has a size and maps whole; the others have no mapping',
    (t, f) => {
      for (let i = 0; i < PCI_STD_NUM_BARS; i++) {
        const info = regionInfo(t, f.deviceFd, i);
        if ((info.flags & V.VFIO_REGION_INFO_FLAG_MMAP) === 0) {
          t.note(`BAR ${i}: size 0x${info.size.toString(16)}, flags 0x${info.flags.toString(16)}, no mmap`);
          t.expectErrno(`mmap BAR ${i}`, () => t.mapRegion(f.deviceFd, t.page, regionOffset(i)), 'EINVAL');
          continue;
        }
        t.check(info.size !== 0n, `BAR ${i} that supports mmap has a size`);
        t.equal(info.offset, regionOffset(i), `BAR ${i} region offset`);
        const length = ((info.size + t.page - 1n) / t.page) * t.page;
        t.ok(`mmap all 0x${length.toString(16)} bytes of BAR ${i}`, () => t.mapRegion(f.deviceFd, length, info.offset));
      }
    },
  ),
  ...forEachVariant(MSI_INDEXES, (v) =>
    device.test(
      `pci-device.irq.${v.name}.enable-trigger-disable`,
      `${v.name.toUpperCase()}: every vector (up to ${MAX_TEST_MSI}) enabled, each eventfd empty until DATA_NONE triggers it, then disabled`,
      (t, f) => {
        const count = Math.min(irqInfo(t, f.deviceFd, v.index).count, MAX_TEST_MSI);
        if (count === 0) t.skip(`the device has no ${v.name.toUpperCase()} vectors`);
        const fds = Array.from({ length: count }, () => t.eventfd());
        const trigger = V.VFIO_IRQ_SET_ACTION_TRIGGER;
        t.ok(`enable ${count} vector(s)`, () =>
          setIrqs(f, { flags: V.VFIO_IRQ_SET_DATA_EVENTFD | trigger, index: v.index, start: 0, count, data: eventfds(...fds) }),
        );
        let enabled = true;
        const disable = () => setIrqs(f, { flags: V.VFIO_IRQ_SET_DATA_NONE | trigger, index: v.index, start: 0, count: 0 });
        // Disabled at teardown when the case stopped before it disabled the index itself.
        t.defer(`disable ${v.name}`, () => {
          if (enabled) disable();
        });
        fds.forEach((fd, i) => {
          t.expectErrno(`vector ${i}: eventfd empty before the trigger`, () => t.kernel.eventfdRead(fd), 'EAGAIN');
          t.ok(`vector ${i}: DATA_NONE trigger`, () =>
            setIrqs(f, { flags: V.VFIO_IRQ_SET_DATA_NONE | trigger, index: v.index, start: i, count: 1 }),
          );
          t.equal(
            t.ok(`vector ${i}: read the eventfd`, () => t.kernel.eventfdRead(fd)),
            1n,
            `vector ${i} signalled once`,
          );
        });
        t.ok(`disable ${v.name}`, disable);
        enabled = false;
      },
    ),
  ),
  device.test('pci-device.reset', 'VFIO_DEVICE_RESET, retried while EAGAIN, on a device whose GET_INFO has FLAGS_RESET', (t, f) => {
    if ((deviceInfo(t, f.deviceFd).flags & V.VFIO_DEVICE_FLAGS_RESET) === 0)
      t.skip('the device does not support reset (no VFIO_DEVICE_FLAGS_RESET)');
    resetWithRetry(t, f);
  }),
];

/**
 * Function and bus resets. Sources: pci/vfio_pci_core.c vfio_pci_core_ioctl (VFIO_DEVICE_RESET:
 * EINVAL unless reset_works, the same test that sets VFIO_DEVICE_FLAGS_RESET),
 * vfio_pci_ioctl_get_pci_hot_reset_info (EINVAL for argsz, ENODEV when neither a slot nor a bus
 * reset exists, ENOSPC with count written back when the devices do not fit, DEV_ID and
 * DEV_ID_OWNED for a cdev-opened device) and vfio_pci_ioctl_pci_hot_reset (EINVAL for argsz,
 * flags, or a group array from a cdev-opened device; then ENODEV; the empty array resets
 * through the devices the caller's iommufd owns); drivers/pci/pci.c pci_reset_function (the
 * methods sysfs lists in reset_method).
 */
import type { ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import * as P from '../../uapi/pci';
import * as V from '../../uapi/vfio';
import { casesOn } from '../fixture';
import { attachedDevice, boundDevice, type BoundFixture } from '../fixtures';
import { VfioError } from '../../sys/errors';
import { buildStruct, plainIoctl, rawIoctl } from '../raw-ioctl';
import { configRead, deviceInfo, eventfds } from '../steps';

const bound = casesOn(boundDevice);

interface DependentDevice {
  readonly id: number;
  readonly segment: number;
  readonly bus: number;
  readonly devfn: number;
}

interface HotResetInfo {
  readonly flags: number;
  readonly count: number;
  readonly devices: readonly DependentDevice[];
}

/** GET_PCI_HOT_RESET_INFO with room for `room` devices; a failure is the kernel's errno. */
function hotResetInfo(f: BoundFixture, room: number, declaredSize?: number): HotResetInfo {
  const entry = V.VfioPciDependentDevice.size;
  const options = { trailer: new Uint8Array(room * entry), ...(declaredSize === undefined ? {} : { declaredSize }) };
  return decodeHotResetInfo(
    rawIoctl(f.t.kernel, f.deviceFd, V.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, V.VfioPciHotResetInfo, {}, options).buffer,
  );
}

function decodeHotResetInfo(buffer: Buffer): HotResetInfo {
  const head = V.VfioPciHotResetInfo.decode(buffer);
  const devices: DependentDevice[] = [];
  const room = (buffer.length - V.VfioPciHotResetInfo.size) / V.VfioPciDependentDevice.size;
  for (let i = 0; i < Math.min(head.count, room); i++) {
    const d = V.VfioPciDependentDevice.decode(buffer, V.VfioPciHotResetInfo.size + i * V.VfioPciDependentDevice.size);
    devices.push({ id: d.group_id | 0, segment: d.segment, bus: d.bus, devfn: d.devfn });
  }
  return { flags: head.flags, count: head.count, devices };
}

/** GET_PCI_HOT_RESET_INFO into a buffer the case keeps, to read what the kernel wrote back on failure. */
function hotResetInfoInto(t: CaseContext, deviceFd: number, buffer: Buffer): number {
  try {
    return t.kernel.ioctl(deviceFd, V.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO.number, buffer);
  } catch (e) {
    throw VfioError.wrap(e, { ioctl: V.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO.name });
  }
}

/** VFIO_DEVICE_PCI_HOT_RESET with these group fds (none: the cdev form). */
function hotReset(f: BoundFixture, fds: readonly number[] = [], options: { declaredSize?: number; flags?: number } = {}): () => void {
  return () => {
    rawIoctl(
      f.t.kernel,
      f.deviceFd,
      V.VFIO_DEVICE_PCI_HOT_RESET,
      V.VfioPciHotReset,
      { flags: options.flags ?? 0, count: fds.length },
      {
        trailer: eventfds(...fds),
        ...(options.declaredSize === undefined ? {} : { declaredSize: options.declaredSize }),
      },
    );
  };
}

/** The bridge above the device under test from its sysfs path, or null when it sits on a root bus. */
function upstreamBridge(t: CaseContext): string | null {
  const bdf = t.env.device!.bdf;
  const target = t.kernel.readlink(`/sys/bus/pci/devices/${bdf}`);
  const parts = target.split('/');
  const parent = parts[parts.length - 2] ?? '';
  return /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(parent) ? parent : null;
}

function parseBdf(bdf: string): { segment: number; bus: number; devfn: number } {
  const [segment, bus, slotFn] = bdf.split(':') as [string, string, string];
  const [slot, fn] = slotFn.split('.') as [string, string];
  return { segment: Number.parseInt(segment, 16), bus: Number.parseInt(bus, 16), devfn: (Number.parseInt(slot, 16) << 3) | Number(fn) };
}

function stillWorks(t: CaseContext, deviceFd: number, after: string): void {
  deviceInfo(t, deviceFd);
  t.equal(configRead(t, deviceFd, P.PCI_VENDOR_ID, 2), t.env.device!.vendorId, `vendor ID after ${after}`);
}

export const resetCases: ConformanceCase[] = [
  bound.test(
    'reset.flag-matches-methods',
    'GET_INFO reports FLAGS_RESET exactly when sysfs lists a reset method; VFIO_DEVICE_RESET is EINVAL without one',
    (t, f) => {
      const path = `/sys/bus/pci/devices/${t.env.device!.bdf}/reset_method`;
      const methods = t.kernel.exists(path) ? t.kernel.readFile(path).toString().trim() : '';
      const flag = (deviceInfo(t, f.deviceFd).flags & V.VFIO_DEVICE_FLAGS_RESET) !== 0;
      t.note(`reset_method '${methods}', FLAGS_RESET ${flag ? 'set' : 'clear'}`);
      t.equal(flag, methods !== '', 'FLAGS_RESET against a non-empty reset_method');
      if (!flag) t.expectErrno('VFIO_DEVICE_RESET', () => plainIoctl(t.kernel, f.deviceFd, V.VFIO_DEVICE_RESET), 'EINVAL');
    },
  ),
  casesOn(attachedDevice, ['function-reset']).test(
    'reset.function',
    'VFIO_DEVICE_RESET on a device with FLAGS_RESET succeeds, twice, and the device answers afterwards',
    (t, f) => {
      t.expect('VFIO_DEVICE_RESET', () => plainIoctl(t.kernel, f.deviceFd, V.VFIO_DEVICE_RESET), 'ok');
      stillWorks(t, f.deviceFd, 'the reset');
      t.expect('VFIO_DEVICE_RESET again', () => plainIoctl(t.kernel, f.deviceFd, V.VFIO_DEVICE_RESET), 'ok');
      stillWorks(t, f.deviceFd, 'the second reset');
    },
  ),
  bound.test(
    'hot-reset.bad-input',
    'hot reset info with argsz below 12, and a hot reset with argsz below 12, flags, or a group array from a cdev-opened device, are EINVAL',
    (t, f) => {
      t.expectErrno('GET_PCI_HOT_RESET_INFO argsz 11', () => hotResetInfo(f, 0, 11), 'EINVAL');
      t.expectErrno('PCI_HOT_RESET argsz 11', hotReset(f, [], { declaredSize: 11 }), 'EINVAL');
      t.expectErrno('PCI_HOT_RESET flags 1', hotReset(f, [], { flags: 1 }), 'EINVAL');
      t.expectErrno('PCI_HOT_RESET with one fd (the cdev form takes an empty array)', hotReset(f, [t.eventfd()]), 'EINVAL');
    },
  ),
  bound.test('hot-reset.root-bus', 'on a root bus (no bridge above the device) hot reset info and the hot reset are ENODEV', (t, f) => {
    const bridge = upstreamBridge(t);
    if (bridge) t.skip(`the device sits below the bridge ${bridge}`);
    t.expectErrno('GET_PCI_HOT_RESET_INFO with no room', () => hotResetInfo(f, 0), 'ENODEV');
    t.expectErrno('GET_PCI_HOT_RESET_INFO with room for 8', () => hotResetInfo(f, 8), 'ENODEV');
    t.expectErrno('PCI_HOT_RESET with an empty array', hotReset(f), 'ENODEV');
  }),
  casesOn(boundDevice, ['bus-reset']).test(
    'hot-reset.info',
    'hot reset info: with no room ENOSPC and the count written back; with room the devid form, DEV_ID_OWNED, the device itself listed with its own devid',
    (t, f) => {
      const bridge = upstreamBridge(t);
      t.check(bridge !== null, 'a bus reset reaches only a device below a bridge');
      t.note(`upstream bridge ${bridge}`);
      const small = buildStruct(V.VfioPciHotResetInfo, {});
      t.expectErrno('GET_PCI_HOT_RESET_INFO with no room', () => hotResetInfoInto(t, f.deviceFd, small), 'ENOSPC');
      const needed = decodeHotResetInfo(small).count;
      t.check(needed >= 1, `count written back on ENOSPC (${needed}) covers at least the device itself`);
      const info = t.ok(`GET_PCI_HOT_RESET_INFO with room for ${needed}`, () => hotResetInfo(f, needed));
      t.equal(info.count, needed, 'count');
      t.equal(info.flags, V.VFIO_PCI_HOT_RESET_FLAG_DEV_ID | V.VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED, 'flags (DEV_ID | DEV_ID_OWNED)');
      const self = parseBdf(t.env.device!.bdf);
      const mine = info.devices.find((d) => d.segment === self.segment && d.bus === self.bus && d.devfn === self.devfn);
      if (!mine) return t.fail(`the device ${t.env.device!.bdf} is not among the devices the reset reaches`);
      t.equal(mine.id, f.devId, 'the devid listed for the device itself');
    },
  ),
  casesOn(attachedDevice, ['bus-reset']).test(
    'hot-reset.empty-array',
    'a hot reset with an empty array, every affected device owned through the iommufd, succeeds and the device answers afterwards',
    (t, f) => {
      t.expect('PCI_HOT_RESET with an empty array', hotReset(f), 'ok');
      stillWorks(t, f.deviceFd, 'the hot reset');
    },
  ),
];

/**
 * What closing fds does to the objects behind them, device features, and the IRQ indexes edu
 * does not have. Sources: vfio/device_cdev.c + iommufd/device.c (unbind on close destroys the
 * device object and its automatic HWPT), vfio_main.c vfio_ioctl_device_feature and
 * include/linux/vfio.h vfio_check_feature, vfio/pci/vfio_pci_core.c vfio_pci_core_ioctl_feature,
 * vfio_pci_intrs.c vfio_pci_set_err_trigger.
 */
import type { ConformanceCase } from '../case';
import * as V from '../../uapi/vfio';
import { call } from '../calls';
import { casesOn } from '../fixture';
import { attachedDevice, boundDevice, type BoundFixture } from '../fixtures';
import { attach, bind, deviceInfo, eventfds, ioasAlloc, setIrqs } from '../steps';

/** DEVICE_FEATURE with just the header: flags, and a declared size when a case shortens it. */
function feature(f: BoundFixture, flags: number, declaredSize?: number): () => void {
  return () => {
    call.feature(f, { flags }, declaredSize === undefined ? {} : { declaredSize });
  };
}

const { VFIO_DEVICE_FEATURE_GET: GET, VFIO_DEVICE_FEATURE_SET: SET, VFIO_DEVICE_FEATURE_PROBE: PROBE } = V;
const bound = casesOn(boundDevice);

export const lifecycleCases: ConformanceCase[] = [
  casesOn(attachedDevice).test(
    'lifecycle.close-device-frees-ids',
    'closing a bound, attached device fd destroys its device object and automatic HWPT: their ids are reused',
    (t, f) => {
      t.equal(f.devId, 1, 'device id');
      t.equal(f.hwptId, 3, 'automatic HWPT id');
      t.closeNow(f.deviceFd);
      t.equal(ioasAlloc(t, f.iommufd), 1, 'first id allocated after the close');
      t.equal(ioasAlloc(t, f.iommufd), 3, 'second id allocated after the close');
      t.equal(ioasAlloc(t, f.iommufd), 4, 'third id allocated after the close');
    },
  ),
  bound.test(
    'lifecycle.close-iommufd-keeps-binding',
    'closing the iommufd fd does not unbind: the device keeps working and can attach to an IOAS made before',
    (t, f) => {
      const ioasId = ioasAlloc(t, f.iommufd);
      t.closeNow(f.iommufd);
      deviceInfo(t, f.deviceFd);
      attach(t, f.deviceFd, ioasId);
    },
  ),
  bound.test(
    'lifecycle.rebind-after-close',
    'after the device fd is closed, a new fd binds to the same iommufd and gets the lowest free id',
    (t, f) => {
      ioasAlloc(t, f.iommufd);
      t.closeNow(f.deviceFd);
      t.equal(bind(t, t.openDevice(), f.iommufd), 1, 'device id of the new binding');
    },
  ),
  bound.test(
    'feature.bad-input',
    'DEVICE_FEATURE: argsz below 8, unknown flag bits, GET and SET together without PROBE are EINVAL',
    (t, f) => {
      const lowPower = V.VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY;
      t.expectErrno('argsz 7', feature(f, PROBE | SET | lowPower, 7), 'EINVAL');
      t.expectErrno('flags |= 1<<19', feature(f, PROBE | SET | lowPower | (1 << 19)), 'EINVAL');
      t.expectErrno('GET | SET', feature(f, GET | SET | lowPower), 'EINVAL');
    },
  ),
  bound.test(
    'feature.probe',
    'DEVICE_FEATURE PROBE: low-power entry supports SET not GET; migration, VF token, CDX bus master and unknown features are ENOTTY',
    (t, f) => {
      t.expect('PROBE SET LOW_POWER_ENTRY', feature(f, PROBE | SET | V.VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY), 'ok');
      t.expectErrno('PROBE GET LOW_POWER_ENTRY', feature(f, PROBE | GET | V.VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY), 'EINVAL');
      t.expect('PROBE SET LOW_POWER_EXIT', feature(f, PROBE | SET | V.VFIO_DEVICE_FEATURE_LOW_POWER_EXIT), 'ok');
      t.expectErrno('PROBE GET MIGRATION (no migration driver)', feature(f, PROBE | GET | V.VFIO_DEVICE_FEATURE_MIGRATION), 'ENOTTY');
      t.expectErrno('PROBE SET PCI_VF_TOKEN (not an SR-IOV PF)', feature(f, PROBE | SET | V.VFIO_DEVICE_FEATURE_PCI_VF_TOKEN), 'ENOTTY');
      t.expectErrno('PROBE SET BUS_MASTER (a CDX feature)', feature(f, PROBE | SET | V.VFIO_DEVICE_FEATURE_BUS_MASTER), 'ENOTTY');
      t.expectErrno('PROBE GET feature 0xffff', feature(f, PROBE | GET | 0xffff), 'ENOTTY');
    },
    ['edu'],
  ),
  bound.expect(
    'irqs.msix-absent',
    'SET_IRQS on MSI-X of a device without MSI-X is EINVAL (no vectors)',
    'MSI-X disable (count 0)',
    'EINVAL',
    (f) =>
      setIrqs(f, { flags: V.VFIO_IRQ_SET_DATA_NONE | V.VFIO_IRQ_SET_ACTION_TRIGGER, index: V.VFIO_PCI_MSIX_IRQ_INDEX, start: 0, count: 0 }),
    ['edu'],
  ),
  bound.test(
    'irqs.err-and-req-triggers',
    'the error and request IRQs: an eventfd trigger, DATA_NONE loopback signals it, fd -1 removes it (loopback then EINVAL)',
    (t, f) => {
      for (const [name, index] of [
        ['ERR', V.VFIO_PCI_ERR_IRQ_INDEX],
        ['REQ', V.VFIO_PCI_REQ_IRQ_INDEX],
      ] as const) {
        const efd = t.eventfd();
        const trigger = (fd: number) => () =>
          setIrqs(f, {
            flags: V.VFIO_IRQ_SET_DATA_EVENTFD | V.VFIO_IRQ_SET_ACTION_TRIGGER,
            index,
            start: 0,
            count: 1,
            data: eventfds(fd),
          });
        const loopback = () => setIrqs(f, { flags: V.VFIO_IRQ_SET_DATA_NONE | V.VFIO_IRQ_SET_ACTION_TRIGGER, index, start: 0, count: 1 });
        t.expect(`${name} trigger`, trigger(efd), 'ok');
        t.ok(`${name} loopback`, loopback);
        t.equal(
          t.ok('read the eventfd', () => t.kernel.eventfdRead(efd)),
          1n,
          `${name} eventfd count after the loopback`,
        );
        t.expect(`${name} trigger removed with fd -1`, trigger(-1), 'ok');
        t.expectErrno(`${name} loopback without a trigger`, loopback, 'EINVAL');
        t.expectErrno(
          `${name} mask (unsupported)`,
          () =>
            setIrqs(f, {
              flags: V.VFIO_IRQ_SET_DATA_NONE | V.VFIO_IRQ_SET_ACTION_MASK,
              index,
              start: 0,
              count: 1,
            }),
          'ENOTTY',
        );
      }
    },
  ),
];

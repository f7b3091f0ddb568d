/**
 * What closing fds does to the objects behind them, device features, and the IRQ indexes edu
 * does not have. Sources: vfio/device_cdev.c + iommufd/device.c (unbind on close destroys the
 * device object and its automatic HWPT), vfio_main.c vfio_ioctl_device_feature and
 * include/linux/vfio.h vfio_check_feature, vfio/pci/vfio_pci_core.c vfio_pci_core_ioctl_feature,
 * vfio_pci_intrs.c vfio_pci_set_err_trigger.
 */
import { defineCase, type ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import * as V from '../../uapi/vfio';
import { rawIoctl } from '../raw-ioctl';
import { attach, bind, deviceInfo, ioasAlloc, openAttached, openBound } from '../steps';
import { eventfds, setIrqsCall } from './set-irqs-cases';

function featureCall(t: CaseContext, deviceFd: number, flags: number, declaredSize?: number): () => void {
  return () => {
    rawIoctl(t.kernel, deviceFd, V.VFIO_DEVICE_FEATURE, V.VfioDeviceFeature, { flags }, declaredSize === undefined ? {} : { declaredSize });
  };
}

const { VFIO_DEVICE_FEATURE_GET: GET, VFIO_DEVICE_FEATURE_SET: SET, VFIO_DEVICE_FEATURE_PROBE: PROBE } = V;

export const lifecycleCases: ConformanceCase[] = [
  defineCase({
    id: 'lifecycle.close-device-frees-ids',
    title: 'closing a bound, attached device fd destroys its device object and automatic HWPT: their ids are reused',
    needs: ['device'],
    run(t) {
      const dev = openAttached(t);
      t.equal(dev.devId, 1, 'device id');
      t.equal(dev.hwptId, 3, 'automatic HWPT id');
      t.closeNow(dev.deviceFd);
      t.equal(ioasAlloc(t, dev.iommufd), 1, 'first id allocated after the close');
      t.equal(ioasAlloc(t, dev.iommufd), 3, 'second id allocated after the close');
      t.equal(ioasAlloc(t, dev.iommufd), 4, 'third id allocated after the close');
    },
  }),
  defineCase({
    id: 'lifecycle.close-iommufd-keeps-binding',
    title: 'closing the iommufd fd does not unbind: the device keeps working and can attach to an IOAS made before',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      const ioasId = ioasAlloc(t, dev.iommufd);
      t.closeNow(dev.iommufd);
      deviceInfo(t, dev.deviceFd);
      attach(t, dev.deviceFd, ioasId);
    },
  }),
  defineCase({
    id: 'lifecycle.rebind-after-close',
    title: 'after the device fd is closed, a new fd binds to the same iommufd and gets the lowest free id',
    needs: ['device'],
    run(t) {
      const first = openBound(t);
      ioasAlloc(t, first.iommufd);
      t.closeNow(first.deviceFd);
      const again = t.openDevice();
      t.equal(bind(t, again, first.iommufd), 1, 'device id of the new binding');
    },
  }),
  defineCase({
    id: 'feature.bad-input',
    title: 'DEVICE_FEATURE: argsz below 8, unknown flag bits, GET and SET together without PROBE are EINVAL',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      const lowPower = V.VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY;
      t.expectErrno('argsz 7', featureCall(t, dev.deviceFd, PROBE | SET | lowPower, 7), 'EINVAL');
      t.expectErrno('flags |= 1<<19', featureCall(t, dev.deviceFd, PROBE | SET | lowPower | (1 << 19)), 'EINVAL');
      t.expectErrno('GET | SET', featureCall(t, dev.deviceFd, GET | SET | lowPower), 'EINVAL');
    },
  }),
  defineCase({
    id: 'feature.probe',
    title: 'DEVICE_FEATURE PROBE: low-power entry supports SET not GET; migration, VF token, CDX bus master and unknown features are ENOTTY',
    needs: ['device', 'edu'],
    run(t) {
      const dev = openBound(t);
      t.expect('PROBE SET LOW_POWER_ENTRY', featureCall(t, dev.deviceFd, PROBE | SET | V.VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY), 'ok');
      t.expectErrno('PROBE GET LOW_POWER_ENTRY', featureCall(t, dev.deviceFd, PROBE | GET | V.VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY), 'EINVAL');
      t.expect('PROBE SET LOW_POWER_EXIT', featureCall(t, dev.deviceFd, PROBE | SET | V.VFIO_DEVICE_FEATURE_LOW_POWER_EXIT), 'ok');
      t.expectErrno('PROBE GET MIGRATION (no migration driver)', featureCall(t, dev.deviceFd, PROBE | GET | V.VFIO_DEVICE_FEATURE_MIGRATION), 'ENOTTY');
      t.expectErrno('PROBE SET PCI_VF_TOKEN (not an SR-IOV PF)', featureCall(t, dev.deviceFd, PROBE | SET | V.VFIO_DEVICE_FEATURE_PCI_VF_TOKEN), 'ENOTTY');
      t.expectErrno('PROBE SET BUS_MASTER (a CDX feature)', featureCall(t, dev.deviceFd, PROBE | SET | V.VFIO_DEVICE_FEATURE_BUS_MASTER), 'ENOTTY');
      t.expectErrno('PROBE GET feature 0xffff', featureCall(t, dev.deviceFd, PROBE | GET | 0xffff), 'ENOTTY');
    },
  }),
  defineCase({
    id: 'irqs.msix-absent',
    title: 'SET_IRQS on MSI-X of a device without MSI-X is EINVAL (no vectors)',
    needs: ['device', 'edu'],
    run(t) {
      const dev = openBound(t);
      t.expectErrno('MSI-X disable (count 0)', setIrqsCall(t, dev.deviceFd, {
        flags: V.VFIO_IRQ_SET_DATA_NONE | V.VFIO_IRQ_SET_ACTION_TRIGGER, index: V.VFIO_PCI_MSIX_IRQ_INDEX, start: 0, count: 0,
      }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'irqs.err-and-req-triggers',
    title: 'the error and request IRQs: an eventfd trigger, DATA_NONE loopback signals it, fd -1 removes it (loopback then EINVAL)',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      for (const [name, index] of [['ERR', V.VFIO_PCI_ERR_IRQ_INDEX], ['REQ', V.VFIO_PCI_REQ_IRQ_INDEX]] as const) {
        const efd = t.eventfd();
        const trigger = (fd: number) => setIrqsCall(t, dev.deviceFd, {
          flags: V.VFIO_IRQ_SET_DATA_EVENTFD | V.VFIO_IRQ_SET_ACTION_TRIGGER, index, start: 0, count: 1, data: eventfds(fd),
        });
        const loopback = setIrqsCall(t, dev.deviceFd, {
          flags: V.VFIO_IRQ_SET_DATA_NONE | V.VFIO_IRQ_SET_ACTION_TRIGGER, index, start: 0, count: 1,
        });
        t.expect(`${name} trigger`, trigger(efd), 'ok');
        t.ok(`${name} loopback`, loopback);
        t.equal(t.ok('read the eventfd', () => t.kernel.eventfdRead(efd)), 1n, `${name} eventfd count after the loopback`);
        t.expect(`${name} trigger removed with fd -1`, trigger(-1), 'ok');
        t.expectErrno(`${name} loopback without a trigger`, loopback, 'EINVAL');
        t.expectErrno(`${name} mask (unsupported)`, setIrqsCall(t, dev.deviceFd, {
          flags: V.VFIO_IRQ_SET_DATA_NONE | V.VFIO_IRQ_SET_ACTION_MASK, index, start: 0, count: 1,
        }), 'ENOTTY');
      }
    },
  }),
];

/**
 * VFIO_DEVICE_SET_IRQS argument checks and the eventfd plumbing. Sources: vfio_main.c
 * vfio_set_irqs_validate_and_prepare (EINVAL for argsz, index, count/start overflow, unknown
 * flags, two data types, data too short), pci/vfio_pci_intrs.c vfio_pci_set_irqs_ioctl (ENOTTY
 * for an action the index does not support) and vfio_pci_set_intx_trigger (eventfd lookup:
 * EBADF for a closed fd, EINVAL for a file that is not an eventfd).
 */
import { defineCase, type ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import * as V from '../../uapi/vfio';
import { rawIoctl } from '../raw-ioctl';
import { irqInfo, openBound } from '../steps';

interface IrqSet {
  readonly flags: number;
  readonly index: number;
  readonly start: number;
  readonly count: number;
  /** The data[] that follows the header (s32 eventfds or u8 bools). */
  readonly data?: Uint8Array;
  readonly declaredSize?: number;
}

export function setIrqsCall(t: CaseContext, deviceFd: number, s: IrqSet): () => void {
  return () => {
    rawIoctl(t.kernel, deviceFd, V.VFIO_DEVICE_SET_IRQS, V.VfioIrqSet, { flags: s.flags, index: s.index, start: s.start, count: s.count },
      { trailer: s.data ?? new Uint8Array(0), ...(s.declaredSize === undefined ? {} : { declaredSize: s.declaredSize }) });
  };
}

export function eventfds(...fds: number[]): Uint8Array {
  const b = Buffer.alloc(4 * fds.length);
  fds.forEach((fd, i) => b.writeInt32LE(fd, 4 * i));
  return b;
}

const TRIGGER = V.VFIO_IRQ_SET_ACTION_TRIGGER;
const NONE = V.VFIO_IRQ_SET_DATA_NONE;
const EVENTFD = V.VFIO_IRQ_SET_DATA_EVENTFD;
const INTX = V.VFIO_PCI_INTX_IRQ_INDEX;
const MSI = V.VFIO_PCI_MSI_IRQ_INDEX;

/** A bound device whose INTx index has a vector (most cases here use INTx). */
function boundWithIntx(t: CaseContext): { deviceFd: number; iommufd: number } {
  const dev = openBound(t);
  if (irqInfo(t, dev.deviceFd, INTX).count === 0) t.skip('the device has no INTx pin');
  return dev;
}

export const setIrqsCases: ConformanceCase[] = [
  defineCase({
    id: 'irqs.argsz-below-min',
    title: 'SET_IRQS with argsz below 20 is EINVAL',
    needs: ['device'],
    run(t) {
      const dev = boundWithIntx(t);
      t.expectErrno('SET_IRQS argsz 19', setIrqsCall(t, dev.deviceFd, { flags: NONE | TRIGGER, index: INTX, start: 0, count: 0, declaredSize: 19 }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'irqs.index-out-of-range',
    title: 'SET_IRQS on index 5 is EINVAL',
    needs: ['device'],
    run(t) {
      const dev = boundWithIntx(t);
      t.expectErrno('SET_IRQS index 5', setIrqsCall(t, dev.deviceFd, { flags: NONE | TRIGGER, index: V.VFIO_PCI_NUM_IRQS, start: 0, count: 0 }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'irqs.count-start-overflow',
    title: 'SET_IRQS whose start + count overflows u32, or runs past the vectors, is EINVAL',
    needs: ['device'],
    run(t) {
      const dev = boundWithIntx(t);
      t.expectErrno('start 1, count 0xffffffff', setIrqsCall(t, dev.deviceFd, { flags: NONE | TRIGGER, index: INTX, start: 1, count: 0xffff_ffff }), 'EINVAL');
      t.expectErrno('start 0xffffffff, count 1', setIrqsCall(t, dev.deviceFd, { flags: NONE | TRIGGER, index: INTX, start: 0xffff_ffff, count: 1 }), 'EINVAL');
      t.expectErrno('start 0, count 2 (INTx has one vector)', setIrqsCall(t, dev.deviceFd, { flags: NONE | TRIGGER, index: INTX, start: 0, count: 2 }), 'EINVAL');
      t.expectErrno('start 1, count 0 (start past the vectors)', setIrqsCall(t, dev.deviceFd, { flags: NONE | TRIGGER, index: INTX, start: 1, count: 0 }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'irqs.two-data-types',
    title: 'SET_IRQS with two DATA bits is EINVAL',
    needs: ['device'],
    run(t) {
      const dev = boundWithIntx(t);
      t.expectErrno('DATA_NONE | DATA_BOOL', setIrqsCall(t, dev.deviceFd, {
        flags: NONE | V.VFIO_IRQ_SET_DATA_BOOL | TRIGGER, index: INTX, start: 0, count: 1, data: Uint8Array.of(1, 0, 0, 0),
      }), 'EINVAL');
      t.expectErrno('no DATA bit', setIrqsCall(t, dev.deviceFd, { flags: TRIGGER, index: INTX, start: 0, count: 1 }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'irqs.unknown-flag',
    title: 'SET_IRQS with a flag outside the data and action masks is EINVAL',
    needs: ['device'],
    run(t) {
      const dev = boundWithIntx(t);
      t.expectErrno('flags |= 1<<6', setIrqsCall(t, dev.deviceFd, { flags: NONE | TRIGGER | (1 << 6), index: INTX, start: 0, count: 1 }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'irqs.data-too-short',
    title: 'SET_IRQS whose argsz leaves no room for count eventfds is EINVAL',
    needs: ['device'],
    run(t) {
      const dev = boundWithIntx(t);
      t.expectErrno('DATA_EVENTFD count 1 without data', setIrqsCall(t, dev.deviceFd, { flags: EVENTFD | TRIGGER, index: INTX, start: 0, count: 1 }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'irqs.unsupported-action',
    title: 'an action an index does not support (MSI mask, no action at all) is ENOTTY',
    needs: ['device'],
    run(t) {
      const dev = boundWithIntx(t);
      if (irqInfo(t, dev.deviceFd, MSI).count === 0) t.skip('the device has no MSI');
      t.expectErrno('MSI ACTION_MASK', setIrqsCall(t, dev.deviceFd, { flags: NONE | V.VFIO_IRQ_SET_ACTION_MASK, index: MSI, start: 0, count: 1 }), 'ENOTTY');
      t.expectErrno('INTx with no action bit', setIrqsCall(t, dev.deviceFd, { flags: NONE, index: INTX, start: 0, count: 1 }), 'ENOTTY');
      t.expectErrno('INTx with two action bits', setIrqsCall(t, dev.deviceFd, { flags: NONE | TRIGGER | V.VFIO_IRQ_SET_ACTION_MASK, index: INTX, start: 0, count: 1 }), 'ENOTTY');
    },
  }),
  defineCase({
    id: 'irqs.invalid-eventfd',
    title: 'INTx trigger with a closed fd is EBADF, with a file that is not an eventfd EINVAL',
    needs: ['device'],
    run(t) {
      const dev = boundWithIntx(t);
      const efd = t.eventfd();
      t.closeNow(efd);
      t.expectErrno('trigger with a closed fd', setIrqsCall(t, dev.deviceFd, { flags: EVENTFD | TRIGGER, index: INTX, start: 0, count: 1, data: eventfds(efd) }), 'EBADF');
      t.expectErrno('trigger with the iommufd', setIrqsCall(t, dev.deviceFd, { flags: EVENTFD | TRIGGER, index: INTX, start: 0, count: 1, data: eventfds(dev.iommufd) }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'irqs.intx-enable-disable',
    title: 'INTx: an eventfd trigger can be set, INTx masked and unmasked, then disabled with count 0',
    needs: ['device'],
    run(t) {
      const dev = boundWithIntx(t);
      const efd = t.eventfd();
      t.expect('enable INTx with an eventfd', setIrqsCall(t, dev.deviceFd, { flags: EVENTFD | TRIGGER, index: INTX, start: 0, count: 1, data: eventfds(efd) }), 'ok');
      t.expect('mask INTx', setIrqsCall(t, dev.deviceFd, { flags: NONE | V.VFIO_IRQ_SET_ACTION_MASK, index: INTX, start: 0, count: 1 }), 'ok');
      t.expect('unmask INTx', setIrqsCall(t, dev.deviceFd, { flags: NONE | V.VFIO_IRQ_SET_ACTION_UNMASK, index: INTX, start: 0, count: 1 }), 'ok');
      t.expect('disable INTx', setIrqsCall(t, dev.deviceFd, { flags: NONE | TRIGGER, index: INTX, start: 0, count: 0 }), 'ok');
    },
  }),
  defineCase({
    id: 'irqs.msi-while-intx',
    title: 'enabling MSI while INTx is enabled is EINVAL',
    needs: ['device'],
    run(t) {
      const dev = boundWithIntx(t);
      if (irqInfo(t, dev.deviceFd, MSI).count === 0) t.skip('the device has no MSI');
      const a = t.eventfd();
      const b = t.eventfd();
      t.ok('enable INTx', setIrqsCall(t, dev.deviceFd, { flags: EVENTFD | TRIGGER, index: INTX, start: 0, count: 1, data: eventfds(a) }));
      t.expectErrno('enable MSI', setIrqsCall(t, dev.deviceFd, { flags: EVENTFD | TRIGGER, index: MSI, start: 0, count: 1, data: eventfds(b) }), 'EINVAL');
      t.ok('disable INTx', setIrqsCall(t, dev.deviceFd, { flags: NONE | TRIGGER, index: INTX, start: 0, count: 0 }));
    },
  }),
];

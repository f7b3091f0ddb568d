/**
 * VFIO_DEVICE_SET_IRQS argument checks and the eventfd plumbing. Sources: vfio_main.c
 * vfio_set_irqs_validate_and_prepare (EINVAL for argsz, index, count/start overflow, unknown
 * flags, two data types, data too short), pci/vfio_pci_intrs.c vfio_pci_set_irqs_ioctl (ENOTTY
 * for an action the index does not support) and vfio_pci_set_intx_trigger (eventfd lookup:
 * EBADF for a closed fd, EINVAL for a file that is not an eventfd).
 */
import type { ConformanceCase } from '../case';
import * as V from '../../uapi/vfio';
import { casesOn } from '../fixture';
import { boundWithIntx } from '../fixtures';
import { eventfds, irqInfo, setIrqs } from '../steps';

const TRIGGER = V.VFIO_IRQ_SET_ACTION_TRIGGER;
const NONE = V.VFIO_IRQ_SET_DATA_NONE;
const EVENTFD = V.VFIO_IRQ_SET_DATA_EVENTFD;
const INTX = V.VFIO_PCI_INTX_IRQ_INDEX;
const MSI = V.VFIO_PCI_MSI_IRQ_INDEX;

/** Most cases here use INTx, so the fixture is a bound device with an INTx vector. */
const intx = casesOn(boundWithIntx);

export const setIrqsCases: ConformanceCase[] = [
  intx.expect('irqs.argsz-below-min', 'SET_IRQS with argsz below 20 is EINVAL', 'SET_IRQS argsz 19', 'EINVAL', (f) =>
    setIrqs(f, { flags: NONE | TRIGGER, index: INTX, start: 0, count: 0, declaredSize: 19 }),
  ),
  intx.expect('irqs.index-out-of-range', 'SET_IRQS on index 5 is EINVAL', 'SET_IRQS index 5', 'EINVAL', (f) =>
    setIrqs(f, { flags: NONE | TRIGGER, index: V.VFIO_PCI_NUM_IRQS, start: 0, count: 0 }),
  ),
  intx.test('irqs.count-start-overflow', 'SET_IRQS whose start + count overflows u32, or runs past the vectors, is EINVAL', (t, f) => {
    const range = (start: number, count: number) => () => setIrqs(f, { flags: NONE | TRIGGER, index: INTX, start, count });
    t.expectErrno('start 1, count 0xffffffff', range(1, 0xffff_ffff), 'EINVAL');
    t.expectErrno('start 0xffffffff, count 1', range(0xffff_ffff, 1), 'EINVAL');
    t.expectErrno('start 0, count 2 (INTx has one vector)', range(0, 2), 'EINVAL');
    t.expectErrno('start 1, count 0 (start past the vectors)', range(1, 0), 'EINVAL');
  }),
  intx.test('irqs.two-data-types', 'SET_IRQS with two DATA bits is EINVAL', (t, f) => {
    t.expectErrno(
      'DATA_NONE | DATA_BOOL',
      () =>
        setIrqs(f, {
          flags: NONE | V.VFIO_IRQ_SET_DATA_BOOL | TRIGGER,
          index: INTX,
          start: 0,
          count: 1,
          data: Uint8Array.of(1, 0, 0, 0),
        }),
      'EINVAL',
    );
    t.expectErrno('no DATA bit', () => setIrqs(f, { flags: TRIGGER, index: INTX, start: 0, count: 1 }), 'EINVAL');
  }),
  intx.expect('irqs.unknown-flag', 'SET_IRQS with a flag outside the data and action masks is EINVAL', 'flags |= 1<<6', 'EINVAL', (f) =>
    setIrqs(f, { flags: NONE | TRIGGER | (1 << 6), index: INTX, start: 0, count: 1 }),
  ),
  intx.expect(
    'irqs.data-too-short',
    'SET_IRQS whose argsz leaves no room for count eventfds is EINVAL',
    'DATA_EVENTFD count 1 without data',
    'EINVAL',
    (f) => setIrqs(f, { flags: EVENTFD | TRIGGER, index: INTX, start: 0, count: 1 }),
  ),
  intx.test('irqs.unsupported-action', 'an action an index does not support (MSI mask, no action at all) is ENOTTY', (t, f) => {
    if (irqInfo(t, f.deviceFd, MSI).count === 0) t.skip('the device has no MSI');
    t.expectErrno(
      'MSI ACTION_MASK',
      () => setIrqs(f, { flags: NONE | V.VFIO_IRQ_SET_ACTION_MASK, index: MSI, start: 0, count: 1 }),
      'ENOTTY',
    );
    t.expectErrno('INTx with no action bit', () => setIrqs(f, { flags: NONE, index: INTX, start: 0, count: 1 }), 'ENOTTY');
    t.expectErrno(
      'INTx with two action bits',
      () => setIrqs(f, { flags: NONE | TRIGGER | V.VFIO_IRQ_SET_ACTION_MASK, index: INTX, start: 0, count: 1 }),
      'ENOTTY',
    );
  }),
  intx.test('irqs.invalid-eventfd', 'INTx trigger with a closed fd is EBADF, with a file that is not an eventfd EINVAL', (t, f) => {
    const trigger = (fd: number) => () => setIrqs(f, { flags: EVENTFD | TRIGGER, index: INTX, start: 0, count: 1, data: eventfds(fd) });
    const efd = t.eventfd();
    t.closeNow(efd);
    t.expectErrno('trigger with a closed fd', trigger(efd), 'EBADF');
    t.expectErrno('trigger with the iommufd', trigger(f.iommufd), 'EINVAL');
  }),
  intx.test(
    'irqs.intx-enable-disable',
    'INTx: an eventfd trigger can be set, INTx masked and unmasked, then disabled with count 0',
    (t, f) => {
      const efd = t.eventfd();
      t.expect(
        'enable INTx with an eventfd',
        () => setIrqs(f, { flags: EVENTFD | TRIGGER, index: INTX, start: 0, count: 1, data: eventfds(efd) }),
        'ok',
      );
      t.expect('mask INTx', () => setIrqs(f, { flags: NONE | V.VFIO_IRQ_SET_ACTION_MASK, index: INTX, start: 0, count: 1 }), 'ok');
      t.expect('unmask INTx', () => setIrqs(f, { flags: NONE | V.VFIO_IRQ_SET_ACTION_UNMASK, index: INTX, start: 0, count: 1 }), 'ok');
      t.expect('disable INTx', () => setIrqs(f, { flags: NONE | TRIGGER, index: INTX, start: 0, count: 0 }), 'ok');
    },
  ),
  intx.test(
    'irqs.intx-unmask-eventfd',
    'INTx unmask through an eventfd: set while INTx is enabled, removed with fd -1; EINVAL while INTx is off; masking through an eventfd is ENOTTY',
    (t, f) => {
      const unmaskFd = (fd: number) => () =>
        setIrqs(f, { flags: EVENTFD | V.VFIO_IRQ_SET_ACTION_UNMASK, index: INTX, start: 0, count: 1, data: eventfds(fd) });
      const unmask = t.eventfd();
      t.expectErrno('unmask eventfd while INTx is off', unmaskFd(unmask), 'EINVAL');
      t.ok('enable INTx', () => setIrqs(f, { flags: EVENTFD | TRIGGER, index: INTX, start: 0, count: 1, data: eventfds(t.eventfd()) }));
      t.expect('set the unmask eventfd', unmaskFd(unmask), 'ok');
      t.expect('remove the unmask eventfd (fd -1)', unmaskFd(-1), 'ok');
      t.expectErrno(
        'mask through an eventfd',
        () => setIrqs(f, { flags: EVENTFD | V.VFIO_IRQ_SET_ACTION_MASK, index: INTX, start: 0, count: 1, data: eventfds(unmask) }),
        'ENOTTY',
      );
      t.ok('disable INTx', () => setIrqs(f, { flags: NONE | TRIGGER, index: INTX, start: 0, count: 0 }));
    },
  ),
  intx.test('irqs.msi-while-intx', 'enabling MSI while INTx is enabled is EINVAL', (t, f) => {
    if (irqInfo(t, f.deviceFd, MSI).count === 0) t.skip('the device has no MSI');
    const a = t.eventfd();
    const b = t.eventfd();
    t.ok('enable INTx', () => setIrqs(f, { flags: EVENTFD | TRIGGER, index: INTX, start: 0, count: 1, data: eventfds(a) }));
    t.expectErrno(
      'enable MSI',
      () => setIrqs(f, { flags: EVENTFD | TRIGGER, index: MSI, start: 0, count: 1, data: eventfds(b) }),
      'EINVAL',
    );
    t.ok('disable INTx', () => setIrqs(f, { flags: NONE | TRIGGER, index: INTX, start: 0, count: 0 }));
  }),
];

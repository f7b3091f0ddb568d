/**
 * MSI-X through VFIO_DEVICE_SET_IRQS on a device that has it. Sources: pci/vfio_pci_intrs.c
 * vfio_pci_set_msi_trigger (enable with any count up to the table, grow while enabled, a vector's
 * eventfd swapped or removed with fd -1, DATA_NONE/DATA_BOOL loopback, EINVAL once disabled),
 * vfio_msi_enable (pci_alloc_irq_vectors: ERANGE for no vectors), vfio_pci_set_irqs_ioctl (no
 * MSI-X masking: ENOTTY), vfio_set_irqs_validate_and_prepare (EINVAL past the table) and
 * pci/vfio_pci_core.c get_irq_info (NORESIZE only without dynamic MSI-X allocation).
 */
import type { ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import * as P from '../../uapi/pci';
import * as V from '../../uapi/vfio';
import { casesOn } from '../fixture';
import { boundDevice, type BoundFixture } from '../fixtures';
import { configRead, eventfds, irqInfo, setIrqs } from '../steps';

const TRIGGER = V.VFIO_IRQ_SET_ACTION_TRIGGER;
const NONE = V.VFIO_IRQ_SET_DATA_NONE;
const BOOL = V.VFIO_IRQ_SET_DATA_BOOL;
const EVENTFD = V.VFIO_IRQ_SET_DATA_EVENTFD;
const MSIX = V.VFIO_PCI_MSIX_IRQ_INDEX;

const msix = casesOn(boundDevice, ['msix']);

/** SET_IRQS DATA_EVENTFD | TRIGGER on MSI-X vectors start.. with these fds (-1 removes a vector's). */
function setVectors(f: BoundFixture, start: number, ...fds: number[]): () => void {
  return () => setIrqs(f, { flags: EVENTFD | TRIGGER, index: MSIX, start, count: fds.length, data: eventfds(...fds) });
}

/** SET_IRQS DATA_NONE | TRIGGER: signals vectors start..start+count-1 from userspace (count 0 disables MSI-X). */
function loopback(f: BoundFixture, start: number, count: number): () => void {
  return () => setIrqs(f, { flags: NONE | TRIGGER, index: MSIX, start, count });
}

function disable(f: BoundFixture): () => void {
  return loopback(f, 0, 0);
}

/** Checks whether the eventfd was signalled since the last look (a non-blocking read: EAGAIN when not). */
function signalled(t: CaseContext, efd: number, what: string, expected: boolean): void {
  t.expect(`${what}: read the eventfd`, () => t.kernel.eventfdRead(efd), expected ? 'ok' : 'EAGAIN');
}

function eventfdsFor(t: CaseContext, n: number): number[] {
  return Array.from({ length: n }, () => t.eventfd());
}

/** The MSI-X table size the capability in config space states (Table Size + 1), or 0 without one. */
function msixTableSize(t: CaseContext, deviceFd: number): number {
  let at = configRead(t, deviceFd, P.PCI_CAPABILITY_LIST, 1) & 0xfc;
  for (let guard = 0; at !== 0 && guard < 48; guard++) {
    if (configRead(t, deviceFd, at, 1) === P.PCI_CAP_ID_MSIX) {
      return (configRead(t, deviceFd, at + P.PCI_MSIX_FLAGS, 2) & P.PCI_MSIX_FLAGS_QSIZE) + 1;
    }
    at = configRead(t, deviceFd, at + 1, 1) & 0xfc;
  }
  return 0;
}

/** The vector count GET_IRQ_INFO reports for MSI-X; skips when vfio-pci cannot resize while enabled. */
function resizableVectors(t: CaseContext, deviceFd: number): number {
  const info = irqInfo(t, deviceFd, MSIX);
  if (info.flags & V.VFIO_IRQ_INFO_NORESIZE)
    t.skip('MSI-X is NORESIZE here (no dynamic MSI-X allocation): vectors cannot be added while enabled');
  return info.count;
}

export const msixCases: ConformanceCase[] = [
  msix.test('msix.info', 'MSI-X IRQ info: an eventfd index whose count is the table size of the MSI-X capability', (t, f) => {
    const info = irqInfo(t, f.deviceFd, MSIX);
    t.note(`MSI-X: flags 0x${info.flags.toString(16)} count ${info.count}`);
    t.check((info.flags & V.VFIO_IRQ_INFO_EVENTFD) !== 0, 'MSI-X signals through eventfds');
    t.equal(info.flags & (V.VFIO_IRQ_INFO_MASKABLE | V.VFIO_IRQ_INFO_AUTOMASKED), 0, 'MSI-X is neither maskable nor automasked');
    t.equal(info.count, msixTableSize(t, f.deviceFd), "MSI-X count against the capability's table size");
  }),
  msix.test(
    'msix.enable-any-count',
    'MSI-X enables with 1, 2 or every vector of the table, each vector signalling its own eventfd; one more than the table is EINVAL, none ERANGE',
    (t, f) => {
      const size = irqInfo(t, f.deviceFd, MSIX).count;
      const fds = eventfdsFor(t, size);
      for (const count of [...new Set([1, Math.min(2, size), size])]) {
        t.expect(`enable MSI-X with ${count} vector(s)`, setVectors(f, 0, ...fds.slice(0, count)), 'ok');
        t.ok(`signal vector ${count - 1}`, loopback(f, count - 1, 1));
        signalled(t, fds[count - 1]!, `vector ${count - 1}`, true);
        t.expect(`disable MSI-X (after ${count})`, disable(f), 'ok');
      }
      t.expectErrno(`enable with ${size + 1} vectors`, setVectors(f, 0, ...fds, t.eventfd()), 'EINVAL');
      t.expectErrno('enable with start at the table size', setVectors(f, size, fds[0]!), 'EINVAL');
      t.expectErrno('enable with DATA_EVENTFD and count 0 (no vectors to allocate)', setVectors(f, 0), 'ERANGE');
    },
  ),
  msix.test(
    'msix.grow-and-shrink',
    'MSI-X grows while enabled (vectors added past the first), shrinks by removing vectors with fd -1, and re-enables with fewer',
    (t, f) => {
      const size = resizableVectors(t, f.deviceFd);
      if (size < 4) t.skip(`the device has ${size} MSI-X vectors; growing from 1 to 4 needs 4`);
      const fds = eventfdsFor(t, 4);
      t.expect('enable MSI-X with 1 vector', setVectors(f, 0, fds[0]!), 'ok');
      t.expect('grow: vectors 1-3 added while enabled', setVectors(f, 1, fds[1]!, fds[2]!, fds[3]!), 'ok');
      t.ok('signal vectors 0-3', loopback(f, 0, 4));
      fds.forEach((fd, i) => signalled(t, fd, `vector ${i} after growing`, true));
      t.expect('shrink: vectors 2-3 removed with fd -1', setVectors(f, 2, -1, -1), 'ok');
      t.expect('signal vectors 0-3 (2 and 3 have no eventfd)', loopback(f, 0, 4), 'ok');
      fds.forEach((fd, i) => signalled(t, fd, `vector ${i} after shrinking`, i < 2));
      t.expect('disable MSI-X', disable(f), 'ok');
      t.expect('re-enable with 2 vectors', setVectors(f, 0, fds[0]!, fds[1]!), 'ok');
      t.expect('signal vector 3 (not enabled)', loopback(f, 3, 1), 'ok');
      signalled(t, fds[3]!, 'vector 3 after re-enabling with 2', false);
      t.ok('disable MSI-X', disable(f));
    },
  ),
  msix.test(
    'msix.vector-swap-and-remove',
    "a vector's eventfd can be swapped while MSI-X is enabled, and removed with fd -1; a removed vector's trigger succeeds and signals nothing",
    (t, f) => {
      const [a, b, c] = eventfdsFor(t, 3) as [number, number, number];
      t.ok('enable MSI-X with 2 vectors', setVectors(f, 0, a, b));
      t.expect('swap vector 1 to a new eventfd', setVectors(f, 1, c), 'ok');
      t.ok('signal vector 1', loopback(f, 1, 1));
      signalled(t, c, 'the new eventfd of vector 1', true);
      signalled(t, b, 'the old eventfd of vector 1', false);
      t.expect("remove vector 0's eventfd (fd -1)", setVectors(f, 0, -1), 'ok');
      t.expect('signal vector 0', loopback(f, 0, 1), 'ok');
      signalled(t, a, 'the removed eventfd of vector 0', false);
      t.expect('give vector 0 an eventfd again', setVectors(f, 0, a), 'ok');
      t.ok('signal vector 0', loopback(f, 0, 1));
      signalled(t, a, 'vector 0 after it got its eventfd back', true);
      t.ok('disable MSI-X', disable(f));
    },
  ),
  msix.test(
    'msix.loopback',
    'MSI-X loopback: DATA_NONE signals every vector of the range, DATA_BOOL only those whose byte is set',
    (t, f) => {
      const fds = eventfdsFor(t, 3);
      t.ok('enable MSI-X with 3 vectors', setVectors(f, 0, ...fds));
      t.expect('DATA_NONE on vectors 1-2', loopback(f, 1, 2), 'ok');
      fds.forEach((fd, i) => signalled(t, fd, `vector ${i} after DATA_NONE 1-2`, i > 0));
      t.expect(
        'DATA_BOOL [1, 0, 1] on vectors 0-2',
        () =>
          setIrqs(f, {
            flags: BOOL | TRIGGER,
            index: MSIX,
            start: 0,
            count: 3,
            data: Uint8Array.of(1, 0, 1),
          }),
        'ok',
      );
      fds.forEach((fd, i) => signalled(t, fd, `vector ${i} after DATA_BOOL`, i !== 1));
      t.ok('disable MSI-X', disable(f));
      t.expectErrno('DATA_NONE once MSI-X is disabled', loopback(f, 0, 1), 'EINVAL');
      t.expectErrno('disable again (MSI-X not enabled)', disable(f), 'EINVAL');
    },
  ),
  msix.test(
    'msix.exclusive',
    'MSI-X excludes INTx and MSI: enabling either while MSI-X is on is EINVAL, and MSI-X while INTx (or MSI) is on too',
    (t, f) => {
      const [a, b] = eventfdsFor(t, 2) as [number, number];
      const intx = (fd: number) => () =>
        setIrqs(f, { flags: EVENTFD | TRIGGER, index: V.VFIO_PCI_INTX_IRQ_INDEX, start: 0, count: 1, data: eventfds(fd) });
      const msi = (fd: number) => () =>
        setIrqs(f, { flags: EVENTFD | TRIGGER, index: V.VFIO_PCI_MSI_IRQ_INDEX, start: 0, count: 1, data: eventfds(fd) });
      const hasIntx = irqInfo(t, f.deviceFd, V.VFIO_PCI_INTX_IRQ_INDEX).count > 0;
      const hasMsi = irqInfo(t, f.deviceFd, V.VFIO_PCI_MSI_IRQ_INDEX).count > 0;
      t.note(`INTx ${hasIntx ? 'present' : 'absent'}, MSI ${hasMsi ? 'present' : 'absent'}`);
      t.ok('enable MSI-X', setVectors(f, 0, a));
      t.expectErrno('enable INTx while MSI-X is on', intx(b), 'EINVAL');
      t.expectErrno('enable MSI while MSI-X is on', msi(b), 'EINVAL');
      t.ok('disable MSI-X', disable(f));
      if (hasIntx) {
        t.ok('enable INTx', intx(b));
        t.expectErrno('enable MSI-X while INTx is on', setVectors(f, 0, a), 'EINVAL');
        t.ok('disable INTx', () => setIrqs(f, { flags: NONE | TRIGGER, index: V.VFIO_PCI_INTX_IRQ_INDEX, start: 0, count: 0 }));
      }
      if (hasMsi) {
        t.ok('enable MSI', msi(b));
        t.expectErrno('enable MSI-X while MSI is on', setVectors(f, 0, a), 'EINVAL');
        t.ok('disable MSI', () => setIrqs(f, { flags: NONE | TRIGGER, index: V.VFIO_PCI_MSI_IRQ_INDEX, start: 0, count: 0 }));
      }
      t.expect('enable MSI-X once the others are off', setVectors(f, 0, a), 'ok');
      t.ok('disable MSI-X', disable(f));
    },
  ),
  msix.test(
    'msix.err-req-beside',
    'the error and request IRQs work beside MSI-X: their triggers are set and signal while MSI-X is enabled',
    (t, f) => {
      const vector = t.eventfd();
      t.ok('enable MSI-X', setVectors(f, 0, vector));
      for (const [name, index] of [
        ['ERR', V.VFIO_PCI_ERR_IRQ_INDEX],
        ['REQ', V.VFIO_PCI_REQ_IRQ_INDEX],
      ] as const) {
        const efd = t.eventfd();
        t.expect(
          `${name} trigger while MSI-X is on`,
          () => setIrqs(f, { flags: EVENTFD | TRIGGER, index, start: 0, count: 1, data: eventfds(efd) }),
          'ok',
        );
        t.ok(`${name} loopback`, () => setIrqs(f, { flags: NONE | TRIGGER, index, start: 0, count: 1 }));
        signalled(t, efd, `${name} eventfd`, true);
        t.expect(`${name} trigger removed`, () => setIrqs(f, { flags: NONE | TRIGGER, index, start: 0, count: 0 }), 'ok');
      }
      t.ok('signal vector 0', loopback(f, 0, 1));
      signalled(t, vector, 'MSI-X vector 0 beside ERR and REQ', true);
      t.ok('disable MSI-X', disable(f));
    },
  ),
  msix.test('msix.no-masking', 'MSI-X has no SET_IRQS masking: MASK and UNMASK are ENOTTY, enabled or not', (t, f) => {
    const mask = (action: number) => () => setIrqs(f, { flags: NONE | action, index: MSIX, start: 0, count: 1 });
    t.expectErrno('MASK (MSI-X disabled)', mask(V.VFIO_IRQ_SET_ACTION_MASK), 'ENOTTY');
    t.ok('enable MSI-X', setVectors(f, 0, t.eventfd()));
    t.expectErrno('MASK (MSI-X enabled)', mask(V.VFIO_IRQ_SET_ACTION_MASK), 'ENOTTY');
    t.expectErrno('UNMASK (MSI-X enabled)', mask(V.VFIO_IRQ_SET_ACTION_UNMASK), 'ENOTTY');
    t.ok('disable MSI-X', disable(f));
  }),
  msix.test('msix.range-checks', 'MSI-X SET_IRQS past the table is EINVAL, enabled or not', (t, f) => {
    const size = irqInfo(t, f.deviceFd, MSIX).count;
    const [a, b] = eventfdsFor(t, 2) as [number, number];
    t.expectErrno(`vectors ${size - 1}-${size} (one past the table)`, setVectors(f, size - 1, a, b), 'EINVAL');
    t.ok('enable MSI-X', setVectors(f, 0, a));
    t.expectErrno(`vectors ${size - 1}-${size} while enabled`, setVectors(f, size - 1, a, b), 'EINVAL');
    t.expectErrno(`DATA_NONE on vector ${size}`, loopback(f, size, 1), 'EINVAL');
    t.ok('disable MSI-X', disable(f));
  }),
];

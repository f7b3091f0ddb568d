/**
 * The fixtures the conformance cases start from, each built on the one before it like the
 * kernel's iommufd selftest fixtures: an iommufd; an IOAS in it; the device cdev opened next to an
 * iommufd; that device bound; bound with an IOAS; attached to it; and a buffer mapped into the
 * attached IOAS. Every fd and mapping is owned by the case's context (released at teardown, last
 * first), and the setup order is the order the cases always used, so object ids come out the same.
 */
import type { Mapping } from '../sys/kernel';
import * as V from '../uapi/vfio';
import { defineFixture, extendFixture, setUp, type Fixture } from './fixture';
import { attach, bind, eventfds, irqInfo, ioasAlloc, map, setIrqs } from './steps';
import type { FixtureValue } from './struct-call';

export interface IommufdFixture extends FixtureValue {
  readonly iommufd: number;
}

export interface IoasFixture extends IommufdFixture {
  readonly ioasId: number;
}

/** An IOAS and some fresh memory to map into it. */
export interface IoasWithMemoryFixture extends IoasFixture {
  readonly userVa: bigint;
}

/** The device cdev and an iommufd, both open, nothing bound (the noiommu selftest's fixture). */
export interface OpenDeviceFixture extends IommufdFixture {
  readonly deviceFd: number;
}

export interface BoundFixture extends OpenDeviceFixture {
  readonly devId: number;
}

export interface BoundWithIoasFixture extends BoundFixture {
  readonly ioasId: number;
}

export interface AttachedFixture extends BoundWithIoasFixture {
  /** The HWPT the kernel chose for the IOAS (written back in pt_id). */
  readonly hwptId: number;
}

/** An attached device with a buffer mapped at a fixed IOVA. */
export interface MappedFixture extends AttachedFixture {
  readonly memory: Mapping;
  readonly userVa: bigint;
  readonly iova: bigint;
  readonly length: bigint;
}

export const iommufd: Fixture<IommufdFixture> = defineFixture({
  name: 'an iommufd',
  needs: [],
  setup: (t) => ({ t, iommufd: t.openIommufd() }),
});

export const ioas: Fixture<IoasFixture> = extendFixture(iommufd, 'an IOAS', (f) => ({ ...f, ioasId: ioasAlloc(f.t, f.iommufd) }));

/** An IOAS no device is attached to, and two pages of memory. */
export const ioasWithMemory: Fixture<IoasWithMemoryFixture> = extendFixture(ioas, 'an IOAS and two pages of memory', (f) => ({
  ...f,
  userVa: f.t.anonymousMemory(f.t.page * 2n).address,
}));

export const openDevice: Fixture<OpenDeviceFixture> = defineFixture({
  name: 'the device cdev and an iommufd',
  needs: ['device'],
  setup: (t) => {
    const deviceFd = t.openDevice();
    return { t, deviceFd, iommufd: t.openIommufd() };
  },
});

export const boundDevice: Fixture<BoundFixture> = extendFixture(openDevice, 'a bound device', (f) => ({
  ...f,
  devId: bind(f.t, f.deviceFd, f.iommufd),
}));

export const boundWithIoas: Fixture<BoundWithIoasFixture> = extendFixture(boundDevice, 'a bound device and an IOAS', (f) => ({
  ...f,
  ioasId: ioasAlloc(f.t, f.iommufd),
}));

export const attachedDevice: Fixture<AttachedFixture> = extendFixture(boundWithIoas, 'a device attached to an IOAS', (f) => ({
  ...f,
  hwptId: attach(f.t, f.deviceFd, f.ioasId),
}));

/** A bound device whose INTx index has a vector; skips the case otherwise. */
export const boundWithIntx: Fixture<BoundFixture> = extendFixture(boundDevice, 'a bound device with INTx', (f) => {
  if (irqInfo(f.t, f.deviceFd, V.VFIO_PCI_INTX_IRQ_INDEX).count === 0) f.t.skip('the device has no INTx pin');
  return f;
});

export interface MappedVariant {
  readonly pages: number;
  /** Back the buffer with huge pages (physically contiguous runs). */
  readonly hugetlb?: boolean;
}

/** The IOVA a mapped-buffer fixture maps its buffer at. */
const MAPPED_IOVA = 0x100000n;

/** `pages` pages mapped read/write at MAPPED_IOVA of an attached IOAS. */
export function mappedBuffer(variant: MappedVariant): Fixture<MappedFixture> {
  return extendFixture(attachedDevice, `${variant.pages} mapped page(s)`, (f) => {
    const length = f.t.page * BigInt(variant.pages);
    const memory = f.t.anonymousMemory(length, { hugetlb: variant.hugetlb ?? false });
    map(f.t, f.iommufd, f.ioasId, { userVa: memory.address, length, iova: MAPPED_IOVA });
    return { ...f, memory, userVa: memory.address, iova: MAPPED_IOVA, length };
  });
}

export interface IrqTriggerFixture extends BoundFixture {
  /** The eventfd the interrupt signals. */
  readonly eventfd: number;
}

/** A bound device with an eventfd trigger on IRQ index `index`, disabled again at teardown. */
export function irqTrigger(index: number, name: string): Fixture<IrqTriggerFixture> {
  const trigger = V.VFIO_IRQ_SET_ACTION_TRIGGER;
  return defineFixture({
    name: `a bound device with an ${name} trigger`,
    needs: boundDevice.needs,
    setup: (t) => {
      const f = setUp(boundDevice, t);
      const eventfd = t.eventfd();
      t.ok(`enable ${name}`, () =>
        setIrqs(f, { flags: V.VFIO_IRQ_SET_DATA_EVENTFD | trigger, index, start: 0, count: 1, data: eventfds(eventfd) }),
      );
      return { ...f, eventfd };
    },
    teardown: (f) => setIrqs(f, { flags: V.VFIO_IRQ_SET_DATA_NONE | trigger, index, start: 0, count: 0 }),
  });
}

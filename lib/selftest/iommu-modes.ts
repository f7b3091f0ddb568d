/**
 * The IOMMU modes as fixture variants, after the kernel selftests' FIXTURE_VARIANT_ADD_ALL_IOMMU_MODES
 * (tools/testing/selftests/vfio/lib/iommu.c): the device reached through a type1 container (v1 or
 * v2), through an iommufd standing in for a container (the compat path: group SET_CONTAINER on the
 * iommufd, SET_IOMMU, MAP/UNMAP_DMA on it), or through its cdev on an IOAS; plus the two ways a
 * noiommu device is reached, which the kernel's library cannot open (cdev noiommu-vfioN, group
 * /dev/vfio/noiommu-N). Each row sets up the device and hands the case one map/unmap interface,
 * so the same case body states each mode's answer.
 */
import * as V from '../uapi/vfio';
import { iommuGetInfo } from '../ioctl/container-ioctls';
import type { Need } from './case';
import type { CaseContext } from './context';
import { call } from './calls';
import { defineFixture, type Fixture, type Variant } from './fixture';
import { plainIoctl } from './raw-ioctl';
import { attach, bind, ioasAlloc, iovaRanges } from './steps';
import { on, type FixtureValue } from './struct-call';
import type { Mode } from './types';

/** How the mode maps DMA: the type1 ioctls on a container-like fd, the IOAS ioctls, or not at all. */
export type DmaInterface = 'type1' | 'ioas' | 'none';

export interface IommuModeRow extends Variant {
  /** The kernel selftests' mode name, or ours for the noiommu rows. */
  readonly name:
    | 'vfio_type1_iommu'
    | 'vfio_type1v2_iommu'
    | 'iommufd_compat_type1'
    | 'iommufd_compat_type1v2'
    | 'iommufd'
    | 'noiommu_cdev'
    | 'noiommu_group';
  /** The environment mode this row runs in (a noiommu device has no type1 row, an IOMMU device no noiommu row). */
  readonly environment: Mode;
  readonly dma: DmaInterface;
  readonly needs: readonly Need[];
}

export const IOMMU_MODES: readonly IommuModeRow[] = [
  { name: 'vfio_type1_iommu', environment: 'iommu', dma: 'type1', needs: ['device', 'group-interface', 'container'] },
  { name: 'vfio_type1v2_iommu', environment: 'iommu', dma: 'type1', needs: ['device', 'group-interface', 'container'] },
  { name: 'iommufd_compat_type1', environment: 'iommu', dma: 'type1', needs: ['device', 'group-interface'] },
  { name: 'iommufd_compat_type1v2', environment: 'iommu', dma: 'type1', needs: ['device', 'group-interface'] },
  { name: 'iommufd', environment: 'iommu', dma: 'ioas', needs: ['device'] },
  { name: 'noiommu_cdev', environment: 'noiommu', dma: 'ioas', needs: ['device'] },
  { name: 'noiommu_group', environment: 'noiommu', dma: 'none', needs: ['device', 'group-interface', 'container'] },
];

/** The case id segment of a row (ids are dotted lowercase words). */
export function modeId(row: IommuModeRow): string {
  return row.name.replace(/_/g, '-');
}

export interface IommuModeFixture extends FixtureValue {
  readonly row: IommuModeRow;
  readonly deviceFd: number;
  /** The fd the DMA ioctls go to: the container, the iommufd (compat or IOAS). */
  readonly dmaFd: number;
  /** The IOAS of the ioas rows (0 for the others). */
  readonly ioasId: number;
  /** Maps `size` bytes at `vaddr` read/write at a fixed IOVA; throws the kernel's errno. */
  map(vaddr: bigint, iova: bigint, size: bigint): void;
  /** Unmaps a range; returns the bytes the kernel reports unmapped. */
  unmap(iova: bigint, size: bigint): bigint;
  /** UNMAP_DMA with or without VFIO_DMA_UNMAP_FLAG_ALL as given (type1 rows only). */
  unmapWithFlags(iova: bigint, size: bigint, all: boolean): bigint;
  /** Unmaps everything (VFIO_DMA_UNMAP_FLAG_ALL, or IOAS_UNMAP of 0..2^64-1); returns the bytes. */
  unmapAll(): bigint;
  /** The usable IOVA ranges (inclusive ends): the type1 IOVA-range capability or IOAS_IOVA_RANGES. */
  iovaRanges(): { start: bigint; last: bigint }[];
}

/** The VFIO_SET_IOMMU type each group row asks for. */
export const TYPE1_TYPE: Partial<Record<IommuModeRow['name'], number>> = {
  vfio_type1_iommu: V.VFIO_TYPE1_IOMMU,
  vfio_type1v2_iommu: V.VFIO_TYPE1v2_IOMMU,
  iommufd_compat_type1: V.VFIO_TYPE1_IOMMU,
  iommufd_compat_type1v2: V.VFIO_TYPE1v2_IOMMU,
  noiommu_group: V.VFIO_NOIOMMU_IOMMU,
};

function setContainer(t: CaseContext, groupFd: number, containerFd: number): void {
  const arg = Buffer.alloc(4);
  arg.writeInt32LE(containerFd);
  t.ok('VFIO_GROUP_SET_CONTAINER', () => t.kernel.ioctl(groupFd, V.VFIO_GROUP_SET_CONTAINER.number, arg));
}

/** Group, container (or iommufd), SET_IOMMU, GET_DEVICE_FD: what iommu.c + vfio_pci_device.c do for a type1 mode. */
function openThroughGroup(t: CaseContext, row: IommuModeRow): { deviceFd: number; dmaFd: number } {
  const device = t.env.device!;
  const dmaFd = row.name.startsWith('iommufd_compat') ? t.openIommufd() : t.open('/dev/vfio/vfio');
  const group = t.open(device.groupPath!);
  setContainer(t, group, dmaFd);
  t.ok(`VFIO_SET_IOMMU ${TYPE1_TYPE[row.name]}`, () => plainIoctl(t.kernel, dmaFd, V.VFIO_SET_IOMMU, TYPE1_TYPE[row.name]!));
  const deviceFd = t.ok('VFIO_GROUP_GET_DEVICE_FD', () =>
    t.kernel.ioctl(group, V.VFIO_GROUP_GET_DEVICE_FD.number, Buffer.from(`${device.bdf}\0`)),
  );
  t.ownFd(deviceFd, `device fd of ${device.bdf}`);
  return { deviceFd, dmaFd };
}

function type1Fixture(t: CaseContext, row: IommuModeRow): IommuModeFixture {
  const { deviceFd, dmaFd } = openThroughGroup(t, row);
  const f = on(t, { iommufd: dmaFd });
  return {
    t,
    row,
    deviceFd,
    dmaFd,
    ioasId: 0,
    map: (vaddr, iova, size) => {
      call.dmaMap(f, { vaddr, iova, size });
    },
    unmap: (iova, size) => call.dmaUnmap(f, { iova, size }).size,
    unmapWithFlags: (iova, size, all) => call.dmaUnmap(f, { flags: all ? V.VFIO_DMA_UNMAP_FLAG_ALL : 0, iova, size }).size,
    unmapAll: () => call.dmaUnmap(f, { flags: V.VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n }).size,
    iovaRanges: () => iommuGetInfo(t.kernel, dmaFd).iovaRanges.map((r) => ({ start: r.start, last: r.end })),
  };
}

function ioasFixture(t: CaseContext, row: IommuModeRow): IommuModeFixture {
  const deviceFd = t.openDevice();
  const iommufd = t.openIommufd();
  bind(t, deviceFd, iommufd);
  const ioasId = ioasAlloc(t, iommufd);
  attach(t, deviceFd, ioasId);
  const f = on(t, { iommufd, ioasId });
  return {
    t,
    row,
    deviceFd,
    dmaFd: iommufd,
    ioasId,
    map: (vaddr, iova, length) => {
      call.map(f, { user_va: vaddr, iova, length });
    },
    unmap: (iova, length) => call.unmap(f, { iova, length }).length,
    unmapWithFlags: () => t.fail('UNMAP_DMA flags are for the type1 modes'),
    unmapAll: () => call.unmap(f, { iova: 0n, length: (1n << 64n) - 1n }).length,
    iovaRanges: () => iovaRanges(f).ranges,
  };
}

/** The device set up in one IOMMU mode; skips when the environment is the other mode. */
export function inIommuMode(row: IommuModeRow): Fixture<IommuModeFixture> {
  return defineFixture({
    name: `the device in ${row.name} mode`,
    needs: row.needs,
    setup: (t) => {
      if (t.mode !== row.environment) {
        t.skip(
          row.environment === 'iommu'
            ? `${row.name} needs a device behind an IOMMU; this one is a noiommu device`
            : `${row.name} is the noiommu way to reach a device; this one is behind an IOMMU`,
        );
      }
      // A noiommu container takes the type1 ioctls too, and its driver answers none of them.
      return row.dma === 'ioas' ? ioasFixture(t, row) : type1Fixture(t, row);
    },
  });
}

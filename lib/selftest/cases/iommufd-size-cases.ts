/**
 * The size rule every iommufd ioctl shares (drivers/iommu/iommufd/main.c iommufd_fops_ioctl): the
 * struct's leading `size` below the command's minimum (offsetofend of its last original field) →
 * EINVAL; larger than the kernel's struct with a non-zero byte past it → E2BIG
 * (copy_struct_from_user); larger with only zeros past it → accepted and executed as if exact.
 *
 * Each ioctl gets a body whose outcome is known and is neither EINVAL nor E2BIG (an id that does
 * not exist, a type the kernel rejects), so the three size variants are told apart by errno.
 */
import { knowsCommand, type ConformanceCase, type Need } from '../case';
import type { FieldType, StructType, StructValue } from '../../uapi/codec';
import type { IoctlRequest } from '../../uapi/requests';
import * as I from '../../uapi/iommufd';
import { casesOn, forEachVariant, type Variant } from '../fixture';
import { iommufd, type IommufdFixture } from '../fixtures';
import { buildStruct } from '../raw-ioctl';
import type { Outcome } from '../types';

interface SizeProbe<S extends Record<string, FieldType>> {
  readonly request: IoctlRequest;
  readonly type: StructType<S>;
  /** The last field of the command's first version: the minimum size ends there. */
  readonly minField: keyof S & string;
  /** Fields of a body with a known outcome (besides size). */
  readonly body: Partial<StructValue<S>>;
  /** What that body does, with the reason from the source. */
  readonly outcome: Outcome;
  readonly why: string;
  /** What running the command (not the size checks, which come first) needs. */
  readonly needs?: readonly Need[];
}

function probe<S extends Record<string, FieldType>>(p: SizeProbe<S>): SizeProbe<Record<string, FieldType>> {
  return p as unknown as SizeProbe<Record<string, FieldType>>;
}

const R = I.IOMMU_IOAS_MAP_READABLE;

/** One probe per iommufd command of 7.3 (IOCTL_OP table order). */
const PROBES: SizeProbe<Record<string, FieldType>>[] = [
  probe({
    request: I.IOMMU_DESTROY,
    type: I.IommuDestroy,
    minField: 'id',
    body: { id: 0 },
    outcome: 'ENOENT',
    why: 'id 0 is never allocated',
  }),
  probe({
    request: I.IOMMU_FAULT_QUEUE_ALLOC,
    type: I.IommuFaultAlloc,
    minField: 'out_fault_fd',
    body: { flags: 1 },
    outcome: 'EOPNOTSUPP',
    why: 'iommufd_fault_alloc: flags must be 0',
  }),
  probe({
    request: I.IOMMU_GET_HW_INFO,
    type: I.IommuHwInfo,
    minField: '__reserved',
    body: { dev_id: 0 },
    outcome: 'ENOENT',
    why: 'no device with id 0',
  }),
  probe({
    request: I.IOMMU_HW_QUEUE_ALLOC,
    type: I.IommuHwQueueAlloc,
    minField: 'length',
    body: {},
    outcome: 'EOPNOTSUPP',
    why: 'type 0 (DEFAULT) is rejected',
  }),
  probe({
    request: I.IOMMU_HWPT_ALLOC,
    type: I.IommuHwptAlloc,
    minField: '__reserved',
    body: { dev_id: 0 },
    outcome: 'ENOENT',
    why: 'no device with id 0',
  }),
  probe({
    request: I.IOMMU_HWPT_GET_DIRTY_BITMAP,
    type: I.IommuHwptGetDirtyBitmap,
    minField: 'data',
    body: { hwpt_id: 0 },
    outcome: 'ENOENT',
    why: 'no HWPT with id 0',
  }),
  probe({
    request: I.IOMMU_HWPT_INVALIDATE,
    type: I.IommuHwptInvalidate,
    minField: '__reserved',
    body: { hwpt_id: 0 },
    outcome: 'ENOENT',
    why: 'no object with id 0',
  }),
  probe({
    request: I.IOMMU_HWPT_SET_DIRTY_TRACKING,
    type: I.IommuHwptSetDirtyTracking,
    minField: '__reserved',
    body: { hwpt_id: 0 },
    outcome: 'ENOENT',
    why: 'no HWPT with id 0',
  }),
  probe({
    request: I.IOMMU_IOAS_ALLOC,
    type: I.IommuIoasAlloc,
    minField: 'out_ioas_id',
    body: {},
    outcome: 'ok',
    why: 'allocates an IOAS',
  }),
  probe({
    request: I.IOMMU_IOAS_ALLOW_IOVAS,
    type: I.IommuIoasAllowIovas,
    minField: 'allowed_iovas',
    body: { ioas_id: 0 },
    outcome: 'ENOENT',
    why: 'no IOAS with id 0',
  }),
  probe({
    request: I.IOMMU_IOAS_CHANGE_PROCESS,
    type: I.IommuIoasChangeProcess,
    minField: '__reserved',
    body: {},
    outcome: 'ok',
    why: 'nothing is mapped, so there is nothing to move',
  }),
  probe({
    request: I.IOMMU_IOAS_COPY,
    type: I.IommuIoasCopy,
    minField: 'src_iova',
    body: { flags: R, src_ioas_id: 0, length: 4096n },
    outcome: 'ENOENT',
    why: 'no source IOAS with id 0',
  }),
  probe({
    request: I.IOMMU_IOAS_IOVA_RANGES,
    type: I.IommuIoasIovaRanges,
    minField: 'out_iova_alignment',
    body: { ioas_id: 0 },
    outcome: 'ENOENT',
    why: 'no IOAS with id 0',
  }),
  probe({
    request: I.IOMMU_IOAS_MAP,
    type: I.IommuIoasMap,
    minField: 'iova',
    body: { flags: R, ioas_id: 0, length: 4096n },
    outcome: 'ENOENT',
    why: 'no IOAS with id 0',
  }),
  probe({
    request: I.IOMMU_IOAS_MAP_FILE,
    type: I.IommuIoasMapFile,
    minField: 'iova',
    body: { flags: R, ioas_id: 0, length: 4096n },
    outcome: 'ENOENT',
    why: 'no IOAS with id 0',
  }),
  probe({
    request: I.IOMMU_IOAS_NOIOMMU_GET_PA,
    type: I.IommuIoasNoiommuGetPa,
    minField: 'out_phys',
    body: { ioas_id: 0, length: 4096n },
    outcome: 'ENOENT',
    why: 'no IOAS with id 0',
    needs: ['sys-rawio'],
  }),
  probe({
    request: I.IOMMU_IOAS_UNMAP,
    type: I.IommuIoasUnmap,
    minField: 'length',
    body: { ioas_id: 0 },
    outcome: 'ENOENT',
    why: 'no IOAS with id 0',
  }),
  probe({
    request: I.IOMMU_OPTION,
    type: I.IommuOption,
    minField: 'val64',
    body: { option_id: I.IOMMU_OPTION_RLIMIT_MODE, op: I.IOMMU_OPTION_OP_GET },
    outcome: 'ok',
    why: 'reads the accounting mode',
  }),
  probe({
    request: I.IOMMU_VDEVICE_ALLOC,
    type: I.IommuVdeviceAlloc,
    minField: 'virt_id',
    body: { viommu_id: 0 },
    outcome: 'ENOENT',
    why: 'no vIOMMU with id 0',
  }),
  probe({
    request: I.IOMMU_VEVENTQ_ALLOC,
    type: I.IommuVeventqAlloc,
    minField: 'out_veventq_fd',
    body: {},
    outcome: 'EOPNOTSUPP',
    why: 'type 0 (DEFAULT) is rejected',
  }),
  probe({
    request: I.IOMMU_VFIO_IOAS,
    type: I.IommuVfioIoas,
    minField: '__reserved',
    body: { op: I.IOMMU_VFIO_IOAS_GET },
    outcome: 'ENODEV',
    why: 'no compatibility IOAS has been set',
  }),
  probe({
    request: I.IOMMU_VIOMMU_ALLOC,
    type: I.IommuViommuAlloc,
    minField: 'out_viommu_id',
    body: {},
    outcome: 'EOPNOTSUPP',
    why: 'type 0 (DEFAULT) is rejected',
  }),
];

type Probe = SizeProbe<Record<string, FieldType>> & Variant;

/** The probes as variant rows, named after the command (IOMMU_IOAS_MAP → ioas-map). */
const ROWS: Probe[] = PROBES.map((p) => ({
  ...p,
  name: p.request.name
    .replace(/^IOMMU_/, '')
    .toLowerCase()
    .replace(/_/g, '-'),
  // Every case of a row needs a kernel that knows the command (a 6.x kernel lacks the newer ones).
  needs: [knowsCommand(p.request), ...(p.needs ?? [])],
}));

/** What the size checks need: only that the command exists (they come before anything it needs). */
function known(p: Probe): Need[] {
  return [knowsCommand(p.request)];
}

/** Sends the probe's body with `size` declared and `tail` appended. */
function send(f: IommufdFixture, p: Probe, declaredSize: number, tail: number[]): () => number {
  return () => f.t.kernel.ioctl(f.iommufd, p.request.number, buildStruct(p.type, p.body, { declaredSize, tail }));
}

const onIommufd = casesOn(iommufd);
const ZERO_TAIL = [0, 0, 0, 0, 0, 0, 0, 0];
const NONZERO_TAIL = [0, 0, 0, 0, 0, 0, 0, 1];

/** The size variants of one command, each a case per probe row (FIXTURE_VARIANT_ADD order: row by row). */
const SIZE_TEMPLATES: ((p: Probe) => ConformanceCase | null)[] = [
  (p) =>
    onIommufd.test(
      `iommufd.size.${p.name}.exact`,
      `${p.request.name} with size = sizeof (${p.type.size}) runs the command (${p.outcome}: ${p.why})`,
      (t, f) => {
        t.expect(`${p.request.name} size ${p.type.size}`, send(f, p, p.type.size, []), p.outcome);
      },
      p.needs,
    ),
  (p) =>
    onIommufd.test(
      `iommufd.size.${p.name}.below-min`,
      `${p.request.name} with size one below its minimum (${p.type.endOf(p.minField) - 1}) is EINVAL`,
      (t, f) => {
        const short = p.type.endOf(p.minField) - 1;
        t.expectErrno(`${p.request.name} size ${short}`, send(f, p, short, []), 'EINVAL');
      },
      known(p),
    ),
  (p) =>
    onIommufd.test(
      `iommufd.size.${p.name}.nonzero-tail`,
      `${p.request.name} larger than the kernel's struct with a non-zero tail is E2BIG`,
      (t, f) => {
        t.expectErrno(`${p.request.name} size ${p.type.size + 8}, tail byte 7 = 1`, send(f, p, p.type.size + 8, NONZERO_TAIL), 'E2BIG');
      },
      known(p),
    ),
  (p) =>
    onIommufd.test(
      `iommufd.size.${p.name}.zero-tail`,
      `${p.request.name} larger than the kernel's struct with a zero tail runs the command`,
      (t, f) => {
        t.expect(`${p.request.name} size ${p.type.size + 8}, zero tail`, send(f, p, p.type.size + 8, ZERO_TAIL), p.outcome);
      },
      p.needs,
    ),
  (p) => {
    const min = p.type.endOf(p.minField);
    if (min >= p.type.size) return null;
    return onIommufd.test(
      `iommufd.size.${p.name}.minimum`,
      `${p.request.name} with size = its minimum (${min}) runs the command, later fields read as zero`,
      (t, f) => {
        t.expect(`${p.request.name} size ${min}`, send(f, p, min, []), p.outcome);
      },
      p.needs,
    );
  },
];

/** An ioctl number outside iommufd's table, with a 64-byte struct that declares its size. */
function unknownCommand(f: IommufdFixture, nr: number): number {
  const buf = Buffer.alloc(64);
  buf.writeUInt32LE(64, 0);
  return f.t.kernel.ioctl(f.iommufd, (0x3b << 8) | nr, buf);
}

export const iommufdSizeCases: ConformanceCase[] = [
  ...forEachVariant(ROWS, ...SIZE_TEMPLATES),
  // nr 0x96 is outside the table: iommufd_vfio_ioctl → ENOIOCTLCMD, which the VFS turns into ENOTTY.
  onIommufd.expect(
    'iommufd.unknown-command-above',
    'an iommufd command number past the last one is ENOTTY',
    'ioctl nr 0x96',
    'ENOTTY',
    (f) => unknownCommand(f, 0x96),
  ),
  onIommufd.expect(
    'iommufd.unknown-command-below',
    'a command number below the iommufd range that is no VFIO compat ioctl is ENOTTY',
    'ioctl nr 0x7f',
    'ENOTTY',
    (f) => unknownCommand(f, 0x7f),
  ),
];

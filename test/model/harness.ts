/**
 * Helpers for the model's own tests: a booted model kernel with an open /dev/iommu, struct-level
 * ioctl wrappers built only from lib/uapi, and a devices table for attaching fake devices.
 */
import assert from 'node:assert/strict';
import { createModelKernel, type ModelKernel, type Profile, type ProfileName } from '../../lib/model';
import type { IommufdContext } from '../../lib/model/iommufd/iommufd-ctx';
import { MAP_ANONYMOUS, MAP_PRIVATE, O_RDWR, PROT_READ, PROT_WRITE } from '../../lib/sys/constants';
import type { Mapping } from '../../lib/sys/kernel';
import { isVfioError } from '../../lib/sys/errors';
import type { StructType, StructValue, FieldType } from '../../lib/uapi/codec';
import {
  IOMMU_DESTROY,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_NOIOMMU_GET_PA,
  IOMMU_IOAS_UNMAP,
  IommuDestroy,
  IommuIoasAlloc,
  IommuIoasMap,
  IommuIoasNoiommuGetPa,
  IommuIoasUnmap,
} from '../../lib/uapi/iommufd';

export const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
export const FIXED = IOMMU_IOAS_MAP_FIXED_IOVA;
export const MiB = 1n << 20n;
export const KiB = 1n << 10n;

export class Harness {
  readonly kernel: ModelKernel;
  readonly fd: number;
  readonly ctx: IommufdContext;

  constructor(profile: ProfileName | Profile = 'linux-7.3-noiommu') {
    this.kernel = createModelKernel(profile);
    this.fd = this.kernel.open('/dev/iommu', O_RDWR);
    this.ctx = this.kernel.iommufdOf(this.fd);
  }

  /** Runs an iommufd ioctl with a struct; returns the struct as the kernel left it. */
  call<S extends Record<string, FieldType>>(req: { number: number }, type: StructType<S>, values: Partial<StructValue<S>>): StructValue<S> {
    const buf = type.encode({ size: type.size, ...values } as Partial<StructValue<S>>);
    this.kernel.ioctl(this.fd, req.number, buf);
    return type.decode(buf);
  }

  ioasAlloc(): number {
    return this.call(IOMMU_IOAS_ALLOC, IommuIoasAlloc, {}).out_ioas_id;
  }

  destroy(id: number): void {
    this.call(IOMMU_DESTROY, IommuDestroy, { id });
  }

  /** mmap of anonymous memory. */
  anon(length: bigint, flags = 0): Mapping {
    return this.kernel.mmap(-1, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, 0n);
  }

  map(ioas: number, userVa: bigint, length: bigint, iova?: bigint, flags = RW): bigint {
    return this.call(IOMMU_IOAS_MAP, IommuIoasMap, {
      ioas_id: ioas,
      user_va: userVa,
      length,
      iova: iova ?? 0n,
      flags: flags | (iova !== undefined ? FIXED : 0),
    }).iova;
  }

  unmap(ioas: number, iova: bigint, length: bigint): bigint {
    return this.call(IOMMU_IOAS_UNMAP, IommuIoasUnmap, { ioas_id: ioas, iova, length }).length;
  }

  getPa(ioas: number, iova: bigint, length: bigint): { phys: bigint; length: bigint } {
    const r = this.call(IOMMU_IOAS_NOIOMMU_GET_PA, IommuIoasNoiommuGetPa, { ioas_id: ioas, iova, length });
    return { phys: r.out_phys, length: r.length };
  }

  /** Binds a noiommu device (or one behind the profile's IOMMU with `group`). */
  bind(name = '0000:00:03.0', group?: number): number {
    const iommu = group === undefined ? null : this.kernel.profile.iommu;
    return this.ctx.bindDevice({ name, iommu, iommuGroup: group ?? 0 });
  }
}

/** Asserts that `fn` fails with a VfioError carrying errno `code`. */
export function expectErrno(code: string, fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (isVfioError(e) || (e instanceof Error && 'code' in e)) {
      assert.equal((e as { code: string }).code, code, `expected ${code}, got ${(e as Error).message}`);
      return;
    }
    throw e;
  }
  assert.fail(`expected ${code}, but the call succeeded`);
}

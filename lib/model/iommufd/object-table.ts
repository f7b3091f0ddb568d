/**
 * The object table of one iommufd context (main.c: the `objects` xarray with XA_FLAGS_ALLOC1).
 *
 * IOAS, HWPT and device objects share one ID space: an allocation takes the lowest free ID from 1
 * (xa_alloc), first as a reservation that lookups cannot see, then published by finalize — or
 * released by abort, so a failed command never leaks an ID. Each object counts its users (the
 * table's own reference plus every object or attachment that depends on it); IOMMU_DESTROY
 * succeeds only when the table's reference is the last one (refcount_dec_if_one), else EBUSY.
 */
import { fail } from '../errno';
import { FaultInjector } from '../fault-injection';
import { MinHeap } from '../structures/min-heap';

export type ObjectType = 'ioas' | 'hwpt-paging' | 'device' | 'fault';

export abstract class IommufdObject {
  /** Assigned when the object is reserved in the table. */
  id = 0;
  /** Starts at 1: the table's reference. */
  users = 1;
  abstract readonly type: ObjectType;
  /** Releases what the object holds; called once it has left the table. */
  abstract destroy(): void;
}

const ID_LIMIT = 0x7fff_ffff; // xa_limit_31b

export class ObjectTable {
  constructor(private readonly faults: FaultInjector = new FaultInjector()) {}

  /** Published objects, and reserved IDs (null) that are not visible yet. */
  private readonly entries = new Map<number, IommufdObject | null>();
  /** Freed IDs: the lowest free ID is either the top or the next never-used one. */
  private readonly freed = new MinHeap();
  private nextFresh = 1;

  /** Number of IDs in use (published or reserved). */
  get size(): number {
    return this.entries.size;
  }

  get isEmpty(): boolean {
    return this.entries.size === 0;
  }

  /** _iommufd_object_alloc: reserves the lowest free ID for `obj`. */
  reserve(obj: IommufdObject): number {
    // kzalloc of the object in _iommufd_object_alloc.
    this.faults.point('iommufd.object-alloc');
    let id = this.freed.pop();
    if (id === undefined) {
      if (this.nextFresh > ID_LIMIT) fail('EBUSY', 'object ID space exhausted');
      id = this.nextFresh++;
    }
    obj.id = id;
    this.entries.set(id, null);
    return id;
  }

  /** iommufd_object_finalize: makes a reserved object visible. */
  finalize(obj: IommufdObject): void {
    this.entries.set(obj.id, obj);
  }

  /** iommufd_object_abort: releases a reserved ID that was never published. */
  abort(obj: IommufdObject): void {
    if (this.entries.get(obj.id) !== null) throw new Error(`model: abort of published object ${obj.id}`);
    this.release(obj.id);
  }

  /** iommufd_object_abort_and_destroy. */
  abortAndDestroy(obj: IommufdObject): void {
    obj.destroy();
    this.abort(obj);
  }

  private release(id: number): void {
    this.entries.delete(id);
    this.freed.push(id);
  }

  /** iommufd_get_object: a published object of that type, else ENOENT. */
  get<T extends IommufdObject>(id: number, type?: ObjectType): T {
    this.faults.point('iommufd.object-lookup');
    const obj = this.entries.get(id);
    if (!obj || (type !== undefined && obj.type !== type)) fail('ENOENT');
    return obj as T;
  }

  /** Like get, undefined instead of ENOENT. */
  lookup(id: number): IommufdObject | undefined {
    return this.entries.get(id) ?? undefined;
  }

  /**
   * iommufd_object_remove without a caller reference (IOMMU_DESTROY): ENOENT for an unknown or
   * reserved ID, EBUSY while anything else uses the object; otherwise removes and destroys it.
   */
  destroyById(id: number): void {
    const obj = this.entries.get(id);
    if (!obj) fail('ENOENT');
    if (obj.users !== 1) fail('EBUSY');
    obj.users = 0;
    this.release(id);
    obj.destroy();
  }

  /**
   * iommufd_object_remove with the caller's reference (put-and-try-destroy, destroy_user): drops
   * that reference, then removes the object if only the table's reference remains. Returns
   * whether it was destroyed.
   */
  putAndTryDestroy(obj: IommufdObject): boolean {
    obj.users--;
    if (this.entries.get(obj.id) !== obj || obj.users !== 1) return false;
    obj.users = 0;
    this.release(obj.id);
    obj.destroy();
    return true;
  }

  /** Published objects in ID order. */
  objects(): IommufdObject[] {
    return [...this.entries.entries()]
      .filter((e): e is [number, IommufdObject] => e[1] !== null)
      .sort((a, b) => a[0] - b[0])
      .map((e) => e[1]);
  }

  /**
   * iommufd_fops_release: destroy leaf objects (users == 1) repeatedly until the table is empty,
   * which tears the dependency graph down depth first.
   */
  destroyAll(): void {
    for (;;) {
      const objs = this.objects();
      if (objs.length === 0) break;
      let destroyed = 0;
      for (const obj of objs) {
        if (obj.users !== 1) continue;
        obj.users = 0;
        this.release(obj.id);
        obj.destroy();
        destroyed++;
      }
      if (destroyed === 0) throw new Error('model: iommufd object graph has a reference cycle');
    }
  }
}

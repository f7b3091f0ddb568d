/**
 * A census of everything a model kernel holds on behalf of the process — fds and the files behind
 * them, mappings, allocated and pinned frames, locked-memory charges, IOMMU-group ownership, every
 * iommufd context's object table (IDs, types, users), and each VFIO device's open/bind state. Two
 * equal censuses mean nothing was created or leaked in between; the difference says what was.
 */
import type { ModelKernel } from '../../lib/model';
import { IommufdContext } from '../../lib/model/iommufd/iommufd-ctx';

export interface Census {
  readonly fds: readonly string[];
  readonly liveFiles: number;
  readonly mappings: number;
  readonly freeFrames: number;
  readonly pinnedPages: number;
  readonly lockedMmPages: number;
  readonly lockedUserPages: number;
  readonly dmaOwnedGroups: number;
  /** Per open iommufd: its object table as "id:type:users", reserved IDs included in `ids`. */
  readonly iommufds: readonly { readonly fd: number; readonly ids: number; readonly objects: readonly string[] }[];
  readonly vfioDevices: readonly string[];
}

export function census(k: ModelKernel): Census {
  const files = k.openFiles();
  return {
    fds: files.map((f) => `${f.fd}:${f.path}`),
    liveFiles: k.liveFileCount,
    mappings: k.space.count,
    freeFrames: k.memory.freeFrames,
    pinnedPages: k.locked.pinnedPages,
    lockedMmPages: k.locked.mmLockedPages,
    lockedUserPages: k.locked.userLockedPages,
    dmaOwnedGroups: k.dmaOwnership.claimedCount,
    iommufds: files
      .filter((f) => f.file instanceof IommufdContext)
      .map((f) => {
        const ctx = f.file as IommufdContext;
        return { fd: f.fd, ids: ctx.objects.size, objects: ctx.objects.objects().map((o) => `${o.id}:${o.type}:${o.users}`) };
      }),
    vfioDevices: (k.pci?.vfio.allDevices() ?? []).map(
      (d) =>
        `${d.name} open=${d.openCount} cdev=${d.cdevOpened} bound=${d.bound !== undefined} attached=${d.attached} refs=${d.fileRefs.size}`,
    ),
  };
}

/** What differs between two censuses, one line per field (empty when they are equal). */
export function censusDifference(before: Census, after: Census): string[] {
  const out: string[] = [];
  for (const key of Object.keys(before) as (keyof Census)[]) {
    const a = JSON.stringify(before[key]);
    const b = JSON.stringify(after[key]);
    if (a !== b) out.push(`${key}: ${a} → ${b}`);
  }
  return out;
}

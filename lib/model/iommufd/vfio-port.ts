/**
 * iommufd as the VFIO side of the model sees it (lib/model/vfio/iommufd-port.ts): the exported
 * kernel functions iommufd_ctx_from_file, iommufd_device_bind/attach/replace/detach/unbind and
 * the vfio_compat helpers, adapted onto IommufdContext. Failures are the KernelErrors the kernel
 * functions raise, with their errnos. A bound device holds a reference on the iommufd file
 * (iommufd_ctx_get in iommufd_device_bind), dropped again at unbind.
 */
import { PhysicalAccessFault, type PhysicalMemory } from '../memory/physical-memory';
import { KernelError } from '../errno';
import type { OpenFile } from '../open-file';
import { DmaFault, type DmaPort } from '../pci/dma';
import type { IommuUnit } from '../profile';
import type { IommufdBindRequest, IommufdBoundDevice, IommufdContextPort, IommufdPort } from '../vfio/iommufd-port';
import { IommufdContext, IommuFault } from './iommufd-ctx';

/** What the adapter needs from the kernel. */
export interface IommufdPortHost {
  readonly memory: PhysicalMemory;
  /** The IOMMU translating devices that have one. */
  readonly iommu: IommuUnit | null;
  holdFile(file: OpenFile): void;
  dropFile(file: OpenFile): void;
  /** The IOMMU's fault reporting: a DMA of `device` its translation refused. */
  reportFault?(device: string, fault: IommuFault): void;
}

export function iommufdPort(host: IommufdPortHost): IommufdPort {
  const ports = new WeakMap<IommufdContext, IommufdContextPort>();
  return {
    contextOf(file: OpenFile): IommufdContextPort | undefined {
      if (!(file instanceof IommufdContext)) return undefined;
      let port = ports.get(file);
      if (!port) ports.set(file, (port = contextPort(file, host)));
      return port;
    },
  };
}

function contextPort(ctx: IommufdContext, host: IommufdPortHost): IommufdContextPort {
  return {
    bind(device: IommufdBindRequest): IommufdBoundDevice {
      if (device.hasIommu && !host.iommu) throw new Error(`model: ${device.name} is behind an IOMMU but the profile has none`);
      const id = ctx.bindDevice({ name: device.name, iommu: device.hasIommu ? host.iommu : null, iommuGroup: device.iommuGroup });
      host.holdFile(ctx);
      let bound = true;
      return {
        id,
        attach: (ptId) => ctx.attachDevice(id, ptId),
        replace: (ptId) => ctx.replaceDevice(id, ptId),
        detach: () => ctx.detachDevice(id),
        unbind: () => {
          if (!bound) return;
          bound = false;
          ctx.unbindDevice(id);
          host.dropFile(ctx);
        },
        dmaPort: () =>
          bound && ctx.attachedHwpt(id)
            ? translatedPort(ctx, id, host.memory, (fault) => host.reportFault?.(device.name, fault))
            : undefined,
      };
    },
    compatSetNoIommu: () => ctx.compatSetNoIommu(),
    compatIoasCreate: () => ctx.compatIoasCreate(),
    compatIoasId: () => ctx.vfioIoas?.id,
    compatFollowPfnmap: () => {
      ctx.followsPfnmap = true;
    },
  };
}

/** DMA of a device behind the IOMMU: IOVAs go through the attached domain, then to RAM. */
function translatedPort(ctx: IommufdContext, devId: number, memory: PhysicalMemory, reportFault: (fault: IommuFault) => void): DmaPort {
  const segments = (iova: bigint, length: number, write: boolean) => {
    try {
      return ctx.translate(devId, iova, length, write);
    } catch (e) {
      if (e instanceof IommuFault) {
        reportFault(e);
        throw new DmaFault(e.reason, iova, length, write ? 'write' : 'read');
      }
      if (e instanceof KernelError) throw new DmaFault('blocked', iova, length, write ? 'write' : 'read', 'device no longer bound');
      throw e;
    }
  };
  return {
    read(iova, length) {
      const out = new Uint8Array(length);
      let pos = 0;
      for (const s of segments(iova, length, false)) {
        out.set(
          physical(() => memory.dmaRead(s.phys, s.length), iova, length, 'read'),
          pos,
        );
        pos += s.length;
      }
      return out;
    },
    write(iova, data) {
      const segs = segments(iova, data.length, true);
      let pos = 0;
      for (const s of segs) {
        const piece = data.subarray(pos, pos + s.length);
        physical(() => memory.dmaWrite(s.phys, piece), iova, data.length, 'write');
        pos += s.length;
      }
    },
  };
}

function physical<T>(body: () => T, address: bigint, length: number, direction: 'read' | 'write'): T {
  try {
    return body();
  } catch (e) {
    if (e instanceof PhysicalAccessFault) throw new DmaFault('no-memory', address, length, direction);
    throw e;
  }
}

/** Physical memory as the DMA port of devices no IOMMU translates. */
export function physicalPort(memory: PhysicalMemory): DmaPort {
  return {
    read: (pa, length) => physical(() => memory.dmaRead(pa, length), pa, length, 'read'),
    write: (pa, data) => physical(() => memory.dmaWrite(pa, data), pa, data.length, 'write'),
  };
}

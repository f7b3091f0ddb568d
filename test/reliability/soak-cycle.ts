/**
 * One soak cycle through the typed API, the way a short-lived driver session goes: open the
 * iommufd, open the device cdev and bind it, attach it to a new IOAS, allocate a DMA buffer
 * (mmap + IOAS_MAP + on noiommu the GET_PA lookup), check its addresses, unmap it, close
 * everything. Shared by the model soak and the lab soak, which then compare the process's fds,
 * pinned pages and RSS before and after many cycles.
 */
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Kernel } from '../../lib/sys/kernel';
import { Iommufd } from '../../lib/iommu/iommufd';
import { VfioDevice } from '../../lib/vfio/device';
import { PciDevice } from '../../lib/pci/pci-device';

export const SOAK_BUFFER_BYTES = 64n * 1024n;

export function soakCycle(kernel: Kernel, cdevPath: string): void {
  const iommufd = Iommufd.open(kernel);
  try {
    const device = VfioDevice.open(cdevPath, { iommufd });
    const buffer = device.allocateDma(SOAK_BUFFER_BYTES);
    if (buffer.addressing === 'physical') {
      const segments = buffer.segments();
      assert.equal(
        segments.reduce((sum, s) => sum + s.length, 0n),
        SOAK_BUFFER_BYTES,
      );
      assert.equal(buffer.physicalAddress(4097) - buffer.physicalAddress(4096), 1n);
    } else {
      assert.equal(buffer.dmaAddress(16), buffer.iova! + 16n);
    }
    const ioas = device.ioas!;
    buffer.close();
    assert.equal(ioas.unmap(), 0n, 'closing the buffer unmapped its area');
  } finally {
    iommufd.close();
  }
}

export function cdevOf(kernel: Kernel, bdf: string): string {
  const path = PciDevice.get(bdf, kernel).cdevPath();
  if (path === null) throw new Error(`${bdf} has no VFIO device cdev`);
  return path;
}

/** Runs a full garbage collection (so RSS is compared without collectable garbage), when possible. */
export function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (() => void) | undefined;
  gc?.();
}

export interface SoakNumbers {
  readonly fds: number;
  readonly pinnedPages: number;
  readonly rssBytes: number;
}

export function formatSoak(label: string, cycles: number, before: SoakNumbers, after: SoakNumbers, seconds: number): string {
  const mib = (n: number): string => (n / 1048576).toFixed(1);
  return `${label}: ${cycles} cycles in ${seconds.toFixed(1)} s; fds ${before.fds} → ${after.fds}, pinned pages ${before.pinnedPages} → ${after.pinnedPages}, RSS ${mib(before.rssBytes)} → ${mib(after.rssBytes)} MiB`;
}

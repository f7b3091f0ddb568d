/**
 * Reading, writing and mapping device regions through the device fd: bounds, the regions that
 * cannot be mapped, and config space virtualisation (read-only IDs, BAR sizing). Sources:
 * vfio/pci/vfio_pci_core.c vfio_pci_rw / vfio_pci_core_mmap, vfio_pci_rdwr.c vfio_pci_bar_rw,
 * vfio_pci_config.c vfio_pci_config_rw_single (EFAULT outside config space).
 */
import type { ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import { MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../sys/constants';
import * as P from '../../uapi/pci';
import * as V from '../../uapi/vfio';
import { EDU } from '../edu-driver';
import { casesOn } from '../fixture';
import { boundDevice } from '../fixtures';
import { configRead, configWrite, deviceInfo, regionInfo, regionOffset } from '../steps';

function preadCall(t: CaseContext, fd: number, length: number, offset: bigint): () => number {
  return () => t.kernel.pread(fd, Buffer.alloc(length), offset);
}

function mmapCall(t: CaseContext, fd: number, length: bigint, offset: bigint, flags = MAP_SHARED): () => void {
  return () => {
    const m = t.kernel.mmap(fd, length, PROT_READ | PROT_WRITE, flags, offset);
    t.defer('munmap', () => t.kernel.munmap(m));
  };
}

const bound = casesOn(boundDevice);
const eduBound = casesOn(boundDevice, ['edu']);

export const regionIoCases: ConformanceCase[] = [
  eduBound.test('region-io.bar-bounds', 'BAR0 reads: past the end EINVAL, across the end a short read; an empty BAR EINVAL', (t, f) => {
    const end = regionOffset(0) + EDU.BAR0_SIZE;
    t.expectErrno('pread at the end of BAR0', preadCall(t, f.deviceFd, 4, end), 'EINVAL');
    t.equal(t.ok('pread of 8 bytes 4 before the end', preadCall(t, f.deviceFd, 8, end - 4n)), 4, 'bytes read');
    t.expectErrno('pread of BAR1 (absent on edu)', preadCall(t, f.deviceFd, 4, regionOffset(1)), 'EINVAL');
  }),
  eduBound.test(
    'region-io.rom-and-unknown-regions',
    'ROM: region info size 0 on a device without one, reads EINVAL, writes EINVAL; a region index past the last is EINVAL',
    (t, f) => {
      const rom = regionInfo(t, f.deviceFd, V.VFIO_PCI_ROM_REGION_INDEX);
      t.equal(rom.size, 0n, 'ROM size');
      t.equal(rom.flags, 0, 'ROM flags');
      t.expectErrno('pread of the ROM', preadCall(t, f.deviceFd, 4, regionOffset(V.VFIO_PCI_ROM_REGION_INDEX)), 'EINVAL');
      t.expectErrno(
        'pwrite of the ROM',
        () => t.kernel.pwrite(f.deviceFd, Buffer.alloc(4), regionOffset(V.VFIO_PCI_ROM_REGION_INDEX)),
        'EINVAL',
      );
      const info = deviceInfo(t, f.deviceFd);
      t.expectErrno('pread of the region after the last', preadCall(t, f.deviceFd, 4, regionOffset(info.num_regions)), 'EINVAL');
    },
  ),
  bound.test('region-io.config-bounds', 'config space reads outside it, or running past its end, are EFAULT', (t, f) => {
    const cfg = regionInfo(t, f.deviceFd, V.VFIO_PCI_CONFIG_REGION_INDEX);
    const base = regionOffset(V.VFIO_PCI_CONFIG_REGION_INDEX);
    t.expectErrno('pread at the end of config space', preadCall(t, f.deviceFd, 4, base + cfg.size), 'EFAULT');
    t.expectErrno('pread of 4 bytes 2 before the end', preadCall(t, f.deviceFd, 4, base + cfg.size - 2n), 'EFAULT');
    t.equal(t.ok('pread of the whole config space', preadCall(t, f.deviceFd, Number(cfg.size), base)), Number(cfg.size), 'bytes read');
  }),
  bound.test('region-io.config-ids-read-only', 'writes to the vendor and device IDs are accepted and ignored', (t, f) => {
    const ids = configRead(t, f.deviceFd, P.PCI_VENDOR_ID, 4);
    configWrite(t, f.deviceFd, P.PCI_VENDOR_ID, 4, 0x5555_aaaa);
    t.equal(configRead(t, f.deviceFd, P.PCI_VENDOR_ID, 4), ids, 'IDs after the write');
  }),
  eduBound.test(
    'region-io.bar-sizing',
    'writing all ones to BAR0 in config space reads back the size mask (edu: 1 MiB 32-bit memory BAR)',
    (t, f) => {
      const original = configRead(t, f.deviceFd, P.PCI_BASE_ADDRESS_0, 4);
      configWrite(t, f.deviceFd, P.PCI_BASE_ADDRESS_0, 4, 0xffff_ffff);
      const mask = configRead(t, f.deviceFd, P.PCI_BASE_ADDRESS_0, 4);
      configWrite(t, f.deviceFd, P.PCI_BASE_ADDRESS_0, 4, original);
      t.equal(mask, 0xfff0_0000, 'BAR0 after writing all ones');
      t.equal(configRead(t, f.deviceFd, P.PCI_BASE_ADDRESS_0, 4), original, 'BAR0 restored');
    },
  ),
  eduBound.test(
    'region-io.mmap-rules',
    'mmap of a region: private mappings, ranges past the BAR, empty BARs and the ROM are EINVAL; a page inside BAR0 works',
    (t, f) => {
      const page = t.page;
      t.expectErrno('MAP_PRIVATE of BAR0', mmapCall(t, f.deviceFd, page, regionOffset(0), MAP_PRIVATE), 'EINVAL');
      t.expectErrno('2 MiB of the 1 MiB BAR0', mmapCall(t, f.deviceFd, 2n * EDU.BAR0_SIZE, regionOffset(0)), 'EINVAL');
      t.expectErrno(
        'the last page of BAR0 and one more',
        mmapCall(t, f.deviceFd, 2n * page, regionOffset(0) + EDU.BAR0_SIZE - page),
        'EINVAL',
      );
      t.expectErrno('BAR1', mmapCall(t, f.deviceFd, page, regionOffset(1)), 'EINVAL');
      t.expectErrno('the ROM', mmapCall(t, f.deviceFd, page, regionOffset(V.VFIO_PCI_ROM_REGION_INDEX)), 'EINVAL');
      t.expect('one page at offset 0x1000 of BAR0', mmapCall(t, f.deviceFd, page, regionOffset(0) + page), 'ok');
    },
  ),
];

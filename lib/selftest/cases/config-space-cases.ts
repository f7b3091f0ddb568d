/**
 * The config region and region capability chains as vfio-pci virtualises them, on any device.
 * Sources: pci/vfio_pci_config.c (virtual BARs answer a sizing write with the size mask, the
 * upper half of a 64-bit BAR with the mask's high dword; the region is the function's cfg_size
 * long: 4 KiB for PCI Express, and an access past it is EFAULT), pci/vfio_pci_core.c
 * vfio_pci_ioctl_get_region_info and vfio_main.c vfio_info_add_capability (the argsz dance:
 * a too-small argsz is raised to what the chain needs; with that argsz cap_offset points at the
 * chain, whose `next` offsets run forward and end with 0; MSIX_MAPPABLE on the BAR holding the
 * MSI-X table).
 */
import type { ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import * as P from '../../uapi/pci';
import * as V from '../../uapi/vfio';
import { casesOn } from '../fixture';
import { boundDevice } from '../fixtures';
import { rawIoctl } from '../raw-ioctl';
import { configRead, configWrite, deviceInfo, regionInfo, regionOffset } from '../steps';

const bound = casesOn(boundDevice);

/** The standard capabilities of the function: id → offset. */
function capabilities(t: CaseContext, deviceFd: number): Map<number, number> {
  const caps = new Map<number, number>();
  let at = configRead(t, deviceFd, P.PCI_CAPABILITY_LIST, 1) & 0xfc;
  for (let guard = 0; at !== 0 && guard < 48; guard++) {
    caps.set(configRead(t, deviceFd, at, 1), at);
    at = configRead(t, deviceFd, at + 1, 1) & 0xfc;
  }
  return caps;
}

interface CapHeader {
  readonly at: number;
  readonly id: number;
  readonly version: number;
  readonly next: number;
}

export const configSpaceCases: ConformanceCase[] = [
  bound.test(
    'config.bar-sizing',
    "BAR sizing through the config region: all ones reads back the size mask with the type bits; a 64-bit BAR's upper half reads the high dword and has no region of its own",
    (t, f) => {
      for (let bar = 0; bar < 6; bar++) {
        const reg = P.PCI_BASE_ADDRESS_0 + 4 * bar;
        const region = regionInfo(t, f.deviceFd, bar);
        const original = configRead(t, f.deviceFd, reg, 4);
        configWrite(t, f.deviceFd, reg, 4, 0xffff_ffff);
        const sized = configRead(t, f.deviceFd, reg, 4);
        configWrite(t, f.deviceFd, reg, 4, original);
        t.equal(configRead(t, f.deviceFd, reg, 4), original, `BAR${bar} restored`);
        t.note(`BAR${bar}: region size 0x${region.size.toString(16)}, sized 0x${sized.toString(16)}`);
        if (region.size === 0n) continue;
        const io = (original & P.PCI_BASE_ADDRESS_SPACE_IO) !== 0;
        const typeBits = io ? 0x3 : 0xf;
        const mask = ~(region.size - 1n) & 0xffff_ffff_ffff_ffffn;
        const expected = ((Number(mask & 0xffff_ffffn) & ~typeBits) | (original & typeBits)) >>> 0;
        t.equal(sized >>> 0, expected, `BAR${bar} after sizing (size mask and type bits)`);
        if (!io && (original & 0x6) === P.PCI_BASE_ADDRESS_MEM_TYPE_64) {
          t.check(bar < 5, `64-bit BAR${bar} has an upper half`);
          const upper = reg + 4;
          const upperOriginal = configRead(t, f.deviceFd, upper, 4);
          configWrite(t, f.deviceFd, upper, 4, 0xffff_ffff);
          t.equal(configRead(t, f.deviceFd, upper, 4), Number(mask >> 32n), `BAR${bar + 1} (upper half of BAR${bar}) after sizing`);
          configWrite(t, f.deviceFd, upper, 4, upperOriginal);
          t.equal(regionInfo(t, f.deviceFd, bar + 1).size, 0n, `region ${bar + 1} (the upper half) size`);
          bar++;
        }
      }
    },
  ),
  bound.test(
    'config.extended-space',
    'the config region is 4 KiB exactly for a PCI Express function (256 bytes otherwise), readable to its end; an access past the end is EFAULT',
    (t, f) => {
      const size = regionInfo(t, f.deviceFd, V.VFIO_PCI_CONFIG_REGION_INDEX).size;
      const express = capabilities(t, f.deviceFd).has(P.PCI_CAP_ID_EXP);
      t.note(`config region ${size} bytes, ${express ? 'PCI Express' : 'conventional PCI'}`);
      t.equal(size, express ? 4096n : 256n, 'config region size');
      const whole = Buffer.alloc(Number(size));
      t.equal(
        t.ok('read the whole config region', () => t.kernel.pread(f.deviceFd, whole, regionOffset(V.VFIO_PCI_CONFIG_REGION_INDEX))),
        whole.length,
        'bytes read',
      );
      t.equal(whole.readUInt16LE(P.PCI_VENDOR_ID), t.env.device!.vendorId, 'vendor ID in the whole read');
      if (express) configRead(t, f.deviceFd, 0x100, 4);
      const past = regionOffset(V.VFIO_PCI_CONFIG_REGION_INDEX) + size;
      t.expectErrno('read 4 bytes at the end of the region', () => t.kernel.pread(f.deviceFd, Buffer.alloc(4), past), 'EFAULT');
      t.expectErrno('read 4 bytes across the end', () => t.kernel.pread(f.deviceFd, Buffer.alloc(4), past - 2n), 'EFAULT');
    },
  ),
  bound.test(
    'device.region.cap-chain',
    'the argsz dance: region info says how much room its capability chain needs; with that argsz the chain follows cap_offset, runs forward, ends with next 0, and marks the MSI-X BAR mappable',
    (t, f) => {
      const info = deviceInfo(t, f.deviceFd);
      const msix = capabilities(t, f.deviceFd).get(P.PCI_CAP_ID_MSIX);
      const msixBar = msix === undefined ? -1 : configRead(t, f.deviceFd, msix + P.PCI_MSIX_TABLE, 4) & P.PCI_MSIX_TABLE_BIR;
      let chains = 0;
      for (let index = 0; index < info.num_regions; index++) {
        if (index === V.VFIO_PCI_VGA_REGION_INDEX) continue;
        const first = regionInfo(t, f.deviceFd, index);
        if (!(first.flags & V.VFIO_REGION_INFO_FLAG_CAPS)) {
          t.check(index !== msixBar, `the MSI-X BAR (region ${index}) has a capability chain`);
          continue;
        }
        chains++;
        const full = t.ok(`GET_REGION_INFO ${index} with argsz ${first.argsz}`, () =>
          rawIoctl(
            t.kernel,
            f.deviceFd,
            V.VFIO_DEVICE_GET_REGION_INFO,
            V.VfioRegionInfo,
            { index },
            { trailer: new Uint8Array(first.argsz - V.VfioRegionInfo.size) },
          ),
        );
        const again = full.out;
        t.equal(again.argsz, first.argsz, `region ${index}: argsz once the chain fits`);
        t.check(again.cap_offset >= V.VfioRegionInfo.size, `region ${index}: cap_offset ${again.cap_offset} past the struct`);
        const headers: CapHeader[] = [];
        for (let at = again.cap_offset; at !== 0; at = headers[headers.length - 1]!.next) {
          t.check(at + V.VfioInfoCapHeader.size <= again.argsz, `region ${index}: capability at ${at} inside argsz`);
          t.check(
            headers.length === 0 || at > headers[headers.length - 1]!.at,
            `region ${index}: capability at ${at} after the one before`,
          );
          headers.push({ at, ...V.VfioInfoCapHeader.decode(full.buffer, at) });
        }
        t.note(`region ${index}: argsz ${again.argsz}, capabilities ${headers.map((h) => `${h.id} v${h.version} at ${h.at}`).join(', ')}`);
        if (index === msixBar)
          t.check(
            headers.some((h) => h.id === V.VFIO_REGION_INFO_CAP_MSIX_MAPPABLE),
            `region ${index} (the MSI-X BAR) has MSIX_MAPPABLE`,
          );
      }
      if (chains === 0) t.skip('no region of this device has a capability chain');
    },
  ),
];

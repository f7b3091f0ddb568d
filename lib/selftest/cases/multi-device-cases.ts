/**
 * Several functions behind vfio-pci at once: the device under test and the other functions the
 * environment found bound to vfio-pci, each through its own cdev. Sources: vfio/device_cdev.c
 * (one bind per cdev), iommufd/device.c iommufd_device_bind (the IOMMU group's DMA ownership
 * goes to one iommufd: iommu_device_claim_dma_owner answers EPERM for another) and
 * iommufd_device_auto_get_domain (a device attached to an IOAS reuses a compatible HWPT the IOAS
 * already has), iommufd/ioas.c (IOAS-private IOVA spaces); edu's DMA engine for the traffic.
 */
import type { ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import type { DeviceUnderTest } from '../environment';
import { isEdu } from '../environment';
import { defineCase } from '../case';
import { dmaAddress, eduRoundTrip } from '../edu-steps';
import { call } from '../calls';
import { on } from '../struct-call';
import { attach, bind, ioasAlloc, map } from '../steps';

const NEEDS = ['device', 'several-devices'] as const;

/** The device under test first, then the other vfio-pci functions in bus order. */
function functions(t: CaseContext): DeviceUnderTest[] {
  const under = t.env.device!;
  return [under, ...t.env.devices.filter((d) => d.bdf !== under.bdf)];
}

/** The IOMMU group number from sysfs, or null when the function has no iommu_group link. */
function iommuGroup(t: CaseContext, d: DeviceUnderTest): string | null {
  const link = `/sys/bus/pci/devices/${d.bdf}/iommu_group`;
  if (!t.kernel.exists(link)) return null;
  const target = t.kernel.readlink(link);
  return target.slice(target.lastIndexOf('/') + 1);
}

interface Opened {
  readonly device: DeviceUnderTest;
  readonly deviceFd: number;
}

function openAll(t: CaseContext): Opened[] {
  return functions(t).map((device) => ({ device, deviceFd: t.open(device.cdevPath) }));
}

function skipUnlessAllEdu(t: CaseContext, devices: readonly DeviceUnderTest[]): void {
  const other = devices.find((d) => !isEdu(d));
  if (other) t.skip(`the DMA part drives edu, and ${other.bdf} is not an edu device`);
}

/** Edu `o` copies `count` bytes from IOVA `source` to IOVA `destination` of `target`'s IOAS, through its own buffer. */
async function copyThrough(
  t: CaseContext,
  o: Opened,
  target: { iommufd: number; ioasId: number },
  source: bigint,
  destination: bigint,
  count: number,
): Promise<void> {
  const f = on(t, target);
  await eduRoundTrip(t, o.deviceFd, dmaAddress(f, source, BigInt(count)), dmaAddress(f, destination, BigInt(count)), count);
}

/** Every function opened and bound to one new iommufd. */
function bindAll(t: CaseContext): { iommufd: number; opened: Opened[] } {
  const iommufd = t.openIommufd();
  const opened = openAll(t);
  for (const o of opened) bind(t, o.deviceFd, iommufd);
  return { iommufd, opened };
}

/** A different pattern per device, so a copy by the wrong device shows. */
function fillPattern(bytes: Uint8Array, seed: number): void {
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + seed * 31 + 3) & 0xff;
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  return a.findIndex((x, i) => x !== b[i]);
}

const COUNT = 2000;

export const multiDeviceCases: ConformanceCase[] = [
  defineCase({
    id: 'multi.own-cdev-and-group',
    title:
      'every vfio-pci function has its own cdev; its group node is the one of its IOMMU group, and in noiommu mode every function has a group of its own',
    needs: NEEDS,
    run(t) {
      const all = functions(t);
      t.equal(new Set(all.map((d) => d.cdevPath)).size, all.length, 'distinct cdevs');
      const groups = all.map((d) => iommuGroup(t, d));
      all.forEach((d, i) => t.note(`${d.bdf}: ${d.cdevPath}, IOMMU group ${groups[i] ?? 'none'}, group node ${d.groupPath ?? 'none'}`));
      all.forEach((d, i) => {
        const group = groups[i];
        if (d.groupPath && group !== null)
          t.check(
            d.groupPath.endsWith(`/${t.mode === 'noiommu' ? 'noiommu-' : ''}${group}`),
            `${d.bdf}'s group node ${d.groupPath} is its IOMMU group ${group}`,
          );
      });
      if (t.mode === 'noiommu' && groups.every((g) => g !== null)) t.equal(new Set(groups).size, all.length, 'distinct noiommu groups');
    },
  }),
  defineCase({
    id: 'multi.bind-one-iommufd',
    title: 'all functions bind to one iommufd and get devids 1, 2, 3... in bind order; closing one frees its devid for the next bind',
    needs: NEEDS,
    run(t) {
      const iommufd = t.openIommufd();
      const opened = openAll(t);
      opened.forEach((o, i) => t.equal(bind(t, o.deviceFd, iommufd), i + 1, `devid of ${o.device.bdf}`));
      t.closeNow(opened[0]!.deviceFd);
      t.equal(bind(t, t.open(opened[0]!.device.cdevPath), iommufd), 1, `devid of ${opened[0]!.device.bdf} bound again`);
    },
  }),
  defineCase({
    id: 'multi.one-ioas',
    title: "all functions attached to one IOAS share its automatic HWPT, and each one's DMA reaches the buffer mapped there",
    needs: NEEDS,
    async run(t) {
      const { iommufd, opened } = bindAll(t);
      const ioasId = ioasAlloc(t, iommufd);
      const hwpts = opened.map((o) => attach(t, o.deviceFd, ioasId));
      t.note(`HWPTs ${hwpts.join(', ')}`);
      t.equal(new Set(hwpts).size, 1, 'number of distinct HWPTs');
      skipUnlessAllEdu(
        t,
        opened.map((o) => o.device),
      );
      const length = 2n * t.page * BigInt(opened.length);
      const memory = t.anonymousMemory(length);
      const iova = map(t, iommufd, ioasId, { userVa: memory.address, length, iova: 0x100000n });
      const bytes = new Uint8Array(memory.buffer!);
      for (const [i, o] of opened.entries()) {
        const at = 2 * i * t.pageSize;
        fillPattern(bytes.subarray(at, at + COUNT), i);
        await copyThrough(t, o, { iommufd, ioasId }, iova + BigInt(at), iova + BigInt(at + t.pageSize), COUNT);
        t.equal(
          firstDifference(bytes.subarray(at + t.pageSize, at + t.pageSize + COUNT), bytes.subarray(at, at + COUNT)),
          -1,
          `first byte ${o.device.bdf} copied wrong`,
        );
      }
    },
  }),
  defineCase({
    id: 'multi.separate-ioas',
    title:
      'functions of different IOMMU groups attached to IOASes of their own get HWPTs of their own and DMA each to its own buffer at the same IOVA; a function whose group already uses another IOAS cannot attach to a new one (EINVAL)',
    needs: NEEDS,
    async run(t) {
      const { iommufd, opened } = bindAll(t);
      const groups = opened.map((o) => iommuGroup(t, o.device));
      const attached: { o: Opened; ioasId: number; hwptId: number }[] = [];
      for (const [i, o] of opened.entries()) {
        const ioasId = ioasAlloc(t, iommufd);
        const sharing = groups[i] === null ? -1 : groups.indexOf(groups[i]!);
        if (sharing >= 0 && sharing < i) {
          // iommufd attaches a whole IOMMU group to one HWPT: a second one for the group is refused.
          t.expectErrno(
            `attach ${o.device.bdf} (IOMMU group ${groups[i]}, as ${opened[sharing]!.device.bdf}) to a new IOAS`,
            () => call.attach(on(t, { deviceFd: o.deviceFd }), { pt_id: ioasId }),
            'EINVAL',
          );
          continue;
        }
        attached.push({ o, ioasId, hwptId: attach(t, o.deviceFd, ioasId) });
      }
      t.note(`attached ${attached.map((a) => `${a.o.device.bdf} to IOAS ${a.ioasId} (HWPT ${a.hwptId})`).join(', ')}`);
      t.equal(new Set(attached.map((a) => a.hwptId)).size, attached.length, 'number of distinct HWPTs');
      if (attached.length < 2) t.skip('the functions share one IOMMU group: no two of them can use IOASes of their own');
      skipUnlessAllEdu(
        t,
        attached.map((a) => a.o.device),
      );
      const iova = 0x100000n;
      const buffers = attached.map((a, i) => {
        const memory = t.anonymousMemory(2n * t.page);
        map(t, iommufd, a.ioasId, { userVa: memory.address, length: 2n * t.page, iova });
        const bytes = new Uint8Array(memory.buffer!);
        fillPattern(bytes.subarray(0, COUNT), i);
        return bytes;
      });
      for (const a of attached) await copyThrough(t, a.o, { iommufd, ioasId: a.ioasId }, iova, iova + t.page, COUNT);
      buffers.forEach((bytes, i) =>
        t.equal(
          firstDifference(bytes.subarray(t.pageSize, t.pageSize + COUNT), bytes.subarray(0, COUNT)),
          -1,
          `first byte of ${attached[i]!.o.device.bdf}'s own buffer that differs`,
        ),
      );
    },
  }),
  defineCase({
    id: 'multi.group-one-iommufd',
    title:
      'functions of one IOMMU group bind to one iommufd only: the second to another iommufd is EPERM; functions of different groups bind to different iommufds',
    needs: NEEDS,
    run(t) {
      const all = functions(t);
      const groups = all.map((d) => iommuGroup(t, d));
      const sharing = all.findIndex((d, i) => i > 0 && groups[i] !== null && groups[i] === groups[0]);
      const apart = all.findIndex((d, i) => i > 0 && groups[i] !== groups[0]);
      if (sharing < 0 && apart < 0) t.skip('no other function to pair the device under test with');
      const iommufd = t.openIommufd();
      t.equal(bind(t, t.open(all[0]!.cdevPath), iommufd), 1, `devid of ${all[0]!.bdf} in its iommufd`);
      if (apart > 0) {
        t.expect(
          `bind ${all[apart]!.bdf} (IOMMU group ${groups[apart] ?? 'none'}) to another iommufd`,
          () => call.bind(on(t, { deviceFd: t.open(all[apart]!.cdevPath), iommufd: t.openIommufd() })),
          'ok',
        );
      }
      if (sharing < 0) t.skip(`no other function shares IOMMU group ${groups[0] ?? 'none'} with ${all[0]!.bdf}`);
      const second = t.open(all[sharing]!.cdevPath);
      t.expectErrno(
        `bind ${all[sharing]!.bdf} (same IOMMU group) to another iommufd`,
        () => call.bind(on(t, { deviceFd: second, iommufd: t.openIommufd() })),
        'EPERM',
      );
      t.expect(`bind ${all[sharing]!.bdf} to the first function's iommufd`, () => call.bind(on(t, { deviceFd: second, iommufd })), 'ok');
    },
  }),
];

/**
 * The whole model booted from a profile: the kernel side (memory, iommufd) wired to the PCI/VFIO
 * side, exercised through the syscall boundary the way a driver uses it.
 */
import assert from 'node:assert/strict';
import { createModelKernel, profiles } from '../../lib/model';
import { DmaFault } from '../../lib/model/pci/dma';
import { MAP_ANONYMOUS, MAP_HUGETLB, MAP_PRIVATE, O_RDWR, PROT_READ, PROT_WRITE } from '../../lib/sys/constants';
import {
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_NOIOMMU_GET_PA,
  IommuIoasAlloc,
  IommuIoasMap,
  IommuIoasNoiommuGetPa,
} from '../../lib/uapi/iommufd';
import {
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VfioDeviceAttachIommufdPt,
  VfioDeviceBindIommufd,
} from '../../lib/uapi/vfio';

const EDU = '0000:00:03.0';

function bootAndAttach(profile: 'linux-7.3-noiommu' | 'linux-7.3-iommu', cdev: string) {
  const k = createModelKernel(profile);
  const iommufd = k.open('/dev/iommu', O_RDWR);
  const dev = k.open(cdev, O_RDWR);
  const bind = VfioDeviceBindIommufd.encode({ argsz: VfioDeviceBindIommufd.size, iommufd });
  k.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD.number, bind);
  const devid = VfioDeviceBindIommufd.get(bind, 'out_devid');
  const alloc = IommuIoasAlloc.encode({ size: IommuIoasAlloc.size });
  k.ioctl(iommufd, IOMMU_IOAS_ALLOC.number, alloc);
  const ioas = IommuIoasAlloc.get(alloc, 'out_ioas_id');
  const attach = VfioDeviceAttachIommufdPt.encode({ argsz: VfioDeviceAttachIommufdPt.size, pt_id: ioas });
  k.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT.number, attach);
  const buf = k.mmap(-1, 2n << 20n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, 0n);
  const map = IommuIoasMap.encode({
    size: IommuIoasMap.size,
    ioas_id: ioas,
    user_va: buf.address,
    length: 2n << 20n,
    iova: 0x4000_0000n,
    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
  });
  k.ioctl(iommufd, IOMMU_IOAS_MAP.number, map);
  return { k, iommufd, dev, devid, ioas, buf, hwpt: VfioDeviceAttachIommufdPt.get(attach, 'pt_id') };
}

describe('booted model: kernel side wired to the PCI/VFIO side', () => {
  it('the lab topology: edu at 00:03.0 bound to vfio-pci, /dev/iommu, the noiommu cdev', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    assert.ok(k.pci?.host.slot(EDU));
    assert.ok(k.exists('/dev/iommu'));
    assert.ok(k.exists('/dev/vfio/devices/noiommu-vfio0'));
    assert.equal(profiles['linux-7.3-noiommu'].pci[0]!.address, EDU);
  });

  it('noiommu: BIND + ATTACH through the cdev loads the noiommu domain; the device DMAs to the GET_PA address', () => {
    const { k, iommufd, devid, ioas, buf, hwpt } = bootAndAttach('linux-7.3-noiommu', '/dev/vfio/devices/noiommu-vfio0');
    assert.equal(devid, 1, 'the device is the first object of this iommufd');
    assert.equal(ioas, 2);
    assert.equal(hwpt, 3, 'ATTACH returns the automatic HWPT');
    const q = IommuIoasNoiommuGetPa.encode({ size: IommuIoasNoiommuGetPa.size, ioas_id: ioas, iova: 0x4000_0000n, length: 4n << 20n });
    k.ioctl(iommufd, IOMMU_IOAS_NOIOMMU_GET_PA.number, q);
    const pa = IommuIoasNoiommuGetPa.get(q, 'out_phys');
    assert.equal(IommuIoasNoiommuGetPa.get(q, 'length'), 2n << 20n, 'a huge page is one contiguous run');
    const slot = k.pci!.host.slot(EDU)!;
    slot.dma.write(pa + 0x10n, Uint8Array.of(1, 2, 3));
    assert.deepEqual([...new Uint8Array(buf.buffer!, 0x10, 3)], [1, 2, 3]);
  });

  it('IOMMU mode: the device DMAs by IOVA through the attached VT-d domain; unmapped IOVAs fault', () => {
    const { k, buf } = bootAndAttach('linux-7.3-iommu', '/dev/vfio/devices/vfio0');
    const slot = k.pci!.host.slot(EDU)!;
    new Uint8Array(buf.buffer!)[0x20] = 0x5a;
    assert.equal(slot.dma.read(0x4000_0020n, 1)[0], 0x5a);
    assert.throws(
      () => slot.dma.read(0x5000_0000n, 1),
      (e: unknown) => e instanceof DmaFault && e.reason === 'unmapped-iova',
    );
  });

  it('closing the device fd unbinds it and lets the iommufd go', () => {
    const { k, iommufd, dev } = bootAndAttach('linux-7.3-noiommu', '/dev/vfio/devices/noiommu-vfio0');
    const ctx = k.iommufdOf(iommufd);
    k.close(dev);
    assert.equal(ctx.objects.objects().filter((o) => o.type === 'device').length, 0);
    k.close(iommufd);
    assert.equal(ctx.objects.size, 0);
    assert.equal(k.locked.pinnedPages, 0);
  });
});

describe('Kconfig: the VFIO interfaces a kernel can be built with (Documentation/driver-api/vfio.rst)', () => {
  const base = profiles['linux-7.3-noiommu'];
  const build = (name: string, group: boolean, container: 'vfio' | 'iommufd' | 'none', cdev: boolean) =>
    createModelKernel({
      ...base,
      name,
      config: {
        ...base.config,
        VFIO_GROUP: group,
        VFIO_CONTAINER: container === 'vfio',
        IOMMUFD_VFIO_CONTAINER: container === 'iommufd',
        VFIO_DEVICE_CDEV: cdev,
      },
    });
  const nodes = (k: ReturnType<typeof build>) => ({
    vfio: k
      .readdir('/dev/vfio')
      .filter((n) => n !== 'devices')
      .sort(),
    cdevs: k.exists('/dev/vfio/devices') ? k.readdir('/dev/vfio/devices') : [],
  });

  for (const container of ['vfio', 'iommufd'] as const) {
    it(`case 1 (group, ${container} container, no cdev): noiommu works through the group only`, () => {
      assert.deepEqual(nodes(build('case-1', true, container, false)), { vfio: ['noiommu-0', 'vfio'], cdevs: [] });
    });
    it(`case 3 (group, ${container} container, cdev): both paths work`, () => {
      assert.deepEqual(nodes(build('case-3', true, container, true)), { vfio: ['noiommu-0', 'vfio'], cdevs: ['noiommu-vfio0'] });
    });
  }

  for (const [n, cdev] of [
    [2, false],
    [4, true],
  ] as const) {
    it(`case ${n} (group without a container${cdev ? ', cdev' : ''}): VFIO_NOIOMMU cannot be selected, so the profile is refused`, () => {
      assert.throws(() => build(`case-${n}`, true, 'none', cdev), /VFIO_NOIOMMU with VFIO_GROUP needs a container/);
    });
  }

  it('case 5 (no group, cdev): noiommu works through the cdev only, with no group nodes', () => {
    assert.deepEqual(nodes(build('case-5', false, 'none', true)), { vfio: [], cdevs: ['noiommu-vfio0'] });
  });

  it('a kernel with neither the group interface nor the device cdev does not exist: the profile is refused', () => {
    const base = profiles['linux-7.3-noiommu'];
    assert.throws(
      () =>
        createModelKernel({
          ...base,
          name: 'no-group-no-cdev',
          config: { ...base.config, VFIO_GROUP: false, VFIO_CONTAINER: false, IOMMUFD_VFIO_CONTAINER: false, VFIO_DEVICE_CDEV: false },
        }),
      /neither VFIO_GROUP nor VFIO_DEVICE_CDEV/,
    );
  });
});

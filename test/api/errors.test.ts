/**
 * What a user sees when the environment is the problem: every failure a VfioError with code,
 * syscall/ioctl, path, and a hint naming the usual cause. Runs on the model's 'unprivileged'
 * profile (uid 1000, no capabilities, RLIMIT_MEMLOCK 8 MiB) and on crafted profiles.
 */
import assert from 'node:assert/strict';
import { createModelKernel, profiles, type Profile } from '../../lib/model';
import { openDevice } from '../../lib/vfio/open-device';
import { Iommufd } from '../../lib/iommu/iommufd';
import { VfioDevice } from '../../lib/vfio/device';
import { DmaBuffer } from '../../lib/dma/buffer';
import { PciDevice } from '../../lib/pci/pci-device';
import { readPhysicalSegments } from '../../lib/dma/pagemap';
import { isVfioError, type VfioError } from '../../lib/sys/errors';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../lib/sys/constants';
import { describeOnModel } from './support/targets';

const MiB = 1n << 20n;
const EDU = '0000:00:03.0';

function expectVfioError(fn: () => unknown, check: (e: VfioError) => void): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isVfioError(e), `expected a VfioError, got ${String(e)}`);
    check(e);
    return true;
  });
}

describeOnModel('API errors explain the environment [model unprivileged]', () => {
  it('opening a noiommu device without CAP_SYS_RAWIO: EPERM naming the cdev and the capability', () => {
    const kernel = createModelKernel('unprivileged');
    expectVfioError(
      () => openDevice(EDU, { kernel }),
      (e) => {
        assert.equal(e.code, 'EPERM');
        assert.equal(e.syscall, 'open');
        assert.equal(e.path, '/dev/vfio/devices/noiommu-vfio0');
        assert.match(e.hint ?? '', /CAP_SYS_RAWIO/);
      },
    );
    const start = kernel.openFdCount;
    expectVfioError(
      () => openDevice(EDU, { kernel }),
      () => undefined,
    );
    assert.equal(kernel.openFdCount, start, 'a failed openDevice closes what it opened');
  });

  /** unprivileged plus CAP_SYS_RAWIO: the device opens, and pinning is what fails. */
  function rawioOnly(): Profile {
    const base = profiles.unprivileged;
    return {
      ...base,
      name: 'unprivileged+rawio',
      process: { ...base.process, capabilities: { ...base.process.capabilities, sysRawio: true } },
    };
  }

  it('pinning beyond RLIMIT_MEMLOCK: the hint gives the current limit', () => {
    const kernel = createModelKernel(rawioOnly());
    using dev = openDevice(EDU, { kernel });
    expectVfioError(
      () => dev.allocateDma(16n * MiB),
      (e) => {
        assert.equal(e.ioctl, 'IOMMU_IOAS_MAP');
        assert.match(e.code, /^(ENOMEM|EPERM|EAGAIN)$/);
        assert.match(e.hint ?? '', /pinning 16 MiB counts against RLIMIT_MEMLOCK, currently 8 MiB.*CAP_IPC_LOCK/);
        assert.match(e.message, /mapping 16777216 bytes into IOAS/);
      },
    );
    const start = kernel.space.mappings().length;
    using small = dev.allocateDma(4n * MiB);
    assert.equal(small.size, 4n * MiB, 'below the limit the same call works');
    assert.equal(kernel.space.mappings().length, start + 1, 'the failed allocation unmapped its memory');
  });

  it('attaching a device to an IOAS that holds more than RLIMIT_MEMLOCK: the attach says why', () => {
    const kernel = createModelKernel(rawioOnly());
    using iommufd = Iommufd.open(kernel);
    const ioas = iommufd.ioas();
    using dma = DmaBuffer.allocate(16n * MiB, { space: ioas });
    assert.equal(dma.size, 16n * MiB, 'nothing is pinned while no device is attached');
    expectVfioError(
      () => VfioDevice.open(EDU, { iommufd, attach: ioas }),
      (e) => {
        assert.equal(e.ioctl, 'VFIO_DEVICE_ATTACH_IOMMUFD_PT');
        assert.match(e.message, /attaching VFIO device 0000:00:03\.0/);
        assert.match(e.hint ?? '', /pinning 16 MiB counts against RLIMIT_MEMLOCK, currently 8 MiB/);
      },
    );
  });

  it('locking a DMA buffer beyond RLIMIT_MEMLOCK says the same', () => {
    const kernel = createModelKernel(rawioOnly());
    using dev = openDevice(EDU, { kernel });
    expectVfioError(
      () => dev.allocateDma(12n * MiB, { locked: true }),
      (e) => {
        assert.equal(e.syscall, 'mlock');
        assert.match(e.hint ?? '', /currently 8 MiB/);
      },
    );
  });

  it('pagemap without CAP_SYS_ADMIN: EPERM saying frame numbers are hidden', () => {
    const kernel = createModelKernel('unprivileged');
    const memory = kernel.mmap(-1, 64n * 1024n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
    kernel.mlock(memory);
    expectVfioError(
      () => readPhysicalSegments(kernel, memory.address, memory.length),
      (e) => {
        assert.equal(e.code, 'EPERM');
        assert.equal(e.path, '/proc/self/pagemap');
        assert.match(e.hint ?? '', /CAP_SYS_ADMIN/);
      },
    );
  });

  it('writing sysfs as a normal user: the hint says it needs root', () => {
    const kernel = createModelKernel('unprivileged');
    expectVfioError(
      () => PciDevice.get(EDU, kernel).unbind(),
      (e) => {
        assert.match(e.code, /^(EACCES|EPERM)$/);
        assert.match(e.path ?? '', /^\/sys\/bus\/pci\/drivers\/vfio-pci\/unbind$/);
        assert.match(e.hint ?? '', /root/);
      },
    );
  });
});

describeOnModel('API errors explain the environment [model crafted profiles]', () => {
  function unboundEdu(base: Profile, overrides: Partial<Profile> = {}): Profile {
    return { ...base, ...overrides, name: `${base.name}+unbound`, pci: base.pci.map((d) => ({ ...d, driver: null })) };
  }

  it('a device not bound to vfio-pci: openDevice says which driver it has and how to bind', () => {
    const kernel = createModelKernel(unboundEdu(profiles['linux-7.3-noiommu']));
    expectVfioError(
      () => openDevice(EDU, { kernel }),
      (e) => {
        assert.equal(e.code, 'ERR_VFIO_NOT_BOUND');
        assert.match(e.message, /bound to no driver, not vfio-pci/);
        assert.match(e.hint ?? '', /bindVfio\(\).*unsafeNoiommu: true/);
      },
    );
    using iommufd = Iommufd.open(kernel);
    expectVfioError(
      () => VfioDevice.open(EDU, { iommufd }),
      (e) => {
        assert.equal(e.code, 'ERR_VFIO_NO_CDEV');
        assert.match(e.hint ?? '', /not vfio-pci: PciDevice\.get\('0000:00:03\.0'\)\.bindVfio\(\)/);
      },
    );
  });

  it('noiommu mode off and no IOMMU: no cdev, no group; bindVfio refuses without unsafeNoiommu', () => {
    const kernel = createModelKernel(unboundEdu(profiles['linux-7.3-noiommu'], { noiommu: false }));
    const edu = PciDevice.get(EDU, kernel);
    assert.equal(PciDevice.noiommuMode(kernel), 'disabled');
    expectVfioError(
      () => edu.bindVfio(),
      (e) => {
        assert.equal(e.code, 'ERR_VFIO_NOIOMMU_NOT_ALLOWED');
        assert.match(e.message, /refusing binding 0000:00:03\.0, which has no IOMMU/);
        assert.match(e.hint ?? '', /taints the kernel.*unsafeNoiommu: true/);
      },
    );
    assert.equal(PciDevice.noiommuMode(kernel), 'disabled', 'the refusal changed nothing');
    assert.equal(edu.driver, null);
    expectVfioError(
      () => PciDevice.setNoiommuMode(true, {}, kernel),
      (e) => assert.equal(e.code, 'ERR_VFIO_NOIOMMU_NOT_ALLOWED'),
    );
  });

  it('GET_PA on a kernel older than 7.3 is ENOTTY with the version hint', () => {
    const kernel = createModelKernel('linux-6.x-legacy-noiommu');
    using iommufd = Iommufd.open(kernel);
    const ioas = iommufd.ioas();
    const memory = kernel.mmap(-1, 4096n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
    const area = ioas.map(memory);
    expectVfioError(
      () => ioas.getPhysicalAddress(area.iova, 4096n),
      (e) => {
        assert.equal(e.code, 'ENOTTY');
        assert.equal(e.ioctl, 'IOMMU_IOAS_NOIOMMU_GET_PA');
        assert.match(e.hint ?? '', /Linux 7\.3/);
      },
    );
  });
});

/**
 * Adopting fds a process was given (inherited, LISTEN_FDS, received over a Unix socket): the
 * sender opens (and maybe binds) exactly as a privileged broker would, the receiver takes the
 * fds over by number, and every fd that is not what it is claimed to be is refused by name.
 */
import assert from 'node:assert/strict';
import { createModelKernel } from '../../lib/model';
import { O_RDWR } from '../../lib/sys/constants';
import { isVfioError } from '../../lib/sys/errors';
import { Iommufd } from '../../lib/iommu/iommufd';
import { VfioContainer } from '../../lib/vfio/container';
import { VfioDevice } from '../../lib/vfio/device';
import { VfioGroup } from '../../lib/vfio/group';
import { identifyFd } from '../../lib/vfio/fd-identity';
import { PciDevice } from '../../lib/pci/pci-device';
import { describeOnModel } from './support/targets';

const EDU = '0000:00:03.0';
const wrongFd = (e: unknown) => isVfioError(e, 'ERR_VFIO_WRONG_FD');

describeOnModel('adopting fds [model]', () => {
  for (const profile of ['linux-7.3-noiommu', 'linux-7.3-iommu'] as const) {
    it(`an unbound device cdev and an iommufd, adopted, drive DMA like an opened device (${profile})`, () => {
      const kernel = createModelKernel(profile);
      const before = kernel.openFdCount;
      const cdev = PciDevice.get(EDU, { kernel }).cdevPath()!;
      const deviceFd = kernel.open(cdev, O_RDWR);
      const iommufdFd = kernel.open('/dev/iommu', O_RDWR);
      assert.equal(identifyFd(kernel, deviceFd).kind, 'vfio-cdev-unbound');
      assert.equal(identifyFd(kernel, iommufdFd).kind, 'iommufd');
      const iommufd = Iommufd.adopt(iommufdFd, { kernel });
      const dev = VfioDevice.adopt(deviceFd, { iommufd, bdf: EDU });
      assert.equal(dev.backend.noiommu, profile === 'linux-7.3-noiommu', 'noiommu told by IOMMU_GET_HW_INFO');
      assert.equal(identifyFd(kernel, deviceFd).kind, 'vfio-device');
      const buf = dev.allocateDma(4096);
      buf.bytes[0] = 0x5a;
      if (dev.backend.noiommu) assert.ok(buf.segments().length > 0, 'physical segments from IOMMU_IOAS_NOIOMMU_GET_PA');
      else assert.notEqual(buf.iova, undefined);
      assert.ok(dev.info.numRegions > 0);
      iommufd.close();
      assert.equal(kernel.openFdCount, before, 'closing the adopted iommufd closes the adopted fds');
    });
  }

  it('a cdev the sender already bound is adopted with the iommufd and the deviceId it learnt', () => {
    const kernel = createModelKernel('linux-7.3-iommu');
    const sent = Iommufd.open({ kernel });
    const opened = VfioDevice.open(EDU, { iommufd: sent, attach: false });
    // The receiver gets its own fds of the same open files (what SCM_RIGHTS gives).
    const iommufd = Iommufd.adopt(sent.fd, { kernel });
    assert.throws(() => VfioDevice.adopt(opened.fd, { iommufd }), TypeError, 'a bound cdev needs its deviceId');
    assert.throws(
      () => VfioDevice.adopt(opened.fd, { iommufd, deviceId: opened.deviceId + 100 }),
      (e: unknown) => isVfioError(e),
    );
    const dev = VfioDevice.adopt(opened.fd, { iommufd, deviceId: opened.deviceId, attach: iommufd.ioas() });
    assert.equal(dev.backend.noiommu, false);
    dev.allocateDma(8192);
  });

  it('group and container fds are adopted on the legacy path, the device through the container', () => {
    const kernel = createModelKernel('linux-6.x-legacy-noiommu');
    const groupId = PciDevice.get(EDU, { kernel }).iommuGroup!;
    const groupFd = kernel.open(`/dev/vfio/noiommu-${groupId}`, O_RDWR);
    const containerFd = kernel.open('/dev/vfio/vfio', O_RDWR);
    assert.throws(() => VfioGroup.adopt(groupFd, { kernel }), TypeError, 'the model has no /proc/self/fd: the group number must be given');
    const group = VfioGroup.adopt(groupFd, { kernel, groupId, noiommu: true });
    const container = VfioContainer.adopt(containerFd, { kernel });
    group.setContainer(container);
    container.setIommu(8 /* VFIO_NOIOMMU_IOMMU */);
    const dev = group.openDevice(EDU, { dmaSpace: container });
    const adopted = VfioDevice.adopt(dev.fd, { dmaSpace: container, noiommu: true, bdf: EDU });
    assert.equal(adopted.backend.kind, 'group');
    assert.ok(adopted.info.numRegions > 0);
  });

  it("an fd that is not what it was claimed to be is refused by name, and stays the caller's", () => {
    const kernel = createModelKernel('linux-7.3-noiommu');
    const efd = kernel.eventfd(0, 0);
    const iommufdFd = kernel.open('/dev/iommu', O_RDWR);
    const cdevFd = kernel.open(PciDevice.get(EDU, { kernel }).cdevPath()!, O_RDWR);
    assert.equal(identifyFd(kernel, efd).kind, 'other');
    assert.throws(() => Iommufd.adopt(efd, { kernel }), wrongFd);
    assert.throws(
      () => Iommufd.adopt(cdevFd, { kernel }),
      (e: unknown) => wrongFd(e) && /vfio-cdev-unbound/.test((e as Error).message),
    );
    assert.throws(() => VfioContainer.adopt(cdevFd, { kernel }), wrongFd);
    assert.throws(() => VfioGroup.adopt(iommufdFd, { kernel, groupId: 0 }), wrongFd);
    const iommufd = Iommufd.adopt(iommufdFd, { kernel });
    assert.throws(() => VfioDevice.adopt(efd, { iommufd }), wrongFd);
    assert.throws(() => VfioDevice.adopt(iommufdFd, { iommufd }), wrongFd);
    assert.throws(
      () => identifyFd(kernel, 999),
      (e: unknown) => isVfioError(e, 'EBADF'),
    );
    assert.throws(() => identifyFd(kernel, -1), RangeError);
    assert.ok(kernel.hasFd(efd) && kernel.hasFd(cdevFd), "a refused fd is not closed: it is still the caller's");
  });

  it('a process without CAP_SYS_RAWIO cannot open a noiommu cdev itself: it needs the fd from a privileged sender', () => {
    const kernel = createModelKernel('unprivileged');
    const cdev = PciDevice.get(EDU, { kernel }).cdevPath()!;
    assert.throws(
      () => kernel.open(cdev, O_RDWR),
      (e: unknown) => isVfioError(e, 'EPERM'),
      'opening a noiommu cdev needs CAP_SYS_RAWIO',
    );
  });
});

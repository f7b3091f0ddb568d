/**
 * The hand-over on the real kernel: this (root) process opens the device cdev and an iommufd,
 * as a broker would, and a child without CAP_SYS_RAWIO (setpriv) inherits the two fds as 3 and
 * 4, adopts them, binds, maps DMA and reads config space. On noiommu, CAP_SYS_RAWIO was checked
 * at open (ours) and is checked again at every IOMMU_IOAS_NOIOMMU_GET_PA (the child's): the child
 * must get EPERM with the hint naming the capability (docs/privileges.md).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { nativeKernel } from '../../lib/sys/native-kernel';
import { O_RDWR } from '../../lib/sys/constants';
import { PciDevice } from '../../lib/pci/pci-device';
import { requireLab, type LabEnvironment } from './lab-environment';
import { findSetpriv, withoutRawio } from './unprivileged';

const CHILD = `
const lib = ${JSON.stringify(path.resolve(__dirname, '../../lib'))};
const { Iommufd } = require(lib + '/iommu/iommufd');
const { VfioDevice } = require(lib + '/vfio/device');
const { identifyFd } = require(lib + '/vfio/fd-identity');
const { nativeKernel } = require(lib + '/sys/native-kernel');
const k = nativeKernel();
const out = { kinds: [identifyFd(k, 3).kind, identifyFd(k, 4).kind], rawio: k.capabilities().sysRawio };
const dev = VfioDevice.adopt(4, { iommufd: Iommufd.adopt(3) });
out.noiommu = dev.backend.noiommu;
out.vendor = dev.config.read16(0);
out.deviceKind = identifyFd(k, 4).kind;
try {
  const buf = dev.allocateDma(4096);
  out.dma = buf.addressing === 'iova' ? 'iova' : 'segments ' + buf.segments().length;
} catch (e) { out.dma = e.code + ' ' + (e.ioctl || '') + ' ' + (e.hint || ''); }
process.stdout.write(JSON.stringify(out));
`;

describe('lab: an unprivileged child adopts the device and iommufd fds a root process opened', function () {
  let lab: LabEnvironment;
  before(function () {
    lab = requireLab(this);
  });

  it('binds, reads config space and maps DMA; on noiommu GET_PA is refused for want of CAP_SYS_RAWIO', function () {
    this.timeout(120_000);
    if (findSetpriv() === null) {
      console.log('      (skipped: no setpriv on this machine to drop CAP_SYS_RAWIO)');
      this.skip();
    }
    const kernel = nativeKernel();
    const cdev = PciDevice.get(lab.bdf, { kernel }).cdevPath();
    if (cdev === null || !kernel.exists('/dev/iommu')) {
      console.log(
        `      (skipped: this kernel gives ${lab.bdf} no device cdev with /dev/iommu, so there is nothing to hand over on the cdev path)`,
      );
      this.skip();
    }
    const iommufd = kernel.open('/dev/iommu', O_RDWR);
    const device = kernel.open(cdev, O_RDWR);
    try {
      const [command, ...args] = withoutRawio([process.execPath, '-e', CHILD]);
      const run = spawnSync(command!, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', iommufd, device] });
      assert.equal(run.status, 0, run.stderr);
      const out = JSON.parse(run.stdout) as {
        kinds: string[];
        rawio: boolean;
        noiommu: boolean;
        vendor: number;
        deviceKind: string;
        dma: string;
      };
      console.log(`      saw: ${run.stdout}`);
      assert.deepEqual(out.kinds, ['iommufd', 'vfio-cdev-unbound']);
      assert.equal(out.rawio, false);
      assert.equal(out.deviceKind, 'vfio-device');
      assert.equal(out.vendor, 0x1234);
      const noiommu = path.basename(cdev).startsWith('noiommu-');
      assert.equal(out.noiommu, noiommu);
      if (noiommu) assert.match(out.dma, /^EPERM IOMMU_IOAS_NOIOMMU_GET_PA .*CAP_SYS_RAWIO/);
      else assert.equal(out.dma, 'iova');
    } finally {
      kernel.close(device);
      kernel.close(iommufd);
    }
  });
});

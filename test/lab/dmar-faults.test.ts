/** The DMAR fault-log cases (test/devices/dmar-fault-cases.ts) on the real kernel with QEMU's intel-iommu. */
import { nativeKernel } from '../../lib/sys/native-kernel';
import { dmarFaultCases } from '../devices/dmar-fault-cases';
import { requireLab } from './lab-environment';

describe('lab: the kernel log of a DMA the IOMMU blocked', function () {
  this.timeout(60_000);
  let bdf = '';
  before(function () {
    const lab = requireLab(this);
    if (lab.mode !== 'iommu') {
      console.log('      skipped: noiommu mode has no IOMMU to block a DMA');
      this.skip();
    }
    bdf = lab.bdf;
  });
  dmarFaultCases(() => Promise.resolve({ kernel: nativeKernel(), bdf, settleMs: 10_000 }));
});

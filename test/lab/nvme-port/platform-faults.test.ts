/**
 * The NVMe driver's platform-fault cases (test/devices/nvme-platform-fault-cases.ts) on the real
 * kernel: the nvme-port machine's controller behind its pcie-root-port (00:05.0), AER errors
 * raised there through aer_inject, the hot-unplug through the port's pciehp slot.
 */
import { nativeKernel } from '../../../lib/sys/native-kernel';
import { nvmePlatformFaultCases } from '../../devices/nvme-platform-fault-cases';
import { requireLab } from '../lab-environment';
import { powerOff, slotOf } from '../hotplug-slots';

describe('lab: the NVMe driver against AER errors and a hot-unplug', function () {
  this.timeout(180_000);
  let bdf = '';
  before(function () {
    const lab = requireLab(this);
    const behind = lab.bdfs.find((b) => !b.startsWith('0000:00:'));
    if (!behind || !nativeKernel().exists('/dev/aer_inject')) {
      console.log(`      skipped: machine ${lab.machine} needs an NVMe controller behind a root port, and /dev/aer_inject`);
      this.skip();
    }
    bdf = behind;
  });

  nvmePlatformFaultCases(() =>
    Promise.resolve({
      kernel: nativeKernel(),
      bdf,
      rootPort: '0000:00:05.0',
      unplug: () => powerOff(slotOf(bdf)),
      settleMs: 15_000,
    }),
  );
});

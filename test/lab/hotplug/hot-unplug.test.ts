/**
 * The hot-unplug cases (test/devices/hot-unplug-cases.ts) on the real kernel: the hotplug machine's
 * three edu functions, each behind a pcie-root-port whose slot pciehp drives (/sys/bus/pci/slots/N).
 * Writing 0 to a slot's power file removes its function and blocks the writer until the removal
 * is done, so a child shell does it. QEMU deletes a device whose slot is powered off, so every
 * case takes a function of its own and none comes back.
 */
import { nativeKernel } from '../../../lib/sys/native-kernel';
import { hotUnplugCases } from '../../devices/hot-unplug-cases';
import { requireLab } from '../lab-environment';
import { powerOff, slotOf } from '../hotplug-slots';

describe('lab: hot-unplug of a function vfio-pci drives', function () {
  this.timeout(180_000);
  let unused: string[] = [];
  before(function () {
    const lab = requireLab(this);
    unused = lab.bdfs.filter((b) => !b.startsWith('0000:00:'));
    if (unused.length === 0) {
      console.log(`      skipped: machine ${lab.machine} has no function behind a PCIe root port`);
      this.skip();
    }
  });

  hotUnplugCases(() => {
    const bdf = unused.shift();
    if (!bdf) throw new Error('the hotplug machine has fewer functions behind root ports than there are cases');
    const slot = slotOf(bdf);
    return Promise.resolve({
      kernel: nativeKernel(),
      bdf,
      unplug: () => powerOff(slot),
      restore: () => Promise.resolve(),
      settleMs: 1500,
    });
  });
});

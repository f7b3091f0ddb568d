/**
 * The AER cases (test/devices/aer-cases.ts) on the real kernel: the multi machine's edu behind its
 * pcie-root-port (00:06.0, AER at 0x100), with errors raised at the port through aer_inject.
 */
import { nativeKernel } from '../../../lib/sys/native-kernel';
import { aerCases } from '../../devices/aer-cases';
import { requireLab } from '../lab-environment';

describe('lab: AER errors at the root port above a function vfio-pci drives', function () {
  this.timeout(120_000);
  let behind: string | undefined;
  let onRootBus: string | undefined;
  before(function () {
    const lab = requireLab(this);
    behind = lab.bdfs.find((b) => !b.startsWith('0000:00:'));
    onRootBus = lab.bdfs.find((b) => b.startsWith('0000:00:'));
    if (!behind || !onRootBus || !nativeKernel().exists('/dev/aer_inject')) {
      console.log(`      skipped: machine ${lab.machine} needs a function behind a root port, one on the root bus, and /dev/aer_inject`);
      this.skip();
    }
  });

  aerCases(() =>
    Promise.resolve({
      kernel: nativeKernel(),
      bdf: behind!,
      rootPort: '0000:00:06.0',
      rootBusFunction: onRootBus!,
      settleMs: 10_000,
    }),
  );
});

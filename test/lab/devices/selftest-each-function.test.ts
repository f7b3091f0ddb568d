/**
 * On the nvme and multi lab machines: the conformance suite on every function the guest bound to
 * vfio-pci, each in turn as the device under test (the others are its peers for the cases on
 * several functions). A case that passes on the model profile of the same machine and fails here
 * is a model bug. TAP reports: conformance-<machine>-<bdf>-<mode>-<kernel>.tap.
 * The file's name sorts after pci-observations.test.ts on purpose (the runner takes files in name
 * order): the suite leaves device registers changed (edu's liveness register, say), and the
 * observations must see the functions as the guest booted them.
 */
import { labEnvironment } from '../lab-environment';
import { describeLabConformance } from '../conformance-suite';

const lab = labEnvironment();
// Outside the lab the machine's functions are unknown: one suite that skips with the reason.
const functions = 'notInLab' in lab ? [null] : lab.bdfs;

for (const bdf of functions) {
  describeLabConformance(`conformance on the real kernel (QEMU lab machine), device ${bdf ?? 'of the machine'}`, {
    bdf: (l) => bdf ?? l.bdf,
    tapFile: (l) => `conformance-${l.machine}-${(bdf ?? l.bdf).replace(/[:.]/g, '-')}-${l.mode}-${l.kernel}.tap`,
  });
}

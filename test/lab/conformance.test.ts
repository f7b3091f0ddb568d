/**
 * The conformance suite on the real Linux 7.3 kernel in the QEMU lab's edu machine: every case of
 * lib/selftest on the edu device, exactly as it runs on the model (conformance-suite.ts). The
 * run's TAP report is conformance-<mode>-<kernel>.tap in the lab's results directory.
 */
import { describeLabConformance } from './conformance-suite';

describeLabConformance('conformance on the real kernel (QEMU lab)', {
  bdf: (lab) => lab.bdf,
  tapFile: (lab) => `conformance-${lab.mode}-${lab.kernel}.tap`,
});

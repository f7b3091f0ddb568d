/**
 * The lab's 'nvme' machine as the fuzzer and the model's parity and conformance tests use it: the
 * lib/model preset 'lab-nvme-<mode>' (q35's platform functions and QEMU 7.2's NVMe controller at
 * 00:04.0, as scripts/lab/common.sh lays the machine out, on a lab kernel with CONFIG_PCI_IOV).
 */
import { profiles, type Profile } from '../../lib/model';

export function labNvmeProfile(mode: 'noiommu' | 'iommu'): Profile {
  return profiles[`lab-nvme-${mode}`];
}

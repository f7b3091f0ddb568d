/**
 * The lab's 'nvme' machine as the fuzzer and the model's parity and conformance tests use it: the
 * lib/model preset 'lab-nvme-<mode>' (q35's platform functions and QEMU 7.2's NVMe controller at
 * 00:04.0, as scripts/lab/common.sh lays the machine out) without CONFIG_PCI_IOV, because the
 * fixtures those tests compare with (test/model/devices/fixtures/nvme-lab-7.3-*.txt) were
 * recorded on lab kernels built before SR-IOV was switched on (7-line sysfs `resource`).
 */
import { profiles, type Profile } from '../../lib/model';

export function labNvmeProfile(mode: 'noiommu' | 'iommu'): Profile {
  const preset = profiles[`lab-nvme-${mode}`];
  return { ...preset, config: { ...preset.config, PCI_IOV: false } };
}

/**
 * Prints the sriov machine's NVMe observations (nvme-sriov-observations.ts) on the kernel this
 * process runs on, to refresh the fixture from the lab:
 *   NODE_VFIO_LAB_ACCEL=tcg bash scripts/lab/run.sh noiommu --machine sriov -- node dist/test/devices/nvme-sriov-record.js
 * keeping the lines that contain " = " in test/model/devices/fixtures/nvme-sriov-lab-7.3.txt;
 * with --model, on the model of that machine instead.
 */
import { defaultKernel } from '../../lib/sys/default-kernel';
import { labModelKernel } from '../../tools/fuzz/lab-model';
import { SRIOV_PF } from './nvme-copy-observations';
import { observeSriovControllers } from './nvme-sriov-observations';

const kernel = process.argv.includes('--model') ? labModelKernel('noiommu', SRIOV_PF, 'group', 'sriov') : defaultKernel();
observeSriovControllers(kernel).then(
  (lines) => {
    for (const line of lines) console.log(line);
  },
  (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  },
);

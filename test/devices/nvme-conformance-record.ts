/**
 * Prints the NVMe conformance observations (nvme-conformance.ts) of the controller in
 * NODE_VFIO_BDF on the kernel this process runs on, to refresh the fixtures from the lab:
 *   npx tsc -p tsconfig.json && NODE_VFIO_LAB_ACCEL=tcg bash scripts/lab/run.sh iommu --machine nvme -- \
 *     node dist/test/devices/nvme-conformance-record.js
 * (and noiommu), keeping the lines that contain " = " in
 * test/model/devices/fixtures/nvme-conformance-lab-7.3-<mode>.txt.
 */
import { defaultKernel } from '../../lib/sys/default-kernel';
import { observeNvme } from './nvme-conformance';

const bdf = process.env.NODE_VFIO_BDF;
if (!bdf) throw new Error('NODE_VFIO_BDF names no device');
observeNvme(defaultKernel(), bdf, { interrupts: true }).then(
  (lines) => {
    for (const line of lines) console.log(line);
  },
  (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  },
);

/**
 * Prints pci-observations.ts's lines for every function in NODE_VFIO_BDFS on the kernel this
 * process runs on, to refresh the fixtures from the lab:
 *   npm run build && bash scripts/lab/run.sh iommu --machine nvme -- node dist/test/model/devices/record-pci-observations.js
 * (each machine, both modes), then keep the lines that contain " = " in
 * fixtures/<machine>-lab-7.3-<mode>.txt. Each function's lines start with its address.
 */
import { defaultKernel } from '../../../lib/sys/default-kernel';
import { observePciFunction } from './pci-observations';

const kernel = defaultKernel();
for (const bdf of (process.env.NODE_VFIO_BDFS ?? '').split(' ').filter(Boolean)) {
  const cdev = kernel.readdir(`/sys/bus/pci/devices/${bdf}/vfio-dev`)[0];
  if (cdev === undefined) throw new Error(`${bdf} has no VFIO cdev`);
  for (const line of observePciFunction(kernel, { bdf, cdev })) console.log(`${bdf} ${line}`);
}

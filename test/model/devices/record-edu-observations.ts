/**
 * Prints edu-observations.ts's lines for the kernel this process runs on, to refresh the fixtures
 * from the lab:
 *   npm run build && bash scripts/lab/run.sh noiommu -- node dist/test/model/devices/record-edu-observations.js
 * (and `iommu`), then copy the lines that contain " = " into fixtures/edu-lab-7.3-<mode>.txt.
 * With a profile name as argument it prints the model's lines instead.
 */
import { defaultKernel } from '../../../lib/sys/default-kernel';
import { createModelKernel } from '../../../lib/model';
import type { ProfileName } from '../../../lib/model';
import { observeEdu } from './edu-observations';

async function main(): Promise<void> {
  const profile = process.argv[2] as ProfileName | undefined;
  const kernel = profile ? createModelKernel(profile) : defaultKernel();
  for (const line of await observeEdu(kernel)) console.log(line);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

/**
 * Copy on the sriov machine's PF, whose namespace is an nvme-ns device with Copy limits (MSSRL
 * 128, MCL 128, MSRC 127), so copies go through: nvme-conformance.ts's copyCommands after the
 * data it expects is written. test/lab/sriov/nvme-copy.test.ts runs it on QEMU 7.2's controller
 * and on the model of that machine; test/devices/nvme-copy.test.ts holds the model to the lab's
 * recording (test/model/devices/fixtures/nvme-copy-lab-7.3-sriov.txt).
 */
import { labRecording } from './lab-recording';
import { DmaBuffer, openDevice, type Kernel } from '../../lib';
import { NvmeDriver } from '../../examples/nvme/nvme-driver';
import { copyCommands, fillPattern } from './nvme-conformance';

export const SRIOV_PF = '0000:00:04.0';
const TOKEN = '52ac9bff-3a88-4fbd-901a-0d767c3b6c97';
/** The 64 MiB image's last LBA. */
const LAST_LBA = 131071n;

export async function observeSriovCopy(kernel: Kernel): Promise<string[]> {
  const lines: string[] = [];
  using device = openDevice(SRIOV_PF, { kernel, prefer: 'cdev', vfToken: TOKEN });
  device.config.enableBusMaster();
  using nvme = await NvmeDriver.open(device, { ioQueues: 1, queueDepth: 16, completion: 'poll', commandTimeoutMs: 10_000 });
  {
    // What copyCommands expects: LBAs 0-7 and 64-103 written with a pattern.
    using data = DmaBuffer.allocate(1 << 17, { space: device.dmaSpace });
    fillPattern(data.bytes);
    await nvme.write(1, 0, 8, data);
    await nvme.write(1, 64, 40, data, 0x10200);
  }
  await copyCommands(nvme, device, (key, value) => lines.push(`${key} = ${String(value)}`), LAST_LBA);
  await nvme.shutdown();
  return lines;
}

/** The lab's recording, without its comment lines. */
export function recordedSriovCopy(): string[] {
  return labRecording('nvme-copy-lab-7.3-sriov.txt');
}

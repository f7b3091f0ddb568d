/**
 * What the example driver's recovery relies on of the controller, as one case run on the NVMe
 * model (test/devices) and on QEMU's real controller in the lab (test/lab/nvme): CC.EN 1→0 with
 * I/O queues in place drops RDY and forgets every queue; the admin queue at the same addresses,
 * the queue count and the I/O queues can be set up again; data written before is still there;
 * and Abort of a command that is not outstanding answers "not aborted" (dword 0 bit 0 set).
 */
import assert from 'node:assert/strict';
import { DmaBuffer, type VfioDevice } from '../../lib';
import { NvmeDriver } from '../../examples/nvme/nvme-driver';

export async function recoveryCase(device: VfioDevice, lba = 4096): Promise<void> {
  const nvme = await NvmeDriver.open(device, { ioQueues: 2, queueDepth: 16, commandTimeoutMs: 20_000 });
  try {
    using buffer = DmaBuffer.allocate(3 * 4096, { space: device.dmaSpace });
    const pattern = new Uint8Array(4096).map((_, i) => (i * 13 + 1) & 0xff);
    buffer.bytes.set(pattern, 0);
    await nvme.write(1, lba, 8, buffer, 0);
    const notOutstanding = await nvme.adminCommand({ opcode: 0x08, cdw10: ((0x7ff << 16) | 1) >>> 0 });
    assert.equal(notOutstanding & 1, 1, 'Abort of a command that is not outstanding: not aborted');
    await nvme.reset();
    assert.equal(nvme.resets, 1);
    assert.equal(nvme.ioQueueCount, 2);
    assert.equal(nvme.status & 0x3, 0x1, 'CSTS.RDY again, no CFS');
    for (const [i, offset] of [4096, 8192].entries()) {
      buffer.bytes.fill(0, offset, offset + 4096);
      await nvme.read(1, lba, 8, buffer, offset);
      assert.ok(
        Buffer.from(buffer.bytes.subarray(offset, offset + 4096)).equals(pattern),
        `read ${i + 1} after the reset returns the data written before it`,
      );
    }
    await nvme.shutdown();
  } finally {
    nvme.close();
  }
}

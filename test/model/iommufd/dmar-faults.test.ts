/** The DMAR fault-log cases (test/devices/dmar-fault-cases.ts) on the model of the lab's edu machine. */
import assert from 'node:assert/strict';
import { createModelKernel } from '../../../lib/model';
import { readKernelLog } from '../../../lib/sys/kernel-log';
import { O_RDONLY } from '../../../lib/sys/constants';
import { isVfioError } from '../../../lib/sys/errors';
import { dmarFaultCases } from '../../devices/dmar-fault-cases';

describe('model: the kernel log of a DMA the IOMMU blocked (lab edu machine, iommu)', function () {
  this.timeout(20_000);
  dmarFaultCases(() => Promise.resolve({ kernel: createModelKernel('lab-edu-iommu'), bdf: '0000:00:03.0', settleMs: 1000 }));
});

describe('model: /dev/kmsg', () => {
  it('answers one record per read, EINVAL to a read too short for it, EAGAIN at the end', () => {
    const kernel = createModelKernel('lab-edu-iommu');
    kernel.machine.kmsg.printk(6, 'model: hello');
    const fd = kernel.open('/dev/kmsg', O_RDONLY);
    try {
      const short = new Uint8Array(4);
      assert.throws(
        () => kernel.pread(fd, short, 0n),
        (e: unknown) => isVfioError(e, 'EINVAL'),
      );
      const buf = new Uint8Array(8192);
      const n = kernel.pread(fd, buf, 0n);
      assert.match(Buffer.from(buf.subarray(0, n)).toString(), /^6,0,\d+,-;model: hello\n$/);
      assert.throws(
        () => kernel.pread(fd, buf, 0n),
        (e: unknown) => isVfioError(e, 'EAGAIN'),
      );
    } finally {
      kernel.close(fd);
    }
    assert.deepEqual(
      readKernelLog(kernel).map((r) => [r.seq, r.level, r.text]),
      [[0n, 6, 'model: hello']],
    );
  });
});

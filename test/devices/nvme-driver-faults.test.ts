/**
 * Regression cases for what the NVMe fault sweep found in the example driver (model only: each
 * fault is injected into the NVMe model; QEMU's controller never does these on its own):
 *   - a controller whose CAP reads all ones (gone) left BAR0 mapped when open refused it;
 *   - a timed-out command was rejected while the controller still owned it, so it could DMA into
 *     the caller's freed buffer, and a completion with a wrong phase tag left its queue stuck;
 *   - Controller Fatal Status failed the driver for good while the controller's other queues kept
 *     running, where a reset brings it back;
 *   - a controller that reset itself went unnoticed until commands timed out;
 *   - a completion naming another submission queue was consumed as one of this queue's.
 */
import assert from 'node:assert/strict';
import { DmaBuffer, openDevice } from '../../lib';
import { createModelKernel } from '../../lib/model';
import { NvmeController } from '../../lib/devices/nvme';
import { NvmeCommandError, NvmeControllerError, NvmeTimeoutError } from '../../examples/nvme/errors';
import { NvmeDriver } from '../../examples/nvme/nvme-driver';
import { census, censusDifference } from '../reliability/census';
import { recoveryCase } from './nvme-recovery-case';

const BDF = '0000:00:04.0';

function machine() {
  const model = new NvmeController();
  const kernel = createModelKernel({ base: 'linux-7.3-iommu', withoutBaseDevices: true, devices: [{ address: BDF, model }] });
  return { model, kernel, device: openDevice(BDF, { kernel }) };
}

describe('NVMe driver under injected device faults (model only)', function () {
  this.timeout(30_000);

  for (const mode of ['noiommu', 'iommu'] as const) {
    it(`the controller behaviour recovery relies on (the lab runs the same case on QEMU's controller) (${mode})`, async () => {
      const model = new NvmeController();
      const kernel = createModelKernel({ base: `linux-7.3-${mode}`, withoutBaseDevices: true, devices: [{ address: BDF, model }] });
      const device = openDevice(BDF, { kernel });
      try {
        await recoveryCase(device);
      } finally {
        device.close();
      }
    });
  }

  it('a controller whose CAP reads all ones is refused with a typed error and BAR0 is not left mapped', async () => {
    const { model, kernel, device } = machine();
    const before = census(kernel);
    model.fail('surprise removal before the driver opens it');
    await assert.rejects(NvmeDriver.open(device), (e: unknown) => e instanceof NvmeControllerError && /CAP reads all ones/.test(e.message));
    assert.deepEqual(censusDifference(before, census(kernel)), []);
    device.close();
  });

  // Only a lost completion needs the timeout to fire; elsewhere it is long, so a loaded machine
  // cannot time out a command no fault touched.
  for (const [point, error, message, timeoutMs] of [
    ['phase-tag', NvmeTimeoutError, /did not complete within 300 ms/, 300],
    ['fatal-status', NvmeControllerError, /controller fatal status/, 10_000],
    ['controller-reset', NvmeControllerError, /dropped CSTS\.RDY by itself/, 10_000],
  ] as const) {
    it(`${point} on a read: the read fails (${error.name}) only after a reset, the driver re-initialises and the next read works`, async () => {
      const { model, device } = machine();
      using nvme = await NvmeDriver.open(device, { commandTimeoutMs: timeoutMs });
      using buffer = DmaBuffer.allocate(8192, { space: device.dmaSpace });
      model.storage.write(0, new Uint8Array(4096).fill(0x5a));
      model.faults.arm(point, { when: (c) => c.queue === 1 && c.opcode === 0x02 });
      const failed = await nvme.read(1, 0, 8, buffer).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(failed instanceof error && message.test(failed.message), String(failed));
      assert.equal(nvme.resets, 1, 'the controller was reset before the read was failed');
      // The fault fired once: disarm the predicate's fault (it stays active otherwise).
      model.faults.disarmAll();
      await nvme.read(1, 0, 8, buffer, 4096);
      assert.ok(buffer.bytes.subarray(4096).every((b) => b === 0x5a));
      assert.deepEqual(
        model.events.filter((e) => e.kind === 'dma-fault'),
        [],
        'nothing was transferred into memory the driver had released',
      );
      assert.equal(model.events.filter((e) => e.kind === 'fault-injected').length, 1);
      await nvme.shutdown();
      device.close();
    });
  }

  it("a completion naming another submission queue is not taken for one of this queue's commands", async () => {
    const { model, device } = machine();
    using nvme = await NvmeDriver.open(device, { commandTimeoutMs: 300 });
    using buffer = DmaBuffer.allocate(4096, { space: device.dmaSpace });
    model.faults.arm('corrupt-completion', { when: (c) => c.queue === 1, times: 1 }, { field: 'sqid', xor: 0x3 });
    const failed = await nvme.read(1, 0, 8, buffer).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(failed instanceof NvmeTimeoutError, String(failed));
    assert.equal(nvme.resets, 1);
    await nvme.read(1, 0, 8, buffer);
    device.close();
  });

  it('lost, spurious and late interrupts, command errors with any status and DMA errors: typed results, no reset needed', async () => {
    const { model, device } = machine();
    using nvme = await NvmeDriver.open(device, { commandTimeoutMs: 10_000 });
    using buffer = DmaBuffer.allocate(4096, { space: device.dmaSpace });
    model.faults.arm('lost-interrupt', { when: (i) => i.cq === 1 });
    model.faults.arm('spurious-interrupt', { probability: 0.5, seed: 3 }, { vector: 0 });
    model.faults.arm('slow-completion', { nth: 2, when: (c) => c.queue === 1 }, { microseconds: 1_000_000 });
    for (let i = 0; i < 4; i++) await nvme.read(1, i * 8, 8, buffer);
    model.faults.disarmAll();
    model.faults.arm('io-status', { nth: 1 }, { status: 0x4281 });
    const media = await nvme.read(1, 0, 8, buffer).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(media instanceof NvmeCommandError && media.sct === 2 && media.sc === 0x81 && media.dnr, String(media));
    model.faults.arm('admin-status', { nth: 1 }, { status: 0x0106 });
    await assert.rejects(nvme.getFeatures(0x07), /SCT 1, SC 0x06/);
    model.faults.arm('dma-error', { nth: 1 });
    await assert.rejects(nvme.read(1, 0, 8, buffer), /Data Transfer Error/);
    assert.equal(nvme.resets, 0);
    const fired = model.events.filter((e) => e.kind === 'fault-injected');
    assert.ok(fired.some((e) => e.faultPoint === 'lost-interrupt') && fired.some((e) => e.faultPoint === 'slow-completion'));
    assert.match(
      fired.find((e) => e.faultPoint === 'io-status')!.message,
      /fault 'io-status' fired at occurrence 1 \(I\/O queue 1 command 0x02 cid \d+\): completed with status 0x4281/,
    );
    await nvme.shutdown();
    device.close();
  });
});

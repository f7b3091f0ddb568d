/**
 * The copy engine's driver against its model, as a user's CI would run it: no hardware, a model
 * machine from a preset with the device placed on its bus, the driver using the real API.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DmaBuffer, openDevice, PciDevice } from 'node-vfio';
import { createModelKernel, DeviceEventError, ModelClock } from 'node-vfio/model';
import { CopyEngineDriver } from './copy-engine-driver';
import { CopyEngineModel, COPY_ENGINE_DEVICE_ID, COPY_ENGINE_VENDOR_ID, STATUS_ERROR, STATUS_RUNNING } from './copy-engine-model';

const ADDRESS = '0000:00:05.0';

function machine(base: 'linux-7.3-noiommu' | 'linux-7.3-iommu', clock?: ModelClock) {
  const model = new CopyEngineModel();
  const kernel = createModelKernel({ base, devices: [{ address: ADDRESS, model }], ...(clock ? { clock } : {}) });
  const [pci] = PciDevice.list({ vendorId: COPY_ENGINE_VENDOR_ID, deviceId: COPY_ENGINE_DEVICE_ID }, kernel);
  assert.ok(pci, 'the placed device is on the bus');
  const device = openDevice(pci.bdf, { kernel });
  return { model, kernel, device, driver: new CopyEngineDriver(device) };
}

describe('example: a DMA copy engine modelled out of tree, with its driver', () => {
  for (const base of ['linux-7.3-noiommu', 'linux-7.3-iommu'] as const) {
    it(`copies through the descriptor ring and completes with MSI-X (${base})`, async () => {
      const { model, device, driver } = machine(base);
      assert.equal(device.irqs.enabledKind, 'msix', 'the driver chose MSI-X, which the device has');
      using buffer = DmaBuffer.allocate(16384, { space: device.dmaSpace });
      const data = randomBytes(6000);
      buffer.bytes.set(data, 0);
      await driver.copy(buffer.dmaAddress(0), buffer.dmaAddress(8192), data.length);
      assert.deepEqual(Buffer.from(buffer.bytes.subarray(8192, 8192 + data.length)), data);
      assert.equal(driver.status(), STATUS_RUNNING);
      assert.deepEqual(model.events, [], 'the device saw nothing wrong');
      driver.close();
      device.close();
    });
  }

  it('MSI-X grows from 1 to 4 vectors and back to 2 without dropping vector 0, which keeps completing copies', async () => {
    const { device, driver } = machine('linux-7.3-iommu');
    using buffer = DmaBuffer.allocate(8192, { space: device.dmaSpace });
    const [first] = device.irqs.vectors('msix');
    const grown = device.irqs.resize('msix', 4);
    assert.deepEqual(
      grown.map((v) => v.vector),
      [0, 1, 2, 3],
    );
    assert.equal(grown[0], first, 'vector 0 is the same object, still enabled');
    buffer.bytes.fill(0x5a, 0, 100);
    await driver.copy(buffer.dmaAddress(0), buffer.dmaAddress(4096), 100);
    assert.equal(buffer.bytes[4096 + 99], 0x5a);
    grown[3]!.trigger();
    assert.equal(await grown[3]!.wait(), 1n, 'a grown vector signals its own eventfd');
    const shrunk = device.irqs.resize('msix', 2);
    assert.deepEqual(
      shrunk.map((v) => v.vector),
      [0, 1],
    );
    assert.equal(grown[3]!.closed, true, 'the dropped vectors are closed');
    await driver.copy(buffer.dmaAddress(0), buffer.dmaAddress(4096 + 200), 100);
    assert.equal(buffer.bytes[4096 + 299], 0x5a);
    assert.throws(() => device.irqs.resize('msix', 5), /has 4 msix vector/);
    driver.close();
    device.close();
  });

  it('a copy is in flight until the machine clock reaches its completion time', async () => {
    const clock = new ModelClock('manual');
    const { device, driver } = machine('linux-7.3-noiommu', clock);
    using buffer = DmaBuffer.allocate(8192, { space: device.dmaSpace });
    buffer.bytes.fill(0xab, 0, 4096);
    const copied = driver.copy(buffer.dmaAddress(0), buffer.dmaAddress(4096), 4096);
    assert.equal(buffer.bytes[4096], 0, 'nothing copied before time passes');
    clock.advance(4);
    assert.equal(buffer.bytes[4096], 0, '4 µs in, the 4 KiB copy (5 µs) is still running');
    clock.advance(1);
    await copied;
    assert.equal(buffer.bytes[8191], 0xab);
    driver.close();
    device.close();
  });

  it('a descriptor with a bad length halts the engine; strict mode turns the event into an exception', async () => {
    const { model, device, driver } = machine('linux-7.3-noiommu');
    using buffer = DmaBuffer.allocate(4096, { space: device.dmaSpace });
    await assert.rejects(driver.copy(buffer.dmaAddress(0), buffer.dmaAddress(0), 0), /halted on an error/);
    assert.equal(driver.status(), STATUS_ERROR);
    assert.match(model.events.at(-1)?.message ?? '', /length 0/);
    model.strict(['guest-error']);
    assert.throws(
      () => device.bar(0).mmap().write32(0x18, 3),
      (e: unknown) => e instanceof DeviceEventError && /ring size 3/.test(e.message),
    );
    driver.close();
    device.close();
  });
});

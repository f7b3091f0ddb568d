/**
 * The broker on the model: a root broker hands the edu device to a client of uid 1000 without
 * any capability, which could not open the device node, the noiommu cdev or call GET_PA itself.
 * The client gets the same VfioDevice a direct open gives, maps its own memory into its IOAS,
 * learns the physical addresses from the broker (noiommu) or uses IOVAs (IOMMU), runs DMA and
 * MMIO, and closing the device hands the device back.
 */
import assert from 'node:assert/strict';
import { MAP_ANONYMOUS, MAP_PRIVATE, O_RDWR, PROT_READ, PROT_WRITE } from '../../lib/sys/constants';
import { isVfioError } from '../../lib/sys/errors';
import type { Kernel } from '../../lib/sys/kernel';
import type { Iova } from '../../lib/sys/addresses';
import { openDevice } from '../../lib/vfio/open-device';
import type { VfioDevice } from '../../lib/vfio/device';
import { brokerPhysicalSegments } from '../../lib/broker/open-brokered';
import { PciDevice } from '../../lib/pci/pci-device';
import { EDU, SOCKET, settle, startBroker, unprivileged } from './support';

/** edu: DMA `count` bytes between `ram` and the device buffer, polling the command register. */
async function eduDma(dev: VfioDevice, ram: bigint, count: number, toRam: boolean): Promise<void> {
  const bar = dev.bar(0).mmap();
  try {
    const buffer = 0x40000n;
    bar.write64(0x80, toRam ? buffer : ram);
    bar.write64(0x88, toRam ? ram : buffer);
    bar.write64(0x90, BigInt(count));
    bar.write64(0x98, toRam ? 3n : 1n);
    for (let i = 0; bar.read64(0x98) & 1n; i++) {
      if (i > 1000) throw new Error('edu DMA did not finish');
      await new Promise((r) => setTimeout(r, 1));
    }
  } finally {
    bar.close();
  }
}

function anonymous(kernel: Kernel, length: bigint) {
  return kernel.mmap(-1, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
}

describe('broker: a root broker hands the edu device to an unprivileged client [model]', () => {
  for (const profile of ['linux-7.3-noiommu', 'linux-7.3-iommu'] as const) {
    it(`grant, map, DMA with addresses the client may use, MMIO, release (${profile})`, async () => {
      const { root, broker, log } = startBroker(profile);
      const brokerFds = root.openFdCount;
      const client = root.spawnProcess(unprivileged());
      const cdev = PciDevice.get(EDU, { kernel: root }).cdevPath()!;
      // What the client could not do itself.
      assert.throws(
        () => client.open(cdev, O_RDWR),
        (e: unknown) => isVfioError(e, 'EACCES'),
      );
      assert.throws(
        () => client.open('/dev/iommu', O_RDWR),
        (e: unknown) => isVfioError(e, 'EACCES'),
      );

      const dev = await openDevice(EDU, { kernel: client, broker: SOCKET });
      assert.equal(dev.kernel, client);
      assert.equal(dev.backend.kind, 'cdev');
      assert.equal(dev.backend.noiommu, profile === 'linux-7.3-noiommu');
      assert.match(dev.backend.reason, /received from the broker/);
      assert.equal(dev.config.read16(0), 0x1234, 'config space through the received device fd');
      assert.equal(broker.grants()[0]?.peer.uid, 1000);

      // MMIO: edu's liveness register reads back the complement.
      const bar = dev.bar(0).mmap();
      bar.write32(0x04, 0x1234_5678);
      assert.equal(bar.read32(0x04), ~0x1234_5678 >>> 0);
      bar.close();

      // DMA from the client's own memory, mapped into its IOAS.
      const memory = anonymous(client, 8192n);
      const mapping = dev.ioas!.map(memory);
      const bytes = new Uint8Array(memory.buffer!);
      for (let i = 0; i < 256; i++) bytes[i] = i ^ 0x5a;
      let address: (offset: number) => bigint;
      if (dev.backend.noiommu) {
        // The client's own GET_PA is refused: CAP_SYS_RAWIO is checked against the caller.
        assert.throws(
          () => dev.ioas!.getPhysicalAddress(mapping.iova, 4096n),
          (e: unknown) => isVfioError(e, 'EPERM') && /CAP_SYS_RAWIO/.test((e as Error).message),
        );
        const runs = await brokerPhysicalSegments(dev, mapping.iova, 8192n);
        assert.ok(runs.length >= 1);
        assert.equal(
          runs.reduce((n, r) => n + r.length, 0n),
          8192n,
        );
        address = (offset) => {
          const at = (mapping.iova as bigint) + BigInt(offset);
          const run = runs.find((r) => (r.iova as bigint) <= at && at < (r.iova as bigint) + r.length)!;
          return (run.phys as bigint) + (at - (run.iova as bigint));
        };
      } else {
        await assert.rejects(brokerPhysicalSegments(dev, mapping.iova, 4096n), /EOPNOTSUPP/);
        address = (offset) => (mapping.iova as bigint) + BigInt(offset);
      }
      dev.config.enableBusMaster();
      await eduDma(dev, address(0), 256, false);
      await eduDma(dev, address(4096), 256, true);
      for (let i = 0; i < 256; i++) assert.equal(bytes[4096 + i], i ^ 0x5a, `byte ${i} came back through the device`);

      mapping.close();
      client.munmap(memory);
      dev.close();
      assert.equal(client.openFdCount, 0, 'closing the device closed every fd the client got');
      await settle();
      await settle();
      assert.deepEqual(broker.grants(), [], 'the broker noticed the hangup');
      assert.equal(root.openFdCount, brokerFds, 'and let go of its iommufd reference');
      assert.ok(log.some((e) => e.event === 'grant') && log.some((e) => e.event === 'release'));

      // The device can be handed out again, here to another allowed client.
      const second = root.spawnProcess(unprivileged());
      const again = await openDevice(EDU, { kernel: second, broker: SOCKET });
      assert.equal(again.config.read16(0), 0x1234);
      again.close();
      await broker.close();
      assert.equal(root.openFdCount, brokerFds - 1, 'closing the broker closed its listening socket');
    });
  }

  for (const profile of ['linux-7.3-noiommu', 'linux-7.3-iommu'] as const) {
    it(`allocateDmaAsync: a DMA buffer whose bus addresses the broker answers, used by edu both ways (${profile})`, async () => {
      const { root, broker } = startBroker(profile);
      const client = root.spawnProcess(unprivileged());
      const dev = await openDevice(EDU, { kernel: client, broker: SOCKET });
      dev.config.enableBusMaster();
      if (dev.backend.noiommu) {
        assert.throws(
          () => dev.allocateDma(4096),
          (e: unknown) => isVfioError(e, 'ERR_VFIO_ASYNC_LOOKUP') && /allocateDmaAsync/.test(e.hint ?? ''),
          'the synchronous lookup cannot ask the broker',
        );
      }
      const buffer = await dev.allocateDmaAsync(8192);
      for (let i = 0; i < 256; i++) buffer.bytes[i] = i ^ 0xa5;
      await eduDma(dev, buffer.busRun(0).address, 256, false);
      await eduDma(dev, buffer.busRun(4096).address, 256, true);
      assert.deepEqual([...buffer.bytes.subarray(4096, 4096 + 256)], [...buffer.bytes.subarray(0, 256)], 'the bytes came back through edu');
      assert.equal(
        buffer.busRuns().reduce((n, r) => n + r.length, 0n),
        8192n,
      );
      buffer.close();
      dev.close();
      await broker.close();
      assert.equal(client.openFdCount, 0);
    });
  }

  it('the unprivileged client keeps no capability it was not given: GET_PA is checked per call (EPERM)', async () => {
    const { root, broker } = startBroker('linux-7.3-noiommu');
    const client = root.spawnProcess(unprivileged());
    const dev = await openDevice(EDU, { kernel: client, broker: SOCKET });
    // The same iommufd open file, used by root, answers: the check is of the caller, not the opener.
    const ioasId = dev.ioas!.id;
    const memory = anonymous(client, 4096n);
    const mapping = dev.ioas!.map(memory);
    assert.throws(
      () => dev.ioas!.getPhysicalAddress(mapping.iova, 4096n),
      (e: unknown) => isVfioError(e, 'EPERM'),
    );
    const runs = await brokerPhysicalSegments(dev, mapping.iova as Iova, 4096n);
    assert.equal(runs.length, 1);
    assert.ok(ioasId > 0);
    dev.close();
    await broker.close();
  });
});

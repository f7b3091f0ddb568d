/**
 * End to end with QEMU's edu device: BAR0 mmap and its identification register, config space
 * through the device fd, bus mastering, and DMA RAM → device → RAM by physical address (noiommu,
 * from IOMMU_IOAS_NOIOMMU_GET_PA) or by IOVA (IOMMU), with the data checked.
 */
import { defineCase, type ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import * as P from '../../uapi/pci';
import * as V from '../../uapi/vfio';
import { call } from '../calls';
import { EDU, eduDma } from '../edu-driver';
import { dmaAddress, eduRoundTrip, mapBar0 } from '../edu-steps';
import { casesOn, setUp } from '../fixture';
import { attachedDevice, boundDevice, irqTrigger } from '../fixtures';
import { configRead, configWrite, map, regionInfo, regionOffset, setIrqs } from '../steps';

/** Waits (without blocking the event loop) until the eventfd counts at least one event. */
async function waitForEvent(t: CaseContext, efd: number, what: string, timeoutMs = 5000): Promise<void> {
  try {
    await t.kernel.waitReadable(efd, AbortSignal.timeout(timeoutMs));
  } catch (e) {
    t.fail(`${what}: the eventfd did not become readable within ${timeoutMs} ms (${(e as Error).message})`);
  }
  const count = t.kernel.eventfdRead(efd);
  t.check(count >= 1n, `${what}: eventfd counted ${count}`);
}

const edu = casesOn(boundDevice, ['edu']);

export const eduCases: ConformanceCase[] = [
  edu.test('edu.region-info', "edu's BAR0 is 1 MiB of mmap-able MMIO", (t, f) => {
    const info = regionInfo(t, f.deviceFd, V.VFIO_PCI_BAR0_REGION_INDEX);
    t.equal(info.size, EDU.BAR0_SIZE, 'BAR0 size');
    t.equal(info.flags, V.VFIO_REGION_INFO_FLAG_READ | V.VFIO_REGION_INFO_FLAG_WRITE | V.VFIO_REGION_INFO_FLAG_MMAP, 'BAR0 flags');
  }),
  edu.test('edu.bar0-identification', 'mmap BAR0: the identification register reads 0x010000ed, liveness inverts', (t, f) => {
    const bar0 = mapBar0(t, f.deviceFd);
    t.equal(t.kernel.mmioRead(bar0, EDU.IDENTIFICATION, 32), EDU.IDENTIFICATION_VALUE, 'identification register');
    t.kernel.mmioWrite(bar0, EDU.LIVENESS, 32, 0x1234_5678);
    t.equal(t.kernel.mmioRead(bar0, EDU.LIVENESS, 32), ~0x1234_5678 >>> 0, 'liveness register (bitwise NOT)');
  }),
  edu.test('edu.bar0-pread', 'BAR0 can also be read through the device fd at the region offset', (t, f) => {
    const buf = Buffer.alloc(4);
    t.equal(
      t.ok('pread BAR0 + 0', () => t.kernel.pread(f.deviceFd, buf, regionOffset(0))),
      4,
      'bytes read',
    );
    t.equal(buf.readUInt32LE(0), EDU.IDENTIFICATION_VALUE, 'identification register through pread');
  }),
  edu.test('edu.config-space', 'config space through the device fd: vendor/device IDs match sysfs, header type 0', (t, f) => {
    const device = t.env.device!;
    t.equal(configRead(t, f.deviceFd, P.PCI_VENDOR_ID, 2), device.vendorId, 'vendor ID');
    t.equal(configRead(t, f.deviceFd, P.PCI_DEVICE_ID, 2), device.deviceId, 'device ID');
    t.equal(configRead(t, f.deviceFd, P.PCI_VENDOR_ID, 4), ((device.deviceId << 16) | device.vendorId) >>> 0, 'both IDs as one dword');
    t.equal(configRead(t, f.deviceFd, P.PCI_HEADER_TYPE, 1) & 0x7f, 0, 'header type');
  }),
  edu.test('edu.bus-master', 'setting bus mastering in the command register reads back set, and clearing it clears it', (t, f) => {
    const before = configRead(t, f.deviceFd, P.PCI_COMMAND, 2);
    configWrite(t, f.deviceFd, P.PCI_COMMAND, 2, before | P.PCI_COMMAND_MASTER | P.PCI_COMMAND_MEMORY);
    t.check((configRead(t, f.deviceFd, P.PCI_COMMAND, 2) & P.PCI_COMMAND_MASTER) !== 0, 'bus master bit set');
    configWrite(t, f.deviceFd, P.PCI_COMMAND, 2, before & ~P.PCI_COMMAND_MASTER);
    t.check((configRead(t, f.deviceFd, P.PCI_COMMAND, 2) & P.PCI_COMMAND_MASTER) === 0, 'bus master bit clear');
  }),
  casesOn(attachedDevice, ['edu', 'sys-rawio']).test(
    'edu.dma-round-trip',
    'DMA RAM → edu → RAM (by physical address in noiommu mode, by IOVA with an IOMMU) returns the same bytes',
    async (t, f) => {
      const length = 2n * t.page;
      const memory = t.anonymousMemory(length);
      const iova = map(t, f.iommufd, f.ioasId, { userVa: memory.address, length, iova: 0x100000n });
      const count = 3000;
      const bytes = new Uint8Array(memory.buffer!);
      for (let i = 0; i < count; i++) bytes[i] = (i * 7 + 3) & 0xff;
      const src = dmaAddress(f, iova, BigInt(count));
      const dst = dmaAddress(f, iova + t.page, BigInt(count));
      t.note(`DMA addresses: source 0x${src.toString(16)}, destination 0x${dst.toString(16)} (${t.mode})`);

      await eduRoundTrip(t, f.deviceFd, src, dst, count);

      const back = bytes.subarray(t.pageSize, t.pageSize + count);
      t.equal(
        back.findIndex((b, i) => b !== bytes[i]),
        -1,
        'index of the first byte that differs after the round trip',
      );
    },
  ),
  casesOn(irqTrigger(V.VFIO_PCI_INTX_IRQ_INDEX, 'INTx'), ['edu']).test(
    'edu.intx-interrupt',
    'edu raises INTx on request: the eventfd fires, INTx is automasked until acknowledged and unmasked',
    async (t, f) => {
      const bar0 = mapBar0(t, f.deviceFd);
      t.kernel.mmioWrite(bar0, EDU.INTERRUPT_RAISE, 32, 0x1);
      await waitForEvent(t, f.eventfd, 'INTx');
      t.equal(t.kernel.mmioRead(bar0, EDU.INTERRUPT_STATUS, 32), 0x1, 'interrupt status');
      t.kernel.mmioWrite(bar0, EDU.INTERRUPT_ACK, 32, 0x1);
      t.equal(t.kernel.mmioRead(bar0, EDU.INTERRUPT_STATUS, 32), 0, 'interrupt status after acknowledge');
      t.ok('unmask INTx', () =>
        setIrqs(f, {
          flags: V.VFIO_IRQ_SET_DATA_NONE | V.VFIO_IRQ_SET_ACTION_UNMASK,
          index: V.VFIO_PCI_INTX_IRQ_INDEX,
          start: 0,
          count: 1,
        }),
      );
      // A second interrupt arrives only because the first was unmasked.
      t.kernel.mmioWrite(bar0, EDU.INTERRUPT_RAISE, 32, 0x2);
      await waitForEvent(t, f.eventfd, 'second INTx');
      t.kernel.mmioWrite(bar0, EDU.INTERRUPT_ACK, 32, 0x2);
    },
  ),
  casesOn(irqTrigger(V.VFIO_PCI_MSI_IRQ_INDEX, 'MSI'), ['edu']).test(
    'edu.msi-interrupt',
    "with MSI enabled through SET_IRQS, edu's interrupt arrives on the MSI eventfd",
    async (t, f) => {
      const command = configRead(t, f.deviceFd, P.PCI_COMMAND, 2);
      // MSI writes are memory writes by the device: bus mastering must be on.
      configWrite(t, f.deviceFd, P.PCI_COMMAND, 2, command | P.PCI_COMMAND_MASTER);
      const bar0 = mapBar0(t, f.deviceFd);
      t.kernel.mmioWrite(bar0, EDU.INTERRUPT_RAISE, 32, 0x4);
      await waitForEvent(t, f.eventfd, 'MSI');
      t.kernel.mmioWrite(bar0, EDU.INTERRUPT_ACK, 32, 0x4);
      configWrite(t, f.deviceFd, P.PCI_COMMAND, 2, command);
    },
  ),
  defineCase({
    id: 'edu.dma-after-unmap-blocked',
    title: 'with an IOMMU, once an IOVA is unmapped the device can no longer write there (the memory stays untouched)',
    needs: ['device', 'edu'],
    async run(t) {
      // Without an IOMMU nothing stops a device writing to a physical address after unmap; that
      // memory may already belong to someone else, so the noiommu side is not exercised (and the
      // fixture is not even set up).
      if (t.mode === 'noiommu') t.skip('without an IOMMU nothing blocks the device; writing to unpinned memory would corrupt it');
      const f = setUp(attachedDevice, t);
      const memory = t.anonymousMemory(2n * t.page);
      const iova = map(t, f.iommufd, f.ioasId, { userVa: memory.address, length: t.page, iova: 0x100000n });
      const victim = map(t, f.iommufd, f.ioasId, { userVa: memory.address + t.page, length: t.page, iova: 0x200000n });
      const bytes = new Uint8Array(memory.buffer!);
      bytes.fill(0xa5, 0, 1000);
      const command = configRead(t, f.deviceFd, P.PCI_COMMAND, 2);
      configWrite(t, f.deviceFd, P.PCI_COMMAND, 2, command | P.PCI_COMMAND_MASTER | P.PCI_COMMAND_MEMORY);
      const bar0 = mapBar0(t, f.deviceFd);
      await eduDma(t.kernel, bar0, { src: iova, dst: EDU.DEVICE_BUFFER, count: 1000, toRam: false });
      t.ok('unmap the destination page', () => call.unmap(f, { iova: victim, length: t.page }));
      await eduDma(t.kernel, bar0, { src: EDU.DEVICE_BUFFER, dst: victim, count: 1000, toRam: true });
      configWrite(t, f.deviceFd, P.PCI_COMMAND, 2, command);
      const written = bytes.subarray(t.pageSize, t.pageSize + 1000).findIndex((b) => b !== 0);
      t.equal(written, -1, 'index of the first byte the device managed to write after unmap');
    },
  }),
];

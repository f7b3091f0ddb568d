// edu.ts: QEMU's edu device driven from identification to a DMA round trip, on the kernel model.
// On a real machine, take `nativeKernel()` from 'node-vfio' instead and run it as root.
import { DmaBuffer, PciDevice, openDevice } from 'node-vfio';
import { createModelKernel } from 'node-vfio/model';

const kernel = createModelKernel('linux-7.3-noiommu'); // a Linux 7.3 host without an IOMMU, edu at 0000:00:03.0

async function main(): Promise<void> {
  const pci = PciDevice.get('0000:00:03.0', { kernel });
  pci.bindVfio({ unsafeNoiommu: true }); // explicit opt-in: a device without an IOMMU needs noiommu mode
  using device = openDevice(pci.bdf, { kernel }); // cdev + iommufd when the kernel has it, else the legacy group path
  console.log(device.backend.reason);

  using bar0 = device.bar(0).mmap(); // exact-width MMIO: read8/16/32/64, write8/16/32/64
  console.log(`identification 0x${bar0.read32(0x00).toString(16)}`);
  device.config.enableBusMaster();
  const [msi] = device.irqs.enable('msi', 1);
  if (!msi) throw new Error('no MSI vector');
  const interrupt = async (cause: number): Promise<void> => {
    await msi.wait();
    bar0.write32(0x64, bar0.read32(0x24) & cause); // acknowledge
  };

  bar0.write32(0x20, 0x80); // interrupt when the factorial is done
  bar0.write32(0x08, 10);
  await interrupt(0x1);
  console.log(`10! = ${bar0.read32(0x08)}`);

  // RAM -> the device's buffer (at 0x40000 in its address space) -> RAM, 4095 bytes each way.
  using buffer = DmaBuffer.allocate(8192, { space: device.dmaSpace });
  buffer.bytes.fill(0xa5, 0, 4095);
  const dma = async (source: bigint, destination: bigint, toRam: boolean): Promise<void> => {
    bar0.write64(0x80, source);
    bar0.write64(0x88, destination);
    bar0.write64(0x90, 4095n);
    bar0.write32(0x98, 0x1 | (toRam ? 0x2 : 0) | 0x4); // start, direction, interrupt when done
    await interrupt(0x100);
  };
  await dma(buffer.dmaAddress(0), 0x40000n, false);
  await dma(0x40000n, buffer.dmaAddress(4096), true);
  const same = buffer.bytes.subarray(4096, 4096 + 4095).every((b) => b === 0xa5);
  console.log(`DMA round trip of 4095 bytes: ${same ? 'the bytes came back' : 'MISMATCH'}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});

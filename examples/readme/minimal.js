// edu.js: the same program in plain JavaScript (CommonJS, no `using`): close() in `finally`.
const { DmaBuffer, PciDevice, openDevice } = require('node-vfio');
const { createModelKernel } = require('node-vfio/model');

const kernel = createModelKernel('linux-7.3-noiommu'); // on a real machine: require('node-vfio').nativeKernel()

async function main() {
  const pci = PciDevice.get('0000:00:03.0', { kernel });
  pci.bindVfio({ unsafeNoiommu: true });
  const device = openDevice(pci.bdf, { kernel });
  const bar0 = device.bar(0).mmap();
  const buffer = DmaBuffer.allocate(8192, { space: device.dmaSpace });
  try {
    console.log(`identification 0x${bar0.read32(0x00).toString(16)}`);
    device.config.enableBusMaster();
    const [msi] = device.irqs.enable('msi', 1);
    bar0.write32(0x20, 0x80); // interrupt when the factorial is done
    bar0.write32(0x08, 10);
    await msi.wait();
    bar0.write32(0x64, bar0.read32(0x24) & 0x1); // acknowledge
    console.log(`10! = ${bar0.read32(0x08)}`);

    buffer.bytes.fill(0xa5, 0, 4095);
    bar0.write64(0x80, buffer.dmaAddress(0)); // RAM -> the device's buffer at 0x40000
    bar0.write64(0x88, 0x40000n);
    bar0.write64(0x90, 4095n);
    bar0.write32(0x98, 0x1 | 0x4); // start, interrupt when done
    await msi.wait();
    bar0.write32(0x64, bar0.read32(0x24) & 0x100);
    console.log(`DMA of 4095 bytes into the device: ${bar0.read32(0x98) & 0x1 ? 'still running' : 'done'}`);
  } finally {
    buffer.close();
    bar0.close();
    device.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});

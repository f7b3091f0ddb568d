/**
 * What the device-model SDK costs on the model's hot paths, as ratios measured in one run:
 *   - MMIO: a driver's 32-bit register read (Mmio.read32 on the model, through the BAR mapping and
 *     vfio-pci's fault path) into edu's handler, goal ≤ 2× the baseline;
 *   - DMA: a 4 KiB device write and read of host memory, goal ≤ 1.5× the baseline.
 *
 * Baseline: the same machine, the same slot and the same driver calls, with the device side done
 * the way the pre-SDK edu did it — a direct mmioRead with its own range and width checks and a
 * switch on the register (installed on the edu instance in place of the SDK's dispatcher), and
 * DMA straight into the host's port with only the bus-master check and the fault catch around it.
 * That is no more work than the old edu did, so a ratio against it is an upper bound of the SDK's
 * cost over today's path. Rows alternate in turns and each figure is its best round, so a busy
 * spell on the shared machine lands on both sides of a ratio. Prints, does not assert.
 *
 *   npm run build && node dist/bench/model-device-sdk.js
 */
import { DmaBuffer, openDevice } from '../lib';
import { createModelKernel, DmaFault, type AccessWidth, type DeviceModel } from '../lib/model';
import { EDU_IDENTIFICATION } from '../lib/devices/edu';
import { formatNs, machineNote } from './api-support';
import { timeLoopsInTurns } from './native-c';

const BDF = '0000:00:03.0';
const MMIO_ITERATIONS = 200_000;
const DMA_ITERATIONS = 20_000;
const PAGE = 4096;

/** One lab machine per path, so neither row's call sites see the other's device code. */
function machine() {
  const kernel = createModelKernel('linux-7.3-noiommu');
  const slot = kernel.pci!.host.slot(BDF)!;
  const device = openDevice(BDF, { kernel });
  device.config.enableBusMaster();
  const buffer = DmaBuffer.allocate(2 * PAGE, { space: device.dmaSpace });
  return { slot, edu: slot.device as DeviceModel, device, registers: device.bar(0).mmap(), buffer, pa: buffer.dmaAddress(0) };
}
const sdk = machine();
const direct = machine();
const data = new Uint8Array(PAGE).fill(0x5a);

/** The pre-SDK edu's read path for the identification register: bounds, width, switch. */
(direct.edu as { mmioRead: DeviceModel['mmioRead'] }).mmioRead = (bar: number, offset: bigint, width: AccessWidth): bigint => {
  const mask = (1n << BigInt(width)) - 1n;
  if (bar !== 0 || offset < 0n || offset + BigInt(width / 8) > 1n << 20n) return mask;
  if ((width !== 32 && width !== 64) || offset % BigInt(width / 8) !== 0n) return 0n;
  switch (Number(offset)) {
    case 0x00:
      return BigInt(EDU_IDENTIFICATION) & mask;
    default:
      return mask;
  }
};

/** The pre-SDK DMA path: bus mastering checked, then the host's port, faults caught. */
const directDmaWrite = (address: bigint, bytes: Uint8Array): void => {
  if (!direct.edu.busMasterEnabled) return;
  try {
    direct.slot.dma.write(address, bytes);
  } catch (e) {
    if (!(e instanceof DmaFault)) throw e;
  }
};
const directDmaRead = (address: bigint, length: number): Uint8Array => {
  if (!direct.edu.busMasterEnabled) return new Uint8Array(length);
  try {
    return direct.slot.dma.read(address, length);
  } catch (e) {
    if (!(e instanceof DmaFault)) throw e;
    return new Uint8Array(length);
  }
};

for (const m of [sdk, direct])
  if (m.registers.read32(0) !== EDU_IDENTIFICATION) throw new Error('bench: edu did not answer its identification');
const [mmioSdk, mmioDirect] = timeLoopsInTurns(MMIO_ITERATIONS, [() => sdk.registers.read32(0), () => direct.registers.read32(0)]);
const [writeSdk, writeDirect, readSdk, readDirect] = timeLoopsInTurns(DMA_ITERATIONS, [
  () => {
    sdk.edu.dma.write(sdk.pa, data);
    return 0;
  },
  () => {
    directDmaWrite(direct.pa, data);
    return 0;
  },
  () => sdk.edu.dma.read(sdk.pa, PAGE)[0],
  () => directDmaRead(direct.pa, PAGE)[0],
]);
if (sdk.edu.events.length)
  throw new Error(`bench: the device logged ${sdk.edu.events.length} events (first: ${sdk.edu.events[0]!.message})`);

console.log('\nDevice-model SDK on the model: SDK path vs the pre-SDK direct path, same run');
console.log(`  machine: ${machineNote()}`);
const row = (name: string, sdk: number, direct: number, goal: number) =>
  console.log(
    `  ${name.padEnd(44)} SDK ${formatNs(sdk).padStart(9)}  direct ${formatNs(direct).padStart(9)}  ${(sdk / direct).toFixed(2)}x (goal ≤ ${goal}x) ${sdk / direct <= goal ? 'ok' : 'OVER'}`,
  );
row('MMIO read32 of edu ID (driver to handler)', mmioSdk!, mmioDirect!, 2);
row('DMA write of 4 KiB (device to host memory)', writeSdk!, writeDirect!, 1.5);
row('DMA read of 4 KiB (host memory to device)', readSdk!, readDirect!, 1.5);
for (const m of [sdk, direct]) {
  m.buffer.close();
  m.registers.close();
  m.device.close();
}

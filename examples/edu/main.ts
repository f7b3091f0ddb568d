#!/usr/bin/env node
/**
 * The edu example end to end: find the device, give it to vfio-pci, open it the best way the
 * kernel allows, and exercise it — identification, liveness, a factorial with its completion
 * interrupt, and a DMA round trip RAM → device → RAM with the bytes checked.
 *
 *   node dist/examples/edu/main.js [--model[=PROFILE]] [--bdf=0000:00:03.0] [--unsafe-noiommu]
 *
 * With no edu device on this machine (or with --model) it runs on node-vfio's built-in kernel
 * model, and says so. A device without an IOMMU is only handed to vfio-pci in the kernel's unsafe
 * noiommu mode if that mode is on already or --unsafe-noiommu asks to switch it on.
 */
import { randomBytes } from 'node:crypto';
import { DmaBuffer, PciDevice, isVfioError, nativeKernel, openDevice, type Kernel } from '../../lib';
import { createModelKernel, profiles } from '../../lib/model';
import { isProfileName } from '../../lib/model/profile';
import { EDU_DEVICE_ID, EDU_MAX_TRANSFER, EDU_VENDOR_ID, EduDevice } from './edu-device';
import { EDU_USAGE, eduBindOptions, parseEduOptions, type EduOptions } from './options';

/** The real kernel when it has an edu device, otherwise the model (with the reason). */
function chooseKernel(options: EduOptions): { kernel: Kernel; why: string } {
  if (options.model !== undefined) {
    const profile = options.model === true ? 'linux-7.3-noiommu' : options.model;
    if (!isProfileName(profile)) throw new Error(`unknown model profile '${profile}' (profiles: ${Object.keys(profiles).join(', ')})`);
    return { kernel: createModelKernel(profile), why: `--model: the built-in kernel model (${profile})` };
  }
  let native: Kernel;
  try {
    native = nativeKernel();
  } catch (e) {
    return {
      kernel: createModelKernel('linux-7.3-noiommu'),
      why: `the native addon is not usable here (${(e as Error).message}); using the built-in kernel model (linux-7.3-noiommu)`,
    };
  }
  const found =
    native.exists('/sys/bus/pci/devices') &&
    PciDevice.list({ vendorId: EDU_VENDOR_ID, deviceId: EDU_DEVICE_ID }, { kernel: native }).length > 0;
  if (found) return { kernel: native, why: 'the real kernel: an edu device is present' };
  return {
    kernel: createModelKernel('linux-7.3-noiommu'),
    why: 'no edu device on this machine: running on the built-in kernel model (linux-7.3-noiommu)',
  };
}

async function main(): Promise<number> {
  const options = parseEduOptions(process.argv.slice(2));
  if (options.help) {
    console.log(EDU_USAGE);
    return 0;
  }
  const { kernel, why } = chooseKernel(options);
  console.log(`edu: ${why}`);

  const candidates = options.bdf
    ? [PciDevice.get(options.bdf, { kernel })]
    : PciDevice.list({ vendorId: EDU_VENDOR_ID, deviceId: EDU_DEVICE_ID }, { kernel });
  const pci = candidates[0];
  if (!pci) {
    console.error('edu: no edu device (1234:11e8) found');
    return 1;
  }
  console.log(
    `edu: device ${pci.bdf}, driver ${pci.driver ?? 'none'}, ${pci.hasIommu ? 'behind an IOMMU' : 'no IOMMU'}, noiommu mode ${PciDevice.noiommuMode({ kernel })}`,
  );
  // A device without an IOMMU can only be driven in the kernel's unsafe noiommu mode, which only
  // the user may switch on (--unsafe-noiommu).
  pci.bindVfio(eduBindOptions(options));

  using device = openDevice(pci.bdf, { kernel });
  console.log(`edu: opened through the ${device.backend.kind} path${device.backend.noiommu ? ' (noiommu)' : ''}: ${device.backend.reason}`);
  using edu = new EduDevice(device);

  const id = edu.identification();
  console.log(`edu: identification 0x${id.toString(16).padStart(8, '0')}`);
  if (id !== 0x010000ed) throw new Error(`edu: unexpected identification 0x${id.toString(16)}`);
  const probe = 0x12345678;
  const alive = edu.liveness(probe);
  console.log(`edu: liveness 0x${probe.toString(16)} -> 0x${alive.toString(16)}`);
  if (alive !== ~probe >>> 0) throw new Error('edu: liveness check failed');

  const fact = await edu.factorial(10);
  console.log(`edu: 10! = ${fact} (completion interrupt received)`);
  if (fact !== 3628800) throw new Error(`edu: 10! came back as ${fact}`);

  using buffer = DmaBuffer.allocate(8192, { space: device.dmaSpace });
  const length = EDU_MAX_TRANSFER;
  const pattern = randomBytes(length);
  buffer.bytes.set(pattern, 0);
  buffer.bytes.fill(0, 4096, 4096 + length);
  const source = buffer.dmaAddress(0);
  const destination = buffer.dmaAddress(4096);
  console.log(
    `edu: DMA buffer ${buffer.size} bytes, ${buffer.addressing === 'physical' ? 'physical' : 'IOVA'} addresses 0x${source.toString(16)} and 0x${destination.toString(16)}`,
  );
  await edu.dmaToDevice(source, 0, length);
  await edu.dmaToHost(0, destination, length);
  const back = Buffer.from(buffer.bytes.subarray(4096, 4096 + length));
  const same = back.equals(pattern);
  console.log(`edu: DMA round trip RAM -> device -> RAM of ${length} bytes: ${same ? 'data intact' : 'DATA DIFFERS'}`);
  if (!same) return 1;
  console.log('edu: all checks passed');
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (isVfioError(e)) {
      console.error(`edu: ${e.message}`);
    } else {
      console.error(`edu: ${(e as Error).stack ?? String(e)}`);
    }
    process.exitCode = 1;
  },
);

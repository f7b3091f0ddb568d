/**
 * The device models built into the project, by the names a profile's PCI topology uses, and how
 * their options are read (the same names as QEMU's -device properties where there is one, e.g.
 * edu's dma_mask). A topology entry may also carry a DeviceModel object instead of a name: any
 * model written on the SDK, placed as it is.
 */
import type { DeviceModel } from '../model/device';
import { EduDevice, type CompletionTiming } from './edu';
import { NvmeController } from './nvme';

export type DeviceOptions = Readonly<Record<string, unknown>>;

export const builtinDeviceModels: Readonly<Record<string, (options: DeviceOptions) => DeviceModel>> = {
  edu: (o) =>
    new EduDevice({
      dmaMask: optionalBigint(o, 'dma_mask'),
      bar0Address: optionalBigint(o, 'bar0'),
      timing: o['timing'] as CompletionTiming | undefined,
      dmaTiming: o['dma_timing'] as CompletionTiming | undefined,
    }),
  nvme: (o) =>
    new NvmeController({
      ...(typeof o['serial'] === 'string' ? { serial: o['serial'] } : {}),
      ...(o['max_ioqpairs'] === undefined ? {} : { ioQueuePairs: Number(o['max_ioqpairs']) }),
      ...(o['msix_qsize'] === undefined ? {} : { msixVectors: Number(o['msix_qsize']) }),
      ...(o['mdts'] === undefined ? {} : { mdts: Number(o['mdts']) }),
      ...(o['bar0'] === undefined ? {} : { bar0Address: optionalBigint(o, 'bar0')! }),
      ...(typeof o['subsys'] === 'string' ? { subsystem: o['subsys'] } : {}),
      ...(o['sriov_max_vfs'] === undefined ? {} : { sriovMaxVfs: Number(o['sriov_max_vfs']) }),
      ...(o['sriov_vq_flexible'] === undefined ? {} : { sriovVqFlexible: Number(o['sriov_vq_flexible']) }),
      ...(o['sriov_vi_flexible'] === undefined ? {} : { sriovViFlexible: Number(o['sriov_vi_flexible']) }),
    }),
};

/** The model for a topology entry: a built-in by name, or the given DeviceModel itself. */
export function createDevice(model: string | DeviceModel, options: DeviceOptions = {}): DeviceModel {
  if (typeof model !== 'string') return model;
  const make = builtinDeviceModels[model];
  if (!make) {
    throw new RangeError(
      `unknown PCI device model '${model}' (built in: ${Object.keys(builtinDeviceModels).join(', ')}); ` +
        `place a model of your own with createModelKernel({ base, devices: [{ address, model: new YourDevice() }] })`,
    );
  }
  return make(options);
}

function optionalBigint(o: DeviceOptions, key: string): bigint | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'string') return BigInt(v);
  throw new RangeError(`device option ${key} must be a bigint, safe integer or numeric string`);
}

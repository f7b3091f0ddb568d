/**
 * The device models a profile can name in its PCI topology, and how their options are read
 * (the same names as QEMU's -device properties where there is one, e.g. edu's dma_mask).
 */
import type { PciDeviceModel } from '../pci/device-model';
import type { CompletionTiming } from '../pci/timing';
import { EduDevice } from './edu';

export type DeviceOptions = Readonly<Record<string, unknown>>;

export const deviceModels: Readonly<Record<string, (options: DeviceOptions) => PciDeviceModel>> = {
  edu: (o) => new EduDevice({
    dmaMask: optionalBigint(o, 'dma_mask'),
    bar0Address: optionalBigint(o, 'bar0'),
    timing: o['timing'] as CompletionTiming | undefined,
  }),
};

export function createDevice(model: string, options: DeviceOptions = {}): PciDeviceModel {
  const make = deviceModels[model];
  if (!make) throw new RangeError(`unknown PCI device model '${model}' (known: ${Object.keys(deviceModels).join(', ')})`);
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

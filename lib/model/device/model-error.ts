/**
 * The error a device model gets for a definition the hardware could not have (overlapping BARs, a
 * capability that does not fit, an MSI-X table outside its BAR, a BAR size that is not a power of
 * two …). It names the device and the rule, and is thrown while the model is constructed.
 *
 * @category Device-model SDK
 */
export class DeviceModelError extends Error {
  constructor(
    /** The device model's name (its definition's `model`). */
    readonly device: string,
    /** The hardware rule the definition breaks, e.g. 'BAR size is a power of two'. */
    readonly rule: string,
    detail: string,
  ) {
    super(`device model '${device}': ${rule}: ${detail}`);
    this.name = 'DeviceModelError';
  }
}

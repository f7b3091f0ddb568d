/** The one PCI address the per-device commands (bind, unbind, info) take. */
import { isBdf, PciDevice } from '../../pci/pci-device';
import { UsageError } from '../args';
import type { CommandContext } from '../command';

/** The device named by the only positional argument; anything else is a usage error. */
export function oneBdf(ctx: CommandContext, usage: string): PciDevice {
  const [bdf, ...rest] = ctx.args.positionals;
  if (bdf === undefined || rest.length > 0) throw new UsageError(`expected exactly one PCI address: ${usage}`);
  if (!isBdf(bdf)) throw new UsageError(`'${bdf}' is not a PCI address (expected domain:bus:device.function, e.g. 0000:00:03.0)`);
  return PciDevice.get(bdf, { kernel: ctx.kernel });
}

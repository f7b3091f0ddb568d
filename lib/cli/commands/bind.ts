/** `vfio bind <bdf>` and `vfio unbind <bdf>`: move a device to vfio-pci and back. */
import { PciDevice } from '../../pci/pci-device';
import { UsageError } from '../args';
import type { Command, CommandContext } from '../command';

function oneBdf(ctx: CommandContext, usage: string): PciDevice {
  const [bdf, ...rest] = ctx.args.positionals;
  if (bdf === undefined || rest.length > 0) throw new UsageError(`expected exactly one PCI address: ${usage}`);
  return PciDevice.get(bdf, { kernel: ctx.kernel });
}

export const bindCommand: Command = {
  name: 'bind',
  usage: 'vfio bind <bdf> [--noiommu] [--model[=PROFILE]]',
  summary: 'bind a device to vfio-pci (a device without an IOMMU needs --noiommu)',
  options: {
    noiommu: { description: 'allow switching on the kernel\'s UNSAFE noiommu mode (unrestricted device DMA, taints the kernel)' },
  },
  run(ctx) {
    const dev = oneBdf(ctx, this.usage);
    const before = dev.driver;
    dev.bindVfio({ unsafeNoiommu: ctx.args.options.has('noiommu') });
    const cdev = dev.cdevPath();
    ctx.stdout(`${dev.bdf}: ${before === 'vfio-pci' ? 'already bound to' : `bound to`} vfio-pci${before && before !== 'vfio-pci' ? ` (was ${before})` : ''}${cdev ? `; device cdev ${cdev}` : ''}${dev.iommuGroup !== null ? `; IOMMU group ${dev.iommuGroup}` : ''}`);
    return 0;
  },
};

export const unbindCommand: Command = {
  name: 'unbind',
  usage: 'vfio unbind <bdf> [--restore=DRIVER] [--model[=PROFILE]]',
  summary: 'unbind a device from its driver, optionally binding another',
  options: {
    restore: { value: 'required', description: 'bind this driver afterwards (e.g. the one it had before vfio-pci)' },
  },
  run(ctx) {
    const dev = oneBdf(ctx, this.usage);
    const before = dev.driver;
    const restore = ctx.args.options.get('restore');
    dev.unbind(typeof restore === 'string' ? { restore } : {});
    const after = dev.driver;
    ctx.stdout(`${dev.bdf}: ${before ? `unbound from ${before}` : 'had no driver'}${after ? `; now bound to ${after}` : ''}`);
    return 0;
  },
};

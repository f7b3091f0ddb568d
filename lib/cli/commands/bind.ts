/** `vfio bind <bdf>` and `vfio unbind <bdf>`: move a device to vfio-pci and back. */
import { UsageError } from '../args';
import type { Command } from '../command';
import { oneBdf } from './bdf-argument';

export const bindCommand: Command = {
  name: 'bind',
  usage: 'vfio bind <bdf> [--noiommu] [--force] [--model[=PROFILE]]',
  summary: 'bind a device to vfio-pci (a device without an IOMMU needs --noiommu)',
  options: {
    noiommu: { description: "allow switching on the kernel's UNSAFE noiommu mode (unrestricted device DMA, taints the kernel)" },
    force: { description: 'bind even a device the host is using (status marks it *Active*)' },
  },
  run(ctx) {
    const dev = oneBdf(ctx, this.usage);
    const before = dev.driver;
    dev.bindVfio({ unsafeNoiommu: ctx.args.options.has('noiommu'), force: ctx.args.options.has('force') });
    const cdev = dev.cdevPath();
    ctx.stdout(
      `${dev.bdf}: ${before === 'vfio-pci' ? 'already bound to' : `bound to`} vfio-pci${before && before !== 'vfio-pci' ? ` (was ${before})` : ''}${cdev ? `; device cdev ${cdev}` : ''}${dev.iommuGroup !== null ? `; IOMMU group ${dev.iommuGroup}` : ''}`,
    );
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
    if (restore === '') throw new UsageError('--restore needs a driver name (e.g. --restore=virtio-pci)');
    dev.unbind(typeof restore === 'string' ? { restore } : {});
    const after = dev.driver;
    ctx.stdout(`${dev.bdf}: ${before ? `unbound from ${before}` : 'had no driver'}${after ? `; now bound to ${after}` : ''}`);
    return 0;
  },
};

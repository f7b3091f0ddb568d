/**
 * The command line of the edu example. Unsafe noiommu mode is switched on only when the user asks
 * with --unsafe-noiommu: on a real host without an IOMMU it lets the device DMA anywhere in memory
 * and taints the kernel, so running the example must never do it on its own.
 */
import type { BindOptions } from '../../lib';

export interface EduOptions {
  readonly model?: string | true;
  readonly bdf?: string;
  /** --unsafe-noiommu: allow bindVfio to switch on the vfio module's unsafe noiommu mode. */
  readonly unsafeNoiommu: boolean;
  readonly help: boolean;
}

export const EDU_USAGE = 'usage: edu [--model[=PROFILE]] [--bdf=DOMAIN:BUS:DEV.FN] [--unsafe-noiommu]';

export function parseEduOptions(argv: readonly string[]): EduOptions {
  let model: string | true | undefined;
  let bdf: string | undefined;
  let unsafeNoiommu = false;
  let help = false;
  for (const arg of argv) {
    if (arg === '--model') model = true;
    else if (arg.startsWith('--model=')) model = arg.slice('--model='.length);
    else if (arg.startsWith('--bdf=')) bdf = arg.slice('--bdf='.length);
    else if (arg === '--unsafe-noiommu') unsafeNoiommu = true;
    else if (arg === '--help' || arg === '-h') help = true;
    else throw new Error(`unknown argument '${arg}'`);
  }
  return { ...(model !== undefined ? { model } : {}), ...(bdf !== undefined ? { bdf } : {}), unsafeNoiommu, help };
}

/** What the example passes to bindVfio: the user's choice, nothing more. */
export function eduBindOptions(options: EduOptions): BindOptions {
  return { unsafeNoiommu: options.unsafeNoiommu };
}

/** Plain-text tables and error reports for the `vfio` command. */
import { isVfioError } from '../sys/errors';
import { UsageError } from './args';
import { TraceFormatError } from '../trace/trace-file';

export function table(rows: readonly (readonly string[])[], indent = '  '): string[] {
  if (rows.length === 0) return [];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map(
    (r) =>
      indent +
      r
        .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
  );
}

export function hex(n: number | bigint, width = 0): string {
  return '0x' + n.toString(16).padStart(width, '0');
}

/**
 * The library's advice in the words of this command: `PciDevice.get(bdf).bindVfio()` is
 * `vfio bind <bdf>`, `unsafeNoiommu: true` is `--noiommu`, `force: true` is `--force`.
 */
export function inCliWords(text: string): string {
  return text
    .replace(
      /PciDevice\.get\('([^']+)'\)\.bindVfio\(\)(?: \(it has no IOMMU: that needs \{ unsafeNoiommu: true \}\))?/g,
      (all, bdf: string) => (all.includes('unsafeNoiommu') ? `vfio bind ${bdf} --noiommu (it has no IOMMU)` : `vfio bind ${bdf}`),
    )
    .replace(/PciDevice\.list\(\)/g, 'vfio status')
    .replace(/(?:\{ )?unsafeNoiommu: true(?: \})?/g, '--noiommu')
    .replace(/force: true/g, '--force');
}

/** Prints an error the way a user needs it: code, what failed, where, and the hint once; no stack. */
export function reportError(e: unknown, stderr: (line: string) => void): number {
  if (e instanceof UsageError) {
    stderr(`vfio: ${e.message} (see --help)`);
    return 2;
  }
  if (isVfioError(e)) {
    // The message ends with the hint for library users; the CLI prints it on a line of its own.
    const message = e.hint && e.message.endsWith(` (hint: ${e.hint})`) ? e.message.slice(0, -` (hint: ${e.hint})`.length) : e.message;
    stderr(`vfio: ${inCliWords(message)}`);
    if (e.path) stderr(`  path: ${e.path}`);
    if (e.ioctl) stderr(`  ioctl: ${e.ioctl}`);
    if (e.hint) stderr(`  hint: ${inCliWords(e.hint)}`);
    return 1;
  }
  if (e instanceof TraceFormatError) {
    stderr(`vfio: bad trace: ${e.message}`);
    return 2;
  }
  if (e instanceof TypeError || e instanceof RangeError) {
    stderr(`vfio: ${e.message}`);
    return 2;
  }
  stderr(`vfio: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return 70;
}

/**
 * A small, strict command-line parser for the `vfio` command: `--flag`, `--key=value`,
 * `--key value` for options that take one, and positionals. Unknown options are errors, so a typo
 * never silently changes what a command does to a device.
 */
export interface OptionSpec {
  /** Takes a value (`--kernel=model`)? Optional-value options accept both `--model` and `--model=x`. */
  readonly value?: 'required' | 'optional' | 'none';
  readonly description: string;
}

export interface ParsedArgs {
  readonly positionals: string[];
  readonly options: Map<string, string | true>;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseArgs(argv: readonly string[], spec: Record<string, OptionSpec>): ParsedArgs {
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    // A one-letter option a command declares (`-o FILE`) is spelt with one dash.
    if (/^-[a-z]$/.test(arg) && spec[arg.slice(1)] !== undefined && spec[arg.slice(1)]!.value === 'required') {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('-')) throw new UsageError(`option '${arg}' needs a value`);
      options.set(arg.slice(1), next);
      i++;
      continue;
    }
    if (!arg.startsWith('--') || arg === '--') {
      if (arg.startsWith('-') && arg !== '-' && arg !== '-h') throw new UsageError(`unknown option '${arg}'`);
      if (arg === '-h') {
        options.set('help', true);
        continue;
      }
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const opt = spec[name];
    if (!opt) throw new UsageError(`unknown option '--${name}'`);
    const kind = opt.value ?? 'none';
    if (eq >= 0) {
      if (kind === 'none') throw new UsageError(`option '--${name}' takes no value`);
      const value = arg.slice(eq + 1);
      if (kind === 'required' && value === '') throw new UsageError(`option '--${name}' needs a value`);
      options.set(name, value);
    } else if (kind === 'required') {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`option '--${name}' needs a value`);
      options.set(name, next);
      i++;
    } else {
      options.set(name, true);
    }
  }
  return { positionals, options };
}

export function formatOptions(spec: Record<string, OptionSpec>): string {
  const rows = Object.entries(spec).map(([name, o]) => {
    const left = `--${name}${o.value === 'required' ? '=VALUE' : o.value === 'optional' ? '[=VALUE]' : ''}`;
    return [left, o.description] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length), 10);
  return rows.map(([l, d]) => `  ${l.padEnd(width)}  ${d}`).join('\n');
}

#!/usr/bin/env node
/**
 * The `vfio` command: status, bind, unbind, info and selftest over the real kernel, or over the
 * built-in kernel model with --model[=PROFILE]. Errors print the VfioError's code, path and hint,
 * never a stack trace.
 */
import { formatOptions, parseArgs, type OptionSpec } from './args';
import type { Command } from './command';
import type { Kernel } from '../sys/kernel';
import { chooseKernel, DEFAULT_MODEL_PROFILE } from './kernel-choice';
import { reportError } from './output';
import { COMMANDS } from './commands';
import { profiles } from '../model';
import fs from 'node:fs';
import path from 'node:path';

/** The package's version, from the package.json beside dist/ (or beside lib/ when run from source). */
function version(): string {
  for (const up of ['../../..', '../..']) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, up, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'node-vfio' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not this directory: try the next one up.
    }
  }
  return 'unknown';
}

const COMMON: Record<string, OptionSpec> = {
  model: { value: 'optional', description: 'run against the built-in kernel model (default profile linux-7.3-noiommu)' },
  help: { description: 'show help' },
  version: { description: 'print the version of node-vfio' },
};

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: vfio <command> [options]',
    '',
    'Drive PCI devices through Linux VFIO (device cdev + iommufd, or the legacy group path).',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Common options:',
    formatOptions(COMMON),
    '',
    'Model profiles (--model=PROFILE):',
    ...Object.values(profiles).map((p) => `  ${p.name}${p.name === DEFAULT_MODEL_PROFILE ? ' (the default of --model)' : ''}`),
    '',
    "Run 'vfio <command> --help' for a command's options.",
  ].join('\n');
}

function commandHelp(c: Command): string {
  return [`usage: ${c.usage}`, '', c.summary, '', 'Options:', formatOptions({ ...c.options, ...COMMON })].join('\n');
}

export interface CliIo {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
}

/**
 * Runs one `vfio` invocation and returns its exit status. `kernel` replaces the kernel that
 * --model/the default would choose: an embedding program (or a test) can point the CLI at a
 * kernel it set up itself.
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo = { stdout: (l) => console.log(l), stderr: (l) => console.error(l) },
  kernel?: Kernel,
): Promise<number> {
  try {
    const [name, ...rest] = argv;
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      io.stdout(usage());
      return name === undefined ? 2 : 0;
    }
    if (name === '--version' || name === '-V' || name === 'version') {
      io.stdout(`vfio (node-vfio) ${version()}`);
      return 0;
    }
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) {
      io.stderr(`vfio: unknown command '${name}'`);
      io.stderr(usage());
      return 2;
    }
    const args = parseArgs(rest, { ...command.options, ...COMMON });
    if (args.options.has('version')) {
      io.stdout(`vfio (node-vfio) ${version()}`);
      return 0;
    }
    if (args.options.has('help')) {
      io.stdout(commandHelp(command));
      return 0;
    }
    const chosen = kernel ?? chooseKernel(args.options.get('model'));
    return await command.run({ kernel: chosen, args, stdout: io.stdout, stderr: io.stderr });
  } catch (e) {
    return reportError(e, io.stderr);
  }
}

if (require.main === module) {
  // `vfio selftest --tap | head` closes the pipe early: that is not an error worth a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  void runCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}

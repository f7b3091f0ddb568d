/**
 * `vfio trace show FILE`, `vfio record -o FILE -- COMMAND…` and `vfio replay FILE`: list a trace
 * like strace, record a program's session without changing it (NODE_VFIO_TRACE in its
 * environment), and re-run a recorded session on the model (or the real kernel) to find the first
 * call that answers differently. replay exits 0 when nothing diverged, 1 at a divergence, 2 for a
 * usage error or a trace it cannot read.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { UsageError } from '../args';
import type { Command } from '../command';
import { formatDivergence, replayTrace } from '../../trace/replay';
import { readTrace } from '../../trace/trace-file';
import { formatSummary, listTrace, summarizeTrace, type ListingFilter } from '../../trace/trace-listing';

function integerOption(value: string | true | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (value === true || !/^\d+$/.test(value)) throw new UsageError(`--${name} needs a non-negative integer`);
  return Number(value);
}

function regionOption(value: string | true | undefined): number | undefined {
  if (value === 'config') return 7;
  if (typeof value === 'string' && /^bar[0-5]$/.test(value)) return Number(value.slice(3));
  return integerOption(value, 'region');
}

export const traceCommand: Command = {
  name: 'trace',
  usage: 'vfio trace show FILE [--fd=N] [--ioctl=NAME] [--region=N|barN|config] [--summary]',
  summary: 'list a recorded trace like strace (filters by fd, ioctl, region), or summarize it',
  options: {
    fd: { value: 'required', description: 'only calls on this fd' },
    ioctl: { value: 'required', description: 'only ioctls whose name contains this (case-insensitive)' },
    region: { value: 'required', description: 'only accesses to this region (index, barN or config)' },
    summary: { description: 'calls per ioctl, errors, bytes DMA-mapped, interrupts' },
  },
  run({ args, stdout }) {
    const [sub, file, ...rest] = args.positionals;
    if (sub !== 'show' || file === undefined || rest.length > 0) throw new UsageError(`expected 'show FILE': ${traceCommand.usage}`);
    const filter: ListingFilter = {
      ...(args.options.has('fd') ? { fd: integerOption(args.options.get('fd'), 'fd')! } : {}),
      ...(args.options.has('ioctl') ? { ioctl: String(args.options.get('ioctl')) } : {}),
      ...(args.options.has('region') ? { region: regionOption(args.options.get('region'))! } : {}),
    };
    const trace = readTrace(file);
    stdout(
      `# ${file}: ${trace.header.kernel} (${trace.header.kind}), trace version ${trace.header.version}, started ${trace.header.started}`,
    );
    if (args.options.has('summary')) for (const line of formatSummary(summarizeTrace(trace))) stdout(line);
    else for (const line of listTrace(trace, filter)) stdout(line);
    return 0;
  },
};

export const recordCommand: Command = {
  name: 'record',
  usage: 'vfio record -o FILE [--mmio] [--data-cap=N] -- COMMAND [ARGS…]',
  summary: 'run a program with every node-vfio kernel call recorded to FILE (JSON Lines)',
  options: {
    o: { value: 'required', description: 'the trace file to write' },
    output: { value: 'required', description: 'same as -o' },
    mmio: { description: 'record MMIO accesses too (each goes through the kernel: slower)' },
    'data-cap': { value: 'required', description: 'most bytes of a buffer kept per call (default 4096)' },
  },
  run({ args, stderr }) {
    const out = args.options.get('o') ?? args.options.get('output');
    if (typeof out !== 'string' || out === '') throw new UsageError(`-o FILE is required: ${recordCommand.usage}`);
    const [program, ...programArgs] = args.positionals;
    if (program === undefined) throw new UsageError(`no command to run: ${recordCommand.usage}`);
    const cap = integerOption(args.options.get('data-cap'), 'data-cap');
    fs.rmSync(out, { force: true });
    const env = {
      ...process.env,
      NODE_VFIO_TRACE: out,
      ...(args.options.has('mmio') ? { NODE_VFIO_TRACE_MMIO: '1' } : {}),
      ...(cap === undefined ? {} : { NODE_VFIO_TRACE_DATA_CAP: String(cap) }),
    };
    const child = spawnSync(program, programArgs, { stdio: 'inherit', env });
    if (child.error) {
      stderr(`vfio record: cannot run '${program}': ${child.error.message}`);
      return 127;
    }
    if (!fs.existsSync(out)) stderr(`vfio record: ${program} made no node-vfio kernel: nothing recorded`);
    else stderr(`vfio record: ${readTrace(out).records.length} calls recorded to ${out}`);
    return child.status ?? 128 + 1;
  },
};

export const replayCommand: Command = {
  name: 'replay',
  usage: 'vfio replay FILE [--model[=PROFILE]] [--wait-timeout=MS]',
  summary: 'replay a recorded trace (on the model with --model) and report the first divergence; exit 1 if any',
  options: {
    'wait-timeout': { value: 'required', description: 'how long a recorded wait may take (ms, default 5000)' },
  },
  async run({ kernel, args, stdout }) {
    const [file, ...rest] = args.positionals;
    if (file === undefined || rest.length > 0) throw new UsageError(`expected one trace file: ${replayCommand.usage}`);
    const waitTimeoutMs = integerOption(args.options.get('wait-timeout'), 'wait-timeout');
    const trace = readTrace(file);
    const result = await replayTrace(trace, kernel, waitTimeoutMs === undefined ? {} : { waitTimeoutMs });
    if (!result.divergence) {
      stdout(
        `${file}: ${result.replayed} calls replayed on ${kernel.kind === 'model' ? `the model (${kernel.description})` : kernel.description}: 0 divergences`,
      );
      return 0;
    }
    for (const line of formatDivergence(result.divergence)) stdout(line);
    return 1;
  },
};

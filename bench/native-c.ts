/**
 * C baselines for the native benchmarks: compiles the programs in bench/c with the system C
 * compiler (cc -O2, once, into build/bench) and runs them. `runIoctlLoop` drives
 * bench/c/ioctl-loop.c, the reusable "same ioctl from C" baseline: a bench sets up state through
 * the library (an IOAS with a mapping, a bound device), hands the fd to the C program and
 * compares per-call costs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '../..');
const sources = path.join(root, 'bench', 'c');
const outputs = path.join(root, 'build', 'bench');

/** Path of the compiled program bench/c/<name>.c, rebuilt when the source is newer. */
export function compileC(name: string): string {
  const source = path.join(sources, `${name}.c`);
  const binary = path.join(outputs, name);
  const fresh = fs.existsSync(binary) && fs.statSync(binary).mtimeMs >= fs.statSync(source).mtimeMs;
  if (!fresh) {
    try {
      fs.mkdirSync(outputs, { recursive: true });
      execFileSync(process.env.CC ?? 'cc', ['-O2', '-Wall', '-Wextra', '-o', binary, source], { stdio: 'inherit' });
    } catch (e) {
      // The lab guest sees the checkout read-only (a missing build/ reads as ENOENT there).
      throw new Error(
        `cannot build ${binary} from bench/c/${name}.c: ${(e as Error).message}; ` +
          'in the lab guest the checkout is read-only: compile on the host first (scripts/lab/bench.sh does)',
      );
    }
  }
  return binary;
}

/** Runs a compiled program and parses the one JSON line it prints. */
export function runC<T>(name: string, args: string[], inheritFds: number[] = []): T {
  // Inherited fds land at 3, 4, ... in the child (stdio slots), whatever their number here.
  const result = spawnSync(compileC(name), args, { stdio: ['ignore', 'pipe', 'inherit', ...inheritFds], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${name} ${args.join(' ')} exited with ${result.status ?? result.signal}`);
  return JSON.parse(result.stdout.trim()) as T;
}

export interface IoctlLoopResult {
  readonly iterations: number;
  readonly nsPerOp: number;
  /** Return value of the last call. */
  readonly result: number;
  readonly failures: number;
  /** errno of the last failing call, 0 if none failed. */
  readonly errno: number;
  /** The argument struct after the last call, as hex. */
  readonly out: string;
  /** ns per getuid() in the same program (a bare syscall), -1 unless `timeGetuid` was asked. */
  readonly getuidNsPerOp: number;
}

export interface IoctlLoopOptions {
  /** A path the program opens itself, or an fd of this process to hand over. */
  readonly target: string | { readonly fd: number };
  readonly request: number;
  /** The struct (copied fresh before each call), an integer argument, or none. */
  readonly arg?: Uint8Array | number | null;
  readonly iterations?: number;
  /** Paths the program keeps open during the loop. */
  readonly keepOpen?: readonly string[];
  /** Also time getuid(), a syscall that does nothing, after the ioctl loop. */
  readonly timeGetuid?: boolean;
}

/** The same ioctl issued N times from C (bench/c/ioctl-loop.c). */
export function runIoctlLoop(options: IoctlLoopOptions): IoctlLoopResult {
  const args = ['-n', String(options.iterations ?? 100_000)];
  for (const p of options.keepOpen ?? []) args.push('-k', p);
  if (options.timeGetuid) args.push('-u');
  const inherit: number[] = [];
  if (typeof options.target === 'string') {
    args.push(options.target);
  } else {
    inherit.push(options.target.fd);
    args.push('fd:3');
  }
  args.push(`0x${options.request.toString(16)}`);
  const arg = options.arg;
  if (arg instanceof Uint8Array) args.push(Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength).toString('hex'));
  else if (typeof arg === 'number') args.push(`int:${arg}`);
  return runC<IoctlLoopResult>('ioctl-loop', args, inherit);
}

/**
 * ns per call of `fn`: the best of `rounds` timed runs of `iterations` calls each, after a
 * warm-up. The best run is the one least disturbed by other processes on a shared machine.
 */
export function timeLoop(iterations: number, fn: (i: number) => unknown, rounds = 5): number {
  let sink = 0;
  for (let i = 0; i < iterations / 10; i++) sink += Number(fn(i)) || 0;
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink += Number(fn(i)) || 0;
    best = Math.min(best, Number(process.hrtime.bigint() - start) / iterations);
  }
  if (sink === -1) console.log(sink); // keeps the results observable
  return best;
}

/**
 * Several loops timed in turns: every round runs each loop once, then `alsoEachRound` (a C
 * baseline, say); a loop's result is its best round, in ns per call. On a machine shared with
 * other work, timing the loops one after the other lets a busy spell land on one row only and
 * tilt the comparison; in turns, every row sees the same spells and the best rounds compare.
 */
export function timeLoopsInTurns(
  iterations: number,
  loops: readonly ((i: number) => unknown)[],
  rounds = 5,
  alsoEachRound?: () => void,
): number[] {
  let sink = 0;
  for (const fn of loops) for (let i = 0; i < iterations / 10; i++) sink += Number(fn(i)) || 0;
  const best = loops.map(() => Infinity);
  for (let round = 0; round < rounds; round++) {
    alsoEachRound?.();
    loops.forEach((fn, row) => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) sink += Number(fn(i)) || 0;
      best[row] = Math.min(best[row]!, Number(process.hrtime.bigint() - start) / iterations);
    });
  }
  if (sink === -1) console.log(sink); // keeps the results observable
  return best;
}

/**
 * ns per iteration of a whole hand-written loop (`loop(n)` runs n iterations and returns something
 * derived from what it read): the best of `rounds` timed runs after a warm-up of a tenth. For hot
 * paths a callback per iteration would distort (MMIO loads), where timeLoop measures the call too.
 */
export function timeWholeLoop(iterations: number, loop: (n: number) => number, rounds = 5): number {
  let sink = loop(Math.ceil(iterations / 10));
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    const start = process.hrtime.bigint();
    sink ^= loop(iterations);
    best = Math.min(best, Number(process.hrtime.bigint() - start) / iterations);
  }
  if (sink === 0x7fff_ffff) console.log(''); // keeps the loads observable
  return best;
}

export interface MmioLoopResult {
  /** A volatile load inlined in the loop, as readl() compiles. */
  readonly inlineNsPerOp: number;
  /** The same load behind an out-of-line accessor. */
  readonly callNsPerOp: number;
}

/**
 * bench/c/mmio-loop.c on `fd` (a memfd or a VFIO device fd, mapped from offset 0): 32-bit loads
 * walking the first `length` bytes, the best of `rounds` runs for each variant.
 */
export function runMmioLoop(iterations: number, length: number, fd: number, rounds = 5): MmioLoopResult {
  let best: MmioLoopResult = { inlineNsPerOp: Infinity, callNsPerOp: Infinity };
  for (let round = 0; round < rounds; round++) {
    // The fd is handed over as the child's fd 3.
    const r = runC<MmioLoopResult>('mmio-loop', [String(iterations), String(length), '3'], [fd]);
    best = { inlineNsPerOp: Math.min(best.inlineNsPerOp, r.inlineNsPerOp), callNsPerOp: Math.min(best.callNsPerOp, r.callNsPerOp) };
  }
  return best;
}

/** The best nsPerOp of `rounds` runs of a C baseline. */
export function bestOf<T extends { nsPerOp: number }>(rounds: number, run: () => T): T {
  let best: T | undefined;
  for (let round = 0; round < rounds; round++) {
    const r = run();
    if (best === undefined || r.nsPerOp < best.nsPerOp) best = r;
  }
  return best!;
}

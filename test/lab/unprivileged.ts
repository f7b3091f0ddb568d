/**
 * Running a child process without CAP_SYS_RAWIO, for tests of what an unprivileged caller sees
 * (opening a noiommu device cdev and IOMMU_IOAS_NOIOMMU_GET_PA need that capability).
 *
 * The guest runs tests as root with every capability. `setpriv` (util-linux, in the host root the
 * guest shares) removes CAP_SYS_RAWIO from the child's inheritable and bounding sets before it
 * executes the command; a root process then gets no CAP_SYS_RAWIO in its permitted and effective
 * sets at execve, and cannot regain it. Everything else (uid 0, other capabilities) stays.
 */
import { spawn, spawnSync, type SpawnSyncOptions, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';

/** Bit number of CAP_SYS_RAWIO in the capability sets of /proc/<pid>/status. */
export const CAP_SYS_RAWIO = 17;

const SETPRIV_CANDIDATES = ['/usr/bin/setpriv', '/bin/setpriv'];

/** The setpriv binary, or null when the machine has none (tests then skip with the reason). */
export function findSetpriv(): string | null {
  return SETPRIV_CANDIDATES.find((candidate) => fs.existsSync(candidate)) ?? null;
}

/** The argv that runs `argv` without CAP_SYS_RAWIO. */
export function withoutRawio(argv: readonly string[]): string[] {
  const setpriv = findSetpriv();
  if (setpriv === null) throw new Error('setpriv (util-linux) is not installed: cannot drop CAP_SYS_RAWIO');
  return [setpriv, '--inh-caps=-sys_rawio', '--bounding-set=-sys_rawio', '--', ...argv];
}

/** Runs `argv` synchronously without CAP_SYS_RAWIO; output is returned as UTF-8 text. */
export function runWithoutRawio(argv: readonly string[], options: SpawnSyncOptions = {}): SpawnSyncReturns<string> {
  const [command, ...args] = withoutRawio(argv);
  return spawnSync(command!, args, { encoding: 'utf8', ...options }) as SpawnSyncReturns<string>;
}

/** Runs a JavaScript snippet in a child node without CAP_SYS_RAWIO (`node -e source`). */
export function runNodeWithoutRawio(source: string, options: SpawnSyncOptions = {}): SpawnSyncReturns<string> {
  return runWithoutRawio([process.execPath, '-e', source], options);
}

/** The effective capability set from a /proc/<pid>/status text. */
export function effectiveCapabilities(statusText: string): bigint {
  const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(statusText);
  if (match === null) throw new Error('no CapEff line in the status text');
  return BigInt('0x' + match[1]);
}

export function hasCapability(capabilities: bigint, bit: number): boolean {
  return ((capabilities >> BigInt(bit)) & 1n) === 1n;
}

/** Runs argv without CAP_SYS_RAWIO asynchronously (a broker in this process must keep serving). */
export function spawnWithoutRawio(argv: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const [command, ...args] = withoutRawio(argv);
  return new Promise((resolve, reject) => {
    const child = spawn(command!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

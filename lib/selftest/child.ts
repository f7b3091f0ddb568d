/**
 * Running cases in another process, for cases that need a process with different privileges (the
 * parent starts this one through `setpriv` without CAP_SYS_RAWIO). The child discovers the
 * environment itself on the real kernel, runs the cases it is told, and prints the results as one
 * JSON line the parent picks out of its output.
 *
 *   node -e "require('<dist>/lib/selftest/child').main()" -- --bdf 0000:00:03.0 --mode noiommu <case id>...
 */
import { defaultKernel } from '../sys/default-kernel';
import { findCase } from './cases';
import { discoverEnvironment } from './environment';
import { runCases } from './runner';
import type { CaseResult, Mode } from './types';

/** Marks the line of the child's stdout that carries the results. */
export const RESULTS_MARKER = 'NODE_VFIO_SELFTEST_RESULTS ';

export interface ChildRequest {
  readonly caseIds: readonly string[];
  readonly bdf?: string;
  readonly mode?: Mode;
}

/** The argv (after `--`) that asks a child for these cases. */
export function childArguments(request: ChildRequest): string[] {
  const args: string[] = [];
  if (request.bdf) args.push('--bdf', request.bdf);
  if (request.mode) args.push('--mode', request.mode);
  return [...args, ...request.caseIds];
}

export function parseChildArguments(argv: readonly string[]): ChildRequest {
  const caseIds: string[] = [];
  let bdf: string | undefined;
  let mode: Mode | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') continue;
    if (a === '--bdf') bdf = argv[++i];
    else if (a === '--mode') {
      const m = argv[++i];
      if (m !== 'noiommu' && m !== 'iommu') throw new Error(`--mode must be noiommu or iommu, got ${m}`);
      mode = m;
    } else caseIds.push(a);
  }
  return { caseIds, ...(bdf ? { bdf } : {}), ...(mode ? { mode } : {}) };
}

/** The results a child printed, or an Error saying what came out instead. */
export function parseChildOutput(stdout: string): CaseResult[] {
  const line = stdout.split('\n').find((l) => l.startsWith(RESULTS_MARKER));
  if (!line) throw new Error(`the child printed no results line; its output was:\n${stdout.slice(-2000)}`);
  return JSON.parse(line.slice(RESULTS_MARKER.length)) as CaseResult[];
}

export async function main(argv: readonly string[] = process.argv.slice(1)): Promise<void> {
  const request = parseChildArguments(argv);
  const cases = request.caseIds.map((id) => {
    const c = findCase(id);
    if (!c) throw new Error(`no conformance case '${id}'`);
    return c;
  });
  const kernel = defaultKernel();
  const env = discoverEnvironment(kernel, {
    ...(request.bdf ? { bdf: request.bdf } : {}),
    ...(request.mode ? { mode: request.mode } : {}),
  });
  const results = await runCases(env, cases);
  process.stdout.write(RESULTS_MARKER + JSON.stringify(results) + '\n');
}

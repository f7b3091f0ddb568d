/**
 * Reports of a run in the two formats CI systems read: TAP version 13 (one `ok`/`not ok` line per
 * case, `# SKIP reason` directives, a YAML block for failures) ending with the kselftest-style
 * totals line `# Totals: pass:N fail:N xfail:0 xpass:0 skip:N error:0`, so a run of
 * `vfio selftest` reads like the kernel's own selftests.
 */
import type { CaseResult } from './types';

/**
 * How many cases passed, failed and were skipped, for the kselftest totals line and exit code.
 *
 * @category Conformance suite
 */
export interface Totals {
  /** Cases that passed. */
  readonly pass: number;
  /** Cases that failed. */
  readonly fail: number;
  /** Cases that were skipped. */
  readonly skip: number;
}

/**
 * Counts the results by status.
 *
 * @category Conformance suite
 */
export function totals(results: readonly CaseResult[]): Totals {
  return {
    pass: results.filter((r) => r.status === 'pass').length,
    fail: results.filter((r) => r.status === 'fail').length,
    skip: results.filter((r) => r.status === 'skip').length,
  };
}

/**
 * Writes TAP as results arrive: `begin` once, `result` per case, `end` once.
 *
 * @category Conformance suite
 */
export class TapWriter {
  private n = 0;
  private readonly results: CaseResult[] = [];

  constructor(private readonly write: (line: string) => void) {}

  /** Writes the TAP version line, the header lines as diagnostics and the plan for `count` cases. */
  begin(count: number, header: readonly string[] = []): void {
    this.write('TAP version 13');
    for (const line of header) this.write(`# ${line}`);
    this.write(`1..${count}`);
  }

  /**
   * Writes one case's `ok`/`not ok` line (with `# SKIP` or a YAML failure block), preceded by its
   * log when it failed or `verbose` is set.
   */
  result(r: CaseResult, verbose = false): void {
    this.n++;
    this.results.push(r);
    if (verbose || r.status === 'fail') for (const line of r.log) this.write(`# ${r.id}: ${line}`);
    const name = `${r.id} - ${r.title}`;
    if (r.status === 'pass') {
      this.write(`ok ${this.n} ${name}`);
    } else if (r.status === 'skip') {
      this.write(`ok ${this.n} ${name} # SKIP ${oneLine(r.reason ?? '')}`);
    } else {
      this.write(`not ok ${this.n} ${name}`);
      this.write('  ---');
      this.write(`  message: ${yamlString(r.reason ?? 'failed')}`);
      this.write(`  duration_ms: ${r.durationMs}`);
      if (r.stack) {
        this.write('  stack: |');
        for (const line of r.stack.split('\n')) this.write(`    ${line}`);
      }
      this.write('  ...');
    }
  }

  /** Writes the kselftest totals line for the results written so far and returns those totals. */
  end(): Totals {
    const t = totals(this.results);
    this.write(kselftestTotals(t));
    return t;
  }
}

/**
 * The kselftest-style totals line, `# Totals: pass:N fail:N xfail:0 xpass:0 skip:N error:0`.
 *
 * @category Conformance suite
 */
export function kselftestTotals(t: Totals): string {
  return `# Totals: pass:${t.pass} fail:${t.fail} xfail:0 xpass:0 skip:${t.skip} error:0`;
}

/**
 * The whole report as one string.
 *
 * @category Conformance suite
 */
export function formatTap(results: readonly CaseResult[], header: readonly string[] = [], verbose = false): string {
  const lines: string[] = [];
  const w = new TapWriter((l) => lines.push(l));
  w.begin(results.length, header);
  for (const r of results) w.result(r, verbose);
  w.end();
  return lines.join('\n') + '\n';
}

/**
 * kselftest's exit code convention: 0 all passed (skips allowed), 1 a failure, 4 everything skipped.
 *
 * @category Conformance suite
 */
export function kselftestExitCode(t: Totals): number {
  if (t.fail > 0) return 1;
  if (t.pass === 0 && t.skip > 0) return 4;
  return 0;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

function yamlString(s: string): string {
  return JSON.stringify(oneLine(s));
}

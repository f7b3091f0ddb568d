/**
 * Reports of a run in the two formats CI systems read: TAP version 13 (one `ok`/`not ok` line per
 * case, `# SKIP reason` directives, a YAML block for failures) ending with the kselftest-style
 * totals line `# Totals: pass:N fail:N xfail:0 xpass:0 skip:N error:0`, so a run of
 * `vfio selftest` reads like the kernel's own selftests.
 */
import type { CaseResult } from './types';

export interface Totals {
  readonly pass: number;
  readonly fail: number;
  readonly skip: number;
}

export function totals(results: readonly CaseResult[]): Totals {
  return {
    pass: results.filter((r) => r.status === 'pass').length,
    fail: results.filter((r) => r.status === 'fail').length,
    skip: results.filter((r) => r.status === 'skip').length,
  };
}

/** Writes TAP as results arrive: `begin` once, `result` per case, `end` once. */
export class TapWriter {
  private n = 0;
  private readonly results: CaseResult[] = [];

  constructor(private readonly write: (line: string) => void) {}

  begin(count: number, header: readonly string[] = []): void {
    this.write('TAP version 13');
    for (const line of header) this.write(`# ${line}`);
    this.write(`1..${count}`);
  }

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

  end(): Totals {
    const t = totals(this.results);
    this.write(kselftestTotals(t));
    return t;
  }
}

export function kselftestTotals(t: Totals): string {
  return `# Totals: pass:${t.pass} fail:${t.fail} xfail:0 xpass:0 skip:${t.skip} error:0`;
}

/** The whole report as one string. */
export function formatTap(results: readonly CaseResult[], header: readonly string[] = [], verbose = false): string {
  const lines: string[] = [];
  const w = new TapWriter((l) => lines.push(l));
  w.begin(results.length, header);
  for (const r of results) w.result(r, verbose);
  w.end();
  return lines.join('\n') + '\n';
}

/** kselftest's exit code convention: 0 all passed (skips allowed), 1 a failure, 4 everything skipped. */
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

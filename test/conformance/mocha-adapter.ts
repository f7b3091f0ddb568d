/**
 * How a conformance case result becomes a mocha test outcome, shared by the model suites here
 * and the lab suite: a pass, a skip with its reason printed, or a failure carrying the case's log.
 */
import type { CaseResult } from '../../lib/selftest/types';

export function settle(context: Mocha.Context, r: CaseResult): void {
  if (r.status === 'skip') {
    console.log(`      skipped: ${r.reason}`);
    context.skip();
  }
  if (r.status === 'fail') {
    for (const line of r.log) console.log(`      ${line}`);
    const error = new Error(r.reason);
    if (r.stack) error.stack = r.stack;
    throw error;
  }
}

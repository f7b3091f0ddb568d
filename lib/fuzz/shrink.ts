/**
 * Delta debugging over operations (Zeller's ddmin): finds a short subsequence of a failing
 * program that still fails. Programs refer to earlier results by slot (see program.ts), so every
 * subsequence is a valid program; removing the op that filled a slot only turns later users of
 * that slot into skips. The result is 1-minimal: removing any single remaining operation makes
 * the failure go away.
 */
export interface ShrinkResult<T> {
  readonly items: readonly T[];
  /** How many candidate subsequences were tried. */
  readonly tries: number;
}

export function shrink<T>(items: readonly T[], stillFails: (candidate: readonly T[]) => boolean, maxTries = 2000): ShrinkResult<T> {
  let current = [...items];
  let tries = 0;
  const test = (candidate: readonly T[]): boolean => {
    tries++;
    return stillFails(candidate);
  };
  let granularity = 2;
  while (current.length >= 2 && tries < maxTries) {
    const chunk = Math.ceil(current.length / granularity);
    let reduced = false;
    // Try each complement (the program without one chunk) first: it removes the most at once.
    for (let start = 0; start < current.length && tries < maxTries; start += chunk) {
      const complement = [...current.slice(0, start), ...current.slice(start + chunk)];
      if (complement.length > 0 && test(complement)) {
        current = complement;
        granularity = Math.max(granularity - 1, 2);
        reduced = true;
        break;
      }
    }
    if (reduced) continue;
    if (granularity >= current.length) break;
    granularity = Math.min(granularity * 2, current.length);
  }
  // Final pass: single removals until none helps (1-minimality even if the loop stopped early).
  for (let i = current.length - 1; i >= 0 && tries < maxTries && current.length > 1; i--) {
    const candidate = [...current.slice(0, i), ...current.slice(i + 1)];
    if (test(candidate)) current = candidate;
  }
  return { items: current, tries };
}

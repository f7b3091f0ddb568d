/**
 * Delta debugging over operations (Zeller's ddmin): finds a short subsequence of a failing
 * program that still fails, then tries simpler versions of the operations left. Programs refer to earlier results by slot (see program.ts), so every
 * subsequence is a valid program; removing the op that filled a slot only turns later users of
 * that slot into skips. The result is 1-minimal: removing any single remaining operation makes
 * the failure go away.
 */
export interface ShrinkResult<T> {
  readonly items: readonly T[];
  /** How many candidate subsequences were tried. */
  readonly tries: number;
}

/**
 * Shrinks `items` to a 1-minimal failing subsequence; with `simplify`, then also tries simpler
 * versions of each remaining item (smaller slot numbers, fewer options) and shrinks again while
 * that helps.
 */
export function shrink<T>(
  items: readonly T[], stillFails: (candidate: readonly T[]) => boolean, maxTries = 2000, simplify?: (item: T) => readonly T[],
): ShrinkResult<T> {
  let tries = 0;
  const test = (candidate: readonly T[]): boolean => {
    tries++;
    return stillFails(candidate);
  };
  let current = ddmin([...items], test, () => tries < maxTries);
  if (!simplify) return { items: current, tries };
  for (let changed = true; changed && tries < maxTries;) {
    changed = false;
    for (let i = 0; i < current.length && tries < maxTries; i++) {
      for (const simpler of simplify(current[i]!)) {
        const candidate = [...current.slice(0, i), simpler, ...current.slice(i + 1)];
        if (tries >= maxTries) break;
        if (test(candidate)) {
          current = candidate;
          changed = true;
          break;
        }
      }
    }
    if (changed) current = ddmin(current, test, () => tries < maxTries);
  }
  return { items: current, tries };
}

function ddmin<T>(start: T[], test: (candidate: readonly T[]) => boolean, budgetLeft: () => boolean): T[] {
  let current = start;
  let granularity = 2;
  while (current.length >= 2 && budgetLeft()) {
    const chunk = Math.ceil(current.length / granularity);
    let reduced = false;
    // Try each complement (the program without one chunk) first: it removes the most at once.
    for (let from = 0; from < current.length && budgetLeft(); from += chunk) {
      const complement = [...current.slice(0, from), ...current.slice(from + chunk)];
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
  for (let i = current.length - 1; i >= 0 && budgetLeft() && current.length > 1; i--) {
    const candidate = [...current.slice(0, i), ...current.slice(i + 1)];
    if (test(candidate)) current = candidate;
  }
  return current;
}

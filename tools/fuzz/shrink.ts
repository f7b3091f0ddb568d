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
  items: readonly T[],
  stillFails: (candidate: readonly T[]) => boolean,
  maxTries = 2000,
  simplify?: (item: T) => readonly T[],
): ShrinkResult<T> {
  const steps = shrinkSteps(items, maxTries, simplify);
  let step = steps.next(false);
  while (!step.done) step = steps.next(stillFails(step.value));
  return step.value;
}

/**
 * The same search for a failure that takes time to reproduce (a driver run against a device
 * with faults armed): `stillFails` is awaited for each candidate, one at a time.
 */
export async function shrinkAsync<T>(
  items: readonly T[],
  stillFails: (candidate: readonly T[]) => Promise<boolean>,
  maxTries = 2000,
  simplify?: (item: T) => readonly T[],
): Promise<ShrinkResult<T>> {
  const steps = shrinkSteps(items, maxTries, simplify);
  let step = steps.next(false);
  while (!step.done) step = steps.next(await stillFails(step.value));
  return step.value;
}

/** The search itself, written once: it yields each candidate and is told whether it still fails. */
function* shrinkSteps<T>(
  items: readonly T[],
  maxTries: number,
  simplify?: (item: T) => readonly T[],
): Generator<readonly T[], ShrinkResult<T>, boolean> {
  let tries = 0;
  function* test(candidate: readonly T[]): Generator<readonly T[], boolean, boolean> {
    tries++;
    return yield candidate;
  }
  let current = yield* ddmin([...items], test, () => tries < maxTries);
  if (!simplify) return { items: current, tries };
  for (let changed = true; changed && tries < maxTries;) {
    changed = false;
    for (let i = 0; i < current.length && tries < maxTries; i++) {
      for (const simpler of simplify(current[i]!)) {
        const candidate = [...current.slice(0, i), simpler, ...current.slice(i + 1)];
        if (tries >= maxTries) break;
        if (yield* test(candidate)) {
          current = candidate;
          changed = true;
          break;
        }
      }
    }
    if (changed) current = yield* ddmin(current, test, () => tries < maxTries);
  }
  return { items: current, tries };
}

type Test<T> = (candidate: readonly T[]) => Generator<readonly T[], boolean, boolean>;

function* ddmin<T>(start: T[], test: Test<T>, budgetLeft: () => boolean): Generator<readonly T[], T[], boolean> {
  let current = start;
  let granularity = 2;
  while (current.length >= 2 && budgetLeft()) {
    const chunk = Math.ceil(current.length / granularity);
    let reduced = false;
    // Try each complement (the program without one chunk) first: it removes the most at once.
    for (let from = 0; from < current.length && budgetLeft(); from += chunk) {
      const complement = [...current.slice(0, from), ...current.slice(from + chunk)];
      if (complement.length > 0 && (yield* test(complement))) {
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
    if (yield* test(candidate)) current = candidate;
  }
  return current;
}

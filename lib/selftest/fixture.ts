/**
 * Fixtures and variants, after the kselftest harness's FIXTURE / FIXTURE_SETUP / FIXTURE_TEARDOWN
 * and FIXTURE_VARIANT_ADD. A fixture sets up what a group of cases starts from (an iommufd, a
 * bound device, a mapped buffer) and hands the case its value; everything the setup opens
 * belongs to the case's context, so it is released at teardown even when the case (or the setup
 * half-way) fails, and a fixture's own teardown is registered as soon as its setup returns.
 * Variants are data: a table of named rows, each row expanded into the cases written for it.
 */
import { defineCase, type ConformanceCase, type Need } from './case';
import type { CaseContext } from './context';
import type { FixtureValue } from './struct-call';
import type { Expected } from './types';

export interface Fixture<F extends FixtureValue> {
  /** What the fixture is, for teardown messages ("a bound device"). */
  readonly name: string;
  /** What its setup needs from the environment; a case using it needs these first. */
  readonly needs: readonly Need[];
  setup(t: CaseContext): F;
  /** Undoes what the context does not release by itself (an IRQ trigger, say). */
  teardown?(f: F): void;
}

export function defineFixture<F extends FixtureValue>(fixture: Fixture<F>): Fixture<F> {
  return fixture;
}

/** A fixture that starts from another one and adds to it. */
export function extendFixture<B extends FixtureValue, F extends FixtureValue>(
  base: Fixture<B>,
  name: string,
  extend: (f: B) => F,
  needs: readonly Need[] = [],
): Fixture<F> {
  return { name, needs: mergeNeeds(base.needs, needs), setup: (t) => extend(setUp(base, t)) };
}

/** Runs a fixture's setup in a case and registers its teardown. */
export function setUp<F extends FixtureValue>(fixture: Fixture<F>, t: CaseContext): F {
  const f = fixture.setup(t);
  const teardown = fixture.teardown;
  if (teardown) t.defer(`teardown of ${fixture.name}`, () => teardown(f));
  return f;
}

function mergeNeeds(first: readonly Need[], then: readonly Need[]): Need[] {
  return [...new Set([...first, ...then])];
}

/** Cases over one fixture: TEST_F, and the one-expectation shorthand most bad-input cases are. */
export interface FixtureCases<F extends FixtureValue> {
  /** A case that starts from the fixture. */
  test(id: string, title: string, run: (t: CaseContext, f: F) => void | Promise<void>, needs?: readonly Need[]): ConformanceCase;
  /** A case whose whole body is one call with an expected outcome; `step` names the call in its log. */
  expect(id: string, title: string, step: string, expected: Expected, call: (f: F) => unknown, needs?: readonly Need[]): ConformanceCase;
}

export function casesOn<F extends FixtureValue>(fixture: Fixture<F>, needs: readonly Need[] = []): FixtureCases<F> {
  const test: FixtureCases<F>['test'] = (id, title, run, more = []) => {
    const all = mergeNeeds(mergeNeeds(fixture.needs, needs), more);
    return defineCase({ id, title, ...(all.length ? { needs: all } : {}), run: (t) => run(t, setUp(fixture, t)) });
  };
  return {
    test,
    expect: (id, title, step, expected, call, more) =>
      test(
        id,
        title,
        (t, f) => {
          t.expect(step, () => call(f), expected);
        },
        more,
      ),
  };
}

/** A variant row: its name becomes part of the ids of the cases made for it. */
export interface Variant {
  readonly name: string;
}

/**
 * FIXTURE_VARIANT_ADD as data: every template runs once per row, row after row (the order the
 * kselftest harness runs variants in). A template may return null for rows it does not apply to.
 */
export function forEachVariant<V extends Variant>(
  rows: readonly V[],
  ...templates: ((row: V) => ConformanceCase | null)[]
): ConformanceCase[] {
  return rows.flatMap((row) => templates.map((template) => template(row)).filter((c): c is ConformanceCase => c !== null));
}

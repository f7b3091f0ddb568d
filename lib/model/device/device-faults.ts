/**
 * Device-side fault injection: a device model declares named fault points (the places where real
 * hardware can misbehave — a command that completes with an error, an interrupt that never comes,
 * a register block that reads all ones), and a test arms them to make the device misbehave there
 * on demand. Hardware almost never fails on purpose, so a driver's error paths are otherwise
 * untested.
 *
 * A point has a subject (what the device is doing when it passes the point: the command it
 * fetched, the completion it posts) and parameters (what the fault does: which status code, how
 * long a delay). A test arms a point with a trigger:
 *   - `{ nth: 3 }`: the 3rd occurrence from now fires (once, unless `times` says more);
 *   - `{ probability: 0.1, seed: 7 }`: each occurrence fires with that probability, reproducibly;
 *   - `{ when: (subject) => … }`: occurrences whose subject matches (combined with nth/probability,
 *     only matching occurrences count);
 *   - `{}`: every occurrence.
 * Every fault that fires is a 'fault-injected' event in the device's log, naming the point, the
 * occurrence, the subject and what the device did.
 */
import { Prng } from '../memory/prng';
import type { DeviceEvent } from './events';

/**
 * A fault point as a device declares it: `Subject` is what it is passed with, `Params` what a test arms it with.
 *
 * @category Device-model SDK
 */
export interface FaultPointSpec<Subject, Params> {
  /** What the fault does, for fault sweeps and the event log. */
  readonly description: string;
  /** The parameters used when a test arms the point without any (a sweep or a fuzzer does). */
  readonly defaults: Params;
  /** Names the subject in the event log ("I/O command 0x02 cid 5 on SQ 1"). */
  readonly describe?: (subject: Subject) => string;
}

/**
 * Declares a fault point (the type parameters carry its subject and parameters to `arm`).
 *
 * @category Device-model SDK
 */
export function faultPoint<Subject, Params>(spec: FaultPointSpec<Subject, Params>): FaultPointSpec<Subject, Params> {
  return spec;
}

/**
 * When an armed fault fires.
 *
 * @category Device-model SDK
 */
export interface FaultTrigger<Subject> {
  /** Fire at the nth (≥ 1) occurrence counted from arming. */
  readonly nth?: number;
  /** Fire each occurrence with this probability (0..1), drawn from `seed`. */
  readonly probability?: number;
  /** Seed of the deterministic PRNG behind `probability` (default 0), so a run repeats exactly. */
  readonly seed?: number;
  /** Only occurrences whose subject satisfies this count. */
  readonly when?: (subject: Subject) => boolean;
  /** How many times it fires before disarming itself (default 1 with `nth`, unlimited otherwise). */
  readonly times?: number;
}

/**
 * Any map of fault point names to their declarations: the shape DeviceFaults is typed by.
 *
 * @category Device-model SDK
 */
export type AnyPoints = Record<string, FaultPointSpec<never, unknown>>;
/**
 * The subject type of a fault point declaration.
 *
 * @category Device-model SDK
 */
export type SubjectOf<S> = S extends FaultPointSpec<infer T, unknown> ? T : never;
/**
 * The parameter type of a fault point declaration.
 *
 * @category Device-model SDK
 */
export type ParamsOf<S> = S extends FaultPointSpec<never, infer P> ? P : never;

/**
 * A fault armed on a point; `disarm()` takes it back, `fired` counts what it did.
 *
 * @category Device-model SDK
 */
export interface ArmedFault {
  /** The fault point's name. */
  readonly point: string;
  /** How many times it has fired so far. */
  readonly fired: number;
  /** False once disarmed, by `disarm()` or after firing `times` times. */
  readonly active: boolean;
  /** Stops the fault from firing again. */
  disarm(): void;
}

interface Armed {
  readonly point: string;
  readonly trigger: FaultTrigger<never>;
  readonly params: unknown;
  readonly random: Prng | undefined;
  seen: number;
  fired: number;
  active: boolean;
}

const TRIGGER_KEYS = new Set(['nth', 'probability', 'seed', 'when', 'times']);

/**
 * The fault points of one device, typed by their declarations.
 *
 * @category Device-model SDK
 */
export class DeviceFaults<Points extends AnyPoints> {
  private readonly armed: Armed[] = [];
  private readonly passed = new Map<string, number>();

  constructor(
    private readonly device: string,
    private readonly points: Points,
    private readonly record: (event: DeviceEvent) => void,
  ) {}

  /** The declared points' names. */
  get names(): readonly (keyof Points & string)[] {
    return Object.keys(this.points);
  }

  /** A point's declaration. */
  spec<K extends keyof Points & string>(name: K): Points[K] {
    return this.points[this.known(name)] as Points[K];
  }

  /**
   * Arms `name` with `trigger`; the fault does what `params` say (default: the point's defaults).
   * Several faults may be armed on one point: the first that fires wins that occurrence.
   */
  arm<K extends keyof Points & string>(
    name: K,
    trigger: FaultTrigger<SubjectOf<Points[K]>> = {},
    params?: ParamsOf<Points[K]>,
  ): ArmedFault {
    this.known(name);
    if (typeof trigger !== 'object' || trigger === null) throw new TypeError(`fault trigger for '${name}' must be an object`);
    for (const key of Object.keys(trigger))
      if (!TRIGGER_KEYS.has(key))
        throw new TypeError(`fault trigger for '${name}': unknown field '${key}' (nth, probability, seed, when, times)`);
    const { nth, probability, seed, when, times } = trigger;
    if (nth !== undefined && (!Number.isInteger(nth) || nth < 1))
      throw new RangeError(`fault trigger for '${name}': nth ${String(nth)} must be an integer ≥ 1`);
    if (probability !== undefined && (typeof probability !== 'number' || !(probability >= 0 && probability <= 1)))
      throw new RangeError(`fault trigger for '${name}': probability ${String(probability)} must be within 0..1`);
    if (seed !== undefined && !Number.isInteger(seed))
      throw new RangeError(`fault trigger for '${name}': seed ${String(seed)} must be an integer`);
    if (when !== undefined && typeof when !== 'function') throw new TypeError(`fault trigger for '${name}': when must be a function`);
    if (times !== undefined && (!Number.isInteger(times) || times < 1))
      throw new RangeError(`fault trigger for '${name}': times ${String(times)} must be an integer ≥ 1`);
    const entry: Armed = {
      point: name,
      trigger: trigger as FaultTrigger<never>,
      params: params ?? this.points[name]!.defaults,
      random: probability !== undefined ? new Prng(seed ?? 0) : undefined,
      seen: 0,
      fired: 0,
      active: true,
    };
    this.armed.push(entry);
    return {
      point: name,
      get fired() {
        return entry.fired;
      },
      get active() {
        return entry.active;
      },
      disarm: () => {
        entry.active = false;
      },
    };
  }

  /** Disarms every fault. */
  disarmAll(): void {
    for (const a of this.armed) a.active = false;
    this.armed.length = 0;
  }

  /** How many times a point has been passed since the device was built (armed or not): a sweep's steps. */
  occurrences(name: keyof Points & string): number {
    return this.passed.get(this.known(name)) ?? 0;
  }

  /**
   * The device passes point `name` with `subject`: the parameters of the fault that fires here,
   * or undefined. `effect` says what the device does with them, for the event log.
   */
  hit<K extends keyof Points & string>(
    name: K,
    subject: SubjectOf<Points[K]>,
    effect: (params: ParamsOf<Points[K]>) => string,
  ): ParamsOf<Points[K]> | undefined {
    this.passed.set(name, (this.passed.get(name) ?? 0) + 1);
    if (this.armed.length === 0) return undefined;
    for (const a of this.armed) {
      if (!a.active || a.point !== name) continue;
      const t = a.trigger as FaultTrigger<SubjectOf<Points[K]>>;
      if (t.when && !t.when(subject)) continue;
      a.seen++;
      if (t.nth !== undefined && a.seen < t.nth) continue;
      if (a.random && a.random.next() >= t.probability!) continue;
      a.fired++;
      if (a.fired >= (t.times ?? (t.nth !== undefined ? 1 : Infinity))) a.active = false;
      const params = a.params as ParamsOf<Points[K]>;
      const spec = this.points[name] as unknown as FaultPointSpec<SubjectOf<Points[K]>, unknown>;
      const what = spec.describe ? spec.describe(subject) : 'occurrence';
      this.record({
        kind: 'fault-injected',
        message: `${this.device}: fault '${name}' fired at occurrence ${a.seen} (${what}): ${effect(params)}`,
        faultPoint: name,
      });
      return params;
    }
    return undefined;
  }

  private known(name: string): string {
    if (typeof name !== 'string' || !Object.hasOwn(this.points, name)) {
      throw new RangeError(
        `device '${this.device}' has no fault point '${String(name)}' (it has: ${Object.keys(this.points).join(', ') || 'none'})`,
      );
    }
    return name;
  }
}

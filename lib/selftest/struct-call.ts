/**
 * Makes a raw call helper out of a request number and its struct layout: the struct is filled
 * from the fixture by field name (a layout field `ioas_id` takes the fixture's `ioasId`, `iova`
 * its `iova`), then the call's own defaults, then what the case overrides; it is sent exactly
 * like that (raw-ioctl.ts: the errno comes back unchanged) and the struct the kernel wrote back
 * is returned decoded. This is the only part of the suite that reads a layout's field table.
 */
import type { FieldType, StructType, StructValue } from '../uapi/codec';
import type { IoctlRequest } from '../uapi/requests';
import type { CaseContext } from './context';
import { rawIoctl, type RawOptions } from './raw-ioctl';

/** What every fixture value carries: the case it belongs to (its kernel, page size, mode). */
export interface FixtureValue {
  readonly t: CaseContext;
}

/** The case's context as a fixture value, for calls on fds a case opened itself. */
export function on<F extends Record<string, number>>(t: CaseContext, fds: F): FixtureValue & F {
  return { t, ...fds };
}

export interface CallSpec<S extends Record<string, FieldType>, F extends FixtureValue, Fd extends string> {
  readonly request: IoctlRequest;
  readonly layout: StructType<S>;
  /** The fixture's fd the request is sent to (a case may send it elsewhere with `options.fd`). */
  readonly fd: Fd;
  /** Fields that take a fixture value under another name (HWPT_ALLOC's pt_id is the fixture's IOAS). */
  readonly fixtureNames?: Partial<Record<keyof S & string, string>>;
  /** Values of fields the fixture does not give, fixed or worked out from the fixture. */
  readonly defaults?: Partial<StructValue<S>> | ((f: F) => Partial<StructValue<S>>);
  /** How the struct is sent by default (a declared size short of the whole struct, say). */
  readonly options?: RawOptions;
}

export interface CallOptions extends RawOptions {
  /** Send the request to this fd instead of the fixture's. */
  readonly fd?: number;
}

export type StructCall<S extends Record<string, FieldType>, F> = (
  f: F,
  overrides?: Partial<StructValue<S>>,
  options?: CallOptions,
) => StructValue<S>;

/** ioas_id → ioasId: how a fixture names the value a struct field holds. */
function fixtureName(field: string): string {
  return field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The fields a fixture fills, by the JS type the field decodes to. */
function fromFixture<S extends Record<string, FieldType>>(
  layout: StructType<S>,
  f: object,
  names: Partial<Record<string, string>>,
): Partial<StructValue<S>> {
  const values: Record<string, unknown> = {};
  const source = f as Record<string, unknown>;
  for (const field of layout.fields) {
    // The leading size/argsz is the struct's own length, which raw-ioctl fills in.
    if (field.offset === 0 || field.type.kind === 'array') continue;
    const value = source[names[field.name] ?? fixtureName(field.name)];
    const wanted = field.type.kind === 'u64' || field.type.kind === 's64' ? 'bigint' : 'number';
    if (typeof value === wanted) values[field.name] = value;
  }
  return values as Partial<StructValue<S>>;
}

export function structCall<S extends Record<string, FieldType>, F extends FixtureValue & Record<Fd, number>, Fd extends string>(
  spec: CallSpec<S, F, Fd>,
): StructCall<S, F> {
  return (f, overrides = {}, options = {}) => {
    const defaults = typeof spec.defaults === 'function' ? spec.defaults(f) : (spec.defaults ?? {});
    const values = { ...fromFixture(spec.layout, f, spec.fixtureNames ?? {}), ...defaults, ...overrides };
    const { fd = f[spec.fd], ...raw } = options;
    return rawIoctl(f.t.kernel, fd, spec.request, spec.layout, values, { ...spec.options, ...raw }).out;
  };
}

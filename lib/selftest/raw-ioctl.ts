/**
 * Issuing an ioctl with a struct from lib/uapi, with full control over the bytes: the size/argsz
 * field the kernel is told, the length of the buffer, and what lies past the struct. Bad-input
 * cases need exactly that (a size one byte short, a larger struct with a non-zero tail); normal
 * steps use the defaults, which send the struct exactly as the uapi header defines it.
 */
import type { Kernel } from '../sys/kernel';
import { VfioError } from '../sys/errors';
import type { FieldType, StructType, StructValue } from '../uapi/codec';
import type { IoctlRequest } from '../uapi/requests';

export interface RawOptions {
  /** The value written to the leading size/argsz field (default: the struct's size). */
  readonly declaredSize?: number;
  /** Extra bytes appended after the struct (the buffer is struct size + tail length). */
  readonly tail?: Uint8Array | readonly number[];
  /** Bytes after the struct, before the tail, for structs followed by a variable part. */
  readonly trailer?: Uint8Array;
}

export interface RawAnswer<S extends Record<string, FieldType>> {
  /** The ioctl's return value. */
  readonly ret: number;
  /** The whole buffer as the kernel left it. */
  readonly buffer: Buffer;
  /** The struct decoded from the buffer after the call. */
  readonly out: StructValue<S>;
}

/** The leading u32 every iommufd and VFIO struct starts with: `size` or `argsz`. */
function sizeFieldOf<S extends Record<string, FieldType>>(type: StructType<S>): keyof S & string {
  const first = type.fields[0]!;
  if (first.offset !== 0 || (first.name !== 'size' && first.name !== 'argsz')) {
    throw new Error(`struct ${type.name} does not start with size/argsz`);
  }
  return first.name as keyof S & string;
}

export function buildStruct<S extends Record<string, FieldType>>(
  type: StructType<S>,
  values: Partial<StructValue<S>>,
  options: RawOptions = {},
): Buffer {
  const trailer = options.trailer ?? new Uint8Array(0);
  const tail = Uint8Array.from(options.tail ?? []);
  const buffer = Buffer.alloc(type.size + trailer.length + tail.length);
  type.encode(values, buffer);
  Buffer.from(trailer).copy(buffer, type.size);
  Buffer.from(tail).copy(buffer, type.size + trailer.length);
  const field = sizeFieldOf(type);
  if (values[field] === undefined) buffer.writeUInt32LE(options.declaredSize ?? buffer.length, 0);
  return buffer;
}

export function rawIoctl<S extends Record<string, FieldType>>(
  kernel: Kernel,
  fd: number,
  request: IoctlRequest,
  type: StructType<S>,
  values: Partial<StructValue<S>>,
  options: RawOptions = {},
): RawAnswer<S> {
  const buffer = buildStruct(type, values, options);
  let ret: number;
  try {
    ret = kernel.ioctl(fd, request.number, buffer);
  } catch (e) {
    throw VfioError.wrap(e, { ioctl: request.name });
  }
  return { ret, buffer, out: type.decode(buffer) };
}

/** An ioctl whose argument is an integer or nothing (VFIO_DEVICE_RESET, VFIO_CHECK_EXTENSION). */
export function plainIoctl(kernel: Kernel, fd: number, request: IoctlRequest, arg: number | null = null): number {
  try {
    return kernel.ioctl(fd, request.number, arg);
  } catch (e) {
    throw VfioError.wrap(e, { ioctl: request.name });
  }
}

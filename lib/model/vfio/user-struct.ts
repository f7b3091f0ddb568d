/**
 * Reading an extensible struct from user memory the way the kernel does for ioctls whose first
 * field is the caller's size (get_user of argsz, then copy_struct_from_user): too small for the
 * mandatory part is EINVAL, larger than the kernel's struct is fine only if every extra byte is
 * zero (else E2BIG), and bytes the caller did not provide read as zero. The answer is a view of
 * the kernel's copy of the struct.
 */
import { fail } from '../errno';
import type { FieldType, StructType, StructView } from '../../uapi/codec';

export function copyStructFromUser<S extends Record<string, FieldType>>(
  arg: Uint8Array | number | null,
  type: StructType<S>,
  minsz: number,
  sizeField: keyof S & string,
): StructView<S> {
  if (!(arg instanceof Uint8Array) || arg.length < 4) {
    fail('EFAULT', 'the argument must point to the struct');
  }
  const userSize = Number(type.get(arg, sizeField));
  if (userSize < minsz) fail('EINVAL', `${sizeField} ${userSize} is below the minimum ${minsz}`);
  if (arg.length < userSize) {
    fail('EFAULT', `${sizeField} says ${userSize} bytes but the buffer has ${arg.length}`);
  }
  if (userSize > type.size) {
    for (let i = type.size; i < userSize; i++) {
      if (arg[i] !== 0) fail('E2BIG', `non-zero byte at offset ${i}, past the kernel's ${type.size}-byte struct`);
    }
  }
  // The kernel's own copy: the caller's bytes, zero past what it provided.
  const copy = type.allocate();
  copy.$copyFrom(arg, userSize);
  return copy;
}

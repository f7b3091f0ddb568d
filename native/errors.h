// How the addon reports failure. A failed syscall becomes a JS Error carrying `errno` (positive,
// Linux numbering) and `syscall`; lib/sys/native-kernel.ts turns it into a VfioError with the path and
// ioctl name it knows. Bad arguments from JS are TypeError/RangeError. Nothing here throws a C++
// exception: every function sets a pending JS exception and the caller returns an empty value.
#pragma once
#include <napi.h>

namespace vfio {

// The error object for `err` (an errno value) from `syscall`, not yet thrown (promises reject with it).
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);
void ThrowErrno(Napi::Env env, int err, const char* syscall);
void ThrowTypeError(Napi::Env env, const char* message);
void ThrowRangeError(Napi::Env env, const char* message);

}  // namespace vfio

// Reading arguments that come from JS. Each getter checks type and range and, on failure, leaves
// a TypeError/RangeError pending and returns false: the calling binding then returns at once.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace vfio {

// An integer-valued number in [min, max].
bool GetInteger(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min, int64_t max,
                int64_t* out);
// A file descriptor: a non-negative int (or -1 when `allowMinusOne`, for anonymous mmap).
bool GetFd(const Napi::CallbackInfo& info, size_t index, int* out, bool allowMinusOne = false);
// A bigint in [0, max].
bool GetUnsignedBigInt(const Napi::CallbackInfo& info, size_t index, const char* name, uint64_t max,
                       uint64_t* out);

// The bytes viewed by a TypedArray or DataView: start and exact length, for bounds checks.
struct Bytes {
  uint8_t* data;
  size_t length;
};
bool IsByteView(Napi::Value value);
bool GetBytes(const Napi::CallbackInfo& info, size_t index, const char* name, Bytes* out);

// A string copied into `out` (NUL-terminated); RangeError when it does not fit or contains NUL.
bool GetString(const Napi::CallbackInfo& info, size_t index, const char* name, char* out, size_t capacity);

}  // namespace vfio

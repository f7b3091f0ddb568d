#include "args.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "errors.h"

namespace vfio {

namespace {

void ThrowArgument(Napi::Env env, bool range, const char* name, const char* expected) {
  char message[160];
  snprintf(message, sizeof message, "%s must be %s", name, expected);
  if (range) {
    ThrowRangeError(env, message);
  } else {
    ThrowTypeError(env, message);
  }
}

}  // namespace

bool GetInteger(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min, int64_t max,
                int64_t* out) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) {
    ThrowArgument(info.Env(), false, name, "a number");
    return false;
  }
  double d = value.As<Napi::Number>().DoubleValue();
  // The comparisons are done in double, so a NaN or an out-of-range value fails before the cast.
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) || std::trunc(d) != d) {
    char expected[96];
    snprintf(expected, sizeof expected, "an integer in [%lld, %lld]", static_cast<long long>(min),
             static_cast<long long>(max));
    ThrowArgument(info.Env(), true, name, expected);
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool GetFd(const Napi::CallbackInfo& info, size_t index, int* out, bool allowMinusOne) {
  int64_t fd;
  if (!GetInteger(info, index, "fd", allowMinusOne ? -1 : 0, INT32_MAX, &fd)) return false;
  *out = static_cast<int>(fd);
  return true;
}

bool GetUnsignedBigInt(const Napi::CallbackInfo& info, size_t index, const char* name, uint64_t max,
                       uint64_t* out) {
  Napi::Value value = info[index];
  if (!value.IsBigInt()) {
    ThrowArgument(info.Env(), false, name, "a bigint");
    return false;
  }
  // Read as signed first so that negative values are caught; then as unsigned for the full range.
  bool lossless = false;
  int64_t asSigned = value.As<Napi::BigInt>().Int64Value(&lossless);
  if (lossless && asSigned < 0) {
    ThrowArgument(info.Env(), true, name, "a non-negative bigint");
    return false;
  }
  uint64_t v = value.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless || v > max) {
    char expected[96];
    snprintf(expected, sizeof expected, "a bigint in [0, %llu]", static_cast<unsigned long long>(max));
    ThrowArgument(info.Env(), true, name, expected);
    return false;
  }
  *out = v;
  return true;
}

bool IsByteView(Napi::Value value) {
  return value.IsTypedArray() || value.IsDataView();
}

bool GetBytes(const Napi::CallbackInfo& info, size_t index, const char* name, Bytes* out) {
  napi_env env = info.Env();
  napi_value value = info[index];
  bool isTypedArray = false;
  bool isDataView = false;
  napi_is_typedarray(env, value, &isTypedArray);
  if (!isTypedArray) napi_is_dataview(env, value, &isDataView);
  void* data = nullptr;
  size_t bytes = 0;
  if (isTypedArray) {
    napi_typedarray_type type;
    size_t elements = 0;
    if (napi_get_typedarray_info(env, value, &type, &elements, &data, nullptr, nullptr) != napi_ok) {
      ThrowArgument(info.Env(), false, name, "a readable TypedArray");
      return false;
    }
    size_t elementSize = 1;
    switch (type) {
      case napi_int16_array:
      case napi_uint16_array:
        elementSize = 2;
        break;
      case napi_int32_array:
      case napi_uint32_array:
      case napi_float32_array:
        elementSize = 4;
        break;
      case napi_float64_array:
      case napi_bigint64_array:
      case napi_biguint64_array:
        elementSize = 8;
        break;
      default:
        elementSize = 1;
    }
    bytes = elements * elementSize;
  } else if (isDataView) {
    if (napi_get_dataview_info(env, value, &bytes, &data, nullptr, nullptr) != napi_ok) {
      ThrowArgument(info.Env(), false, name, "a readable DataView");
      return false;
    }
  } else {
    ThrowArgument(info.Env(), false, name, "a Buffer, TypedArray or DataView");
    return false;
  }
  // A detached view reports length 0; its data pointer must never be used.
  out->data = bytes == 0 ? nullptr : static_cast<uint8_t*>(data);
  out->length = bytes;
  return true;
}

bool GetString(const Napi::CallbackInfo& info, size_t index, const char* name, char* out, size_t capacity) {
  napi_env env = info.Env();
  Napi::Value value = info[index];
  if (!value.IsString()) {
    ThrowArgument(info.Env(), false, name, "a string");
    return false;
  }
  size_t needed = 0;
  napi_get_value_string_utf8(env, value, nullptr, 0, &needed);
  if (needed + 1 > capacity) {
    char expected[64];
    snprintf(expected, sizeof expected, "at most %zu bytes of UTF-8", capacity - 1);
    ThrowArgument(info.Env(), true, name, expected);
    return false;
  }
  size_t copied = 0;
  napi_get_value_string_utf8(env, value, out, capacity, &copied);
  if (strlen(out) != copied) {
    ThrowArgument(info.Env(), true, name, "a string without NUL characters");
    return false;
  }
  return true;
}

}  // namespace vfio

#include "errors.h"

#include <cstdio>
#include <cstring>

namespace vfio {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  char message[160];
  char reason[96];
  // GNU strerror_r may return a static string instead of filling `reason`.
  const char* text = strerror_r(err, reason, sizeof reason);
  snprintf(message, sizeof message, "%s: %s (errno %d)", syscall, text, err);
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

void ThrowErrno(Napi::Env env, int err, const char* syscall) {
  ErrnoError(env, err, syscall).ThrowAsJavaScriptException();
}

void ThrowTypeError(Napi::Env env, const char* message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
}

void ThrowRangeError(Napi::Env env, const char* message) {
  Napi::RangeError::New(env, message).ThrowAsJavaScriptException();
}

}  // namespace vfio

// Mappings: mmap/munmap/mlock and exact-width volatile access to a live mapping.
//
// A mapping is handed to JS as a handle (an index into the per-environment registry) plus an
// external ArrayBuffer over the same bytes. munmap detaches that ArrayBuffer before unmapping,
// so JS can never touch unmapped memory through it: typed-array methods and DataView accessors
// then throw a TypeError and indexed reads see an empty array. The ArrayBuffer's finalizer is
// only a safety net that unmaps what the program forgot.
#include <sys/mman.h>

#include <cerrno>
#include <cmath>
#include <cstdio>

#include "args.h"
#include "errors.h"
#include "state.h"

namespace vfio {
namespace {

void FinalizeRegion(napi_env, void*, void* hint) {
  Region* region = static_cast<Region*>(hint);
  State* state = region->state;
  if (region->mapped) {
    munmap(region->address, region->length);
    region->mapped = false;
    RemoveRegion(state, region);
  }
  delete region;
  Release(state);
}

Napi::Value Mmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  uint64_t length, offset;
  int64_t prot, flags;
  if (!GetFd(info, 0, &fd, true)) return Napi::Value();
  if (!GetUnsignedBigInt(info, 1, "length", SIZE_MAX, &length)) return Napi::Value();
  if (!GetInteger(info, 2, "prot", 0, INT32_MAX, &prot)) return Napi::Value();
  if (!GetInteger(info, 3, "flags", 0, INT32_MAX, &flags)) return Napi::Value();
  if (!GetUnsignedBigInt(info, 4, "offset", static_cast<uint64_t>(INT64_MAX), &offset)) return Napi::Value();
  // The address is always chosen by the kernel: MAP_FIXED could replace memory V8 or another
  // mapping owns, which no bounds check could make safe.
  if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
    ThrowRangeError(env, "mmap: MAP_FIXED is not supported, the kernel chooses the address");
    return Napi::Value();
  }
  State* state = GetState(env);
  Region* region = new (std::nothrow) Region{};
  if (region == nullptr) {
    ThrowErrno(env, ENOMEM, "mmap");
    return Napi::Value();
  }
  void* address = mmap(nullptr, static_cast<size_t>(length), static_cast<int>(prot), static_cast<int>(flags), fd,
                       static_cast<off_t>(offset));
  if (address == MAP_FAILED) {
    int err = errno;
    delete region;
    ThrowErrno(env, err, "mmap");
    return Napi::Value();
  }
  region->address = static_cast<uint8_t*>(address);
  region->length = static_cast<size_t>(length);
  region->prot = static_cast<int>(prot);
  region->mapped = true;
  region->state = state;
  double handle;
  if (!AddRegion(state, region, &handle)) {
    munmap(address, region->length);
    delete region;
    ThrowErrno(env, ENOMEM, "mmap");
    return Napi::Value();
  }
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, address, region->length, FinalizeRegion, region, &buffer) != napi_ok) {
    RemoveRegion(state, region);
    munmap(address, region->length);
    delete region;
    if (!env.IsExceptionPending()) ThrowErrno(env, ENOMEM, "mmap");
    return Napi::Value();
  }
  state->references++;
  Napi::Object result = Napi::Object::New(env);
  result.Set("handle", Napi::Number::New(env, handle));
  result.Set("address", Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(address))));
  result.Set("buffer", Napi::Value(env, buffer));
  return result;
}

// munmap(handle, buffer): `buffer` must be the ArrayBuffer mmap returned for this handle. An
// unknown or stale handle is a no-op, like munmap of a range that is not mapped.
Napi::Value Munmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    ThrowTypeError(env, "handle must be a number");
    return Napi::Value();
  }
  Region* region = FindRegion(GetState(env), info[0].As<Napi::Number>().DoubleValue());
  if (region == nullptr) return Napi::Value();
  if (!info[1].IsArrayBuffer()) {
    ThrowTypeError(env, "munmap: buffer must be the ArrayBuffer of the mapping");
    return Napi::Value();
  }
  Napi::ArrayBuffer buffer = info[1].As<Napi::ArrayBuffer>();
  if (!buffer.IsDetached() && buffer.Data() != region->address) {
    ThrowTypeError(env, "munmap: buffer is not the ArrayBuffer of this mapping");
    return Napi::Value();
  }
  if (!buffer.IsDetached()) {
    buffer.Detach();
    if (env.IsExceptionPending()) return Napi::Value();
  }
  if (munmap(region->address, region->length) < 0) {
    ThrowErrno(env, errno, "munmap");
    return Napi::Value();
  }
  region->mapped = false;
  RemoveRegion(GetState(env), region);
  return Napi::Value();
}

// Finds the live region of argument 0, or leaves a TypeError pending.
Region* LiveRegion(const Napi::CallbackInfo& info, const char* operation) {
  Napi::Env env = info.Env();
  Region* region = info[0].IsNumber() ? FindRegion(GetState(env), info[0].As<Napi::Number>().DoubleValue()) : nullptr;
  if (region == nullptr) {
    char message[96];
    snprintf(message, sizeof message, "%s: the mapping is not mapped (already unmapped, or not a mapping)",
             operation);
    ThrowTypeError(env, message);
  }
  return region;
}

Napi::Value Mlock(const Napi::CallbackInfo& info) {
  Region* region = LiveRegion(info, "mlock");
  if (region == nullptr) return Napi::Value();
  if (mlock(region->address, region->length) < 0) ThrowErrno(info.Env(), errno, "mlock");
  return Napi::Value();
}

// The address of `width` bytes at argument 1 of the mapping of argument 0, checked to lie inside
// the mapping, aligned to the width, and permitted by the mapping's protection.
template <typename T>
volatile T* MmioAddress(const Napi::CallbackInfo& info, int neededProt, const char* operation) {
  Region* region = LiveRegion(info, operation);
  if (region == nullptr) return nullptr;
  Napi::Env env = info.Env();
  if (!info[1].IsNumber()) {
    ThrowTypeError(env, "offset must be a number");
    return nullptr;
  }
  double offset = info[1].As<Napi::Number>().DoubleValue();
  char message[160];
  // Compared as doubles first so that NaN, negative and huge values never reach the cast.
  if (!(offset >= 0 && offset < static_cast<double>(region->length)) || std::trunc(offset) != offset ||
      static_cast<uint64_t>(offset) + sizeof(T) > region->length) {
    snprintf(message, sizeof message, "%s: offset %.17g is outside the mapping of %zu bytes", operation, offset,
             region->length);
    ThrowRangeError(env, message);
    return nullptr;
  }
  uint64_t at = static_cast<uint64_t>(offset);
  if (at % sizeof(T) != 0) {
    snprintf(message, sizeof message, "%s: offset %llu is not aligned to %zu bytes", operation,
             static_cast<unsigned long long>(at), sizeof(T));
    ThrowRangeError(env, message);
    return nullptr;
  }
  if ((region->prot & neededProt) != neededProt) {
    ThrowErrno(env, EACCES, operation);
    return nullptr;
  }
  return reinterpret_cast<volatile T*>(region->address + at);
}

template <typename T>
Napi::Value MmioRead(const Napi::CallbackInfo& info) {
  volatile T* at = MmioAddress<T>(info, PROT_READ, "mmioRead");
  if (at == nullptr) return Napi::Value();
  T value = *at;
  return Napi::Number::New(info.Env(), static_cast<double>(value));
}

Napi::Value MmioRead64(const Napi::CallbackInfo& info) {
  volatile uint64_t* at = MmioAddress<uint64_t>(info, PROT_READ, "mmioRead");
  if (at == nullptr) return Napi::Value();
  uint64_t value = *at;
  return Napi::BigInt::New(info.Env(), value);
}

template <typename T>
Napi::Value MmioWrite(const Napi::CallbackInfo& info) {
  volatile T* at = MmioAddress<T>(info, PROT_WRITE, "mmioWrite");
  if (at == nullptr) return Napi::Value();
  int64_t value;
  if (!GetInteger(info, 2, "value", 0, static_cast<int64_t>(static_cast<T>(~T{0})), &value)) return Napi::Value();
  *at = static_cast<T>(value);
  return Napi::Value();
}

Napi::Value MmioWrite64(const Napi::CallbackInfo& info) {
  volatile uint64_t* at = MmioAddress<uint64_t>(info, PROT_WRITE, "mmioWrite");
  if (at == nullptr) return Napi::Value();
  uint64_t value;
  if (!GetUnsignedBigInt(info, 2, "value", UINT64_MAX, &value)) return Napi::Value();
  *at = value;
  return Napi::Value();
}

}  // namespace

void RegisterMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("mmap", Napi::Function::New(env, Mmap, "mmap"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
  exports.Set("mlock", Napi::Function::New(env, Mlock, "mlock"));
  exports.Set("read8", Napi::Function::New(env, MmioRead<uint8_t>, "read8"));
  exports.Set("read16", Napi::Function::New(env, MmioRead<uint16_t>, "read16"));
  exports.Set("read32", Napi::Function::New(env, MmioRead<uint32_t>, "read32"));
  exports.Set("read64", Napi::Function::New(env, MmioRead64, "read64"));
  exports.Set("write8", Napi::Function::New(env, MmioWrite<uint8_t>, "write8"));
  exports.Set("write16", Napi::Function::New(env, MmioWrite<uint16_t>, "write16"));
  exports.Set("write32", Napi::Function::New(env, MmioWrite<uint32_t>, "write32"));
  exports.Set("write64", Napi::Function::New(env, MmioWrite64, "write64"));
}

}  // namespace vfio

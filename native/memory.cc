// Mappings: mmap/munmap/mlock and exact-width volatile access to a live mapping.
//
// A mapping is handed to JS as a handle (an index into the per-environment registry) plus an
// external ArrayBuffer over the same bytes. munmap detaches that ArrayBuffer before unmapping,
// so JS can never touch unmapped memory through it: typed-array methods and DataView accessors
// then throw a TypeError and indexed reads see an empty array. The ArrayBuffer's finalizer is
// only a safety net that unmaps what the program forgot.
//
// V8 cannot always give a buffer that large (Node 20 refuses external buffers above 4 GiB, its
// buffer.constants.MAX_LENGTH). Such a mapping is still made and stays usable through its handle
// and address; JS gets `buffer: null`, and an External stands in as the object whose finalizer
// unmaps it.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>

#include "args.h"
#include "errors.h"
#include "state.h"

namespace vfio {
namespace {

void DropOwner(Region* region) {
  if (--region->owners != 0) return;
  State* state = region->state;
  if (region->mapped) {
    munmap(region->address, region->length);
    region->mapped = false;
    RemoveRegion(state, region);
  }
  delete region;
  Release(state);
}

void FinalizeRegion(napi_env, void*, void* hint) {
  DropOwner(static_cast<Region*>(hint));
}

// The JS object that keeps the region alive: an ArrayBuffer over its bytes when V8 can make one,
// an External otherwise. Null, with an exception pending, when not even the External can be made.
napi_value MakeLifetime(napi_env env, Region* region) {
  napi_value lifetime;
  region->owners++;
  if (napi_create_external_arraybuffer(env, region->address, region->length, FinalizeRegion, region, &lifetime) ==
      napi_ok) {
    region->hasBuffer = true;
    return lifetime;
  }
  // Refused (too large, in Node 20: it throws and has already run the finalizer, which only
  // dropped its ownership thanks to mmap's own). If the finalizer did not run, the refused buffer
  // may still run it at GC, so its ownership is kept: at worst the struct outlives the mapping.
  bool pending = false;
  napi_value ignored;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
  region->owners++;
  if (napi_create_external(env, region, FinalizeRegion, region, &lifetime) == napi_ok) return lifetime;
  region->owners--;
  ThrowErrno(Napi::Env(env), ENOMEM, "mmap");
  return nullptr;
}

// mmap at an address `skew` bytes past a multiple of `align`, the way the kernel's selftests
// place a BAR (mmap_reserve): a PROT_NONE reservation of length + align bytes, the mapping made
// with MAP_FIXED over the chosen part of it, the rest returned. MAP_FIXED replaces only pages this
// call reserved a moment before; no other thread can be given them meanwhile, since they are
// mapped the whole time. MAP_FAILED with errno set on failure, with nothing left reserved.
void* MmapPlaced(size_t length, int prot, int flags, int fd, off_t offset, uint64_t align, uint64_t skew) {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t rounded = (length + page - 1) / page * page;
  if (rounded < length || rounded > SIZE_MAX - align) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  size_t span = rounded + static_cast<size_t>(align);
  void* reserved = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserved == MAP_FAILED) return MAP_FAILED;
  uintptr_t base = reinterpret_cast<uintptr_t>(reserved);
  uintptr_t at = base + ((static_cast<uintptr_t>(skew) - base) & static_cast<uintptr_t>(align - 1));
  void* address = mmap(reinterpret_cast<void*>(at), length, prot, flags | MAP_FIXED, fd, offset);
  if (address == MAP_FAILED) {
    int err = errno;
    munmap(reserved, span);
    errno = err;
    return MAP_FAILED;
  }
  if (at > base) munmap(reserved, at - base);
  if (base + span > at + rounded) munmap(reinterpret_cast<void*>(at + rounded), base + span - (at + rounded));
  return address;
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
  // An optional placement: the address is `skew` bytes past a multiple of `align`.
  uint64_t align = 0, skew = 0;
  bool placed = info.Length() > 5 && !info[5].IsUndefined();
  if (placed) {
    uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    if (!GetUnsignedBigInt(info, 5, "align", static_cast<uint64_t>(1) << 62, &align)) return Napi::Value();
    if (!GetUnsignedBigInt(info, 6, "skew", static_cast<uint64_t>(1) << 62, &skew)) return Napi::Value();
    if (align < page || (align & (align - 1)) != 0) {
      ThrowRangeError(env, "mmap: placement.align must be a power of two of at least the page size");
      return Napi::Value();
    }
    if (skew >= align || skew % page != 0) {
      ThrowRangeError(env, "mmap: placement.skew must be a multiple of the page size below placement.align");
      return Napi::Value();
    }
  }
  State* state = GetState(env);
  Region* region = new (std::nothrow) Region{};
  if (region == nullptr) {
    ThrowErrno(env, ENOMEM, "mmap");
    return Napi::Value();
  }
  void* address = placed ? MmapPlaced(static_cast<size_t>(length), static_cast<int>(prot), static_cast<int>(flags), fd,
                                      static_cast<off_t>(offset), align, skew)
                         : mmap(nullptr, static_cast<size_t>(length), static_cast<int>(prot),
                                static_cast<int>(flags), fd, static_cast<off_t>(offset));
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
  // Held by this call until the end, so that no finalizer, even one run at once, frees it here.
  region->owners = 1;
  state->references++;
  napi_value lifetime = MakeLifetime(env, region);
  if (lifetime == nullptr) {
    if (region->mapped) {
      munmap(address, region->length);
      region->mapped = false;
      RemoveRegion(state, region);
    }
    DropOwner(region);
    return Napi::Value();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("handle", Napi::Number::New(env, handle));
  result.Set("address", Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(address))));
  result.Set("buffer", region->hasBuffer ? Napi::Value(env, lifetime) : env.Null());
  result.Set("lifetime", Napi::Value(env, lifetime));
  DropOwner(region);
  return result;
}

// Whether `value` is the lifetime object mmap returned for `region`. A detached ArrayBuffer never
// is: only munmap detaches the mapping's own buffer, and it unregisters the region as it does.
bool IsLifetimeOf(napi_env env, napi_value value, const Region* region) {
  if (!region->hasBuffer) {
    napi_valuetype type;
    void* data = nullptr;
    return napi_typeof(env, value, &type) == napi_ok && type == napi_external &&
           napi_get_value_external(env, value, &data) == napi_ok && data == region;
  }
  bool isArrayBuffer = false, detached = true;
  void* data = nullptr;
  size_t length = 0;
  return napi_is_arraybuffer(env, value, &isArrayBuffer) == napi_ok && isArrayBuffer &&
         napi_is_detached_arraybuffer(env, value, &detached) == napi_ok && !detached &&
         napi_get_arraybuffer_info(env, value, &data, &length) == napi_ok && data == region->address &&
         length == region->length;
}

// munmap(handle, lifetime): `lifetime` must be the object mmap returned for this handle (its
// ArrayBuffer, or its External). An unknown or stale handle is a no-op, like munmap of a range
// that is not mapped.
Napi::Value Munmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    ThrowTypeError(env, "handle must be a number");
    return Napi::Value();
  }
  Region* region = FindRegion(GetState(env), info[0].As<Napi::Number>().DoubleValue());
  if (region == nullptr) return Napi::Value();
  if (!IsLifetimeOf(env, info[1], region)) {
    ThrowTypeError(env, region->hasBuffer ? "munmap: buffer is not the ArrayBuffer of this mapping"
                                          : "munmap: lifetime is not the object mmap returned for this mapping");
    return Napi::Value();
  }
  if (region->hasBuffer) {
    info[1].As<Napi::ArrayBuffer>().Detach();
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

// The MMIO accessors are the hot path of a driver, so they use the C N-API directly: one call
// to fetch the arguments and one per number, with no wrapper objects (about half the cost of
// the node-addon-api form on the same machine).

enum MmioErrorKind { kTypeError, kRangeError };

void ThrowMmioError(napi_env env, MmioErrorKind kind, const char* message) {
  if (kind == kRangeError) {
    napi_throw_range_error(env, nullptr, message);
  } else {
    napi_throw_type_error(env, nullptr, message);
  }
}

// Reads the call's arguments (mapping handle, offset, then any more an access takes) into argv,
// and how many were given into *argcOut when asked, and returns the address of sizeof(T) bytes at the offset in
// the mapping, checked to lie inside the mapping, aligned to the width, and permitted by the
// mapping's protection. Null with a pending exception otherwise.
template <typename T, size_t kArgs>
volatile T* MmioAddress(napi_env env, napi_callback_info info, napi_value (&argv)[kArgs], int neededProt,
                        const char* operation, size_t* argcOut = nullptr) {
  size_t argc = kArgs;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argcOut != nullptr) *argcOut = argc;
  double handle, offset;
  char message[160];
  if (argc < 2 || napi_get_value_double(env, argv[0], &handle) != napi_ok) {
    snprintf(message, sizeof message, "%s: handle must be a number", operation);
    ThrowMmioError(env, kTypeError, message);
    return nullptr;
  }
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  Region* region = FindRegion(static_cast<State*>(data), handle);
  if (region == nullptr) {
    snprintf(message, sizeof message, "%s: the mapping is not mapped (already unmapped, or not a mapping)", operation);
    ThrowMmioError(env, kTypeError, message);
    return nullptr;
  }
  if (napi_get_value_double(env, argv[1], &offset) != napi_ok) {
    snprintf(message, sizeof message, "%s: offset must be a number", operation);
    ThrowMmioError(env, kTypeError, message);
    return nullptr;
  }
  // Compared as doubles first so that NaN, negative and huge values never reach the cast.
  if (!(offset >= 0 && offset < static_cast<double>(region->length)) || std::trunc(offset) != offset ||
      static_cast<uint64_t>(offset) + sizeof(T) > region->length) {
    snprintf(message, sizeof message, "%s: offset %.17g is outside the mapping of %zu bytes", operation, offset,
             region->length);
    ThrowMmioError(env, kRangeError, message);
    return nullptr;
  }
  uint64_t at = static_cast<uint64_t>(offset);
  if (at % sizeof(T) != 0) {
    snprintf(message, sizeof message, "%s: offset %llu is not aligned to %zu bytes", operation,
             static_cast<unsigned long long>(at), sizeof(T));
    ThrowMmioError(env, kRangeError, message);
    return nullptr;
  }
  if ((region->prot & neededProt) != neededProt) {
    ThrowErrno(Napi::Env(env), EACCES, operation);
    return nullptr;
  }
  return reinterpret_cast<volatile T*>(region->address + at);
}

template <typename T>
napi_value MmioRead(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  volatile T* at = MmioAddress<T>(env, info, argv, PROT_READ, "mmioRead");
  if (at == nullptr) return nullptr;
  T value = *at;
  napi_value result;
  if constexpr (sizeof(T) == 8) {
    napi_create_bigint_uint64(env, value, &result);
  } else {
    napi_create_uint32(env, value, &result);
  }
  return result;
}

template <typename T>
napi_value MmioWrite(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[3];
  volatile T* at = MmioAddress<T>(env, info, argv, PROT_WRITE, "mmioWrite", &argc);
  if (at == nullptr) return nullptr;
  if constexpr (sizeof(T) == 8) {
    uint64_t value = 0;
    bool lossless = false;
    if (argc < 3 || napi_get_value_bigint_uint64(env, argv[2], &value, &lossless) != napi_ok) {
      ThrowMmioError(env, kTypeError, "mmioWrite: value must be a bigint");
      return nullptr;
    }
    // Negative and too-large bigints both come back lossy.
    if (!lossless) {
      ThrowMmioError(env, kRangeError, "mmioWrite: value must be a bigint in [0, 2^64-1]");
      return nullptr;
    }
    *at = value;
  } else {
    double value;
    if (argc < 3 || napi_get_value_double(env, argv[2], &value) != napi_ok) {
      ThrowMmioError(env, kTypeError, "mmioWrite: value must be a number");
      return nullptr;
    }
    constexpr double kMax = static_cast<double>(static_cast<T>(~T{0}));
    if (!(value >= 0 && value <= kMax) || std::trunc(value) != value) {
      char message[96];
      snprintf(message, sizeof message, "mmioWrite: value must be an integer in [0, %.0f]", kMax);
      ThrowMmioError(env, kRangeError, message);
      return nullptr;
    }
    *at = static_cast<T>(value);
  }
  return nullptr;
}

void Export(Napi::Env env, Napi::Object exports, const char* name, napi_callback callback) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, nullptr, &fn);
  exports.Set(name, Napi::Value(env, fn));
}

}  // namespace

void RegisterMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("mmap", Napi::Function::New(env, Mmap, "mmap"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
  exports.Set("mlock", Napi::Function::New(env, Mlock, "mlock"));
  Export(env, exports, "read8", MmioRead<uint8_t>);
  Export(env, exports, "read16", MmioRead<uint16_t>);
  Export(env, exports, "read32", MmioRead<uint32_t>);
  Export(env, exports, "read64", MmioRead<uint64_t>);
  Export(env, exports, "write8", MmioWrite<uint8_t>);
  Export(env, exports, "write16", MmioWrite<uint16_t>);
  Export(env, exports, "write32", MmioWrite<uint32_t>);
  Export(env, exports, "write64", MmioWrite<uint64_t>);
}

}  // namespace vfio

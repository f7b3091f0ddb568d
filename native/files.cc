// File-descriptor syscalls: open/close, ioctl, pread/pwrite, memfd, ftruncate and eventfd.
// Each binding validates its arguments, makes exactly one syscall (retrying EINTR where Linux
// can return it) and returns the result or throws the errno.
#include <fcntl.h>
#include <linux/limits.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "args.h"
#include "errors.h"
#include "state.h"

namespace vfio {
namespace {

// Makes the syscall `call` until it ends other than by EINTR (a signal that arrived before it
// did anything), and returns what it returned last.
template <typename Call>
auto RetryOnEintr(Call call) -> decltype(call()) {
  decltype(call()) result;
  do {
    result = call();
  } while (result < 0 && errno == EINTR);
  return result;
}

// The answer of a binding whose syscall makes an fd: the fd, or, when the syscall failed,
// nothing, with its errno thrown.
Napi::Value NewFdResult(Napi::Env env, int fd, const char* syscall) {
  if (fd < 0) {
    ThrowErrno(env, errno, syscall);
    return Napi::Value();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  char path[PATH_MAX];
  int64_t flags, mode;
  if (!GetString(info, 0, "path", path, sizeof path)) return Napi::Value();
  if (!GetInteger(info, 1, "flags", INT32_MIN, INT32_MAX, &flags)) return Napi::Value();
  if (!GetInteger(info, 2, "mode", 0, 07777, &mode)) return Napi::Value();
  int fd = RetryOnEintr([&] { return open(path, static_cast<int>(flags), static_cast<mode_t>(mode)); });
  return NewFdResult(info.Env(), fd, "open");
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  int err = CloseCancellingWaits(fd);
  // This environment's waits end before close returns, as a program that closes and then awaits
  // them expects; the callbacks run once the number is closed, so one that waits again on it
  // fails EBADF instead of polling a number about to be reused.
  EndMarkedNow(info.Env(), GetState(info.Env()));
  if (err != 0 && !info.Env().IsExceptionPending()) ThrowErrno(info.Env(), err, "close");
  return Napi::Value();
}

// How much memory the kernel may touch through an ioctl's argument, so that a buffer can be
// checked to hold it before the kernel sees it:
// - a number that encodes a size (_IOR/_IOW/_IOWR): that many bytes;
// - type ';' (iommufd and VFIO) encodes none: the struct starts with its own size (`size` or
//   `argsz`) and the kernel reads and writes that many bytes at most (VFIO rejects argsz below
//   its minimum), so that size must fit the buffer; a few of them take something else;
// - the generic file requests Linux handles itself for every file, whose argument it fixes;
// - any other request encodes no size, and the kernel may write any amount through the pointer:
//   no check can keep it inside a buffer, so the addon refuses a buffer for it rather than guess
//   a minimum that some driver exceeds. An integer or null argument is not refused for these:
//   it is a value, not memory the addon vouches for.
constexpr unsigned long kVfioGroupSetContainer = 0x3b68;  // int32 container fd
constexpr unsigned long kVfioGroupGetDeviceFd = 0x3b6a;   // NUL-terminated device name
constexpr unsigned long kVfioDeviceGetGfxDmabuf = 0x3b73; // u32 dmabuf id

struct LegacyRequest {
  unsigned long request;
  unsigned long size;  // 0: the argument is ignored
};
constexpr LegacyRequest kLegacyRequests[] = {
    {FIONREAD, sizeof(int)},  // written: the bytes ready to read
    {FIONBIO, sizeof(int)},   // read: non-blocking on/off
    {FIOASYNC, sizeof(int)},  // read: O_ASYNC on/off
    {FIOQSIZE, sizeof(loff_t)},
    {FIOCLEX, 0},
    {FIONCLEX, 0},
};

// The size of memory the kernel may access through a pointer argument of `request`, when the
// number or the table above fixes one (never for ';' requests: see CheckIoctlBuffer).
bool FixedArgumentSize(unsigned long request, unsigned long* size) {
  *size = _IOC_SIZE(request);
  if (*size != 0) return true;
  for (const LegacyRequest& known : kLegacyRequests) {
    if (known.request == request) {
      *size = known.size;
      return true;
    }
  }
  return false;
}

bool CheckIoctlBuffer(Napi::Env env, unsigned long request, const Bytes& bytes) {
  char message[200];
  unsigned long size = _IOC_SIZE(request);
  if (size == 0 && _IOC_TYPE(request) == ';') {
    if (request == kVfioGroupGetDeviceFd) {
      if (bytes.length > 0 && memchr(bytes.data, 0, bytes.length) != nullptr) return true;
      ThrowRangeError(env, "VFIO_GROUP_GET_DEVICE_FD needs a NUL-terminated device name inside the buffer");
      return false;
    }
    if (bytes.length < 4) {
      snprintf(message, sizeof message, "ioctl 0x%lx needs a buffer of at least 4 bytes, got %zu", request,
               bytes.length);
      ThrowRangeError(env, message);
      return false;
    }
    if (request == kVfioGroupSetContainer || request == kVfioDeviceGetGfxDmabuf) return true;
    uint32_t declared;
    memcpy(&declared, bytes.data, sizeof declared);
    if (declared <= bytes.length) return true;
    snprintf(message, sizeof message,
             "ioctl 0x%lx: the struct says it is %u bytes (size/argsz) but the buffer has %zu", request, declared,
             bytes.length);
    ThrowRangeError(env, message);
    return false;
  }
  if (size == 0) {
    // A detached or empty buffer reaches the kernel as a null pointer, which it cannot write through.
    if (bytes.data == nullptr) return true;
    if (!FixedArgumentSize(request, &size)) {
      snprintf(message, sizeof message,
               "ioctl 0x%lx encodes no argument size and is not one the addon knows the size of: "
               "refused, since the kernel could write past any buffer",
               request);
      ThrowTypeError(env, message);
      return false;
    }
  }
  if (bytes.length >= size) return true;
  snprintf(message, sizeof message, "ioctl 0x%lx needs a buffer of %lu bytes, got %zu", request, size, bytes.length);
  ThrowRangeError(env, message);
  return false;
}

// An integer argument of a request known to take a pointer would be a raw address the kernel
// reads or writes: refused, so that only checked buffers reach such requests.
bool CheckIoctlInteger(Napi::Env env, unsigned long request) {
  unsigned long size;
  if (!FixedArgumentSize(request, &size) || size == 0) return true;
  char message[160];
  snprintf(message, sizeof message, "ioctl 0x%lx takes a pointer to %lu bytes: pass a buffer, not an integer", request,
           size);
  ThrowTypeError(env, message);
  return false;
}

// The syscall itself, once the arguments are known good: the result, or the errno thrown.
napi_value IssueIoctl(napi_env env, int fd, unsigned long request, unsigned long argument) {
  int result = RetryOnEintr([&] { return ioctl(fd, request, argument); });
  if (result < 0) {
    ThrowErrno(env, errno, "ioctl");
    return nullptr;
  }
  napi_value value;
  if (napi_create_int32(env, result, &value) != napi_ok) return nullptr;
  return value;
}

// The bytes of an ArrayBuffer (the struct is all of it), for both paths below.
bool GetArrayBuffer(napi_env env, napi_value value, Bytes* out) {
  void* data = nullptr;
  size_t length = 0;
  if (napi_get_arraybuffer_info(env, value, &data, &length) != napi_ok) return false;
  // A detached buffer reports length 0; its data pointer must never be used.
  out->data = length == 0 ? nullptr : static_cast<uint8_t*>(data);
  out->length = length;
  return true;
}

// ioctl(fd, request, arg) with every argument checked by the general getters, which name what is
// wrong; `arg` is an ArrayBuffer, a Buffer/TypedArray/DataView, an integer, or null/undefined.
Napi::Value Ioctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t request;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  if (!GetInteger(info, 1, "request", 0, UINT32_MAX, &request)) return Napi::Value();
  unsigned long req = static_cast<unsigned long>(request);
  Napi::Value arg = info[2];
  unsigned long argument = 0;
  Bytes bytes;
  if (arg.IsArrayBuffer() || IsByteView(arg)) {
    if (arg.IsArrayBuffer() ? !GetArrayBuffer(env, arg, &bytes) : !GetBytes(info, 2, "arg", &bytes)) {
      return Napi::Value();
    }
    if (!CheckIoctlBuffer(env, req, bytes)) return Napi::Value();
    argument = reinterpret_cast<unsigned long>(bytes.data);
  } else if (arg.IsNumber()) {
    int64_t value;
    if (!GetInteger(info, 2, "arg", -9007199254740991LL, 9007199254740991LL, &value)) return Napi::Value();
    if (!CheckIoctlInteger(env, req)) return Napi::Value();
    argument = static_cast<unsigned long>(value);
  } else if (!arg.IsNull() && !arg.IsUndefined()) {
    ThrowTypeError(env, "arg must be an ArrayBuffer, a Buffer/TypedArray/DataView, an integer or null");
    return Napi::Value();
  }
  return Napi::Value(env, IssueIoctl(env, fd, req, argument));
}

// An integer-valued number in [min, max] read with one N-API call; false, with nothing thrown,
// for any other value.
bool QuickInteger(napi_env env, napi_value value, double min, double max, int64_t* out) {
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok) return false;
  if (!(d >= min && d <= max) || std::trunc(d) != d) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

// The binding JS calls. Every typed-API call ends here, so the shape lib/sys/native-kernel.ts uses (fd,
// request, a struct in an ArrayBuffer or a byte view) is read with one N-API call per argument,
// straight from the N-API callback: under emulation (the QEMU lab) each N-API call and the
// node-addon-api wrapping cost hundreds of nanoseconds. Anything else, including every invalid
// argument, is handed to Ioctl above, which reports it.
napi_value IoctlEntry(napi_env env, napi_callback_info callback) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, callback, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  int64_t fd, request;
  Bytes bytes;
  // An ArrayBuffer first (what NativeKernel passes for a struct that fills its buffer), then any
  // byte view: napi_get_buffer_info takes every ArrayBufferView and gives its length in bytes.
  if (argc == 3 && QuickInteger(env, argv[0], 0, INT32_MAX, &fd) && QuickInteger(env, argv[1], 0, UINT32_MAX, &request)) {
    void* data = nullptr;
    size_t length = 0;
    bool found = GetArrayBuffer(env, argv[2], &bytes);
    if (!found && napi_get_buffer_info(env, argv[2], &data, &length) == napi_ok) {
      // A detached view reports length 0; its data pointer must never be used.
      bytes.data = length == 0 ? nullptr : static_cast<uint8_t*>(data);
      bytes.length = length;
      found = true;
    }
    if (found) {
      unsigned long req = static_cast<unsigned long>(request);
      if (!CheckIoctlBuffer(Napi::Env(env), req, bytes)) return nullptr;
      return IssueIoctl(env, static_cast<int>(fd), req, reinterpret_cast<unsigned long>(bytes.data));
    }
  }
  Napi::CallbackInfo info(env, callback);
  return Ioctl(info);
}

constexpr uint64_t kMaxOffset = static_cast<uint64_t>(INT64_MAX);

// pread(fd, into, offset) and pwrite(fd, from, offset): the same arguments and answer (the
// bytes moved), one direction each.
template <bool kWrite>
Napi::Value PositionalIo(const Napi::CallbackInfo& info) {
  const char* syscall = kWrite ? "pwrite" : "pread";
  int fd;
  Bytes bytes;
  uint64_t offset;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  if (!GetBytes(info, 1, kWrite ? "from" : "into", &bytes)) return Napi::Value();
  if (!GetUnsignedBigInt(info, 2, "offset", kMaxOffset, &offset)) return Napi::Value();
  ssize_t n = RetryOnEintr([&] {
    off_t at = static_cast<off_t>(offset);
    return kWrite ? pwrite(fd, bytes.data, bytes.length, at) : pread(fd, bytes.data, bytes.length, at);
  });
  if (n < 0) {
    ThrowErrno(info.Env(), errno, syscall);
    return Napi::Value();
  }
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  // Linux limits the name to 249 bytes (NAME_MAX minus the "memfd:" prefix).
  char name[250];
  int64_t flags;
  if (!GetString(info, 0, "name", name, sizeof name)) return Napi::Value();
  if (!GetInteger(info, 1, "flags", 0, UINT32_MAX, &flags)) return Napi::Value();
  int fd = memfd_create(name, static_cast<unsigned int>(flags));
  return NewFdResult(info.Env(), fd, "memfd_create");
}

Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  int fd;
  uint64_t length;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  if (!GetUnsignedBigInt(info, 1, "length", kMaxOffset, &length)) return Napi::Value();
  int result = RetryOnEintr([&] { return ftruncate(fd, static_cast<off_t>(length)); });
  if (result < 0) ThrowErrno(info.Env(), errno, "ftruncate");
  return Napi::Value();
}

Napi::Value EventfdCreate(const Napi::CallbackInfo& info) {
  int64_t initval, flags;
  if (!GetInteger(info, 0, "initval", 0, UINT32_MAX, &initval)) return Napi::Value();
  if (!GetInteger(info, 1, "flags", 0, INT32_MAX, &flags)) return Napi::Value();
  int fd = eventfd(static_cast<unsigned int>(initval), static_cast<int>(flags));
  return NewFdResult(info.Env(), fd, "eventfd");
}

// One read or write of an eventfd's 8-byte counter; false, with the errno thrown, when it fails
// (a short transfer, which an eventfd never makes, is reported as EINVAL).
bool TransferCounter(Napi::Env env, int fd, uint64_t* value, bool writing) {
  ssize_t n = RetryOnEintr([&] { return writing ? write(fd, value, sizeof *value) : read(fd, value, sizeof *value); });
  if (n < 0 || n != sizeof *value) {
    ThrowErrno(env, n < 0 ? errno : EINVAL, writing ? "write" : "read");
    return false;
  }
  return true;
}

Napi::Value EventfdRead(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  uint64_t value = 0;
  if (!TransferCounter(info.Env(), fd, &value, false)) return Napi::Value();
  return Napi::BigInt::New(info.Env(), value);
}

Napi::Value EventfdWrite(const Napi::CallbackInfo& info) {
  int fd;
  uint64_t value;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  if (!GetUnsignedBigInt(info, 1, "value", UINT64_MAX, &value)) return Napi::Value();
  TransferCounter(info.Env(), fd, &value, true);
  return Napi::Value();
}

// One ioctl repeated along a range, for commands that answer for the start of [cursor,
// cursor + remaining) with a value and how far that answer reaches (IOMMU_IOAS_NOIOMMU_GET_PA:
// a physical address and the contiguous length). Walking a physically scattered buffer makes one
// such call per page, and one crossing into the addon per call costs more than the ioctl, so
// the loop runs here. The struct's layout stays in TypeScript: it passes the struct, filled
// but for the three fields, and their byte offsets (cursor, remaining, value). Each step writes
// (cursor, value, length) to `out`, an answer whose value continues the last step's (value +
// length) extending that step instead, so `out` is the joined table the caller keeps; the walk
// stops when the range is done, `out` is full, or the kernel answers a length of 0 or past the
// range (which the caller reports). Returns the steps.
Napi::Value IoctlRuns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t request;
  Bytes command, offsets, out;
  uint64_t cursor, remaining;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  if (!GetInteger(info, 1, "request", 0, UINT32_MAX, &request)) return Napi::Value();
  if (!GetBytes(info, 2, "command", &command)) return Napi::Value();
  if (!GetBytes(info, 3, "offsets", &offsets)) return Napi::Value();
  if (!GetUnsignedBigInt(info, 4, "start", UINT64_MAX, &cursor)) return Napi::Value();
  if (!GetUnsignedBigInt(info, 5, "length", UINT64_MAX, &remaining)) return Napi::Value();
  if (!GetBytes(info, 6, "out", &out)) return Napi::Value();
  unsigned long req = static_cast<unsigned long>(request);
  if (offsets.length != 3 * sizeof(uint32_t)) {
    ThrowRangeError(env, "offsets must hold exactly three u32 byte offsets (cursor, remaining, value)");
    return Napi::Value();
  }
  uint32_t at[3];
  memcpy(at, offsets.data, sizeof at);
  for (uint32_t offset : at) {
    if (static_cast<size_t>(offset) + sizeof(uint64_t) > command.length) {
      ThrowRangeError(env, "a field offset passes the end of the command struct");
      return Napi::Value();
    }
  }
  if (!CheckIoctlBuffer(env, req, command)) return Napi::Value();
  constexpr size_t kStep = 3 * sizeof(uint64_t);
  const size_t capacity = out.length / kStep;
  size_t steps = 0;
  uint64_t zero = 0, last_value = 0, last_reach = 0;
  while (steps < capacity && remaining > 0) {
    memcpy(command.data + at[0], &cursor, sizeof cursor);
    memcpy(command.data + at[1], &remaining, sizeof remaining);
    memcpy(command.data + at[2], &zero, sizeof zero);
    if (RetryOnEintr([&] { return ioctl(fd, req, command.data); }) < 0) {
      ThrowErrno(env, errno, "ioctl");
      return Napi::Value();
    }
    uint64_t reach, value;
    memcpy(&reach, command.data + at[1], sizeof reach);
    memcpy(&value, command.data + at[2], sizeof value);
    if (reach == 0 || reach > remaining) break;
    if (steps > 0 && value == last_value + last_reach) {
      last_reach += reach;
      memcpy(out.data + (steps - 1) * kStep + 2 * sizeof(uint64_t), &last_reach, sizeof last_reach);
    } else {
      uint64_t step[3] = {cursor, value, reach};
      memcpy(out.data + steps * kStep, step, sizeof step);
      last_value = value;
      last_reach = reach;
      steps++;
    }
    cursor += reach;
    remaining -= reach;
  }
  return Napi::Number::New(env, static_cast<double>(steps));
}

}  // namespace

void RegisterFiles(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  napi_value ioctlFunction;
  if (napi_create_function(env, "ioctl", NAPI_AUTO_LENGTH, IoctlEntry, nullptr, &ioctlFunction) == napi_ok) {
    exports.Set("ioctl", Napi::Value(env, ioctlFunction));
  } else {
    Napi::Error::New(env).ThrowAsJavaScriptException();
  }
  exports.Set("ioctlRuns", Napi::Function::New(env, IoctlRuns, "ioctlRuns"));
  exports.Set("pread", Napi::Function::New(env, PositionalIo<false>, "pread"));
  exports.Set("pwrite", Napi::Function::New(env, PositionalIo<true>, "pwrite"));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
  exports.Set("ftruncate", Napi::Function::New(env, Ftruncate, "ftruncate"));
  exports.Set("eventfd", Napi::Function::New(env, EventfdCreate, "eventfd"));
  exports.Set("eventfdRead", Napi::Function::New(env, EventfdRead, "eventfdRead"));
  exports.Set("eventfdWrite", Napi::Function::New(env, EventfdWrite, "eventfdWrite"));
}

}  // namespace vfio

// AF_UNIX sockets with fd passing, which Node's net module cannot do: socket/bind/listen/accept/
// connect, sendmsg/recvmsg carrying SCM_RIGHTS, and SO_PEERCRED. Every socket is SOCK_SEQPACKET
// (message boundaries kept, so one request is one recvmsg), non-blocking and close-on-exec; the
// caller waits for readiness with waitReadable (readiness.cc, on this environment's libuv loop).
// The message format and every decision about who gets what live in TypeScript (lib/broker).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "args.h"
#include "errors.h"
#include "state.h"

namespace vfio {
namespace {

// SCM_MAX_FD in the kernel (include/net/scm.h): the most fds one message can carry.
constexpr int kMaxPassedFds = 253;

bool GetSocketPath(const Napi::CallbackInfo& info, size_t index, sockaddr_un* out, socklen_t* length) {
  memset(out, 0, sizeof *out);
  out->sun_family = AF_UNIX;
  if (!GetString(info, index, "path", out->sun_path, sizeof out->sun_path)) return false;
  *length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + strlen(out->sun_path) + 1);
  return true;
}

Napi::Value FdOrThrow(Napi::Env env, int fd, const char* syscall) {
  if (fd < 0) {
    ThrowErrno(env, errno, syscall);
    return Napi::Value();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value UnixSocket(const Napi::CallbackInfo& info) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return FdOrThrow(info.Env(), fd, "socket");
}

Napi::Value UnixSocketPair(const Napi::CallbackInfo& info) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    ThrowErrno(info.Env(), errno, "socketpair");
    return Napi::Value();
  }
  Napi::Array pair = Napi::Array::New(info.Env(), 2);
  pair.Set(0u, Napi::Number::New(info.Env(), fds[0]));
  pair.Set(1u, Napi::Number::New(info.Env(), fds[1]));
  return pair;
}

// bind + listen, or connect: the two ways a socket gets its address.
template <bool kListen>
Napi::Value Address(const Napi::CallbackInfo& info) {
  int fd;
  sockaddr_un address;
  socklen_t length;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  if (!GetSocketPath(info, 1, &address, &length)) return Napi::Value();
  const sockaddr* a = reinterpret_cast<const sockaddr*>(&address);
  if (kListen) {
    int64_t backlog;
    if (!GetInteger(info, 2, "backlog", 1, 4096, &backlog)) return Napi::Value();
    if (bind(fd, a, length) != 0) {
      ThrowErrno(info.Env(), errno, "bind");
    } else if (listen(fd, static_cast<int>(backlog)) != 0) {
      ThrowErrno(info.Env(), errno, "listen");
    }
    return Napi::Value();
  }
  int r;
  do {
    r = connect(fd, a, length);
  } while (r != 0 && errno == EINTR);
  if (r != 0) ThrowErrno(info.Env(), errno, "connect");
  return Napi::Value();
}

Napi::Value Accept(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  int client;
  do {
    client = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } while (client < 0 && errno == EINTR);
  return FdOrThrow(info.Env(), client, "accept");
}

// sendmsg(fd, bytes, SCM_RIGHTS fds): returns the bytes sent.
Napi::Value SendFds(const Napi::CallbackInfo& info) {
  int fd;
  Bytes bytes;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  if (!GetBytes(info, 1, "data", &bytes)) return Napi::Value();
  if (!info[2].IsArray()) {
    ThrowTypeError(info.Env(), "fds must be an array of fds");
    return Napi::Value();
  }
  Napi::Array list = info[2].As<Napi::Array>();
  uint32_t count = list.Length();
  if (count > kMaxPassedFds) {
    ThrowRangeError(info.Env(), "fds: one message carries at most 253 fds (SCM_MAX_FD)");
    return Napi::Value();
  }
  int passed[kMaxPassedFds];
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value v = list.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= 0x7fffffff) || d != static_cast<double>(static_cast<int>(d))) {
      ThrowRangeError(info.Env(), "fds: every element must be a non-negative int32 fd");
      return Napi::Value();
    }
    passed[i] = static_cast<int>(d);
  }
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  iovec iov{bytes.data, bytes.length};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  if (count > 0) {
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    cmsghdr* c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * count);
    memcpy(CMSG_DATA(c), passed, sizeof(int) * count);
  }
  ssize_t sent;
  do {
    sent = sendmsg(fd, &message, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    ThrowErrno(info.Env(), errno, "sendmsg");
    return Napi::Value();
  }
  return Napi::Number::New(info.Env(), static_cast<double>(sent));
}

// recvmsg(fd, into): { bytes, fds, truncated }. Received fds are close-on-exec. When the message
// or its fds did not fit (MSG_TRUNC / MSG_CTRUNC), what did arrive is still returned — the caller
// owns those fds and must close them — and `truncated` says the rest is gone.
Napi::Value RecvFds(const Napi::CallbackInfo& info) {
  int fd;
  Bytes bytes;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  if (!GetBytes(info, 1, "into", &bytes)) return Napi::Value();
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  iovec iov{bytes.data, bytes.length};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  ssize_t received;
  do {
    received = recvmsg(fd, &message, MSG_CMSG_CLOEXEC);
  } while (received < 0 && errno == EINTR);
  if (received < 0) {
    ThrowErrno(info.Env(), errno, "recvmsg");
    return Napi::Value();
  }
  Napi::Env env = info.Env();
  Napi::Array fds = Napi::Array::New(env);
  uint32_t n = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int passed;
      memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
      fds.Set(n++, Napi::Number::New(env, passed));
    }
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("bytes", Napi::Number::New(env, static_cast<double>(received)));
  result.Set("fds", fds);
  result.Set("truncated", Napi::Boolean::New(env, (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0));
  return result;
}

Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  ucred cred{};
  socklen_t length = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
    ThrowErrno(info.Env(), errno, "getsockopt");
    return Napi::Value();
  }
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("pid", Napi::Number::New(info.Env(), cred.pid));
  result.Set("uid", Napi::Number::New(info.Env(), cred.uid));
  result.Set("gid", Napi::Number::New(info.Env(), cred.gid));
  return result;
}

}  // namespace

void RegisterSockets(Napi::Env env, Napi::Object exports) {
  exports.Set("unixSocket", Napi::Function::New(env, UnixSocket, "unixSocket"));
  exports.Set("unixSocketPair", Napi::Function::New(env, UnixSocketPair, "unixSocketPair"));
  exports.Set("unixListen", Napi::Function::New(env, Address<true>, "unixListen"));
  exports.Set("unixConnect", Napi::Function::New(env, Address<false>, "unixConnect"));
  exports.Set("unixAccept", Napi::Function::New(env, Accept, "unixAccept"));
  exports.Set("sendFds", Napi::Function::New(env, SendFds, "sendFds"));
  exports.Set("recvFds", Napi::Function::New(env, RecvFds, "recvFds"));
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
}

}  // namespace vfio

// Waiting for an fd to become readable (an eventfd signalled by an interrupt) without blocking
// the event loop: a uv_poll on the loop of the calling environment, so waits work the same in
// worker threads. lib/ wraps each wait in a promise; the addon calls its callback once, through
// napi_make_callback from the loop, so Node runs the promise reactions right after it.
//
// fds belong to the process, waits to an environment. So that a close on any thread ends every
// wait on that fd, each watch is also listed in a process-wide registry. close() marks the
// watches on the file it closes and wakes their environments (uv_async), which end the waits
// on their own loop with ECANCELED. A program can also close an fd without the addon (fs.closeSync),
// and the number may then name another file: each loop checks its fds periodically, and when
// a poll fires, and ends the waits of an fd that no longer names the polled file with EBADF.
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <mutex>

#include "args.h"
#include "errors.h"
#include "state.h"

namespace vfio {
namespace {

// The registry of every environment's watches, linked through Watch::nextInProcess. A watch's
// fd, pollFd and state are set before it is listed and stay fixed while it is.
std::mutex registryMutex;
Watch* registry = nullptr;

// How often a loop checks that its watched fds still name their files: the latency with which a
// wait on an fd closed behind the addon's back fails, for at most a few syscalls per watch.
constexpr uint64_t kCheckPeriodMs = 100;

// Whether the program's `fd` still names the open file the addon's duplicate `pollFd` holds.
// kcmp compares open files exactly; where it is unavailable (no CONFIG_KCMP, seccomp), the inode
// is compared, which tells a closed or reused fd from its file except between two anonymous
// inodes of the same kind (two eventfds share one).
bool SameFile(int fd, int pollFd) {
  static std::atomic<bool> kcmpWorks{true};
  if (kcmpWorks.load(std::memory_order_relaxed)) {
    pid_t self = getpid();
    long result = syscall(SYS_kcmp, self, self, KCMP_FILE, fd, pollFd);
    if (result >= 0) return result == 0;
    if (errno == EBADF) return false;
    kcmpWorks.store(false, std::memory_order_relaxed);
  }
  struct stat a, b;
  if (fstat(fd, &a) < 0 || fstat(pollFd, &b) < 0) return false;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_rdev == b.st_rdev && a.st_mode == b.st_mode;
}

// Gives a watch its errno unless it already has one; true when this call set it.
bool MarkEnded(Watch* watch, int err) {
  int none = 0;
  return watch->endErrno.compare_exchange_strong(none, err);
}

void Unregister(Watch* watch) {
  std::lock_guard<std::mutex> lock(registryMutex);
  for (Watch** link = &registry; *link != nullptr; link = &(*link)->nextInProcess) {
    if (*link == watch) {
      *link = watch->nextInProcess;
      return;
    }
  }
}

void Unlink(State* state, Watch* watch) {
  for (Watch** link = &state->watches; *link != nullptr; link = &(*link)->next) {
    if (*link == watch) {
      *link = watch->next;
      return;
    }
  }
}

// The live watch of this environment on the file `fd` names now. A watch of `fd` that polls
// another file (the fd was closed behind the addon's back) is ended with EBADF from the loop.
Watch* FindWatch(State* state, int fd) {
  for (Watch* w = state->watches; w != nullptr; w = w->next) {
    if (w->fd != fd || w->endErrno.load() != 0) continue;
    if (SameFile(fd, w->pollFd)) return w;
    if (MarkEnded(w, EBADF)) uv_async_send(&state->wake);
  }
  return nullptr;
}

void OnWatchClosed(uv_handle_t* handle) {
  Watch* watch = static_cast<Watch*>(handle->data);
  State* state = watch->state;
  delete watch;
  HandleClosed(state);
}

// Stops polling and starts closing the handle; returns the waiters for the caller to settle.
Waiter* Retire(State* state, Watch* watch) {
  Waiter* waiters = watch->waiters;
  watch->waiters = nullptr;
  Unlink(state, watch);
  Unregister(watch);
  uv_poll_stop(&watch->poll);
  state->closingHandles++;
  uv_close(reinterpret_cast<uv_handle_t*>(&watch->poll), OnWatchClosed);
  // libuv is done with the number once the handle is stopped (uv_close stops it at once).
  close(watch->pollFd);
  if (state->watches == nullptr) uv_timer_stop(&state->check);
  return waiters;
}

// Calls each waiter's callback with `err` and frees it. `context` is set when called from libuv
// (no JS on the stack): napi_make_callback then drains the microtask queue after each call.
// Otherwise JS called the addon, and a callback that throws must not keep the others from being
// called: the first exception is kept in `*thrown` for the caller to rethrow.
void SettleAll(napi_env env, Waiter* waiters, int err, napi_async_context context, napi_value resource,
               napi_value* thrown) {
  napi_value argument;
  napi_create_int32(env, err, &argument);
  while (waiters != nullptr) {
    Waiter* next = waiters->next;
    napi_value callback;
    if (napi_get_reference_value(env, waiters->callback, &callback) == napi_ok && callback != nullptr) {
      napi_value result;
      if (context != nullptr) {
        napi_make_callback(env, context, resource, callback, 1, &argument, &result);
      } else if (napi_call_function(env, resource, callback, 1, &argument, &result) == napi_pending_exception) {
        napi_value exception;
        napi_get_and_clear_last_exception(env, &exception);
        if (*thrown == nullptr) *thrown = exception;
      }
    }
    napi_delete_reference(env, waiters->callback);
    delete waiters;
    waiters = next;
  }
}

// Settles `waiters` with `err` from a libuv callback of this environment's loop.
void SettleFromLoop(State* state, Waiter* waiters, int err) {
  napi_env env = state->env;
  napi_handle_scope scope;
  if (!state->environmentAlive || napi_open_handle_scope(env, &scope) != napi_ok) {
    // Not reachable while the handles are closed at teardown; freed without calling anything.
    while (waiters != nullptr) {
      Waiter* next = waiters->next;
      delete waiters;
      waiters = next;
    }
    return;
  }
  napi_value resource, name;
  napi_async_context context;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "node-vfio:waitReadable", NAPI_AUTO_LENGTH, &name);
  if (napi_async_init(env, resource, name, &context) == napi_ok) {
    SettleAll(env, waiters, err, context, resource, nullptr);
    napi_async_destroy(env, context);
  }
  napi_close_handle_scope(env, scope);
}

// A watch of this environment that got an errno. Those are ended one at a time, searching the
// list again after each: the callbacks may arm or cancel other waits.
Watch* FirstMarked(State* state) {
  Watch* marked = state->watches;
  while (marked != nullptr && marked->endErrno.load() == 0) marked = marked->next;
  return marked;
}

void EndMarked(State* state) {
  while (Watch* marked = FirstMarked(state)) {
    int err = marked->endErrno.load();
    SettleFromLoop(state, Retire(state, marked), err);
  }
}

void OnWake(uv_async_t* handle) {
  EndMarked(static_cast<State*>(handle->data));
}

void OnCheck(uv_timer_t* handle) {
  State* state = static_cast<State*>(handle->data);
  for (Watch* w = state->watches; w != nullptr; w = w->next) {
    if (w->endErrno.load() == 0 && !SameFile(w->fd, w->pollFd)) MarkEnded(w, EBADF);
  }
  EndMarked(state);
}

void OnPoll(uv_poll_t* handle, int status, int) {
  Watch* watch = static_cast<Watch*>(handle->data);
  State* state = watch->state;
  // An error status comes from epoll itself; readiness otherwise, including hang-up, which poll
  // reports as readable. Readiness of a file the fd no longer names is not the program's.
  // libuv reports POLLERR as a UV_EBADF status, but for the file still polled it is readiness:
  // a socket whose peer closed with data unread has a pending ECONNRESET (POLLIN|POLLERR|POLLHUP)
  // and may still hold messages, which the next recvmsg returns before the error. Ending the wait
  // with EBADF lost a broker's last reply (found by test/native/broker-socket.test.ts).
  if (!SameFile(watch->fd, watch->pollFd)) {
    MarkEnded(watch, EBADF);
  } else if (status < 0 && status != UV_EBADF) {
    MarkEnded(watch, -status);
  }
  int err = watch->endErrno.load();
  SettleFromLoop(state, Retire(state, watch), err);
}

void OnHandleClosed(uv_handle_t* handle) {
  HandleClosed(static_cast<State*>(handle->data));
}

// A new watch of `fd`, polling a duplicate made and listed in the registry under the registry
// lock, so that a close on another thread either sees it or happens before the duplicate.
// Null with the errno in `*err` on failure.
Watch* StartWatch(State* state, int fd, int* err) {
  Watch* watch = new (std::nothrow) Watch{};
  if (watch == nullptr) {
    *err = ENOMEM;
    return nullptr;
  }
  watch->fd = fd;
  watch->state = state;
  {
    std::lock_guard<std::mutex> lock(registryMutex);
    watch->pollFd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (watch->pollFd >= 0) {
      watch->nextInProcess = registry;
      registry = watch;
    }
  }
  if (watch->pollFd < 0) {
    *err = errno;
    delete watch;
    return nullptr;
  }
  // uv_poll_init also puts the file in non-blocking mode, which is what an eventfd read after
  // readiness wants anyway.
  int result = uv_poll_init(state->loop, &watch->poll, watch->pollFd);
  if (result == 0) {
    watch->poll.data = watch;
    result = uv_poll_start(&watch->poll, UV_READABLE, OnPoll);
    if (result != 0) {
      // The handle is initialised: it has to go through uv_close like any other.
      state->references++;
      Retire(state, watch);
    }
  } else {
    Unregister(watch);
    close(watch->pollFd);
    delete watch;
  }
  if (result != 0) {
    *err = -result;
    return nullptr;
  }
  state->references++;
  watch->next = state->watches;
  state->watches = watch;
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&state->check))) {
    uv_timer_start(&state->check, OnCheck, kCheckPeriodMs, kCheckPeriodMs);
  }
  return watch;
}

// What waitReadable and cancelWait name a wait by: the fd and the caller's token for it, any
// safe integer, kept as the double JS passed.
struct WaitKey {
  int fd;
  double token;
};

bool GetWaitKey(const Napi::CallbackInfo& info, WaitKey* out) {
  int64_t token;
  if (!GetFd(info, 0, &out->fd)) return false;
  if (!GetInteger(info, 1, "token", 0, 9007199254740991LL, &token)) return false;
  out->token = static_cast<double>(token);
  return true;
}

// waitReadable(fd, token, callback): calls callback(0) when fd is readable, or callback(errno)
// when the wait ends otherwise (ECANCELED: cancelWait, or close of the fd on any thread; EBADF:
// the fd was closed without the addon). `token` identifies this wait for cancelWait (an
// AbortSignal on the JS side).
Napi::Value WaitReadable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* state = GetState(env);
  WaitKey key;
  if (!GetWaitKey(info, &key)) return Napi::Value();
  if (!info[2].IsFunction()) {
    ThrowTypeError(env, "callback must be a function");
    return Napi::Value();
  }
  Waiter* waiter = new (std::nothrow) Waiter{};
  if (waiter == nullptr) {
    ThrowErrno(env, ENOMEM, "poll");
    return Napi::Value();
  }
  Watch* watch = FindWatch(state, key.fd);
  if (watch == nullptr) {
    int err = 0;
    watch = StartWatch(state, key.fd, &err);
    if (watch == nullptr) {
      delete waiter;
      ThrowErrno(env, err, "poll");
      return Napi::Value();
    }
  }
  if (napi_create_reference(env, info[2], 1, &waiter->callback) != napi_ok) {
    delete waiter;
    if (watch->waiters == nullptr) Retire(state, watch);
    return Napi::Value();
  }
  waiter->token = key.token;
  waiter->next = watch->waiters;
  watch->waiters = waiter;
  return Napi::Value();
}

// cancelWait(fd, token): ends that wait with ECANCELED; returns whether it was pending.
Napi::Value CancelWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* state = GetState(env);
  WaitKey key;
  if (!GetWaitKey(info, &key)) return Napi::Value();
  for (Watch* watch = state->watches; watch != nullptr; watch = watch->next) {
    if (watch->fd != key.fd) continue;
    for (Waiter** link = &watch->waiters; *link != nullptr; link = &(*link)->next) {
      Waiter* waiter = *link;
      if (waiter->token != key.token) continue;
      *link = waiter->next;
      waiter->next = nullptr;
      if (watch->waiters == nullptr) Retire(state, watch);
      napi_value thrown = nullptr;
      SettleAll(env, waiter, ECANCELED, nullptr, env.Undefined(), &thrown);
      if (thrown != nullptr) {
        napi_throw(env, thrown);
        return Napi::Value();
      }
      return Napi::Boolean::New(env, true);
    }
  }
  return Napi::Boolean::New(env, false);
}

}  // namespace

void EndMarkedNow(napi_env env, State* state) {
  napi_value undefined, thrown = nullptr;
  napi_get_undefined(env, &undefined);
  while (Watch* marked = FirstMarked(state)) {
    int err = marked->endErrno.load();
    SettleAll(env, Retire(state, marked), err, nullptr, undefined, &thrown);
  }
  if (thrown != nullptr) napi_throw(env, thrown);
}

int CloseCancellingWaits(int fd) {
  std::lock_guard<std::mutex> lock(registryMutex);
  for (Watch* w = registry; w != nullptr; w = w->nextInProcess) {
    // The addon's own duplicates are not the program's to close: libuv is polling them.
    if (w->pollFd == fd) return EBADF;
  }
  for (Watch* w = registry; w != nullptr; w = w->nextInProcess) {
    if (w->fd == fd && SameFile(fd, w->pollFd) && MarkEnded(w, ECANCELED)) uv_async_send(&w->state->wake);
  }
  // Still under the lock: a wait armed on another thread polls either this file (and was marked
  // above) or whatever the number names after the close. Linux releases the fd even when close
  // reports EINTR, so it is never retried.
  if (close(fd) < 0 && errno != EINTR) return errno;
  return 0;
}

int InitReadiness(State* state) {
  int err = uv_async_init(state->loop, &state->wake, OnWake);
  if (err != 0) return err;
  uv_timer_init(state->loop, &state->check);
  state->wake.data = state;
  state->check.data = state;
  // Neither keeps the loop alive: a pending wait does, through its poll handle.
  uv_unref(reinterpret_cast<uv_handle_t*>(&state->wake));
  uv_unref(reinterpret_cast<uv_handle_t*>(&state->check));
  state->references += 2;
  return 0;
}

void CloseReadiness(State* state) {
  while (state->watches != nullptr) {
    Waiter* waiters = Retire(state, state->watches);
    // JS can no longer run: the callbacks are released without being called.
    while (waiters != nullptr) {
      Waiter* next = waiters->next;
      napi_delete_reference(state->env, waiters->callback);
      delete waiters;
      waiters = next;
    }
  }
  state->closingHandles += 2;
  uv_close(reinterpret_cast<uv_handle_t*>(&state->wake), OnHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&state->check), OnHandleClosed);
}

void HandleClosed(State* state) {
  state->closingHandles--;
  if (state->closingHandles == 0 && state->cleanupHook != nullptr) {
    napi_async_cleanup_hook_handle hook = state->cleanupHook;
    state->cleanupHook = nullptr;
    napi_remove_async_cleanup_hook(hook);
  }
  Release(state);
}

void RegisterReadiness(Napi::Env env, Napi::Object exports) {
  exports.Set("waitReadable", Napi::Function::New(env, WaitReadable, "waitReadable"));
  exports.Set("cancelWait", Napi::Function::New(env, CancelWait, "cancelWait"));
}

}  // namespace vfio

// Waiting for an fd to become readable (an eventfd signalled by an interrupt) without blocking
// the event loop: a uv_poll on the loop of the calling environment, so waits work the same in
// worker threads. The promise settles from a libuv callback, so it is settled inside a callback
// scope: that is what makes Node run the promise reactions right away.
#include <uv.h>

#include <cerrno>

#include "args.h"
#include "errors.h"
#include "state.h"

namespace vfio {
namespace {

Watch* FindWatch(State* state, int fd) {
  for (Watch* w = state->watches; w != nullptr; w = w->next) {
    if (w->fd == fd) return w;
  }
  return nullptr;
}

void Unlink(State* state, Watch* watch) {
  for (Watch** link = &state->watches; *link != nullptr; link = &(*link)->next) {
    if (*link == watch) {
      *link = watch->next;
      return;
    }
  }
}

void OnWatchClosed(uv_handle_t* handle) {
  Watch* watch = static_cast<Watch*>(handle->data);
  State* state = watch->state;
  delete watch;
  state->closingWatches--;
  if (state->closingWatches == 0 && state->cleanupHook != nullptr) {
    napi_async_cleanup_hook_handle hook = state->cleanupHook;
    state->cleanupHook = nullptr;
    napi_remove_async_cleanup_hook(hook);
  }
  Release(state);
}

// Stops polling and starts closing the handle; returns the waiters for the caller to settle.
Waiter* Retire(State* state, Watch* watch) {
  Waiter* waiters = watch->waiters;
  watch->waiters = nullptr;
  Unlink(state, watch);
  uv_poll_stop(&watch->poll);
  state->closingWatches++;
  uv_close(reinterpret_cast<uv_handle_t*>(&watch->poll), OnWatchClosed);
  return waiters;
}

void Settle(napi_env env, Waiter* waiter, int err, const char* syscall) {
  if (err == 0) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, waiter->deferred, undefined);
  } else {
    napi_reject_deferred(env, waiter->deferred, ErrnoError(Napi::Env(env), err, syscall).Value());
  }
  delete waiter;
}

void SettleAll(napi_env env, Waiter* waiters, int err, const char* syscall) {
  while (waiters != nullptr) {
    Waiter* next = waiters->next;
    Settle(env, waiters, err, syscall);
    waiters = next;
  }
}

void OnPoll(uv_poll_t* handle, int status, int) {
  Watch* watch = static_cast<Watch*>(handle->data);
  State* state = watch->state;
  Waiter* waiters = Retire(state, watch);
  if (!state->environmentAlive) return;
  napi_env env = state->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value resource, name;
  napi_async_context context;
  napi_callback_scope callbackScope;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "node-vfio:waitReadable", NAPI_AUTO_LENGTH, &name);
  bool inScope = napi_async_init(env, resource, name, &context) == napi_ok;
  if (inScope && napi_open_callback_scope(env, resource, context, &callbackScope) != napi_ok) {
    napi_async_destroy(env, context);
    inScope = false;
  }
  // An error status comes from epoll itself (the fd went bad); readiness otherwise, including
  // hang-up, which poll reports as readable.
  SettleAll(env, waiters, status < 0 ? -status : 0, "poll");
  if (inScope) {
    napi_close_callback_scope(env, callbackScope);
    napi_async_destroy(env, context);
  }
  napi_close_handle_scope(env, scope);
}

// waitReadable(fd, token): a promise resolved when fd is readable. `token` identifies this wait
// for cancelWait (an AbortSignal on the JS side).
Napi::Value WaitReadable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* state = GetState(env);
  int fd;
  int64_t token;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  if (!GetInteger(info, 1, "token", 0, 9007199254740991LL, &token)) return Napi::Value();
  Waiter* waiter = new (std::nothrow) Waiter{};
  if (waiter == nullptr) {
    ThrowErrno(env, ENOMEM, "poll");
    return Napi::Value();
  }
  Watch* watch = FindWatch(state, fd);
  if (watch == nullptr) {
    watch = new (std::nothrow) Watch{};
    if (watch == nullptr) {
      delete waiter;
      ThrowErrno(env, ENOMEM, "poll");
      return Napi::Value();
    }
    // uv_poll_init also puts the fd in non-blocking mode, which is what an eventfd read after
    // readiness wants anyway.
    int err = uv_poll_init(state->loop, &watch->poll, fd);
    if (err == 0) {
      watch->poll.data = watch;
      watch->fd = fd;
      watch->state = state;
      err = uv_poll_start(&watch->poll, UV_READABLE, OnPoll);
      if (err != 0) {
        // The handle is initialised: it has to go through uv_close like any other.
        state->references++;
        state->closingWatches++;
        uv_close(reinterpret_cast<uv_handle_t*>(&watch->poll), OnWatchClosed);
      }
    } else {
      delete watch;
    }
    if (err != 0) {
      delete waiter;
      ThrowErrno(env, -err, "poll");
      return Napi::Value();
    }
    state->references++;
    watch->next = state->watches;
    state->watches = watch;
  }
  napi_value promise;
  if (napi_create_promise(env, &waiter->deferred, &promise) != napi_ok) {
    delete waiter;
    if (watch->waiters == nullptr) Retire(state, watch);
    return Napi::Value();
  }
  waiter->token = static_cast<double>(token);
  waiter->next = watch->waiters;
  watch->waiters = waiter;
  return Napi::Value(env, promise);
}

// cancelWait(fd, token): rejects that wait with ECANCELED; returns whether it was pending.
Napi::Value CancelWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* state = GetState(env);
  int fd;
  int64_t token;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  if (!GetInteger(info, 1, "token", 0, 9007199254740991LL, &token)) return Napi::Value();
  Watch* watch = FindWatch(state, fd);
  if (watch == nullptr) return Napi::Boolean::New(env, false);
  for (Waiter** link = &watch->waiters; *link != nullptr; link = &(*link)->next) {
    Waiter* waiter = *link;
    if (waiter->token != static_cast<double>(token)) continue;
    *link = waiter->next;
    if (watch->waiters == nullptr) Retire(state, watch);
    Settle(env, waiter, ECANCELED, "poll");
    return Napi::Boolean::New(env, true);
  }
  return Napi::Boolean::New(env, false);
}

}  // namespace

void CancelWatch(State* state, int fd, const char* syscall) {
  Watch* watch = FindWatch(state, fd);
  if (watch == nullptr) return;
  SettleAll(state->env, Retire(state, watch), ECANCELED, syscall);
}

void CloseAllWatches(State* state) {
  while (state->watches != nullptr) {
    Waiter* waiters = Retire(state, state->watches);
    // JS can no longer run: the promises are abandoned, only the C++ side is freed.
    while (waiters != nullptr) {
      Waiter* next = waiters->next;
      delete waiters;
      waiters = next;
    }
  }
}

void RegisterReadiness(Napi::Env env, Napi::Object exports) {
  exports.Set("waitReadable", Napi::Function::New(env, WaitReadable, "waitReadable"));
  exports.Set("cancelWait", Napi::Function::New(env, CancelWait, "cancelWait"));
}

}  // namespace vfio

// Waiting for an fd to become readable (an eventfd signalled by an interrupt) without blocking
// the event loop: a uv_poll on the loop of the calling environment, so waits work the same in
// worker threads. lib/ wraps each wait in a promise; the addon calls its callback once, through
// napi_make_callback when the poll fires, so Node runs the promise reactions right after it.
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

// Calls each waiter's callback with `err` and frees it. `context` is set when called from libuv
// (no JS on the stack): napi_make_callback then drains the microtask queue after each call.
void SettleAll(napi_env env, Waiter* waiters, int err, napi_async_context context, napi_value resource) {
  napi_value argument;
  napi_create_int32(env, err, &argument);
  while (waiters != nullptr) {
    Waiter* next = waiters->next;
    napi_value callback;
    if (napi_get_reference_value(env, waiters->callback, &callback) == napi_ok && callback != nullptr) {
      napi_value result;
      if (context != nullptr) {
        napi_make_callback(env, context, resource, callback, 1, &argument, &result);
      } else {
        napi_call_function(env, resource, callback, 1, &argument, &result);
      }
    }
    napi_delete_reference(env, waiters->callback);
    delete waiters;
    waiters = next;
  }
}

void OnPoll(uv_poll_t* handle, int status, int) {
  Watch* watch = static_cast<Watch*>(handle->data);
  State* state = watch->state;
  Waiter* waiters = Retire(state, watch);
  napi_env env = state->env;
  napi_handle_scope scope;
  if (!state->environmentAlive || napi_open_handle_scope(env, &scope) != napi_ok) {
    // Not reachable while polls are stopped at teardown; freed without calling anything.
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
    // An error status comes from epoll itself (the fd went bad); readiness otherwise, including
    // hang-up, which poll reports as readable.
    SettleAll(env, waiters, status < 0 ? -status : 0, context, resource);
    napi_async_destroy(env, context);
  }
  napi_close_handle_scope(env, scope);
}

// waitReadable(fd, token, callback): calls callback(0) when fd is readable, or callback(errno)
// when the wait ends otherwise (ECANCELED: cancelWait, or close of the fd). `token` identifies
// this wait for cancelWait (an AbortSignal on the JS side).
Napi::Value WaitReadable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* state = GetState(env);
  int fd;
  int64_t token;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  if (!GetInteger(info, 1, "token", 0, 9007199254740991LL, &token)) return Napi::Value();
  if (!info[2].IsFunction()) {
    ThrowTypeError(env, "callback must be a function");
    return Napi::Value();
  }
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
  if (napi_create_reference(env, info[2], 1, &waiter->callback) != napi_ok) {
    delete waiter;
    if (watch->waiters == nullptr) Retire(state, watch);
    return Napi::Value();
  }
  waiter->token = static_cast<double>(token);
  waiter->next = watch->waiters;
  watch->waiters = waiter;
  return Napi::Value();
}

// cancelWait(fd, token): ends that wait with ECANCELED; returns whether it was pending.
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
    waiter->next = nullptr;
    if (watch->waiters == nullptr) Retire(state, watch);
    SettleAll(env, waiter, ECANCELED, nullptr, env.Undefined());
    return Napi::Boolean::New(env, true);
  }
  return Napi::Boolean::New(env, false);
}

}  // namespace

void CancelWatch(State* state, int fd) {
  Watch* watch = FindWatch(state, fd);
  if (watch == nullptr) return;
  napi_value undefined;
  napi_get_undefined(state->env, &undefined);
  SettleAll(state->env, Retire(state, watch), ECANCELED, nullptr, undefined);
}

void CloseAllWatches(State* state) {
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
}

void RegisterReadiness(Napi::Env env, Napi::Object exports) {
  exports.Set("waitReadable", Napi::Function::New(env, WaitReadable, "waitReadable"));
  exports.Set("cancelWait", Napi::Function::New(env, CancelWait, "cancelWait"));
}

}  // namespace vfio

// Entry point of the node-vfio addon: creates the per-environment state and registers the
// bindings. Teardown of an environment (a worker ending, or the process exiting) closes the poll
// handles asynchronously (libuv requires uv_close to complete before the loop is closed) and then
// unmaps whatever the program left mapped.
#include <napi.h>
#include <unistd.h>

#include "state.h"

namespace vfio {
namespace {

void OnInstanceFinalize(Napi::Env, State* state) {
  state->environmentAlive = false;
  UnmapAll(state);
  Release(state);
}

void OnEnvironmentTeardown(napi_async_cleanup_hook_handle handle, void* data) {
  State* state = static_cast<State*>(data);
  state->cleanupHook = handle;
  CloseReadiness(state);
  // When handles are still closing, the last close callback removes the hook.
  if (state->closingHandles == 0) {
    state->cleanupHook = nullptr;
    napi_remove_async_cleanup_hook(handle);
  }
}

Napi::Value PageSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(sysconf(_SC_PAGESIZE)));
}

// Does nothing, as a plain N-API callback: the benchmarks time it as the least any call into the
// addon costs (the N-API floor under every binding), to compare with the syscall it wraps.
napi_value EmptyCall(napi_env, napi_callback_info) {
  return nullptr;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  State* state = new (std::nothrow) State{};
  if (state == nullptr) {
    Napi::Error::New(env, "node-vfio: out of memory initialising the addon").ThrowAsJavaScriptException();
    return exports;
  }
  state->env = env;
  state->freeSlot = kMaxSlots;
  state->references = 1;
  state->environmentAlive = true;
  if (napi_get_uv_event_loop(env, &state->loop) != napi_ok) {
    delete state;
    Napi::Error::New(env, "node-vfio: cannot get the event loop of this environment").ThrowAsJavaScriptException();
    return exports;
  }
  if (InitReadiness(state) != 0) {
    delete state;
    Napi::Error::New(env, "node-vfio: cannot create the wake-up handle of this environment").ThrowAsJavaScriptException();
    return exports;
  }
  env.SetInstanceData<State, OnInstanceFinalize>(state);
  napi_add_async_cleanup_hook(env, OnEnvironmentTeardown, state, nullptr);

  exports.Set("pageSize", Napi::Function::New(env, PageSize, "pageSize"));
  napi_value emptyCall;
  if (napi_create_function(env, "emptyCall", NAPI_AUTO_LENGTH, EmptyCall, nullptr, &emptyCall) != napi_ok) {
    Napi::Error::New(env).ThrowAsJavaScriptException();
    return exports;
  }
  exports.Set("emptyCall", Napi::Value(env, emptyCall));
  RegisterFiles(env, exports);
  RegisterMemory(env, exports);
  RegisterReadiness(env, exports);
  RegisterSockets(env, exports);
  return exports;
}

}  // namespace
}  // namespace vfio

// NODE_API_MODULE needs an unqualified name.
static Napi::Object InitVfioAddon(Napi::Env env, Napi::Object exports) {
  return vfio::Init(env, exports);
}

NODE_API_MODULE(vfio, InitVfioAddon)

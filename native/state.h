// Per-environment state of the addon. Each Node environment (the main thread and every worker)
// loads its own instance, so live mappings and pending waits belong to the environment that made
// them and are released when it ends. No process-wide mutable state exists.
#pragma once
#include <napi.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>

namespace vfio {

struct State;

// A live (or just unmapped) mmap. It outlives the munmap until the ArrayBuffer that tracks it is
// finalized, because that finalizer is the only place allowed to free it.
struct Region {
  uint8_t* address;
  size_t length;
  int prot;
  bool mapped;
  uint32_t slot;
  State* state;
};

// A JS wait for readability of the fd of its Watch: `callback(errno)` is called once, with 0
// when readable. A reference to a function (rather than a promise's napi_deferred) because a
// reference can be released at environment teardown, when a promise can no longer be settled.
struct Waiter {
  double token;
  napi_ref callback;
  Waiter* next;
};

// One uv_poll per fd and environment: libuv allows a single poll handle per fd in a loop, so
// every wait on the same fd shares it.
struct Watch {
  uv_poll_t poll;
  int fd;
  Waiter* waiters;
  Watch* next;
  State* state;
};

// Mapping handles are (generation << kSlotBits) | slot, so a stale handle of a reused slot never
// reaches the new mapping. Both parts stay below 2^53 so the handle is an exact JS number.
constexpr unsigned kSlotBits = 20;
constexpr uint32_t kMaxSlots = 1u << kSlotBits;

struct Slot {
  Region* region;
  uint32_t generation;
  uint32_t nextFree;
};

struct State {
  napi_env env;
  uv_loop_t* loop;
  // Live mappings, indexed by slot.
  Slot* slots;
  uint32_t slotCount;
  uint32_t slotCapacity;
  uint32_t freeSlot;  // head of the free list, kMaxSlots when empty
  // Open poll watches (including ones whose uv_close has not completed yet are NOT in this list).
  Watch* watches;
  uint32_t closingWatches;
  // Lifetime: the environment itself, each Region not yet finalized, each Watch not yet closed.
  uint32_t references;
  bool environmentAlive;
  napi_async_cleanup_hook_handle cleanupHook;
};

State* GetState(Napi::Env env);
void Release(State* state);

// Registry of mappings.
bool AddRegion(State* state, Region* region, double* handle);
Region* FindRegion(State* state, double handle);
void RemoveRegion(State* state, Region* region);

// Called while the environment is being torn down: unmap what is still mapped.
void UnmapAll(State* state);
// Stop and close every watch (pending promises are abandoned: JS cannot run any more).
void CloseAllWatches(State* state);
// Ends the waits on `fd` with ECANCELED and stops polling it; used before close(fd).
void CancelWatch(State* state, int fd);

void RegisterFiles(Napi::Env env, Napi::Object exports);
void RegisterMemory(Napi::Env env, Napi::Object exports);
void RegisterReadiness(Napi::Env env, Napi::Object exports);

}  // namespace vfio

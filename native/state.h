// Per-environment state of the addon. Each Node environment (the main thread and every worker)
// loads its own instance, so live mappings and pending waits belong to the environment that made
// them and are released when it ends. The one process-wide piece is the registry of watches
// (readiness.cc), because fds belong to the process: a close on any thread ends the waits of
// every environment on that fd.
#pragma once
#include <napi.h>
#include <uv.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace vfio {

struct State;

// A live (or just unmapped) mmap. It outlives the munmap until the JS object that tracks it (its
// ArrayBuffer, or an External when V8 cannot make a buffer that large) is finalized, because that
// finalizer is the only place allowed to free it.
struct Region {
  uint8_t* address;
  size_t length;
  int prot;
  bool mapped;
  // Whether JS got an ArrayBuffer over the bytes (otherwise the lifetime object is an External).
  bool hasBuffer;
  uint32_t slot;
  // Who still needs the struct: the finalizer of each JS object made for it, and mmap while it
  // runs. The last to let go unmaps what is still mapped and frees it.
  uint32_t owners;
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

// The waits of one environment on one file, sharing one uv_poll. The loop polls `pollFd`, the
// addon's own duplicate of the program's `fd`, so that a close of `fd` (on any thread, or behind
// the addon's back) never leaves libuv polling a closed or reused number, which aborts the
// process or watches another file.
struct Watch {
  uv_poll_t poll;
  int fd;
  int pollFd;
  // Non-zero once the waits must end with this errno (ECANCELED: fd closed; EBADF: fd no longer
  // names the file). Set by any thread, once; acted on by the owning environment's loop.
  std::atomic<int> endErrno;
  Waiter* waiters;
  Watch* next;           // in the environment's list
  Watch* nextInProcess;  // in the process-wide registry
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
  // Open poll watches (ones whose uv_close has not completed yet are NOT in this list).
  Watch* watches;
  // Woken (from any thread) when some watch of this environment got its endErrno.
  uv_async_t wake;
  // While there are watches: the periodic check that each fd still names the file polled.
  uv_timer_t check;
  // libuv handles whose uv_close has not completed yet.
  uint32_t closingHandles;
  // Lifetime: the environment itself, each Region not yet finalized, each libuv handle not yet
  // closed.
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
// Sets up the libuv handles of waiting; 0 or a libuv error.
int InitReadiness(State* state);
// At teardown: stop and close every watch (pending promises are abandoned: JS cannot run any
// more) and the handles of InitReadiness.
void CloseReadiness(State* state);
// Counts a libuv handle of `state` whose uv_close completed.
void HandleClosed(State* state);
// close(fd), marking every wait on it in every environment to end with ECANCELED (each on its
// environment's loop); 0 or the errno.
int CloseCancellingWaits(int fd);
// Ends the marked waits of this environment now, from a binding JS called (close): a callback's
// exception is rethrown after every callback was called.
void EndMarkedNow(napi_env env, State* state);

void RegisterFiles(Napi::Env env, Napi::Object exports);
void RegisterMemory(Napi::Env env, Napi::Object exports);
void RegisterReadiness(Napi::Env env, Napi::Object exports);
void RegisterSockets(Napi::Env env, Napi::Object exports);

}  // namespace vfio

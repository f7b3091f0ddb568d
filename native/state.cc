#include "state.h"

#include <sys/mman.h>

#include <cstdlib>

namespace vfio {

State* GetState(Napi::Env env) {
  return env.GetInstanceData<State>();
}

void Release(State* state) {
  if (--state->references == 0) {
    free(state->slots);
    delete state;
  }
}

bool AddRegion(State* state, Region* region, double* handle) {
  uint32_t slot;
  if (state->freeSlot != kMaxSlots) {
    slot = state->freeSlot;
    state->freeSlot = state->slots[slot].nextFree;
  } else {
    if (state->slotCount == kMaxSlots) return false;
    if (state->slotCount == state->slotCapacity) {
      uint32_t capacity = state->slotCapacity ? state->slotCapacity * 2 : 64;
      if (capacity > kMaxSlots) capacity = kMaxSlots;
      void* grown = realloc(state->slots, capacity * sizeof(Slot));
      if (grown == nullptr) return false;
      state->slots = static_cast<Slot*>(grown);
      state->slotCapacity = capacity;
    }
    slot = state->slotCount++;
    state->slots[slot].generation = 0;
  }
  state->slots[slot].region = region;
  state->slots[slot].nextFree = kMaxSlots;
  region->slot = slot;
  *handle = static_cast<double>((static_cast<uint64_t>(state->slots[slot].generation) << kSlotBits) | slot);
  return true;
}

Region* FindRegion(State* state, double handle) {
  if (!(handle >= 0 && handle < 9007199254740992.0)) return nullptr;
  uint64_t h = static_cast<uint64_t>(handle);
  if (static_cast<double>(h) != handle) return nullptr;
  uint32_t slot = static_cast<uint32_t>(h & (kMaxSlots - 1));
  uint64_t generation = h >> kSlotBits;
  if (slot >= state->slotCount) return nullptr;
  Slot& s = state->slots[slot];
  if (s.region == nullptr || s.generation != generation) return nullptr;
  return s.region;
}

void RemoveRegion(State* state, Region* region) {
  Slot& s = state->slots[region->slot];
  s.region = nullptr;
  s.generation++;
  s.nextFree = state->freeSlot;
  state->freeSlot = region->slot;
}

void UnmapAll(State* state) {
  for (uint32_t i = 0; i < state->slotCount; i++) {
    Region* region = state->slots[i].region;
    if (region == nullptr) continue;
    munmap(region->address, region->length);
    region->mapped = false;
    RemoveRegion(state, region);
  }
}

}  // namespace vfio

/**
 * Soak on the model: 10,000 open/bind/attach/map/GET_PA/unmap/close cycles through the typed API
 * must leave the simulated kernel exactly as they found it (fds, mappings, pinned and allocated
 * frames, locked-memory charges), the JS heap where it was, and RSS within allocator noise.
 *
 * The loop yields to the event loop every 100 cycles, as any real program does: every Resource
 * holds a WeakRef to itself, and a WeakRef keeps its target alive until the current job ends, so
 * a fully synchronous loop of 10,000 sessions would keep all 10,000 object graphs (not their
 * kernel resources) until it returns.
 */
import assert from 'node:assert/strict';
import { LAB_MODES, labModelKernel } from '../../tools/fuzz/lab-model';
import type { ModelKernel } from '../../lib/model';
import { cdevOf, collectGarbage, formatSoak, soakCycle, type SoakNumbers } from './soak-cycle';

const BDF = '0000:00:03.0';
const CYCLES = 10_000;
const WARM_UP = 2000;
/**
 * RSS may grow by allocator high-water marks (up to ~40 MiB seen inside the full suite), not by
 * what the cycles allocate: 64 KiB of buffer each, 625 MiB if they leaked.
 */
const RSS_NOISE = 128 * 1048576;
/** The JS heap after a full collection: a leak of one small object per cycle would add several MiB. */
const HEAP_NOISE = 4 * 1048576;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function numbers(
  k: ModelKernel,
): Promise<SoakNumbers & { mappings: number; freeFrames: number; lockedPages: number; heapBytes: number }> {
  await nextTurn();
  collectGarbage();
  const memory = process.memoryUsage();
  return {
    fds: k.openFdCount,
    pinnedPages: k.locked.pinnedPages,
    rssBytes: memory.rss,
    heapBytes: memory.heapUsed,
    mappings: k.space.count,
    freeFrames: k.memory.freeFrames,
    lockedPages: k.locked.mmLockedPages + k.locked.userLockedPages,
  };
}

describe('soak: the model', function () {
  for (const mode of LAB_MODES) {
    it(`survives ${CYCLES} device sessions on the ${mode} lab model with nothing left behind`, async function () {
      this.timeout(120_000);
      const k = labModelKernel(mode);
      const cdev = cdevOf(k, BDF);
      // Warm up first, so that JIT code, caches and the allocator's high-water mark are not counted as growth.
      for (let i = 0; i < WARM_UP; i++) {
        soakCycle(k, cdev);
        if (i % 100 === 99) await nextTurn();
      }
      const before = await numbers(k);
      const started = Date.now();
      for (let i = 0; i < CYCLES; i++) {
        soakCycle(k, cdev);
        if (i % 100 === 99) await nextTurn();
      }
      const seconds = (Date.now() - started) / 1000;
      const after = await numbers(k);
      console.log(
        `      ${formatSoak(`model ${mode}`, CYCLES, before, after, seconds)}; heap ${(before.heapBytes / 1048576).toFixed(1)} → ${(after.heapBytes / 1048576).toFixed(1)} MiB; frames free ${before.freeFrames} → ${after.freeFrames}`,
      );
      assert.deepEqual(
        { fds: after.fds, pinned: after.pinnedPages, mappings: after.mappings, freeFrames: after.freeFrames, locked: after.lockedPages },
        {
          fds: before.fds,
          pinned: before.pinnedPages,
          mappings: before.mappings,
          freeFrames: before.freeFrames,
          locked: before.lockedPages,
        },
      );
      assert.ok(
        after.heapBytes - before.heapBytes < HEAP_NOISE,
        `the JS heap grew by ${((after.heapBytes - before.heapBytes) / 1048576).toFixed(1)} MiB`,
      );
      assert.ok(
        after.rssBytes - before.rssBytes < RSS_NOISE,
        `RSS grew by ${((after.rssBytes - before.rssBytes) / 1048576).toFixed(1)} MiB`,
      );
    });
  }
});

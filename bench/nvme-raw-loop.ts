/**
 * bench/c/nvme-io.c's loop written line for line in TypeScript, with no driver: the same ring
 * layout, the same stores into the submission entry, the same phase-tag poll, one clock read per
 * pass and per completion, doorbells through the mapped BAR (the tail once per pass for what the
 * pass submitted, then the head). Run on the same queue pair as the C program, it separates what
 * JavaScript itself costs on this machine (this loop against C) from what the driver adds on top
 * (the driver's rows against this loop).
 */
import { performance } from 'node:perf_hooks';
import type { Mmio } from '../lib';
import { randomLbas } from './nvme-lbas';

export interface RawLoopLayout {
  /** BAR0 of the controller, mapped. */
  readonly bar: Mmio;
  /** The queue pair's memory: SQ at `sqOffset`, CQ at `cqOffset`. */
  readonly memory: Uint8Array;
  readonly sqOffset: number;
  readonly cqOffset: number;
  /** Entries per ring. */
  readonly depth: number;
  readonly queueId: number;
  /** Bus address of each 4 KiB data slot (below 2^53). */
  readonly slots: readonly number[];
}

export interface RawLoopResult {
  readonly iops: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly failures: number;
}

/** Keeps `queueDepth` 4 KiB I/Os at random LBAs in flight for `seconds` (after C's warm-up), synchronously, as the C program does. */
export function rawLoop(layout: RawLoopLayout, blocks: number, queueDepth: number, write: boolean, seconds: number): RawLoopResult {
  const { bar, depth } = layout;
  const sq = new DataView(layout.memory.buffer, layout.memory.byteOffset + layout.sqOffset, depth * 64);
  const cq = new DataView(layout.memory.buffer, layout.memory.byteOffset + layout.cqOffset, depth * 16);
  const sqDoorbell = 0x1000 + 2 * layout.queueId * 4;
  const cqDoorbell = 0x1000 + (2 * layout.queueId + 1) * 4;
  const slotLow = new Uint32Array(layout.slots.map((a) => a >>> 0));
  const slotHigh = new Uint32Array(layout.slots.map((a) => Math.floor(a / 0x1_0000_0000)));
  const maxSamples = 4_000_000;
  const latency = new Float64Array(maxSamples);
  const started = new Float64Array(64);
  let tail = 0,
    head = 0,
    phase = 1,
    inFlight = 0,
    completed = 0,
    failures = 0,
    samples = 0;
  const nextLba = randomLbas(blocks, 8);
  const opcode = write ? 0x01 : 0x02;
  const submit = (slot: number, at: number, ring: boolean) => {
    const lba = nextLba();
    const e = tail * 64;
    sq.setUint32(e, (opcode | (slot << 16)) >>> 0, true);
    sq.setUint32(e + 4, 1, true);
    for (let w = 8; w < 24; w += 4) sq.setUint32(e + w, 0, true);
    sq.setUint32(e + 24, slotLow[slot]!, true);
    sq.setUint32(e + 28, slotHigh[slot]!, true);
    sq.setUint32(e + 32, 0, true);
    sq.setUint32(e + 36, 0, true);
    sq.setUint32(e + 40, lba >>> 0, true);
    sq.setUint32(e + 44, Math.floor(lba / 0x1_0000_0000), true);
    sq.setUint32(e + 48, 7, true);
    sq.setUint32(e + 52, 0, true);
    sq.setUint32(e + 56, 0, true);
    sq.setUint32(e + 60, 0, true);
    started[slot] = at;
    tail = tail + 1 === depth ? 0 : tail + 1;
    if (ring) bar.write32(sqDoorbell, tail);
    inFlight++;
  };
  for (let slot = 0; slot < queueDepth; slot++) submit(slot, performance.now(), true);
  const t0 = performance.now();
  const warmUntil = t0 + Math.min(seconds * 200, 500);
  let measuring = false,
    stopping = false,
    measureStart = 0,
    end = 0,
    lastCompletion = t0;
  for (;;) {
    const t = performance.now();
    if (t - lastCompletion > 5000)
      throw new Error(`raw loop: no completion for 5 s (${inFlight} in flight, SQ tail ${tail}, CQ head ${head})`);
    if (!measuring && !stopping && t >= warmUntil) {
      measuring = true;
      measureStart = t;
      end = t + seconds * 1000;
    }
    if (measuring && t >= end) {
      measuring = false;
      stopping = true;
      end = t;
    }
    let found = false,
      submitted = false;
    for (;;) {
      const c = head * 16;
      const status = cq.getUint16(c + 14, true);
      if ((status & 1) !== phase) break;
      const cid = cq.getUint16(c + 12, true);
      head++;
      if (head === depth) {
        head = 0;
        phase ^= 1;
      }
      found = true;
      lastCompletion = t;
      inFlight--;
      if (status >>> 1) failures++;
      const seen = performance.now();
      if (measuring) {
        completed++;
        if (samples < maxSamples) latency[samples++] = seen - started[cid]!;
      }
      if (!stopping) {
        submit(cid, seen, false);
        submitted = true;
      }
    }
    if (submitted) bar.write32(sqDoorbell, tail);
    if (found) bar.write32(cqDoorbell, head);
    if (stopping && inFlight === 0) break;
  }
  const sorted = latency.subarray(0, samples).sort();
  const at = (q: number) => (sorted[Math.min(samples - 1, Math.floor(q * samples))] ?? NaN) * 1000;
  return { iops: completed / ((end - measureStart) / 1000), p50Us: at(0.5), p99Us: at(0.99), failures };
}

/**
 * The tracer's hot paths write JSON by hand (lib/trace/line-encoder.ts): what they write must be
 * exactly what the object path writes — every struct the trace decodes, at every length, against
 * decodeStruct + JSON.stringify; integers and hex against Number and BigInt formatting; and a
 * session traced to a file against the same session traced to memory.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createModelKernel } from '../../lib/model';
import { JsonlTraceWriter, MemoryTraceSink, readTrace, traceKernel } from '../../lib/trace';
import { LineEncoder } from '../../lib/trace/line-encoder';
import { PLAIN_CODEC, decodeStruct, requestLayout, structRequestNames, writeStructJson } from '../../lib/trace/ioctl-layouts';
import { Prng } from '../../lib/model/memory/prng';

function text(enc: LineEncoder): string {
  return enc.text();
}

describe('trace line encoder (the hot path) = the object path', () => {
  it('every decoded struct, at every length, with random bytes, is what decodeStruct + JSON.stringify give', () => {
    const rng = new Prng(7);
    let checked = 0;
    for (const name of structRequestNames()) {
      const layout = requestLayout(name)!;
      for (let round = 0; round < 20; round++) {
        const bytes = new Uint8Array(layout.struct.size);
        for (let k = 0; k < bytes.length; k++) bytes[k] = rng.below(round % 4 === 0 ? 2 : 256);
        for (const length of [layout.struct.size, layout.struct.size - 1, 8, 4, 0]) {
          if (length < 0) continue;
          const view = bytes.subarray(0, length);
          const enc = new LineEncoder();
          writeStructJson(enc, layout, view, length, (e, lo, hi) => {
            e.byte(0x22);
            e.hex64(lo, hi);
            e.byte(0x22);
          });
          enc.byte(0x7d);
          assert.deepEqual(JSON.parse(text(enc)), decodeStruct(layout, view, PLAIN_CODEC), `${name} at ${length} bytes`);
          checked++;
        }
      }
    }
    assert.ok(checked > 1000);
  });

  it('writes integers and hex as Number and BigInt format them, and any string as JSON', () => {
    const enc = new LineEncoder();
    const ints = [0, 1, 9, 10, 99, 100, 12345, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1, -1, -10, -(2 ** 31), -123456789];
    for (const v of ints) {
      enc.reset();
      enc.int(v);
      assert.equal(enc.text(), String(v));
    }
    for (const v of [
      0n,
      1n,
      0xfn,
      0x10n,
      0xffff_ffffn,
      0x1_0000_0000n,
      0x1234_5678_9abc_def0n,
      0xffff_ffff_ffff_ffffn,
      0xdead_0000_0000n,
    ]) {
      enc.reset();
      enc.hex64(Number(v & 0xffff_ffffn), Number(v >> 32n));
      assert.equal(enc.text(), `0x${v.toString(16)}`);
      enc.reset();
      enc.hex(v);
      assert.equal(enc.text(), `0x${v.toString(16)}`);
    }
    for (const s of ['plain', 'quote " and \\ backslash', 'newline\n', 'ünïcödé ✓', '\u0001']) {
      enc.reset();
      enc.string(s);
      assert.equal(JSON.parse(enc.text()), s);
    }
  });

  it('a session traced to a file holds the very records the same session traced to memory holds', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vfio-enc-')), 'f.jsonl');
    const memory = new MemoryTraceSink();
    const sessions = [
      traceKernel(createModelKernel('linux-7.3-iommu'), new JsonlTraceWriter(file, 256)),
      traceKernel(createModelKernel('linux-7.3-iommu'), memory),
    ];
    const { openDevice } = await import('../../lib');
    for (const k of sessions) {
      {
        using dev = openDevice('0000:00:03.0', { kernel: k });
        dev.region(0);
      }
      k.endTrace();
    }
    const strip = (rs: readonly object[]) => rs.map((r) => ({ ...r, t: 0 }));
    const fromFile = readTrace(file).records;
    assert.ok(fromFile.length > 10);
    assert.deepEqual(strip(fromFile), strip(memory.records));
  });
});

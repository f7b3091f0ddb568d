/**
 * Differential fuzzing, the part that needs no QEMU: seeded programs run on the model of both lab
 * machines and must obey the invariants and leave nothing behind; the recorded real-kernel traces
 * in lab-traces/ must be reproduced answer for answer; and the machinery itself (generator,
 * invariant checker, shrinker, differential) is shown to catch what it is meant to catch.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { generateProgram } from '../../tools/fuzz/generator';
import { runProgram } from '../../tools/fuzz/program-runner';
import { checkInvariants } from '../../tools/fuzz/invariants';
import { shrink } from '../../tools/fuzz/shrink';
import { differential, formatDivergence } from '../../tools/fuzz/differential';
import { runCampaign, formatCampaign } from '../../tools/fuzz/campaign';
import { parseLabTraceFile, replayLabTraces } from '../../tools/fuzz/corpus';
import { LAB_MODES, labModelKernel, type LabMode } from '../../tools/fuzz/lab-model';
import { probeDeviceFeatures } from '../../tools/fuzz/device-features';
import type { FuzzProgram } from '../../tools/fuzz/program';
import type { Trace, TraceEntry } from '../../tools/fuzz/trace';

const BDF = '0000:00:03.0';
const PAGE = 4096;
const SEEDS_PER_MODE = 60;
const CORPUS_DIR = path.resolve(__dirname, '../../../test/reliability/lab-traces');

function onModel(mode: LabMode) {
  return (program: FuzzProgram): Trace => runProgram(labModelKernel(mode), program, { bdf: BDF });
}

describe('fuzz: generator', function () {
  it('names one program per seed, the same on every call', function () {
    assert.deepEqual(generateProgram(7), generateProgram(7));
    assert.notDeepEqual(generateProgram(7).ops, generateProgram(8).ops);
    assert.equal(generateProgram(7, { length: 10 }).ops.length <= 14, true);
  });

  it('reaches every operation kind and both the success and the error paths on the model', function () {
    const results = new Map<string, Set<string>>();
    for (let seed = 1; seed <= 40; seed++) {
      const program = generateProgram(seed);
      runProgram(labModelKernel('noiommu'), program, { bdf: BDF }).entries.forEach((e) => {
        if (!results.has(e.op)) results.set(e.op, new Set());
        results.get(e.op)!.add(e.result);
      });
    }
    const kinds = [
      'ioas-alloc',
      'destroy',
      'map',
      'map-file',
      'option',
      'hw-info',
      'copy',
      'unmap',
      'unmap-span',
      'unmap-all',
      'unmap-range',
      'get-pa',
      'iova-ranges',
      'allow-iovas',
      'device-open',
      'device-close',
      'bind',
      'attach',
      'detach',
      'hwpt-alloc',
      'irq-enable',
      'irq-disable',
      'irq-trigger',
      'irq-mask',
    ];
    for (const k of kinds) assert.ok(results.has(k), `no ${k} in 40 programs`);
    for (const k of ['map', 'map-file', 'copy', 'unmap', 'get-pa', 'attach', 'hwpt-alloc', 'irq-enable', 'option']) {
      const seen = results.get(k)!;
      assert.ok(
        seen.has('ok') && [...seen].some((r) => r.startsWith('E')),
        `${k} should both succeed and fail, saw ${[...seen].join(', ')}`,
      );
    }
  });
});

describe('fuzz: device operations on the nvme and multi lab models', function () {
  const machines = [
    ['nvme', '0000:00:04.0'],
    ['multi', '0000:00:05.0'],
    ['multi', '0000:01:00.0'],
  ] as const;
  for (const [machine, bdf] of machines) {
    it(`fits MSI-X, config, region and reset operations to ${machine} ${bdf}, reaching both outcomes, breaking no rule and leaking nothing`, function () {
      this.timeout(120_000);
      const kernel = labModelKernel('iommu', bdf, 'group', machine);
      const device = probeDeviceFeatures(kernel, bdf);
      const results = new Map<string, Set<string>>();
      const result = runCampaign({
        seeds: Array.from({ length: 30 }, (_, i) => 1 + i),
        pageSize: PAGE,
        device,
        model: {
          label: `model (${machine})`,
          run: (p) => {
            const trace = runProgram(kernel, p, { bdf });
            for (const e of trace.entries) (results.get(e.op) ?? results.set(e.op, new Set()).get(e.op)!).add(e.result);
            return trace;
          },
        },
      });
      assert.equal(formatCampaign(result), '');
      assert.equal(kernel.openFdCount, 0, 'fds left open');
      for (const k of ['irq-info', 'irq-resize', 'config-read', 'config-write', 'region-info', 'reset', 'hot-reset-info', 'hot-reset']) {
        assert.ok(results.has(k), `no ${k} in 30 programs`);
      }
      for (const k of ['irq-enable', 'irq-resize', 'region-info']) {
        const seen = results.get(k)!;
        assert.ok(
          seen.has('ok') && [...seen].some((r) => r.startsWith('E')),
          `${k} should both succeed and fail, saw ${[...seen].join(', ')}`,
        );
      }
      if (device.msixVectors > 0) {
        const msix = result.recorded.flatMap((r) => r.ops).filter((op) => 'kind' in op && op.kind === 'msix');
        assert.ok(msix.length > 0, 'no MSI-X operation for a device with MSI-X');
      }
    });
  }
});

describe('fuzz: the model against the invariants', function () {
  for (const mode of LAB_MODES) {
    it(`runs ${SEEDS_PER_MODE} seeds on the ${mode} lab model without breaking a rule or leaking`, function () {
      this.timeout(120_000);
      const kernel = labModelKernel(mode);
      const freeBefore = kernel.memory.freeFrames;
      const mappingsBefore = kernel.space.count;
      const result = runCampaign({
        seeds: Array.from({ length: SEEDS_PER_MODE }, (_, i) => 1000 + i),
        pageSize: PAGE,
        // One kernel for every seed: what one run leaves behind shows up in the next one and below.
        model: { label: `model (${mode})`, run: (p) => runProgram(kernel, p, { bdf: BDF }) },
      });
      assert.equal(formatCampaign(result), '');
      assert.equal(kernel.openFdCount, 0, 'fds left open');
      assert.equal(kernel.space.count, mappingsBefore, 'mappings left behind');
      assert.equal(kernel.memory.freeFrames, freeBefore, 'frames not given back');
      assert.equal(kernel.locked.pinnedPages, 0, 'pages still pinned');
    });
  }
});

describe('fuzz: the invariant checker', function () {
  // A small hand-written program with one of each answer the tampering below needs.
  const program: FuzzProgram = {
    ops: [
      { op: 'ioas-alloc' },
      { op: 'device-open', device: 0 },
      { op: 'bind', device: 0 },
      { op: 'attach', device: 0, target: { kind: 'ioas', slot: 0 } },
      { op: 'map', ioas: 0, userPage: 16, pages: 4, byteOffset: 0, lengthAdjust: 0, readable: true, writable: true },
      { op: 'map', ioas: 0, userPage: 64, pages: 2, byteOffset: 0, lengthAdjust: 0, readable: true, writable: true },
      { op: 'get-pa', area: 0, offset: 0x1010, cap: '0x1000' },
      { op: 'iova-ranges', ioas: 0 },
      { op: 'unmap', area: 1, startPages: 0, endPages: 0 },
    ],
  };
  const trace = runProgram(labModelKernel('noiommu'), program, { bdf: BDF });

  function tamper(index: number, change: (e: TraceEntry) => TraceEntry): Trace {
    return { ...trace, entries: trace.entries.map((e, i) => (i === index ? change(e) : e)) };
  }
  function rules(t: Trace): string[] {
    return checkInvariants(program, t, { pageSize: PAGE }).map((v) => v.rule);
  }

  it('accepts the untouched trace', function () {
    assert.deepEqual(
      trace.entries.map((e) => e.result),
      ['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok'],
    );
    assert.deepEqual(rules(trace), []);
  });

  it('catches an unmap that reports the wrong length', function () {
    assert.deepEqual(rules(tamper(8, (e) => ({ ...e, out: { length: '0x1000' } }))), ['unmap-length']);
  });

  it('catches an unmap that fails although the range holds whole areas', function () {
    assert.deepEqual(rules(tamper(8, (e) => ({ op: e.op, result: 'ENOENT', args: e.args! }))), ['unmap-enoent']);
  });

  it('catches a GET_PA length the page walk cannot produce and a wrong page offset', function () {
    assert.deepEqual(rules(tamper(6, (e) => ({ ...e, out: { ...e.out, offset: 5 }, props: { length: '0x7' } }))), [
      'get-pa-offset',
      'get-pa-length',
    ]);
  });

  it('catches a GET_PA that misses a live area', function () {
    assert.deepEqual(rules(tamper(6, (e) => ({ op: e.op, result: 'ENOENT', args: e.args! }))), ['get-pa-missing']);
  });

  it('catches an automatic IOVA that overlaps a live area or loses its alignment', function () {
    const first = trace.entries[4]!.out!['iova']!;
    assert.ok(rules(tamper(5, (e) => ({ ...e, out: { ...e.out, iova: first } }))).includes('area-overlap'));
    assert.ok(rules(tamper(5, (e) => ({ ...e, out: { ...e.out, iova: '0x7ff000' } }))).includes('auto-iova-alignment'));
  });

  it('catches an operation that threw instead of failing with an errno', function () {
    assert.deepEqual(rules(tamper(7, (e) => ({ op: e.op, result: 'throw: TypeError: boom' }))), ['no-throw']);
  });
});

describe('fuzz: shrinking and differential runs', function () {
  it('ddmin finds the two items a failure needs', function () {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const { items: found } = shrink(items, (c) => c.includes(13) && c.includes(37));
    assert.deepEqual(found, [13, 37]);
  });

  it('reduces a seeded difference to a short program that still shows it', function () {
    // A stand-in "model" that gets one rule wrong: unmapping a single-page area answers EBUSY.
    const real = onModel('noiommu');
    const wrong = (program: FuzzProgram): Trace => {
      const t = real(program);
      return {
        ...t,
        entries: t.entries.map((e) =>
          e.op === 'unmap' && e.result === 'ok' && e.out?.['length'] === '0x1000' ? { op: e.op, result: 'EBUSY' } : e,
        ),
      };
    };
    let seed = 1;
    let found = null;
    for (; seed < 200 && !found; seed++) found = differential(generateProgram(seed), real, wrong);
    assert.ok(found, 'no seed among 200 unmaps a single page');
    assert.ok(found.shrunk.ops.length <= 4, `the reproducer should be tiny:\n${formatDivergence(found)}`);
    assert.ok(
      found.shrunk.ops.some((o) => o.op === 'map' || o.op === 'map-file'),
      'the reproducer maps something',
    );
    assert.equal(found.shrunkDifference.actual?.result, 'EBUSY');
  });
});

describe('fuzz: recorded real-kernel traces', function () {
  const files = fs.existsSync(CORPUS_DIR)
    ? fs
        .readdirSync(CORPUS_DIR)
        .filter((f) => f.endsWith('.json'))
        .sort()
    : [];

  it('has a recorded lab trace for each mode', function () {
    const modes = files.map((f) => parseLabTraceFile(fs.readFileSync(path.join(CORPUS_DIR, f), 'utf8'), f).mode);
    for (const mode of LAB_MODES) assert.ok(modes.includes(mode), `no lab trace for ${mode} in ${CORPUS_DIR}`);
  });

  it('reports a recorded answer the model does not give', function () {
    const name = files[0];
    if (!name) {
      console.log(`      skipped: no recorded lab trace in ${CORPUS_DIR} to tamper with`);
      this.skip();
    }
    const file = parseLabTraceFile(fs.readFileSync(path.join(CORPUS_DIR, name!), 'utf8'), name!);
    const run = file.runs.find((r) => r.entries.some((e) => e.op === 'map' && e.result === 'ok'))!;
    const tampered = {
      ...run,
      entries: run.entries.map((e) => (e.op === 'map' && e.result === 'ok' ? { ...e, out: { ...e.out, iova: '0x123000' } } : e)),
    };
    const mismatches = replayLabTraces({ ...file, runs: [tampered] }, (p) =>
      runProgram(labModelKernel(file.mode, file.bdf, file.labKernel, file.machine ?? 'edu'), p, { bdf: file.bdf }),
    );
    assert.equal(mismatches.length, 1);
    assert.match(mismatches[0]!.report, /map: output/);
  });

  for (const name of files) {
    it(`the model answers as Linux did in ${name}`, function () {
      this.timeout(60_000);
      const file = parseLabTraceFile(fs.readFileSync(path.join(CORPUS_DIR, name), 'utf8'), name);
      const mismatches = replayLabTraces(file, (p) =>
        runProgram(labModelKernel(file.mode, file.bdf, file.labKernel, file.machine ?? 'edu'), p, { bdf: file.bdf }),
      );
      console.log(
        `      ${file.runs.length} programs recorded on Linux ${file.kernelRelease} (${file.mode}, ${file.labKernel}) at ${file.recordedAt}: ${mismatches.length} differ`,
      );
      assert.equal(mismatches.map((m) => m.report).join('\n\n'), '');
    });
  }
});

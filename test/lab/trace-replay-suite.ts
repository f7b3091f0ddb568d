/**
 * The proof of `vfio trace` on real hardware: an example driver, unchanged, runs on the real
 * kernel of the lab guest with NODE_VFIO_TRACE (and MMIO tracing) on; its trace then replays on
 * the model of this very lab machine (test/trace/lab-trace-profiles.ts: the lab-<machine>-<mode>
 * preset, every PCI function the guest has) with 0 divergences, and altering one recorded MMIO
 * read value or one recorded ioctl answer is caught at exactly that call. Each trace is copied to
 * the run's results directory as traces/lab-<machine>-<mode>-<kernel>.jsonl, to be checked in
 * under test/trace/fixtures, where test/trace/lab-traces.test.ts replays it on every build.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { formatDivergence, readTrace, replayTrace, type TraceFile, type TraceRecord } from '../../lib/trace';
import { labReplaySetup, labTraceFileName } from '../trace/lab-trace-profiles';
import { requireLab, type LabEnvironment } from './lab-environment';
import { nativeKernel } from '../../lib/sys/native-kernel';
import { openDevice } from '../../lib/vfio/open-device';

const run = promisify(execFile);

/** How each example is started on the lab's device. */
const EXAMPLES = {
  edu: { main: path.resolve(__dirname, '../../examples/edu/main.js'), args: (bdf: string) => [`--bdf=${bdf}`] },
  nvme: { main: path.resolve(__dirname, '../../examples/nvme/main.js'), args: (bdf: string) => [bdf] },
} as const;

function altered(trace: TraceFile, index: number, change: (r: Record<string, unknown>) => void): TraceFile {
  const records = trace.records.map((r) => JSON.parse(JSON.stringify(r)) as TraceRecord);
  change(records[index] as unknown as Record<string, unknown>);
  return { header: trace.header, records };
}

/**
 * edu has no reset, and its DMA command register ignores writes without the start bit, so the
 * lab's earlier suites leave their last transfer's direction and interrupt bits there while the
 * model starts from power-on (0). A one-byte transfer from RAM with no flags but start leaves the
 * register at 0 again: the traced session then starts from the state the model replays it from.
 */
async function resetEduDmaCommand(bdf: string): Promise<void> {
  const device = openDevice(bdf, { kernel: nativeKernel() });
  try {
    const bar = device.bar(0).mmap();
    using buffer = device.allocateDma(4096);
    bar.write64(EDU_DMA_SOURCE, buffer.dmaAddress(0) as bigint);
    bar.write64(EDU_DMA_DESTINATION, EDU_BUFFER);
    bar.write64(EDU_DMA_COUNT, 1n);
    bar.write32(EDU_DMA_COMMAND, EDU_DMA_START);
    // QEMU's edu finishes a transfer on a 100 ms timer.
    for (let i = 0; i < 100 && bar.read32(EDU_DMA_COMMAND) !== 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(bar.read32(EDU_DMA_COMMAND), 0, "edu's DMA command register is back at its power-on 0");
  } finally {
    device.close();
  }
}

const EDU_DMA_SOURCE = 0x80;
const EDU_DMA_DESTINATION = 0x88;
const EDU_DMA_COUNT = 0x90;
const EDU_DMA_COMMAND = 0x98;
const EDU_DMA_START = 0x1;
/** edu's own 4 KiB buffer, as the device addresses it. */
const EDU_BUFFER = 0x40000n;

export function traceReplaySuite(machine: 'edu' | 'nvme'): void {
  describe(`lab: the ${machine} example traced on the real kernel replays on the model of this lab machine`, function () {
    this.timeout(600_000);
    let lab: LabEnvironment;
    let trace: TraceFile;

    before(async function () {
      lab = requireLab(this);
      if (lab.machine !== machine) {
        console.log(`    skipped: this is the lab's '${lab.machine}' machine; the ${machine} example runs on --machine ${machine}`);
        this.skip();
      }
      if (machine === 'edu') await resetEduDmaCommand(lab.bdf);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-trace-'));
      const file = path.join(dir, 'trace.jsonl');
      const example = EXAMPLES[machine];
      const { stdout, stderr } = await run(process.execPath, [example.main, ...example.args(lab.bdf)], {
        timeout: 300_000,
        // The data cap raised so that every byte the driver puts in DMA memory (NVMe: whole blocks) is kept for replay.
        env: { ...process.env, NODE_VFIO_TRACE: file, NODE_VFIO_TRACE_MMIO: '1', NODE_VFIO_TRACE_DATA_CAP: String(1 << 20) },
      });
      console.log(
        (stdout + stderr)
          .split('\n')
          .map((l) => `      ${l}`)
          .join('\n'),
      );
      assert.match(stdout + stderr, /all checks passed/);
      const keep = path.join(lab.resultsDir, 'traces');
      fs.mkdirSync(keep, { recursive: true });
      const kept = path.join(keep, labTraceFileName(machine, lab.mode, lab.kernel));
      fs.copyFileSync(file, kept);
      console.log(`      trace: ${kept}`);
      trace = readTrace(file);
    });

    /** The model of this lab machine, its devices on a clock that replay moves to the recorded times. */
    const replayOnModel = (t: TraceFile) => {
      const { kernel, options } = labReplaySetup(machine, lab.mode, lab.kernel);
      return replayTrace(t, kernel, options);
    };

    it('records the session on the real kernel: ioctls by name, MMIO, interrupts, and nothing left to a later kernel', () => {
      assert.equal(trace.header.kind, 'native');
      assert.equal(trace.header.mmio, true);
      const calls = new Set(trace.records.map((r) => r.call));
      for (const c of ['open', 'ioctl', 'mmap', 'mmio-read', 'mmio-write', 'eventfd', 'memory', 'close'] as const)
        assert.ok(calls.has(c), `records ${c}`);
      assert.ok(
        trace.records.every((r) => r.call !== 'ioctl' || !/^ioctl 0x/.test(r.req!)),
        'every ioctl has its name',
      );
    });

    it(`replays on the model of the lab's ${machine} machine with 0 divergences`, async () => {
      const r = await replayOnModel(trace);
      assert.equal(r.divergence, null, r.divergence ? formatDivergence(r.divergence).join('\n') : '');
      assert.equal(r.replayed, trace.records.length);
    });

    it('an altered MMIO read value is the first divergence, at its call index', async () => {
      // A read that is not part of a poll (a poll may legitimately take more or fewer reads, and
      // one with interrupt waits between its reads may end sooner on the model).
      const rs = trace.records;
      const isWait = (r: TraceRecord | undefined) => r?.call === 'eventfd-read' || r?.call === 'wait';
      const sameRegister = (a: TraceRecord | undefined, b: TraceRecord) => a?.call === 'mmio-read' && a.args?.offset === b.args?.offset;
      const neighbour = (k: number, step: 1 | -1) => {
        let n = k + step;
        while (isWait(rs[n])) n += step;
        return rs[n];
      };
      const read = rs.find(
        (r, k) =>
          r.call === 'mmio-read' &&
          !r.err &&
          typeof r.ret === 'string' &&
          !sameRegister(neighbour(k, 1), r) &&
          !sameRegister(neighbour(k, -1), r),
      );
      assert.ok(read, 'the trace has an MMIO read');
      const changed = `0x${(BigInt(read.ret as string) ^ 1n).toString(16)}`;
      const r = await replayOnModel(altered(trace, read.i, (x) => (x.ret = changed)));
      assert.equal(r.divergence?.index, read.i, r.divergence ? formatDivergence(r.divergence).join('\n') : 'no divergence');
      assert.match(r.divergence!.what, new RegExp(`instead of "${changed}"`));
    });

    it('an altered ioctl answer is the first divergence, at its call index', async () => {
      const info = trace.records.find((r) => r.req === 'VFIO_DEVICE_GET_REGION_INFO' && !r.err && typeof r.out?.size === 'string');
      assert.ok(info, 'the trace has a VFIO_DEVICE_GET_REGION_INFO with a size');
      const changed = `0x${(BigInt(info.out!.size as string) + 0x1000n).toString(16)}`;
      const r = await replayOnModel(altered(trace, info.i, (x) => ((x.out as Record<string, unknown>).size = changed)));
      assert.equal(r.divergence?.index, info.i, r.divergence ? formatDivergence(r.divergence).join('\n') : 'no divergence');
      assert.match(r.divergence!.what, /VFIO_DEVICE_GET_REGION_INFO answered size=/);
    });
  });
}

/**
 * vfio trace on the model: recording (every call kind, struct fields by name, size caps),
 * NODE_VFIO_TRACE and `vfio record` without changing the program, `vfio trace show`, replay with
 * symbolic relations (0 divergences for a faithful kernel, the first divergence for an altered
 * trace), bad trace files, and the checked-in traces replayed as regression tests.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ModelClock, createModelKernel, profiles } from '../../lib/model';
import type { Kernel } from '../../lib';
import { runCli } from '../../lib/cli/main';
import {
  MemoryTraceSink,
  TraceFormatError,
  attachTracing,
  itReplaysTrace,
  parseTrace,
  readTrace,
  replayTrace,
  traceKernel,
  type TraceFile,
  type TraceRecord,
} from '../../lib/trace';
import {
  IOMMU_IOAS_MAP,
  IommuIoasAlloc,
  IommuIoasMap,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
} from '../../lib/uapi/iommufd';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../lib/sys/constants';
import { VFIO_DEVICE_BIND_IOMMUFD, VfioDeviceBindIommufd } from '../../lib/uapi/vfio';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = path.resolve(ROOT, '..', 'test', 'trace', 'fixtures');
const CLI = path.join(ROOT, 'lib', 'cli', 'main.js');
const EDU = path.join(ROOT, 'examples', 'edu', 'main.js');

function tmp(name: string): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vfio-trace-')), name);
}

function nvmeModel(mode: 'noiommu' | 'iommu'): Kernel {
  const base = profiles[`linux-7.3-${mode}`];
  return createModelKernel({
    ...base,
    name: `${base.name}+nvme`,
    pci: [{ address: '0000:00:04.0', device: 'nvme', driver: 'vfio-pci', options: { serial: 'nodevfio0001' } }],
  });
}

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function withRecords(trace: TraceFile, change: (records: TraceRecord[]) => void): TraceFile {
  const records = trace.records.map((r) => JSON.parse(JSON.stringify(r)) as TraceRecord);
  change(records);
  return { header: trace.header, records };
}

describe('vfio trace', function () {
  this.timeout(120_000);

  describe('the tracing kernel', () => {
    it('records an ioctl with its request name, struct fields in and out, flags by name and the pointer as mapping + offset', () => {
      const sink = new MemoryTraceSink();
      const k = traceKernel(createModelKernel('linux-7.3-iommu'), sink);
      const fd = k.open('/dev/iommu', 2);
      const alloc = IommuIoasAlloc.encode({ size: IommuIoasAlloc.size });
      k.ioctl(fd, IOMMU_IOAS_ALLOC.number, alloc);
      const ioas = IommuIoasAlloc.decode(alloc).out_ioas_id;
      const mem = k.mmap(-1, 0x4000n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
      const map = IommuIoasMap.encode({
        size: IommuIoasMap.size,
        flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
        ioas_id: ioas,
        user_va: mem.address + 0x1000n,
        length: 0x2000n,
        iova: 0x100000n,
      });
      assert.equal(k.ioctl(fd, IOMMU_IOAS_MAP.number, map), 0);
      assert.throws(() => k.ioctl(fd, IOMMU_IOAS_MAP.number, map), { code: 'EEXIST' });
      k.close(fd);
      const r = sink.records.filter((x) => x.req === 'IOMMU_IOAS_MAP');
      assert.equal(r.length, 2);
      assert.deepEqual(r[0]!.args, {
        size: IommuIoasMap.size,
        flags: 'FIXED_IOVA|WRITEABLE|READABLE',
        ioas_id: ioas,
        user_va: 'm0+0x1000',
        length: '0x2000',
        iova: '0x100000',
        $size: IommuIoasMap.size,
      });
      assert.equal(r[0]!.ret, 0);
      assert.equal(r[1]!.err, 'EEXIST');
      assert.equal(sink.records.find((x) => x.req === 'IOMMU_IOAS_ALLOC')!.out!.out_ioas_id, ioas);
      assert.deepEqual(
        sink.records.map((x) => x.i),
        sink.records.map((_, i) => i),
      );
      assert.ok(
        sink.records.every((x, i) => i === 0 || x.t >= sink.records[i - 1]!.t),
        'timestamps never go back',
      );
    });

    it('keeps at most dataCap bytes of a buffer, so a trace of a large read stays small', () => {
      const sink = new MemoryTraceSink();
      const k = traceKernel(createModelKernel('linux-7.3-noiommu'), sink, { dataCap: 16 });
      const fd = k.memfdCreate('big', 0);
      k.ftruncate(fd, 1n << 20n);
      const into = new Uint8Array(1 << 20);
      assert.equal(k.pread(fd, into, 0n), 1 << 20);
      const data = sink.records.find((x) => x.call === 'pread')!.out!.data as { length: number; hex: string };
      assert.equal(data.length, 1 << 20);
      assert.equal(data.hex.length, 32);
      assert.ok(JSON.stringify(sink.records).length < 2000);
    });

    it('keeps at most dataCap bytes of what a program writes into DMA memory, counts the rest, and replay says it cannot write them', async () => {
      const sink = new MemoryTraceSink();
      const k = traceKernel(createModelKernel('linux-7.3-noiommu'), sink, { dataCap: 64, mmio: true });
      const dev = k.open('/dev/vfio/devices/noiommu-vfio0', 2);
      const iommufd = k.open('/dev/iommu', 2);
      k.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD.number, VfioDeviceBindIommufd.encode({ argsz: VfioDeviceBindIommufd.size, iommufd }));
      const alloc = IommuIoasAlloc.encode({ size: IommuIoasAlloc.size });
      k.ioctl(iommufd, IOMMU_IOAS_ALLOC.number, alloc);
      const bar = k.mmap(dev, 0x100000n, PROT_READ | PROT_WRITE, 1, 0n);
      const mem = k.mmap(-1, 0x200000n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
      const map = IommuIoasMap.encode({
        size: IommuIoasMap.size,
        flags: IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
        ioas_id: IommuIoasAlloc.decode(alloc).out_ioas_id,
        user_va: mem.address,
        length: 0x200000n,
        iova: 0n,
      });
      k.ioctl(iommufd, IOMMU_IOAS_MAP.number, map);
      new Uint8Array(mem.buffer!).fill(0xa5);
      k.mmioWrite(bar, 4, 32, 1);
      const memory = sink.records.filter((r) => r.call === 'memory');
      assert.equal(memory.length, 1);
      const writes = memory[0]!.args!.writes as readonly (readonly [string, string])[];
      assert.equal(
        writes.map((w) => w[1].length / 2).reduce((a, b) => a + b, 0),
        64,
      );
      assert.equal(memory[0]!.args!.omitted, 0x200000 - 64);
      assert.ok(JSON.stringify(sink.records).length < 8000, 'a 2 MiB DMA session stays a few KiB');
      // Nothing changed since: the next store records no memory at all.
      k.mmioWrite(bar, 4, 32, 2);
      assert.equal(sink.records.filter((r) => r.call === 'memory').length, 1);
      const r = await replayTrace({ header: sink.headerLine!, records: sink.records }, createModelKernel('linux-7.3-noiommu'));
      assert.equal(r.divergence?.index, memory[0]!.i);
      assert.match(r.divergence!.what, /cannot replay: the trace left out 2097088 of the bytes .* data cap is 64/);
    });

    it("records an mmap's placement and replays it: the replayed mapping is placed the same way", async () => {
      const sink = new MemoryTraceSink();
      const k = traceKernel(createModelKernel('linux-7.3-noiommu'), sink);
      const m = k.mmap(-1, 0x2000n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n, { align: 1n << 30n, skew: 0x1000n });
      assert.equal(m.address % (1n << 30n), 0x1000n);
      const rec = sink.records.find((r) => r.call === 'mmap');
      assert.equal(rec?.args?.align, '0x40000000');
      assert.equal(rec?.args?.skew, '0x1000');
      const replayed: bigint[] = [];
      const target = createModelKernel('linux-7.3-noiommu');
      const inner = target.mmap.bind(target);
      target.mmap = (...a: Parameters<typeof inner>) => {
        const made = inner(...a);
        replayed.push(made.address);
        return made;
      };
      const r = await replayTrace({ header: sink.headerLine!, records: sink.records }, target);
      assert.equal(r.divergence, null, r.divergence?.what);
      assert.equal(replayed.length, 1);
      assert.equal(replayed[0]! % (1n << 30n), 0x1000n);
    });

    it('a data cap of 0 keeps no bytes of a buffer, only its length', () => {
      const sink = new MemoryTraceSink();
      const k = traceKernel(createModelKernel('linux-7.3-noiommu'), sink, { dataCap: 0 });
      const fd = k.memfdCreate('x', 0);
      k.ftruncate(fd, 4096n);
      k.pread(fd, new Uint8Array(4096), 0n);
      assert.deepEqual(sink.records.find((x) => x.call === 'pread')!.out!.data, { length: 4096, hex: '' });
    });

    it('keeps the kernel type and its own members when attached in place (what NODE_VFIO_TRACE does)', () => {
      const model = createModelKernel('linux-7.3-noiommu');
      const sink = new MemoryTraceSink();
      const { kernel } = attachTracing(model, sink);
      assert.equal(kernel.description, model.description);
      assert.equal(kernel.exists('/dev/iommu'), true);
      assert.deepEqual(
        sink.records.map((r) => [r.call, r.path, r.ret]),
        [['exists', '/dev/iommu', true]],
      );
    });

    it('refuses a negative dataCap with a RangeError', () => {
      assert.throws(() => traceKernel(createModelKernel('linux-7.3-noiommu'), new MemoryTraceSink(), { dataCap: -1 }), RangeError);
    });
  });

  describe('recording a program unchanged, listing and replaying it', () => {
    for (const profile of ['linux-7.3-noiommu', 'linux-7.3-iommu']) {
      it(`NODE_VFIO_TRACE records examples/edu on ${profile}; the trace replays with 0 divergences; an altered MMIO value is caught`, async () => {
        const file = tmp('edu.jsonl');
        await run(process.execPath, [EDU, `--model=${profile}`], { env: { ...process.env, NODE_VFIO_TRACE: file } });
        const trace = readTrace(file);
        assert.equal(trace.header.kind, 'model');
        const calls = new Set(trace.records.map((r) => r.call));
        for (const c of [
          'open',
          'ioctl',
          'mmap',
          'mmio-read',
          'mmio-write',
          'pread',
          'pwrite',
          'eventfd',
          'eventfd-read',
          'wait',
          'read-file',
          'memory',
          'close',
        ])
          assert.ok(calls.has(c as TraceRecord['call']), `records ${c}`);
        const clean = await replayTrace(trace, createModelKernel(profile as 'linux-7.3-noiommu'));
        assert.equal(clean.divergence, null, JSON.stringify(clean.divergence));
        assert.equal(clean.replayed, trace.records.length);

        const id = trace.records.find((r) => r.call === 'mmio-read' && r.args?.offset === '0x0')!;
        const altered = withRecords(trace, (rs) => {
          (rs[id.i] as { ret: string }).ret = '0x10000ee';
        });
        const caught = await replayTrace(altered, createModelKernel(profile as 'linux-7.3-noiommu'));
        assert.equal(caught.divergence?.index, id.i);
        assert.match(caught.divergence!.what, /returned "0x10000ed" instead of "0x10000ee"/);
        assert.ok(caught.divergence!.context.length > 0);
      });
    }

    it('relates fds symbolically: the same trace replays when the replay kernel hands out other fd numbers', async () => {
      const trace = readTrace(path.join(FIXTURES, 'edu-model-iommu.jsonl'));
      const k = createModelKernel('linux-7.3-iommu');
      const busy = [k.eventfd(0, 0), k.eventfd(0, 0), k.eventfd(0, 0)];
      const r = await replayTrace(trace, k);
      assert.equal(r.divergence, null, JSON.stringify(r.divergence));
      assert.ok(busy.every((fd) => fd >= 3));
    });

    it('a changed ioctl answer is the first divergence, with what was recorded and what came back', async () => {
      const trace = readTrace(path.join(FIXTURES, 'edu-model-iommu.jsonl'));
      const map = trace.records.find((r) => r.req === 'IOMMU_IOAS_MAP')!;
      const altered = withRecords(trace, (rs) => {
        (rs[map.i]!.out as Record<string, unknown>).iova = '0xdead000';
      });
      const r = await replayTrace(altered, createModelKernel('linux-7.3-iommu'));
      assert.equal(r.divergence?.index, map.i);
      assert.match(r.divergence!.what, /IOMMU_IOAS_MAP answered iova=/);
    });

    it('relates interrupt timing: an interrupt found already there, or still to wait for, on the traced kernel', async () => {
      const trace = readTrace(path.join(FIXTURES, 'edu-model-noiommu.jsonl'));
      const rs = trace.records;
      const k = rs.findIndex(
        (r, n) =>
          r.call === 'eventfd-read' &&
          r.err === 'EAGAIN' &&
          rs[n + 1]?.call === 'wait' &&
          rs[n + 2]?.call === 'eventfd-read' &&
          !rs[n + 2]!.err,
      );
      assert.ok(k > 0, 'the trace waits for an interrupt');
      const renumber = (records: TraceRecord[]): TraceFile => ({ header: trace.header, records: records.map((r, i) => ({ ...r, i })) });
      // On the traced kernel the interrupt was there at the first read: replay waits for it.
      const there = renumber([...rs.slice(0, k), ...rs.slice(k + 2)]);
      const a = await replayTrace(there, createModelKernel('linux-7.3-noiommu'));
      assert.equal(a.divergence, null, JSON.stringify(a.divergence));
      // On the traced kernel it came only after a wait and an empty read: replay's earlier one stands for both.
      const later = renumber([...rs.slice(0, k), rs[k + 1]!, rs[k]!, ...rs.slice(k + 2)]);
      const b = await replayTrace(later, createModelKernel('linux-7.3-noiommu'));
      assert.equal(b.divergence, null, JSON.stringify(b.divergence));
      // An interrupt the replay kernel never raises is a divergence, after the bounded wait.
      const extra = renumber([...rs.slice(0, k + 3), { ...rs[k + 2]! }, ...rs.slice(k + 3)]);
      const c = await replayTrace(extra, createModelKernel('linux-7.3-noiommu'), { waitTimeoutMs: 100 });
      assert.equal(c.divergence?.index, k + 3);
      assert.match(c.divergence!.what, /no event within 100 ms/);
    });

    it('relates device timing: a register the traced device changed only after the program waited reads the later value at once here', async () => {
      // Recorded on a model whose edu finished the factorial on a later turn (as QEMU's does when
      // its thread runs late): interrupt status 0, a wait, then 0x1. On a manual clock moved to
      // the recorded times the replayed edu has finished by the first read.
      const trace = readTrace(path.join(FIXTURES, 'edu-model-noiommu.jsonl'));
      const rs = trace.records;
      const k = rs.findIndex(
        (r, n) =>
          r.call === 'mmio-read' &&
          r.args?.offset === '0x24' &&
          r.ret === '0x0' &&
          rs[n + 1]?.call === 'eventfd-read' &&
          rs[n + 2]?.call === 'wait' &&
          rs[n + 4]?.call === 'mmio-read' &&
          rs[n + 4]!.ret === '0x1',
      );
      assert.ok(k > 0, 'the trace reads the factorial interrupt status before and after a wait');
      const sooner = (): { kernel: Kernel; options: { clock: ModelClock } } => {
        const clock = new ModelClock('manual');
        return { kernel: createModelKernel({ base: 'linux-7.3-noiommu', clock }), options: { clock } };
      };
      const a = sooner();
      const clean = await replayTrace(trace, a.kernel, a.options);
      assert.equal(clean.divergence, null, JSON.stringify(clean.divergence));
      assert.equal(clean.replayed, rs.length);
      // The later value must still be the one the trace read after the wait.
      const other = withRecords(trace, (records) => {
        (records[k + 4] as { ret: string }).ret = '0x3';
      });
      const b = sooner();
      const caught = await replayTrace(other, b.kernel, b.options);
      assert.equal(caught.divergence?.index, k);
      assert.match(caught.divergence!.what, /returned "0x1" instead of "0x0"/);
    });

    it('relates an IOVA the kernel chose for a process address of another alignment, and every later use of it', async () => {
      const trace = readTrace(path.join(FIXTURES, 'edu-model-iommu.jsonl'));
      const map = trace.records.find((r) => r.req === 'IOMMU_IOAS_MAP')!;
      assert.equal(map.args!.user_va, 'm1+0x0');
      assert.equal(map.out!.iova, '0x2000');
      const mmap = trace.records.find((r) => r.call === 'mmap' && r.ret === 'm1')!;
      // On the traced kernel the buffer was only 4 KiB aligned: iopt_alloc_iova picked 0x1000, and
      // the driver stored 0x1000 and 0x2000 into edu's DMA registers and unmapped 0x1000.
      const moved = withRecords(trace, (rs) => {
        (rs[mmap.i]!.out as Record<string, string>).address = `0x${(BigInt(mmap.out!.address as string) | 0x1000n).toString(16)}`;
        (rs[map.i]!.out as Record<string, string>).iova = '0x1000';
        for (const x of rs) {
          const a = x.args as Record<string, string> | undefined;
          if (x.call === 'mmio-write' && a?.width === (64 as unknown as string) && (a.value === '0x2000' || a.value === '0x3000'))
            a.value = `0x${(BigInt(a.value) - 0x1000n).toString(16)}`;
          if (x.req === 'IOMMU_IOAS_UNMAP' && a?.iova === '0x2000') {
            a.iova = '0x1000';
            (x.out as Record<string, string>).iova = '0x1000'; // a version 1 trace: every field in the answer
          }
        }
      });
      const ok = await replayTrace(moved, createModelKernel('linux-7.3-iommu'));
      assert.equal(ok.divergence, null, JSON.stringify(ok.divergence));
      // An IOVA off the alignment its own process address asks for is a divergence at the MAP.
      const crooked = withRecords(moved, (rs) => {
        (rs[map.i]!.out as Record<string, string>).iova = '0x1800';
      });
      const r = await replayTrace(crooked, createModelKernel('linux-7.3-iommu'));
      assert.equal(r.divergence?.index, map.i);
      assert.match(r.divergence!.what, /not aligned to/);
    });

    it('a physical address must keep its page offset and frame correspondence', async () => {
      const trace = readTrace(path.join(FIXTURES, 'edu-model-noiommu.jsonl'));
      const pa = trace.records.find((r) => r.req === 'IOMMU_IOAS_NOIOMMU_GET_PA')!;
      const shifted = withRecords(trace, (rs) => {
        const o = rs[pa.i]!.out as Record<string, string>;
        o.out_phys = `0x${(BigInt(o.out_phys!) + 8n).toString(16)}`;
      });
      const r = await replayTrace(shifted, createModelKernel('linux-7.3-noiommu'));
      assert.equal(r.divergence?.index, pa.i);
      assert.match(r.divergence!.what, /page offset or frame/);
      // Another frame with the same offset is a different machine's answer, not a divergence.
      const moved = withRecords(trace, (rs) => {
        const o = rs[pa.i]!.out as Record<string, string>;
        const old = BigInt(o.out_phys!);
        const next = old + 0x40000000n;
        o.out_phys = `0x${next.toString(16)}`;
        for (const x of rs)
          if (x.call === 'mmio-write' && x.args?.value === `0x${old.toString(16)}`) (x.args as Record<string, string>).value = o.out_phys;
      });
      const ok = await replayTrace(moved, createModelKernel('linux-7.3-noiommu'));
      assert.equal(ok.divergence, null, JSON.stringify(ok.divergence));
    });

    it('vfio record -o FILE -- node driver.js records; vfio trace show lists it; vfio replay exits 0, or 1 at a divergence', async () => {
      const file = tmp('rec.jsonl');
      const rec = await run(process.execPath, [CLI, 'record', '-o', file, '--', process.execPath, EDU, '--model=linux-7.3-iommu']);
      assert.match(rec.stderr, /calls recorded to/);
      const show = await cli('trace', 'show', file, '--ioctl=ioas_map');
      assert.equal(show.code, 0);
      assert.match(
        show.out,
        /ioctl\(\d+, IOMMU_IOAS_MAP\{flags=WRITEABLE\|READABLE, ioas_id=\d+, user_va=m\d+\+0x0, length=0x2000, iova=0x0\}\) = 0 → \{iova=0x/,
      );
      assert.doesNotMatch(show.out, /GET_REGION_INFO/);
      const config = await cli('trace', 'show', file, '--region=config');
      assert.match(config.out, /pread\(/);
      assert.doesNotMatch(config.out, /mmio-read/);
      const summary = await cli('trace', 'show', file, '--summary');
      assert.match(summary.out, /calls, \d+ errors, 8192 bytes DMA-mapped, \d+ interrupts/);
      assert.equal((await cli('replay', file, '--model=linux-7.3-iommu')).code, 0);
      const other = await cli('replay', file, '--model=linux-7.3-noiommu');
      assert.equal(other.code, 1);
      assert.match(other.out, /first divergence at call \d+/);
      assert.equal((await cli('replay')).code, 2);
      assert.equal((await cli('trace', 'list', file)).code, 2);
      const noOut = await cli('record', '--', 'true');
      assert.equal(noOut.code, 2);
    });
  });

  describe('bad trace files get an error naming the line', () => {
    const good = fs.readFileSync(path.join(FIXTURES, 'edu-model-iommu.jsonl'), 'utf8');
    const lines = good.split('\n');

    it('truncated (cut mid-line)', () => {
      assert.throws(
        () => parseTrace(good.slice(0, good.length - 20), 't.jsonl'),
        (e: unknown) => e instanceof TraceFormatError && /t\.jsonl:\d+: .*truncated/.test(e.message) && e.line === lines.length - 1,
      );
    });
    it('corrupted line', () => {
      const bad = [...lines];
      bad[4] = bad[4]!.replace('{', '{{');
      assert.throws(
        () => parseTrace(bad.join('\n'), 't.jsonl'),
        (e: unknown) => e instanceof TraceFormatError && e.line === 5 && /not valid JSON/.test(e.message),
      );
    });
    it('missing record', () => {
      const bad = [...lines];
      bad.splice(6, 1);
      assert.throws(
        () => parseTrace(bad.join('\n'), 't.jsonl'),
        (e: unknown) => e instanceof TraceFormatError && e.line === 7 && /missing or out of order/.test(e.message),
      );
    });
    it('future version', () => {
      const bad = [...lines];
      bad[0] = bad[0]!.replace('"version":1', '"version":3');
      assert.throws(
        () => parseTrace(bad.join('\n'), 't.jsonl'),
        (e: unknown) => e instanceof TraceFormatError && e.line === 1 && /version 3 is newer/.test(e.message),
      );
    });
    it('a record that is not an object, of an unknown call, or an ioctl without its request: the line is named', () => {
      const at = (line: string, k = 3) => {
        const bad = [...lines];
        bad[k] = line;
        return bad.join('\n');
      };
      const fails = (text: string, what: RegExp) =>
        assert.throws(
          () => parseTrace(text, 't.jsonl'),
          (e: unknown) => e instanceof TraceFormatError && e.line === 4 && what.test(e.message) && e.message.startsWith('t.jsonl:4: '),
        );
      fails(at('[1,2]'), /must be a JSON object/);
      fails(at('{"i":2,"t":5,"call":"fork"}'), /unknown call "fork"/);
      fails(at('{"i":2,"t":5,"call":"ioctl","fd":3}'), /ioctl record needs "fd", "req" and "nr"/);
      fails(at('{"i":2,"call":"close","fd":3}'), /no timestamp/);
      assert.throws(() => parseTrace('', 'e.jsonl'), /e\.jsonl:1: empty file/);
      assert.throws(
        () => parseTrace(lines[0]!.replace('"version":1', '"version":0') + '\n', 'v.jsonl'),
        /v\.jsonl:1: invalid trace version 0/,
      );
    });

    it('not a trace, and through the CLI: exit 2 with the line', async () => {
      assert.throws(() => parseTrace('{"a":1}\n', 'x'), /x:1: not a node-vfio trace/);
      const file = tmp('bad.jsonl');
      fs.writeFileSync(file, good.slice(0, good.length - 20));
      const r = await cli('replay', file, '--model');
      assert.equal(r.code, 2);
      assert.match(r.err, /bad trace: .*bad\.jsonl:\d+/);
    });
  });

  describe('checked-in traces replayed as regression tests (the mocha helper)', () => {
    itReplaysTrace('edu on linux-7.3-noiommu', path.join(FIXTURES, 'edu-model-noiommu.jsonl'), () =>
      createModelKernel('linux-7.3-noiommu'),
    );
    itReplaysTrace('edu on linux-7.3-iommu', path.join(FIXTURES, 'edu-model-iommu.jsonl'), () => createModelKernel('linux-7.3-iommu'));
    itReplaysTrace('nvme on linux-7.3-noiommu', path.join(FIXTURES, 'nvme-model-noiommu.jsonl'), () => nvmeModel('noiommu'));
    itReplaysTrace('nvme on linux-7.3-iommu', path.join(FIXTURES, 'nvme-model-iommu.jsonl'), () => nvmeModel('iommu'));
  });
});

/**
 * The example NVMe driver (examples/nvme) on the NVMe model: the CLI end to end in both modes,
 * many commands in flight on several queues with the data checked, errors as typed values, a
 * command that never completes timing out (and not being aborted, as QEMU never aborts), and a
 * controller that stops answering failing commands instead of hanging them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { DmaBuffer, openDevice } from '../../lib';
import { createModelKernel, ModelClock } from '../../lib/model';
import { NvmeController } from '../../lib/devices/nvme';
import { NvmeCommandError, NvmeControllerError, NvmeTimeoutError } from '../../examples/nvme/errors';
import { NvmeDriver } from '../../examples/nvme/nvme-driver';
import { allocationSummary, assertAllocationFree } from './nvme-allocation-case';
import { allocationCaseOnModel } from './nvme-allocation-model';

const BDF = '0000:00:04.0';
const run = promisify(execFile);
const main = path.resolve(__dirname, '../../examples/nvme/main.js');

function machine(mode: 'noiommu' | 'iommu', clock?: ModelClock) {
  const model = new NvmeController();
  const kernel = createModelKernel({
    base: `linux-7.3-${mode}`,
    withoutBaseDevices: true,
    devices: [{ address: BDF, model }],
    ...(clock ? { clock } : {}),
  });
  return { model, kernel, device: openDevice(BDF, { kernel }) };
}

/**
 * Keeps `depth` 4 KiB reads in flight on I/O queue 1 through the allocation-free submit(), each
 * completion submitting the next, until stop() (which waits for the last ones).
 */
function streamReads(nvme: NvmeDriver, buffer: DmaBuffer, depth: number) {
  const size = 4096;
  const counts = { completed: 0, failed: 0, insideSubmit: 0 };
  let submitting = false,
    stopping = false,
    inFlight = 0;
  let drained: () => void = () => {};
  const callbacks = Array.from({ length: depth }, (_, slot) => (status: number) => {
    if (submitting) counts.insideSubmit++;
    if (status !== 0) counts.failed++;
    counts.completed++;
    inFlight--;
    if (!stopping) submit(slot);
    else if (inFlight === 0) drained();
  });
  const submit = (slot: number) => {
    submitting = true;
    assert.ok(nvme.submit(1, false, 1, slot * 8, 8, buffer, slot * size, size, callbacks[slot]!));
    submitting = false;
    inFlight++;
  };
  for (let slot = 0; slot < depth; slot++) submit(slot);
  const stop = () => {
    stopping = true;
    return new Promise<void>((resolve) => (inFlight === 0 ? resolve() : (drained = resolve)));
  };
  return { counts, stop };
}

/** How often a 5 ms interval runs while streamReads() keeps 4 reads in flight for `ms`, and what the stream counted. */
async function intervalWhileStreaming(nvme: NvmeDriver, buffer: DmaBuffer, ms: number) {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const stream = streamReads(nvme, buffer, 4);
  await new Promise((r) => setTimeout(r, ms));
  clearInterval(timer);
  await stream.stop();
  return { ticks, ...stream.counts };
}

describe('example: the NVMe driver on the NVMe model', function () {
  this.timeout(60_000);

  it('imports nothing but the public API (lib, lib/model), node built-ins and its own files', () => {
    const dir = path.resolve(__dirname, '../../../examples/nvme');
    const bad: string[] = [];
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      for (const m of fs.readFileSync(path.join(dir, file), 'utf8').matchAll(/\bfrom\s+'([^']+)'/g)) {
        const spec = m[1]!;
        if (!(spec === '../../lib' || spec === '../../lib/model' || spec.startsWith('node:') || /^\.\/[\w-]+$/.test(spec)))
          bad.push(`${file}: '${spec}'`);
      }
    }
    assert.deepEqual(bad, []);
  });

  for (const mode of ['noiommu', 'iommu'] as const) {
    it(`the CLI identifies the controller, writes and reads back a pattern and shuts down (${mode})`, async () => {
      const { stdout } = await run(process.execPath, [main, `--model=${mode}`, '--blocks=3000', '--queues=3']);
      assert.match(stdout, /--model: the kernel model/);
      // The model's vfio-pci programs MSI-X, so the driver completes by interrupt as on the real controller.
      assert.match(stdout, /completions by MSI-X interrupt, 3 I\/O queue pair/);
      assert.match(stdout, /controller QEMU NVMe Ctrl serial nodevfio0001 firmware 7\.2\.22, NVMe 1\.4\.0/);
      assert.match(stdout, /namespace 1: 131072 blocks of 512 bytes/);
      assert.match(stdout, mode === 'noiommu' ? /physical addresses/ : /IOVA addresses/);
      assert.match(stdout, /data intact/);
      assert.match(stdout, /shut down \(CSTS 0x9\)/);
      assert.match(stdout, /all checks passed/);
    });

    it(`keeps 4 queues x 32 commands in flight; every block reads back as written (${mode})`, async () => {
      const { model, device } = machine(mode);
      using nvme = await NvmeDriver.open(device, { ioQueues: 4, queueDepth: 64 });
      assert.equal(nvme.ioQueueCount, 4);
      const ios = 128,
        size = 4096;
      using buffer = DmaBuffer.allocate(2 * ios * size, { space: device.dmaSpace });
      const pattern = randomBytes(ios * size);
      buffer.bytes.set(pattern, 0);
      const lbas = Array.from({ length: ios }, (_, i) => ((i * 7919) % 16384) * 8);
      await Promise.all(lbas.map((lba, i) => nvme.write(1, lba, 8, buffer, i * size)));
      await Promise.all(lbas.map((lba, i) => nvme.read(1, lba, 8, buffer, (ios + i) * size)));
      assert.ok(Buffer.from(buffer.bytes.subarray(ios * size, 2 * ios * size)).equals(pattern), 'the reads return what was written');
      assert.ok(
        Buffer.from(model.storage.read(lbas[5]! * 512, size)).equals(pattern.subarray(5 * size, 6 * size)),
        'the namespace holds it',
      );
      await nvme.shutdown();
      assert.deepEqual(
        model.events.filter((e) => e.kind !== 'guest-error'),
        [],
      );
      device.close();
    });
  }

  for (const mode of ['noiommu', 'iommu'] as const) {
    it(`completes by INTx interrupt: every queue on the pin, 96 commands in flight, data intact (${mode})`, async () => {
      const { device } = machine(mode);
      using nvme = await NvmeDriver.open(device, { ioQueues: 3, queueDepth: 64, completion: 'intx' });
      assert.equal(nvme.completion, 'intx');
      const ios = 96,
        size = 4096;
      using buffer = DmaBuffer.allocate(2 * ios * size, { space: device.dmaSpace });
      const pattern = randomBytes(ios * size);
      buffer.bytes.set(pattern, 0);
      await Promise.all(Array.from({ length: ios }, (_, i) => nvme.write(1, i * 8, 8, buffer, i * size)));
      await Promise.all(Array.from({ length: ios }, (_, i) => nvme.read(1, i * 8, 8, buffer, (ios + i) * size)));
      assert.ok(Buffer.from(buffer.bytes.subarray(ios * size)).equals(pattern));
      await nvme.shutdown();
      device.close();
    });
  }

  it('polling: submit() never completes inside the call, and a poll loop that spins for a second still lets timers run', async () => {
    const { device } = machine('noiommu');
    using nvme = await NvmeDriver.open(device, { completion: 'poll', pollSpinMicroseconds: 1_000_000 });
    assert.equal(nvme.completion, 'poll');
    using buffer = DmaBuffer.allocate(4 * 4096, { space: device.dmaSpace });
    // The stream of completions never pauses for the spin to end: only the turn limit yields.
    const { ticks, failed, insideSubmit, completed } = await intervalWhileStreaming(nvme, buffer, 200);
    assert.equal(failed, 0);
    assert.equal(insideSubmit, 0, 'a completion callback ran inside submit()');
    assert.ok(completed > 100, `${completed} I/Os completed in 200 ms`);
    assert.ok(ticks >= 5, `a 5 ms interval ran ${ticks} times in 200 ms of polling`);
    await nvme.shutdown();
    device.close();
  });

  it('pollTurnMicroseconds bounds how long one poll turn keeps the event loop; a bad value is a RangeError before anything is mapped', async () => {
    const { device } = machine('noiommu');
    for (const bad of [-1, Number.NaN, Infinity])
      await assert.rejects(NvmeDriver.open(device, { completion: 'poll', pollTurnMicroseconds: bad }), {
        name: 'RangeError',
        message: new RegExp(`^pollTurnMicroseconds must be a finite number of microseconds ≥ 0, not ${String(bad)}$`),
      });
    await assert.rejects(NvmeDriver.open(device, { completion: 'poll', pollSpinMicroseconds: -5 }), {
      name: 'RangeError',
      message: /^pollSpinMicroseconds/,
    });
    // 100 ms turns under a stream of completions that never pauses (the spin outlasts the turn):
    // in 300 ms the event loop gets a handful of turns, so a 5 ms interval runs a handful of times.
    using nvme = await NvmeDriver.open(device, { completion: 'poll', pollSpinMicroseconds: 1_000_000, pollTurnMicroseconds: 100_000 });
    using buffer = DmaBuffer.allocate(4 * 4096, { space: device.dmaSpace });
    const { ticks, failed } = await intervalWhileStreaming(nvme, buffer, 300);
    assert.equal(failed, 0);
    // At 2 ms turns the same interval runs about 60 times in 300 ms.
    assert.ok(ticks >= 1 && ticks <= 8, `a 5 ms interval ran ${ticks} times in 300 ms of 100 ms poll turns`);
    await nvme.shutdown();
    device.close();
  });

  it('what completion callbacks submit is rung with one tail doorbell per poll pass, not one per command, and every command completes', async () => {
    const { kernel, device } = machine('noiommu');
    // I/O queue 1's tail doorbell (CAP.DSTRD 0: 4-byte doorbells from 0x1000, SQ then CQ per queue).
    const SQ1_TAIL = 0x1000 + 2 * 4;
    let tailWrites = 0;
    const mmioWrite = kernel.mmioWrite.bind(kernel);
    kernel.mmioWrite = (mapping, offset, width, value) => {
      if (offset === SQ1_TAIL) tailWrites++;
      mmioWrite(mapping, offset, width, value);
    };
    using nvme = await NvmeDriver.open(device, { ioQueues: 1, completion: 'poll' });
    const depth = 16,
      size = 4096,
      total = 2000;
    using buffer = DmaBuffer.allocate(depth * size, { space: device.dmaSpace });
    let submitted = 0,
      completed = 0,
      failed = 0;
    let drained: () => void = () => {};
    const callbacks = Array.from({ length: depth }, (_, slot) => (status: number) => {
      if (status !== 0) failed++;
      if (++completed === total) drained();
      else if (submitted < total) submit(slot);
    });
    const submit = (slot: number) => {
      assert.ok(nvme.submit(1, false, 1, slot * 8, 8, buffer, slot * size, size, callbacks[slot]!));
      submitted++;
    };
    const done = new Promise<void>((resolve) => (drained = resolve));
    for (let slot = 0; slot < depth; slot++) submit(slot);
    // The first commands were submitted outside a poll pass: each rang at once.
    assert.equal(tailWrites, depth);
    await done;
    assert.equal(failed, 0);
    assert.equal(completed, total);
    const perCommand = tailWrites / total;
    assert.ok(perCommand < 0.5, `${tailWrites} tail doorbell writes for ${total} commands`);
    await nvme.shutdown();
    device.close();
  });

  it('a buffer closed after it was used is refused with EBADF, never written through its old bus addresses', async () => {
    const { device } = machine('noiommu');
    using nvme = await NvmeDriver.open(device, { completion: 'poll' });
    const buffer = DmaBuffer.allocate(8192, { space: device.dmaSpace });
    await nvme.read(1, 0, 8, buffer);
    let status = -100;
    assert.ok(nvme.submit(1, false, 1, 0, 8, buffer, 0, 4096, (s) => (status = s)));
    while (status === -100) await new Promise((r) => setImmediate(r));
    assert.equal(status, 0);
    buffer.close();
    assert.throws(() => nvme.submit(1, false, 1, 0, 8, buffer, 0, 4096, () => assert.fail('a closed buffer was submitted')), {
      code: 'EBADF',
    });
    await assert.rejects(nvme.read(1, 0, 8, buffer), { code: 'EBADF' });
    await nvme.shutdown();
    device.close();
  });

  it('submit() refuses an LBA, block count, length or offset that would make a different command: a RangeError, nothing submitted', async () => {
    const { device } = machine('noiommu');
    using nvme = await NvmeDriver.open(device, { completion: 'poll' });
    using buffer = DmaBuffer.allocate(8192, { space: device.dmaSpace });
    const never = () => assert.fail('a refused command completed');
    const refused: [number, number, number, number, RegExp][] = [
      [-1, 8, 4096, 0, /^LBA -1 must be an integer 0\.\.2\^53-1$/],
      [1.5, 8, 4096, 0, /^LBA 1\.5 must be an integer/],
      [2 ** 53, 8, 4096, 0, /^LBA 9007199254740992 must be an integer/],
      [0, 0, 0, 0, /^block count 0 must be an integer 1\.\.65536 \(NLB is 16 bits\)$/],
      [0, 65537, 65537 * 512, 0, /^block count 65537 must be an integer 1\.\.65536/],
      [0, 2.5, 1280, 0, /^block count 2\.5 must be/],
      [0, 8, 4095, 0, /^4095 bytes for 8 blocks of 512 bytes \(namespace 1\): a transfer describes exactly its blocks$/],
      [0, 8, 4096, -512, /^offset -512 must be an integer 0\.\.2\^32-1/],
      [0, 8, 4096, 4096.5, /^offset 4096\.5 must be an integer/],
    ];
    for (const [lba, blocks, bytes, offset, message] of refused)
      assert.throws(
        () => nvme.submit(1, true, 1, lba, blocks, buffer, offset, bytes, never),
        { name: 'RangeError', message },
        `lba ${lba}, ${blocks} blocks, ${bytes} bytes at ${offset}`,
      );
    // An LBA of 2^32 or more is a valid command (this namespace is smaller: the controller says so).
    let status = -100;
    assert.ok(nvme.submit(1, false, 1, 2 ** 32, 8, buffer, 0, 4096, (s) => (status = s)));
    while (status === -100) await new Promise((r) => setImmediate(r));
    assert.equal(status & 0x7ff, 0x080, `LBA Out of Range, not 0x${status.toString(16)}`);
    // And the queue is as it was: every identifier is free again, the next command completes.
    status = -100;
    assert.ok(nvme.submit(1, false, 1, 0, 8, buffer, 4096, 4096, (s) => (status = s)));
    while (status === -100) await new Promise((r) => setImmediate(r));
    assert.equal(status, 0);
    await nvme.shutdown();
    device.close();
  });

  it("the I/O path allocates nothing per command (polled, 5 rounds of 4000 I/Os sampled by the heap profiler, the model kept out of the driver's frames; the lab runs the same case)", async () => {
    const report = await allocationCaseOnModel();
    console.log(`      ${allocationSummary(report)}`);
    assertAllocationFree(report);
  });

  it('a failed command is a typed value with the status code type, code and the command', async () => {
    const { device } = machine('noiommu');
    using nvme = await NvmeDriver.open(device);
    using buffer = DmaBuffer.allocate(4096, { space: device.dmaSpace });
    const error = await nvme.read(1, 131071, 2, buffer).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof NvmeCommandError);
    assert.equal(error.sct, 0);
    assert.equal(error.sc, 0x80);
    assert.equal(error.dnr, true);
    assert.equal(error.command.opcode, 0x02);
    assert.equal(error.command.queue, 1);
    assert.equal(error.command.nsid, 1);
    assert.match(error.message, /LBA Out of Range/);
    const queue = await nvme.adminCommand({ opcode: 0x05, cdw10: (15 << 16) | 1, cdw11: 1, prp1: 0 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(queue instanceof NvmeCommandError && queue.sct === 1 && queue.sc === 0x01, 'Invalid Queue Identifier: queue 1 exists');
    await nvme.shutdown();
    device.close();
  });

  it('a command the controller never completes times out, and Abort does not abort it (as on QEMU)', async () => {
    const clock = new ModelClock('manual');
    const { device } = machine('noiommu', clock);
    const pump = setInterval(() => clock.runUntilIdle(), 1);
    let nvme: NvmeDriver;
    try {
      nvme = await NvmeDriver.open(device, { commandTimeoutMs: 150 });
    } finally {
      clearInterval(pump);
    }
    using buffer = DmaBuffer.allocate(4096, { space: device.dmaSpace });
    const started = performance.now();
    const error = await nvme.read(1, 0, 8, buffer).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof NvmeTimeoutError, String(error));
    assert.equal(error.aborted, false);
    assert.ok(performance.now() - started >= 150);
    nvme.close();
    device.close();
  });

  it('a controller that stops answering fails the outstanding commands and the next ones, instead of hanging', async () => {
    const clock = new ModelClock('manual');
    const { model, device } = machine('iommu', clock);
    const pump = setInterval(() => clock.runUntilIdle(), 1);
    let nvme: NvmeDriver;
    try {
      nvme = await NvmeDriver.open(device);
    } finally {
      clearInterval(pump);
    }
    using buffer = DmaBuffer.allocate(4096, { space: device.dmaSpace });
    const pending = nvme.read(1, 0, 8, buffer).then(
      () => undefined,
      (e: unknown) => e,
    );
    model.fail('the test pulls the controller');
    const error = await pending;
    assert.ok(error instanceof NvmeControllerError, String(error));
    assert.match(error.message, /reads all ones/);
    await assert.rejects(nvme.getFeatures(0x07), NvmeControllerError);
    nvme.close();
    device.close();
  });
});

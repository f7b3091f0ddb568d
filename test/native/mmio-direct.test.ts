import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { MAP_SHARED, MFD_CLOEXEC, PROT_READ, PROT_WRITE } from '../../lib/sys/constants';
import type { Mapping, MmioWidth } from '../../lib/sys/kernel';
import type { NativeKernel } from '../../lib/sys/native-kernel';
import { isVfioError } from '../../lib/sys/errors';
import { Mmio } from '../../lib/vfio/mmio';
import { kernel, linuxOnly } from './support';

const RW = PROT_READ | PROT_WRITE;

/** A one-page shared memfd mapping standing in for a BAR: pread/pwrite on the fd see the same bytes. */
function sharedPage(k: NativeKernel, prot = RW): { fd: number; mapping: Mapping; close(): void } {
  const fd = k.memfdCreate('node-vfio-test-mmio-direct', MFD_CLOEXEC);
  k.ftruncate(fd, BigInt(k.pageSize));
  const mapping = k.mmap(fd, BigInt(k.pageSize), prot, MAP_SHARED, 0n);
  return { fd, mapping, close: () => k.close(fd) };
}

/** Runs `body` with an Mmio over a fresh shared page, then closes both. */
function withMmio(prot: number, body: (k: NativeKernel, page: ReturnType<typeof sharedPage>, mmio: Mmio) => void): void {
  const k = kernel();
  const page = sharedPage(k, prot);
  const mmio = new Mmio(k, page.mapping, 'test page', 0n);
  try {
    body(k, page, mmio);
  } finally {
    mmio.close();
    page.close();
  }
}

function read(m: Mmio, offset: number, width: MmioWidth): number | bigint {
  switch (width) {
    case 8:
      return m.read8(offset);
    case 16:
      return m.read16(offset);
    case 32:
      return m.read32(offset);
    case 64:
      return m.read64(offset);
  }
}

function write(m: Mmio, offset: number, width: MmioWidth, value: number | bigint): void {
  switch (width) {
    case 8:
      return m.write8(offset, value as number);
    case 16:
      return m.write16(offset, value as number);
    case 32:
      return m.write32(offset, value as number);
    case 64:
      return m.write64(offset, value as bigint);
  }
}

/** What a call threw (or 'returned'), compared by kind and message. */
function outcome(call: () => unknown): string {
  try {
    call();
    return 'returned';
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
}

describe('native kernel: Mmio on a read-write mapping', function () {
  linuxOnly(this);

  it('goes straight to the mapping at every width, agreeing byte for byte with the addon and the file', () => {
    withMmio(RW, (k, page, mmio) => {
      assert.equal(mmio.direct, true);
      const samples: Record<MmioWidth, (number | bigint)[]> = {
        8: [0, 0x5a, 0xff],
        16: [0, 0xbeef, 0xffff],
        32: [0, 0xdeadbeef, 0xffffffff],
        64: [0n, 0x0123_4567_89ab_cdefn, (1n << 64n) - 1n],
      };
      for (const width of [8, 16, 32, 64] as MmioWidth[]) {
        const bytes = width / 8;
        for (const offset of [0, bytes, k.pageSize - bytes]) {
          for (const value of samples[width]) {
            write(mmio, offset, width, value);
            assert.equal(k.mmioRead(page.mapping, offset, width), value, `addon reads the ${width}-bit store at ${offset}`);
            const fromFile = Buffer.alloc(bytes);
            k.pread(page.fd, fromFile, BigInt(offset));
            assert.equal(
              BigInt(fromFile.readUIntLE(0, Math.min(bytes, 6))) | (bytes === 8 ? BigInt(fromFile.readUInt16LE(6)) << 48n : 0n),
              BigInt(value),
              `the file holds the ${width}-bit store at ${offset}, little endian`,
            );
            k.mmioWrite(page.mapping, offset, width, value);
            assert.equal(read(mmio, offset, width), value, `Mmio reads the addon's ${width}-bit store at ${offset}`);
          }
        }
      }
    });
  });

  it('hands what the direct path cannot take to the kernel, which refuses it exactly as before', () => {
    withMmio(RW, (k, page, mmio) => {
      const bad: [MmioWidth, number, number | bigint][] = [
        [32, 2, 0],
        [32, k.pageSize, 0],
        [32, -4, 0],
        [32, 2 ** 32, 0],
        [32, 2 ** 32 + 4, 0],
        [32, 0.5, 0],
        [16, 1, 0],
        [64, 4, 0n],
        [64, k.pageSize, 0n],
        [8, k.pageSize, 0],
        [8, -1, 0],
        [32, 0, 2 ** 32],
        [32, 0, -1],
        [32, 0, 1.5],
        [16, 0, 0x10000],
        [8, 0, 256],
        [64, 0, -1n],
        [64, 0, 1n << 64n],
      ];
      for (const [width, offset, value] of bad) {
        const direct = outcome(() => write(mmio, offset, width, value));
        assert.equal(
          direct,
          outcome(() => k.mmioWrite(page.mapping, offset, width, value)),
          `write${width}(${offset}, ${value})`,
        );
        assert.notEqual(direct, 'returned', `write${width}(${offset}, ${value}) is refused`);
        if (value === 0 || value === 0n) {
          const load = outcome(() => read(mmio, offset, width));
          assert.equal(
            load,
            outcome(() => k.mmioRead(page.mapping, offset, width)),
            `read${width}(${offset})`,
          );
          assert.notEqual(load, 'returned', `read${width}(${offset}) is refused`);
        }
      }
      assert.equal(new Uint32Array(page.mapping.buffer!)[0], 0, 'nothing refused reached the memory');
    });
  });

  it('goes through the kernel for a read-only mapping, whose stores must fail instead of killing the process', () => {
    withMmio(PROT_READ, (k, page, mmio) => {
      assert.equal(mmio.direct, false);
      k.pwrite(page.fd, Uint8Array.of(0x78, 0x56, 0x34, 0x12), 8n);
      assert.equal(mmio.read32(8), 0x12345678);
      assert.throws(
        () => mmio.write32(8, 1),
        (e: unknown) => isVfioError(e, 'EACCES'),
      );
    });
  });

  it('after close, every access throws the closed error and the bytes are out of reach', () => {
    const k = kernel();
    const page = sharedPage(k);
    const mmio = new Mmio(k, page.mapping, 'test page', 0n);
    mmio.write32(0, 7);
    mmio.close();
    page.close();
    assert.equal(mmio.direct, false);
    assert.equal(page.mapping.buffer!.byteLength, 0, "the mapping's buffer is detached");
    for (const use of [
      () => mmio.read8(0),
      () => mmio.read32(0),
      () => mmio.read64(0),
      () => mmio.write16(0, 1),
      () => mmio.write64(0, 1n),
    ]) {
      assert.throws(use, (e: unknown) => isVfioError(e, 'EBADF') && /is closed/.test(e.message));
    }
  });

  it('a hot polling loop sees a store made by another thread: the load is repeated, not hoisted', async function () {
    this.timeout(30_000);
    const k = kernel();
    const page = sharedPage(k);
    const mmio = new Mmio(k, page.mapping, 'polled page', 0n);
    const STATUS = 64;
    try {
      mmio.write32(STATUS, 0);
      // The other thread stores through its own path (pwrite to the same file page), like a device
      // setting a status bit, while this thread spins long enough for V8 to optimize the loop.
      const writer = new Worker(
        `
        const { workerData } = require('node:worker_threads');
        const fs = require('node:fs');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, workerData.delayMs);
        fs.writeSync(workerData.fd, Buffer.from([1, 0, 0, 0]), 0, 4, workerData.offset);
      `,
        { eval: true, workerData: { fd: page.fd, delayMs: 300, offset: STATUS } },
      );
      const exited = new Promise((resolve) => writer.once('exit', resolve));
      // Bounded, so a hoisted load fails the test instead of hanging it: several seconds of spinning
      // on any machine, far longer than the writer's delay.
      const limit = 4_000_000_000;
      let spins = 0;
      while (spins < limit && mmio.read32(STATUS) === 0) spins++;
      await exited;
      assert.ok(spins < limit, `the loop never saw the store (${spins} spins)`);
      assert.ok(spins > 1000, `the loop spun only ${spins} times, too few to have been optimized`);
    } finally {
      mmio.close();
      page.close();
    }
  });
});

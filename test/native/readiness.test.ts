import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { EFD_NONBLOCK, MFD_CLOEXEC } from '../../lib/sys/constants';
import { addon, kernel, distLib, linuxOnly, mappingsNamed, withFd, withFdAsync } from './support';

/**
 * Runs `body` (CommonJS) in a worker thread with `data` as workerData. `exited` is listened for
 * from the start: a worker that ends right after its last message emits 'exit' in the same turn
 * as that message, before a listener added once the message arrived.
 */
function worker(body: string, data: Record<string, unknown>): Worker & { readonly exited: Promise<number> } {
  const thread = new Worker(`const { parentPort, workerData } = require('node:worker_threads');\n${body}`, {
    eval: true,
    workerData: data,
  });
  return Object.assign(thread, { exited: new Promise<number>((resolve) => thread.once('exit', resolve)) });
}

function nextMessage<T>(w: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
}

/** `promise`, or a rejection once `ms` have passed: a wait that never settles fails its test quickly. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function openFds(): Set<number> {
  return new Set(fs.readdirSync('/proc/self/fd').map(Number));
}

/** Counts timer ticks so a test can prove the event loop kept running while it waited. */
function tickCounter(periodMs: number): { readonly ticks: number; stop(): void } {
  let ticks = 0;
  const timer = setInterval(() => ticks++, periodMs);
  return {
    get ticks() {
      return ticks;
    },
    stop: () => clearInterval(timer),
  };
}

describe('native kernel: eventfd and waiting for readability', function () {
  linuxOnly(this);

  it('an eventfd written from a worker thread wakes the waiting promise; timers keep running meanwhile', async () => {
    const k = kernel();
    const fd = k.eventfd(0, 0);
    const counter = tickCounter(5);
    try {
      const waiting = k.waitReadable(fd);
      const writer = worker(
        `
        const fs = require('node:fs');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, workerData.delayMs);
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(workerData.value);
        fs.writeSync(workerData.fd, b);
      `,
        { fd, delayMs: 200, value: 42n },
      );
      const started = Date.now();
      await waiting;
      const waitedMs = Date.now() - started;
      assert.ok(waitedMs >= 150, `woke after ${waitedMs} ms, before the worker wrote`);
      assert.ok(counter.ticks >= 10, `only ${counter.ticks} timer ticks during a ${waitedMs} ms wait: the loop was blocked`);
      assert.equal(k.eventfdRead(fd), 42n);
      await writer.exited;
    } finally {
      counter.stop();
      k.close(fd);
    }
  });

  it("waiting works inside a worker thread, on that thread's own event loop", async () => {
    const k = kernel();
    await withFdAsync(k, k.eventfd(0, 0), async (fd) => {
      const waiter = worker(
        `
        const { nativeKernel } = require(workerData.native);
        const k = nativeKernel();
        let ticks = 0;
        const timer = setInterval(() => ticks++, 5);
        k.waitReadable(workerData.fd).then(() => {
          clearInterval(timer);
          parentPort.postMessage({ value: k.eventfdRead(workerData.fd), ticks });
        }, (e) => parentPort.postMessage({ error: String(e) }));
        parentPort.postMessage('waiting');
      `,
        { fd, native: distLib('sys/native-kernel.js') },
      );
      assert.equal(await nextMessage(waiter), 'waiting');
      const result = nextMessage<{ value?: bigint; ticks?: number; error?: string }>(waiter);
      await new Promise((r) => setTimeout(r, 100));
      k.eventfdWrite(fd, 7n);
      const { value, ticks, error } = await result;
      assert.equal(error, undefined);
      assert.equal(value, 7n);
      assert.ok(ticks! >= 5, `worker timer ticked ${ticks} times while waiting`);
      assert.equal(await waiter.exited, 0);
    });
  });

  it('closing the fd rejects its pending waits with ECANCELED', async () => {
    const k = kernel();
    const fd = k.eventfd(0, 0);
    const first = k.waitReadable(fd);
    const second = k.waitReadable(fd);
    k.close(fd);
    await assert.rejects(first, { name: 'VfioError', code: 'ECANCELED', syscall: 'poll', path: 'anon_inode:[eventfd]' });
    await assert.rejects(second, { name: 'VfioError', code: 'ECANCELED' });
  });

  it('an AbortSignal cancels one wait; other waits on the same fd still wake', async () => {
    const k = kernel();
    await withFdAsync(k, k.eventfd(0, EFD_NONBLOCK), async (fd) => {
      const controller = new AbortController();
      const aborted = k.waitReadable(fd, controller.signal);
      const other = k.waitReadable(fd);
      controller.abort();
      await assert.rejects(aborted, { name: 'VfioError', code: 'ECANCELED' });
      k.eventfdWrite(fd, 1n);
      await other;
      assert.equal(k.eventfdRead(fd), 1n);
      await assert.rejects(k.waitReadable(fd, AbortSignal.abort()), { code: 'ECANCELED' });
    });
  });

  it('resolves at once when the fd is already readable, and every waiter wakes', async () => {
    const k = kernel();
    await withFdAsync(k, k.eventfd(3, 0), async (fd) => {
      await Promise.all([k.waitReadable(fd), k.waitReadable(fd), k.waitReadable(fd)]);
      assert.equal(k.eventfdRead(fd), 3n);
    });
  });

  it('eventfd counter semantics: read takes the sum, a zero counter is EAGAIN when non-blocking', () => {
    const k = kernel();
    withFd(k, k.eventfd(0, EFD_NONBLOCK), (fd) => {
      assert.throws(() => k.eventfdRead(fd), { name: 'VfioError', code: 'EAGAIN', syscall: 'read' });
      k.eventfdWrite(fd, 2n);
      k.eventfdWrite(fd, 5n);
      assert.equal(k.eventfdRead(fd), 7n);
      assert.throws(() => k.eventfdWrite(fd, (1n << 64n) - 1n), { name: 'VfioError', code: 'EINVAL', syscall: 'write' });
    });
  });

  it('waiting on a file that cannot be polled (a memfd) rejects with the errno', async () => {
    const k = kernel();
    await withFdAsync(k, k.memfdCreate('node-vfio-test-poll', MFD_CLOEXEC), async (fd) => {
      await assert.rejects(k.waitReadable(fd), { name: 'VfioError', code: 'EPERM', syscall: 'poll' });
    });
  });

  it('a worker ending with a pending wait and a live mapping releases both, and the process lives on', async () => {
    const k = kernel();
    await withFdAsync(k, k.eventfd(0, 0), async (fd) => {
      const w = worker(
        `
        const { nativeKernel } = require(workerData.native);
        const k = nativeKernel();
        const memfd = k.memfdCreate('node-vfio-test-worker-end', 0);
        k.ftruncate(memfd, 4096n);
        globalThis.keep = k.mmap(memfd, 4096n, 3, 1, 0n);
        k.waitReadable(workerData.fd).catch(() => {});
        parentPort.postMessage('ready');
      `,
        { fd, native: distLib('sys/native-kernel.js') },
      );
      assert.equal(await nextMessage(w), 'ready');
      assert.equal(mappingsNamed('node-vfio-test-worker-end'), 1);
      await w.terminate();
      assert.equal(mappingsNamed('node-vfio-test-worker-end'), 0);
      // The fd survives its worker (fds belong to the process) and still works here.
      k.eventfdWrite(fd, 1n);
      await k.waitReadable(fd);
    });
  });

  it('closing the fd on another thread ends a wait on it here with ECANCELED', async () => {
    const k = kernel();
    const fd = k.eventfd(0, 0);
    const waiting = k.waitReadable(fd);
    const closer = worker(
      `
      require(workerData.native).nativeKernel().close(workerData.fd);
      parentPort.postMessage('closed');
    `,
      { fd, native: distLib('sys/native-kernel.js') },
    );
    const cancelled = assert.rejects(within(waiting, 5000, 'the wait'), { name: 'VfioError', code: 'ECANCELED', syscall: 'poll' });
    assert.equal(await nextMessage(closer), 'closed');
    await cancelled;
    await closer.exited;
  });

  it('closing the fd here ends a wait on it in a worker with ECANCELED', async () => {
    const k = kernel();
    const fd = k.eventfd(0, 0);
    const waiter = worker(
      `
      const k = require(workerData.native).nativeKernel();
      k.waitReadable(workerData.fd).then(() => parentPort.postMessage('woke'), (e) => parentPort.postMessage(e.code));
      parentPort.postMessage('waiting');
    `,
      { fd, native: distLib('sys/native-kernel.js') },
    );
    try {
      assert.equal(await nextMessage(waiter), 'waiting');
      const outcome = nextMessage<string>(waiter);
      k.close(fd);
      assert.equal(await within(outcome, 5000, "the worker's wait"), 'ECANCELED');
      assert.equal(await waiter.exited, 0);
    } finally {
      await waiter.terminate();
    }
  });

  it('a callback that waits again on the fd while close ends its waits fails EBADF, and the process lives on', async () => {
    const fd = kernel().eventfd(0, 0);
    const seen: (number | string)[] = [];
    addon().waitReadable(fd, 1, (errno) => {
      seen.push(errno);
      try {
        addon().waitReadable(fd, 2, (again) => seen.push(`again ${again}`));
      } catch (e) {
        seen.push(`throws ${(e as { errno?: number }).errno}`);
      }
    });
    addon().close(fd);
    // The loop turns a few times: libuv would abort here if it still polled the closed number.
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(seen, [125, 'throws 9']);
  });

  it("an fd closed behind the addon's back fails its wait with EBADF", async () => {
    const k = kernel();
    const fd = k.eventfd(0, 0);
    const waiting = k.waitReadable(fd);
    fs.closeSync(fd);
    await assert.rejects(within(waiting, 5000, 'the wait'), { name: 'VfioError', code: 'EBADF', syscall: 'poll' });
  });

  it("a wait on an fd closed behind the addon's back fails EBADF instead of waking for the file that reuses the number", async () => {
    const k = kernel();
    const fd = k.eventfd(0, 0);
    const waiting = k.waitReadable(fd);
    fs.closeSync(fd);
    // The lowest free number is taken, so the readable eventfd gets the closed one.
    await withFdAsync(k, k.eventfd(1, 0), async (reused) => {
      assert.equal(reused, fd);
      await assert.rejects(within(waiting, 5000, 'the wait'), { name: 'VfioError', code: 'EBADF' });
      await within(k.waitReadable(reused), 5000, 'a wait on the new file');
    });
  });

  it("the addon's own duplicate of a waited fd cannot be closed through it", async () => {
    const k = kernel();
    await withFdAsync(k, k.eventfd(0, 0), async (fd) => {
      const before = openFds();
      const waiting = k.waitReadable(fd);
      const own = [...openFds()].filter((n) => !before.has(n));
      assert.equal(own.length, 1);
      assert.throws(() => addon().close(own[0]!), { errno: 9, syscall: 'close' });
      k.eventfdWrite(fd, 1n);
      await within(waiting, 5000, 'the wait');
    });
  });
});

import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import fs from 'node:fs';
import {
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_HUGE_2MB,
  MAP_LOCKED,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_CLOEXEC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../lib/sys/constants';
import type { MmioWidth } from '../../lib/sys/kernel';
import { VfioError } from '../../lib/sys/errors';
import { addon, kernel, linuxOnly, mappingsNamed, withFd, withFdAsync } from './support';

const RW = PROT_READ | PROT_WRITE;
// Above 4 GiB, the largest external buffer Node 20 makes: only a few pages of it are ever touched.
const LARGE = (1n << 32n) + 4096n;

/** Whether one entry of /proc/self/maps covers [address, address + length) (neighbours may merge into it). */
function isMapped(address: bigint, length: bigint): boolean {
  return fs
    .readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .some((line) => {
      const [start, end] = (line.split(' ')[0] ?? '').split('-').map((hex) => BigInt(`0x${hex || '0'}`));
      return start !== undefined && end !== undefined && start <= address && end >= address + length;
    });
}

/**
 * Under qemu-user (the arm64 prebuild's test run) /proc/self/maps is QEMU's rewrite of the host's,
 * and QEMU 7.2 leaves out host mappings whose guest pages it tracks with different flags, as when
 * the host merged ours with a neighbour (CI saw a usable one-page mapping missing from it). There
 * the file cannot show that a mapping exists (reading its bytes still does), only that one is gone.
 */
const MAPS_REWRITTEN = process.env.NODE_VFIO_PROC_MAPS === 'qemu-user';

/** Whether /proc/self/maps lists the range, or true where that file cannot tell (MAPS_REWRITTEN). */
function listed(address: bigint, length: bigint): boolean {
  return MAPS_REWRITTEN || isMapped(address, length);
}

describe('native kernel: mappings', function () {
  linuxOnly(this);

  it('maps a memfd: bytes written through the ArrayBuffer are read back with pread', () => {
    const k = kernel();
    withFd(k, k.memfdCreate('node-vfio-test-memfd', MFD_CLOEXEC), (fd) => {
      const length = BigInt(2 * k.pageSize);
      k.ftruncate(fd, length);
      const m = k.mmap(fd, length, RW, MAP_SHARED, 0n);
      assert.equal(m.length, length);
      assert.equal(m.address % BigInt(k.pageSize), 0n);
      const bytes = new Uint8Array(m.buffer!);
      assert.equal(bytes.length, 2 * k.pageSize);
      bytes.set([1, 2, 3, 4], k.pageSize - 2);
      const back = new Uint8Array(4);
      assert.equal(k.pread(fd, back, BigInt(k.pageSize - 2)), 4);
      assert.deepEqual([...back], [1, 2, 3, 4]);
      // And the other way: pwrite shows up in the mapping.
      assert.equal(k.pwrite(fd, Uint8Array.of(0xaa, 0xbb), 10n), 2);
      assert.deepEqual([...bytes.subarray(10, 12)], [0xaa, 0xbb]);
      k.munmap(m);
    });
  });

  it('after munmap the old ArrayBuffer and its views are detached: access throws TypeError, never crashes', () => {
    const k = kernel();
    withFd(k, k.memfdCreate('node-vfio-test-detach', 0), (fd) => {
      k.ftruncate(fd, BigInt(k.pageSize));
      const m = k.mmap(fd, BigInt(k.pageSize), RW, MAP_SHARED, 0n);
      const buffer = m.buffer!;
      const u8 = new Uint8Array(buffer);
      const u32 = new Uint32Array(buffer, 8, 4);
      const view = new DataView(buffer);
      u32[0] = 0x12345678;
      k.munmap(m);
      assert.equal(buffer.byteLength, 0);
      assert.equal(u8.length, 0);
      assert.equal(u32.length, 0);
      assert.throws(() => view.getUint32(8, true), TypeError);
      assert.throws(() => view.setUint8(0, 1), TypeError);
      assert.throws(() => u8.fill(1), TypeError);
      assert.throws(() => u8.set([1]), TypeError);
      assert.throws(() => u32.slice(), TypeError);
      assert.throws(() => new Uint8Array(buffer), TypeError);
      assert.throws(() => buffer.slice(0), TypeError);
      assert.throws(
        () => Buffer.from(buffer).readUInt8(0),
        (e: unknown) => e instanceof TypeError || e instanceof RangeError,
      );
      // Indexed access on a detached view is defined by JS to read undefined and drop stores.
      assert.equal(u8[0], undefined);
      u8[0] = 1;
      assert.equal(u8[0], undefined);
      assert.equal(mappingsNamed('node-vfio-test-detach'), 0);
      // munmap of an already unmapped mapping is a no-op, as munmap(2) of an unmapped range is.
      k.munmap(m);
    });
  });

  it('a mapping cannot be moved to another thread, where it would outlive its munmap', () => {
    const k = kernel();
    const m = k.mmap(-1, BigInt(k.pageSize), RW, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
    const { port1, port2 } = new MessageChannel();
    try {
      // Node 20 copies an untransferable buffer named in the transfer list; newer Node throws.
      try {
        port1.postMessage(m.buffer, [m.buffer!]);
      } catch (e) {
        assert.equal((e as Error).name, 'DataCloneError');
      }
      assert.equal(m.buffer!.byteLength, k.pageSize);
      k.mmioWrite(m, 0, 32, 0xabcd);
      assert.equal(new Uint32Array(m.buffer!)[0], 0xabcd);
    } finally {
      port1.close();
      port2.close();
      k.munmap(m);
    }
  });

  it('a read-only mapping has no ArrayBuffer (a store would kill the process) but can be read', () => {
    const k = kernel();
    withFd(k, k.memfdCreate('node-vfio-test-ro', 0), (fd) => {
      k.ftruncate(fd, BigInt(k.pageSize));
      k.pwrite(fd, Uint8Array.of(0x78, 0x56, 0x34, 0x12), 0n);
      const m = k.mmap(fd, BigInt(k.pageSize), PROT_READ, MAP_SHARED, 0n);
      assert.equal(m.buffer, null);
      assert.equal(k.mmioRead(m, 0, 32), 0x12345678);
      assert.throws(() => k.mmioWrite(m, 0, 32, 1), { name: 'VfioError', code: 'EACCES' });
      k.munmap(m);
      const none = k.mmap(fd, BigInt(k.pageSize), PROT_NONE, MAP_SHARED, 0n);
      assert.throws(() => k.mmioRead(none, 0, 8), { name: 'VfioError', code: 'EACCES' });
      k.munmap(none);
    });
  });

  it('a placement puts the mapping skew bytes past an aligned boundary and gives the rest of its reservation back', () => {
    const k = kernel();
    const page = BigInt(addon().pageSize());
    const align = 1n << 30n;
    const noneAt = (va: bigint): boolean =>
      fs
        .readFileSync('/proc/self/maps', 'utf8')
        .split('\n')
        .some((line) => {
          const [range = '', perms] = line.split(' ');
          const [start, end] = range.split('-').map((hex) => BigInt(`0x${hex || '0'}`));
          return perms === '---p' && start !== undefined && end !== undefined && start <= va && va < end;
        });
    withFd(k, k.memfdCreate('placed', MFD_CLOEXEC), (fd) => {
      k.ftruncate(fd, 4n * page);
      const m = k.mmap(fd, 4n * page, RW, MAP_SHARED, 0n, { align, skew: page });
      try {
        assert.equal(m.address % align, page);
        assert.ok(listed(m.address, 4n * page));
        assert.ok(!noneAt(m.address - page) && !noneAt(m.address + 4n * page), 'the PROT_NONE reservation around it is unmapped');
        new Uint8Array(m.buffer!).fill(0x5a, 0, 8);
        const back = new Uint8Array(8);
        k.pread(fd, back, 0n);
        assert.deepEqual([...back], Array(8).fill(0x5a));
      } finally {
        k.munmap(m);
      }
      assert.ok(!isMapped(m.address, page));
    });
    const z = k.mmap(-1, page, RW, MAP_PRIVATE | MAP_ANONYMOUS, 0n, { align: 2n << 20n, skew: 0n });
    assert.equal(z.address % (2n << 20n), 0n);
    k.munmap(z);
  });

  it('a placement is checked and a failed placed mmap leaves nothing reserved; MAP_FIXED stays refused with one', () => {
    const k = kernel();
    const page = BigInt(addon().pageSize());
    for (const placement of [
      { align: 3n * page, skew: 0n },
      { align: page / 2n, skew: 0n },
      { align: 2n * page, skew: 2n * page },
      { align: 4n * page, skew: 1n },
    ])
      assert.throws(
        () => k.mmap(-1, page, RW, MAP_PRIVATE | MAP_ANONYMOUS, 0n, placement),
        RangeError,
        JSON.stringify(placement, (_, v: unknown) => (typeof v === 'bigint' ? `${v}` : v)),
      );
    assert.throws(() => k.mmap(-1, page, RW, MAP_PRIVATE | MAP_ANONYMOUS | 0x10, 0n, { align: 2n * page, skew: page }), RangeError);
    const before = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').length;
    withFd(k, k.open('/dev/null', 0), (fd) => {
      assert.throws(
        () => k.mmap(fd, page, RW, MAP_SHARED, 0n, { align: 1n << 30n, skew: page }),
        (e: unknown) => e instanceof VfioError && e.syscall === 'mmap' && e.path === '/dev/null',
      );
    });
    assert.ok(fs.readFileSync('/proc/self/maps', 'utf8').split('\n').length <= before + 2, 'no 1 GiB reservation left behind');
  });

  it('mmap failures are VfioErrors; MAP_FIXED is refused', () => {
    const k = kernel();
    assert.throws(() => k.mmap(-1, 0n, RW, MAP_PRIVATE | MAP_ANONYMOUS, 0n), { name: 'VfioError', code: 'EINVAL', syscall: 'mmap' });
    assert.throws(() => k.mmap(-1, 4096n, RW, MAP_PRIVATE | MAP_ANONYMOUS | 0x10, 0n), RangeError);
    withFd(k, k.open('/dev/null', 0), (fd) => {
      assert.throws(
        () => k.mmap(fd, 4096n, RW, MAP_SHARED, 0n),
        (e: unknown) => e instanceof VfioError && e.path === '/dev/null',
      );
    });
  });

  it('mlock pins a small mapping (within RLIMIT_MEMLOCK)', () => {
    const k = kernel();
    const m = k.mmap(-1, BigInt(k.pageSize), RW, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
    try {
      k.mlock(m);
    } finally {
      k.munmap(m);
    }
    assert.throws(() => k.mlock(m), TypeError);
  });

  it('allocates with MAP_POPULATE and MAP_LOCKED (within RLIMIT_MEMLOCK)', () => {
    const k = kernel();
    const m = k.mmap(-1, BigInt(k.pageSize), RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED, 0n);
    try {
      const line = fs
        .readFileSync('/proc/self/smaps', 'utf8')
        .split(/\n(?=[0-9a-f]+-)/)
        .find((entry) => entry.startsWith(`${m.address.toString(16)}-`));
      assert.ok(line, 'the mapping is listed in /proc/self/smaps');
      assert.match(line, /^Locked:\s+4 kB$/m);
      assert.match(line, /^VmFlags:.*\blo\b/m);
    } finally {
      k.munmap(m);
    }
  });

  it('allocates a 2 MiB huge page with MAP_HUGETLB when the host has one free', function () {
    const free = Number(/^HugePages_Free:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
    if (free === 0) {
      console.log('    (skipped: no free 2 MiB huge pages; echo 1 > /proc/sys/vm/nr_hugepages to run it)');
      this.skip();
    }
    const k = kernel();
    const m = k.mmap(-1, 2n << 20n, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, 0n);
    try {
      assert.equal(m.address % (2n << 20n), 0n);
      k.mmioWrite(m, (2 << 20) - 8, 64, 0x1122334455667788n);
      assert.equal(k.mmioRead(m, (2 << 20) - 8, 64), 0x1122334455667788n);
    } finally {
      k.munmap(m);
    }
  });

  it('MAP_HUGETLB without free huge pages fails ENOMEM as a VfioError', function () {
    const free = Number(/^HugePages_Free:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
    if (free > 0) {
      console.log('    (skipped: this host has free huge pages)');
      this.skip();
    }
    assert.throws(() => kernel().mmap(-1, 2n << 20n, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, 0n), {
      name: 'VfioError',
      code: 'ENOMEM',
      syscall: 'mmap',
    });
  });

  it('a mapping larger than 4 GiB is made and usable by handle and address, with its buffer only where V8 can make one that large', () => {
    const k = kernel();
    const m = k.mmap(-1, LARGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, 0n);
    try {
      assert.equal(m.length, LARGE);
      assert.ok(listed(m.address, LARGE), 'listed in /proc/self/maps with its full length');
      if (m.buffer !== null) assert.equal(BigInt(m.buffer.byteLength), LARGE);
      const last = Number(LARGE) - 8;
      k.mmioWrite(m, last, 64, 0x0102030405060708n);
      k.mmioWrite(m, 0, 32, 0xfeedf00d);
      assert.equal(k.mmioRead(m, last, 64), 0x0102030405060708n);
      assert.equal(k.mmioRead(m, 0, 32), 0xfeedf00d);
      assert.throws(() => k.mmioRead(m, Number(LARGE), 8), RangeError);
    } finally {
      k.munmap(m);
    }
    assert.equal(isMapped(m.address, LARGE), false);
    assert.throws(() => k.mmioRead(m, 0, 32), { name: 'TypeError', message: /not mapped/ });
    k.munmap(m);
  });

  it('a mapping larger than 4 GiB that the program dropped is unmapped by its finalizer', async () => {
    const gc = exposeGc();
    const address = (() => kernel().mmap(-1, LARGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, 0n).address)();
    assert.ok(listed(address, LARGE));
    for (let i = 0; i < 20 && isMapped(address, LARGE); i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(isMapped(address, LARGE), false);
  });

  it("munmap refuses any object but the mapping's own, detached or not, and the mapping stays usable", () => {
    const k = kernel();
    const m = k.mmap(-1, BigInt(k.pageSize), RW, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
    const other = k.mmap(-1, BigInt(k.pageSize), RW, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
    const large = k.mmap(-1, LARGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, 0n);
    try {
      const detached = new ArrayBuffer(k.pageSize);
      structuredClone(detached, { transfer: [detached] });
      for (const impostor of [detached, new ArrayBuffer(k.pageSize), other.buffer!, {}, large.lifetime]) {
        assert.throws(() => addon().munmap(m.handle, impostor), { name: 'TypeError', message: /not the ArrayBuffer of this mapping/ });
      }
      for (const impostor of [detached, m.buffer!, {}]) {
        assert.throws(() => addon().munmap(large.handle, impostor), { name: 'TypeError', message: /not the object mmap returned/ });
      }
      assert.ok(listed(m.address, BigInt(k.pageSize)));
      new Uint8Array(m.buffer!)[7] = 0x5a;
      assert.equal(k.mmioRead(m, 7, 8), 0x5a);
      k.mmioWrite(large, 8, 64, 9n);
      assert.equal(k.mmioRead(large, 8, 64), 9n);
    } finally {
      k.munmap(large);
      k.munmap(other);
      k.munmap(m);
    }
    assert.equal(m.buffer!.byteLength, 0);
  });

  it('an ArrayBuffer the program dropped is unmapped by its finalizer', async function () {
    const gc = exposeGc();
    const k = kernel();
    await withFdAsync(k, k.memfdCreate('node-vfio-test-finalizer', 0), async (fd) => {
      k.ftruncate(fd, BigInt(k.pageSize));
      (() => {
        k.mmap(fd, BigInt(k.pageSize), RW, MAP_SHARED, 0n);
      })();
      assert.equal(mappingsNamed('node-vfio-test-finalizer'), 1);
      for (let i = 0; i < 20 && mappingsNamed('node-vfio-test-finalizer') > 0; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(mappingsNamed('node-vfio-test-finalizer'), 0);
    });
  });
});

describe('native kernel: exact-width MMIO accessors', function () {
  linuxOnly(this);
  const widths: MmioWidth[] = [8, 16, 32, 64];

  it('read back exactly what they wrote, at each width, in little-endian memory order', () => {
    const k = kernel();
    const m = k.mmap(-1, BigInt(k.pageSize), RW, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
    try {
      const view = new DataView(m.buffer!);
      const samples: Record<MmioWidth, (number | bigint)[]> = {
        8: [0, 1, 0x7f, 0x80, 0xff],
        16: [0, 0x1234, 0x8000, 0xffff],
        32: [0, 0xdeadbeef, 0x80000000, 0xffffffff],
        64: [0n, 0x0123456789abcdefn, 1n << 63n, (1n << 64n) - 1n],
      };
      for (const width of widths) {
        const bytes = width / 8;
        for (const [i, value] of samples[width].entries()) {
          const offset = { 8: 0, 16: 256, 32: 512, 64: 1024 }[width] + i * bytes;
          k.mmioWrite(m, offset, width, value);
          assert.equal(k.mmioRead(m, offset, width), value, `width ${width} at ${offset}`);
          const expected =
            width === 64
              ? view.getBigUint64(offset, true)
              : width === 32
                ? view.getUint32(offset, true)
                : width === 16
                  ? view.getUint16(offset, true)
                  : view.getUint8(offset);
          assert.equal(expected, value, `memory at ${offset} after a ${width}-bit write`);
        }
      }
      // The last bytes of the mapping are reachable at every width.
      for (const width of widths) {
        const last = k.pageSize - width / 8;
        k.mmioWrite(m, last, width, width === 64 ? 5n : 5);
        assert.equal(k.mmioRead(m, last, width), width === 64 ? 5n : 5);
      }
    } finally {
      k.munmap(m);
    }
  });

  it('reject out-of-bounds and misaligned offsets and out-of-range values with RangeError', () => {
    const k = kernel();
    const m = k.mmap(-1, BigInt(k.pageSize), RW, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
    try {
      for (const width of widths) {
        const bytes = width / 8;
        for (const offset of [-bytes, k.pageSize, k.pageSize - bytes + bytes, 2 ** 53, Number.NaN, Infinity, 0.5]) {
          assert.throws(() => k.mmioRead(m, offset, width), RangeError, `read ${width} at ${offset}`);
          assert.throws(() => k.mmioWrite(m, offset, width, width === 64 ? 0n : 0), RangeError, `write ${width} at ${offset}`);
        }
        if (bytes > 1) {
          for (let misalign = 1; misalign < bytes; misalign++) {
            assert.throws(() => k.mmioRead(m, 64 + misalign, width), { name: 'RangeError', message: /aligned/ });
            assert.throws(() => k.mmioWrite(m, 64 + misalign, width, width === 64 ? 0n : 0), { name: 'RangeError', message: /aligned/ });
          }
        }
      }
      assert.throws(() => k.mmioWrite(m, 0, 8, 0x100), RangeError);
      assert.throws(() => k.mmioWrite(m, 0, 16, -1), RangeError);
      assert.throws(() => k.mmioWrite(m, 0, 32, 2 ** 32), RangeError);
      assert.throws(() => k.mmioWrite(m, 0, 32, 1.5), RangeError);
      assert.throws(() => k.mmioWrite(m, 0, 64, 1n << 64n), RangeError);
      assert.throws(() => k.mmioWrite(m, 0, 64, -1n), RangeError);
      assert.throws(() => k.mmioRead(m, 0, 24 as MmioWidth), RangeError);
    } finally {
      k.munmap(m);
    }
  });

  it('reject a mapping that was unmapped, even after its slot is reused', () => {
    const k = kernel();
    const old = k.mmap(-1, BigInt(k.pageSize), RW, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
    k.munmap(old);
    const reused = k.mmap(-1, BigInt(k.pageSize), RW, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
    try {
      assert.throws(() => k.mmioRead(old, 0, 32), { name: 'TypeError', message: /not mapped/ });
      assert.throws(() => k.mmioWrite(old, 0, 64, 1n), { name: 'TypeError', message: /not mapped/ });
      k.mmioWrite(reused, 0, 32, 7);
      assert.equal(k.mmioRead(reused, 0, 32), 7);
      assert.throws(
        () => k.mmioRead({ address: reused.address, length: reused.length, prot: reused.prot, buffer: null }, 0, 32),
        TypeError,
      );
    } finally {
      k.munmap(reused);
    }
  });
});

/** The V8 gc() function, enabled at run time (mocha is not started with --expose-gc). */
function exposeGc(): () => void {
  const v8 = require('node:v8') as typeof import('node:v8');
  const vm = require('node:vm') as typeof import('node:vm');
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/**
 * Offsets and values at the edges of what Linux accepts: the model answers what a 64-bit 7.3
 * kernel answers (or, where the native addon refuses an argument before any syscall, the same
 * TypeError or RangeError), and never allocates in proportion to an offset.
 */
import assert from 'node:assert/strict';
import { createModelKernel } from '../../lib/model';
import { MemfdFile } from '../../lib/model/memory/memfd';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../lib/sys/constants';
import { expectErrno } from './harness';

const RW = PROT_READ | PROT_WRITE;
const MAX_LFS_FILESIZE = (1n << 63n) - 1n;

function memfd() {
  const k = createModelKernel('linux-7.3-noiommu');
  const fd = k.memfdCreate('sparse', 0);
  return { k, fd, file: k.fileOf(fd) as MemfdFile };
}

describe('memfd at large offsets (a sparse page cache up to MAX_LFS_FILESIZE)', () => {
  for (const offset of [1n << 50n, 1n << 62n, MAX_LFS_FILESIZE - 4096n]) {
    it(`pwrite/pread at 0x${offset.toString(16)} touch one page and read back exactly`, () => {
      const { k, fd, file } = memfd();
      assert.equal(k.pwrite(fd, Uint8Array.of(1, 2, 3), offset + 7n), 3);
      assert.equal(file.byteSize, offset + 10n);
      assert.equal(file.allocatedPages, 1);
      const out = Buffer.alloc(5);
      assert.equal(k.pread(fd, out, offset + 6n), 4, 'a short read at the end of the file');
      assert.deepEqual([...out], [0, 1, 2, 3, 0]);
    });
  }

  it('mmap MAP_SHARED at 2^50 maps one page of the file', () => {
    const { k, fd, file } = memfd();
    k.ftruncate(fd, (1n << 50n) + 4096n);
    const m = k.mmap(fd, 4096n, RW, MAP_SHARED, 1n << 50n);
    new Uint8Array(m.buffer!)[9] = 0x5a;
    const out = Buffer.alloc(1);
    k.pread(fd, out, (1n << 50n) + 9n);
    assert.equal(out[0], 0x5a);
    assert.equal(file.allocatedPages, 1);
  });

  it('ftruncate to MAX_LFS_FILESIZE and back allocates nothing and frees what is past the end', () => {
    const { k, fd, file } = memfd();
    k.ftruncate(fd, MAX_LFS_FILESIZE);
    assert.equal(file.byteSize, MAX_LFS_FILESIZE);
    k.pwrite(fd, Uint8Array.of(9), 1n << 40n);
    k.pwrite(fd, Uint8Array.of(9), 0n);
    assert.equal(file.allocatedPages, 2);
    k.ftruncate(fd, 4096n);
    assert.equal(file.allocatedPages, 1);
  });

  it('rw_verify_area: a range ending past the largest loff_t is EINVAL, reads and writes alike', () => {
    const { k, fd } = memfd();
    expectErrno('EINVAL', () => k.pwrite(fd, Uint8Array.of(1), MAX_LFS_FILESIZE));
    expectErrno('EINVAL', () => k.pwrite(fd, new Uint8Array(16), MAX_LFS_FILESIZE - 8n));
    expectErrno('EINVAL', () => k.pread(fd, Buffer.alloc(16), MAX_LFS_FILESIZE - 8n));
    assert.equal(k.pwrite(fd, new Uint8Array(0), MAX_LFS_FILESIZE), 0, 'an empty write at the limit is fine');
  });

  it('file_mmap_ok: a mapping reaching past MAX_LFS_FILESIZE is EOVERFLOW', () => {
    const { k, fd } = memfd();
    expectErrno('EOVERFLOW', () => k.mmap(fd, 8192n, RW, MAP_SHARED, (1n << 63n) - 4096n));
  });

  it('offsets and lengths the addon refuses before any syscall: the same TypeError or RangeError', () => {
    const { k, fd } = memfd();
    assert.throws(() => k.pwrite(fd, Uint8Array.of(1), -1n), { name: 'RangeError', message: /offset must be a non-negative bigint/ });
    assert.throws(() => k.pwrite(fd, Uint8Array.of(1), 1n << 63n), {
      name: 'RangeError',
      message: /offset must be a bigint in \[0, 9223372036854775807\]/,
    });
    assert.throws(() => k.pread(fd, Buffer.alloc(1), -4096n), RangeError);
    assert.throws(() => k.pread(fd, Buffer.alloc(1), 0 as unknown as bigint), { name: 'TypeError', message: /offset must be a bigint/ });
    assert.throws(() => k.ftruncate(fd, 1n << 64n), { name: 'RangeError', message: /length must be/ });
    assert.throws(() => k.ftruncate(fd, -1n), RangeError);
    assert.throws(() => k.mmap(fd, 4096n, RW, MAP_SHARED, -4096n), RangeError);
    assert.throws(() => k.mmap(fd, 1n << 64n, RW, MAP_SHARED, 0n), RangeError);
  });
});

describe('the other arguments the addon checks before any syscall', () => {
  it('fds, integers, names and MAP_FIXED: the TypeError or RangeError of native/args.cc', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const efd = k.eventfd(0, 0);
    assert.throws(() => k.close(-1), { name: 'RangeError', message: /fd must be an integer in \[0, 2147483647\]/ });
    assert.throws(() => k.close(3.5), RangeError);
    assert.throws(() => k.close('3' as unknown as number), { name: 'TypeError', message: /fd must be a number/ });
    assert.throws(() => k.ioctl(-1, 0x3b80, null), RangeError);
    assert.throws(() => k.ioctl(efd, -1, null), { name: 'RangeError', message: /request must be an integer/ });
    assert.throws(() => k.pread(-2, Buffer.alloc(1), 0n), RangeError);
    assert.throws(() => k.eventfdRead(-1), RangeError);
    assert.throws(() => k.eventfdWrite(-1, 1n), RangeError);
    assert.throws(() => k.ftruncate(-1, 0n), RangeError);
    assert.throws(() => k.eventfd(-1, 0), { name: 'RangeError', message: /initval must be an integer in \[0, 4294967295\]/ });
    assert.throws(() => k.eventfd(2 ** 32, 0), RangeError);
    assert.throws(() => k.eventfd(0, -1), RangeError);
    assert.throws(() => k.memfdCreate('x'.repeat(250), 0), { name: 'RangeError', message: /name must be at most 249 bytes/ });
    assert.throws(() => k.memfdCreate('a\0b', 0), RangeError);
    assert.throws(() => k.mmap(-2, 4096n, RW, MAP_SHARED, 0n), RangeError);
    assert.throws(() => k.mmap(-1, 4096n, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0n), {
      name: 'RangeError',
      message: /MAP_FIXED is not supported/,
    });
    assert.throws(() => k.mmap(-1, 4096n, -1, MAP_PRIVATE | MAP_ANONYMOUS, 0n), RangeError);
    expectErrno('EBADF', () => k.close(1000)); // a well-formed fd that is not open is the kernel's EBADF
    expectErrno('EINVAL', () => k.memfdCreate('x'.repeat(249), 0x100));
  });
});

describe('mmap placement (the reservation of, native/memory.cc MmapPlaced)', () => {
  it('puts the mapping skew bytes past an aligned boundary, checks the placement as the addon does, and refuses a misaligned hugetlb start', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const align = 1n << 30n;
    const m = k.mmap(-1, 8192n, RW, MAP_PRIVATE | MAP_ANONYMOUS, 0n, { align, skew: 4096n });
    assert.equal(m.address % align, 4096n);
    const fd = memfd();
    fd.k.ftruncate(fd.fd, 4096n);
    const f = fd.k.mmap(fd.fd, 4096n, RW, MAP_SHARED, 0n, { align: 2n << 20n, skew: 0n });
    assert.equal(f.address % (2n << 20n), 0n);
    // The rest of the reservation is free again: an unplaced mapping may land right after it.
    k.munmap(m);
    for (const placement of [
      { align: 3n * 4096n, skew: 0n },
      { align: 2048n, skew: 0n },
      { align: 8192n, skew: 8192n },
      { align: 16384n, skew: 1n },
    ])
      assert.throws(() => k.mmap(-1, 4096n, RW, MAP_PRIVATE | MAP_ANONYMOUS, 0n, placement), { name: 'RangeError', message: /placement/ });
    assert.throws(() => k.mmap(-1, 4096n, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0n, { align, skew: 0n }), {
      message: /MAP_FIXED is not supported/,
    });
    expectErrno('EINVAL', () => k.mmap(-1, 2n << 20n, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, 0n, { align, skew: 4096n }));
  });
});

describe('eventfd write values', () => {
  it('eventfd_write: 2^64-1 is EINVAL; -1n and 2^64 are the RangeError the addon throws', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const fd = k.eventfd(0, 0);
    expectErrno('EINVAL', () => k.eventfdWrite(fd, (1n << 64n) - 1n));
    assert.throws(() => k.eventfdWrite(fd, -1n), { name: 'RangeError', message: /value must be a non-negative bigint/ });
    assert.throws(() => k.eventfdWrite(fd, 1n << 64n), RangeError);
    k.eventfdWrite(fd, (1n << 64n) - 2n);
    assert.equal(k.eventfdRead(fd), (1n << 64n) - 2n, 'nothing was added by the refused writes');
  });
});

describe('a shared memfd mapping past the end of the file (SIGBUS on Linux)', () => {
  it('loads and stores through the mapping accessors there are EFAULT; below EOF they work', () => {
    const { k, fd } = memfd();
    k.ftruncate(fd, 4096n);
    const m = k.mmap(fd, 8192n, RW, MAP_SHARED, 0n);
    k.mmioWrite(m, 4088, 64, 1n);
    expectErrno('EFAULT', () => k.mmioWrite(m, 4096, 32, 1));
    expectErrno('EFAULT', () => k.mmioRead(m, 8188, 32));
    k.ftruncate(fd, 8192n);
    k.mmioWrite(m, 4096, 32, 7);
    assert.equal(k.mmioRead(m, 4096, 32), 7, 'growing the file makes the page valid');
  });

  it('copy_{from,to}_user and pin_user_pages of a page past the end are EFAULT', () => {
    const { k, fd } = memfd();
    k.ftruncate(fd, 4096n);
    const m = k.mmap(fd, 8192n, RW, MAP_SHARED, 4096n);
    expectErrno('EFAULT', () => k.space.readUser(m.address, 8));
    expectErrno('EFAULT', () => k.space.writeUser(m.address + 4096n, Uint8Array.of(1)));
    expectErrno('EFAULT', () => k.space.pinPages(m.address, 1, true));
    k.ftruncate(fd, 8192n);
    assert.equal(k.space.readUser(m.address, 8).length, 8);
    expectErrno('EFAULT', () => k.space.pinPages(m.address, 2, true));
    for (const pfn of k.space.pinPages(m.address, 1, true)) k.memory.put(pfn);
  });
});

import assert from 'node:assert/strict';
import { createModelKernel, profiles, PhysicalAccessFault } from '../../lib/model';
import { PhysicalMemory, machineRamLayout } from '../../lib/model/memory/physical-memory';
import {
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_HUGE_1GB,
  MAP_LOCKED,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_HUGETLB,
  O_RDONLY,
  PROT_READ,
  PROT_WRITE,
} from '../../lib/sys/constants';
import { expectErrno } from './harness';

const MiB = 1n << 20n;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function pagemapEntries(k: ReturnType<typeof createModelKernel>, va: bigint, pages: number): bigint[] {
  const fd = k.open('/proc/self/pagemap', O_RDONLY);
  const buf = Buffer.alloc(pages * 8);
  k.pread(fd, buf, (va / 4096n) * 8n);
  k.close(fd);
  return Array.from({ length: pages }, (_, i) => buf.readBigUInt64LE(i * 8));
}

describe('physical memory', () => {
  it('machine RAM layout like QEMU q35: all low up to 2.75 GiB, else 2 GiB low and the rest above 4 GiB', () => {
    assert.deepEqual(machineRamLayout(2n << 30n), [{ start: 0n, end: 2n << 30n }]);
    assert.deepEqual(machineRamLayout(4n << 30n), [
      { start: 0n, end: 2n << 30n },
      { start: 4n << 30n, end: 6n << 30n },
    ]);
  });

  it('frame allocation is deterministic for a seed and scattered by fragmentation', () => {
    const cfg = profiles['linux-7.3-noiommu'].memory;
    const a = new PhysicalMemory(cfg).allocateFrames(64);
    const b = new PhysicalMemory(cfg).allocateFrames(64);
    assert.deepEqual(a, b);
    const contiguous = (pfns: number[]) => pfns.slice(1).filter((p, i) => p === pfns[i]! + 1).length;
    const calm = new PhysicalMemory({ ...cfg, fragmentation: 0 }).allocateFrames(256);
    const wild = new PhysicalMemory({ ...cfg, fragmentation: 1 }).allocateFrames(256);
    assert.ok(contiguous(calm) > 200, `fragmentation 0 gives long runs (${contiguous(calm)})`);
    assert.ok(contiguous(wild) < 16, `fragmentation 1 scatters pages (${contiguous(wild)})`);
  });

  it('frames never come from the first 16 MiB; freed frames are reused first', () => {
    const m = new PhysicalMemory(profiles['linux-7.3-noiommu'].memory);
    const pfns = m.allocateFrames(1000);
    assert.ok(pfns.every((p) => p >= 4096));
    m.put(pfns[10]!);
    assert.deepEqual(m.allocateFrames(1), [pfns[10]]);
  });

  it('dmaRead/dmaWrite: a free frame or an address outside RAM is a PhysicalAccessFault, nothing is written', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    assert.throws(() => k.memory.dmaRead(0x100_0000n, 4), PhysicalAccessFault);
    assert.throws(() => k.memory.dmaWrite(0xfee0_0000n, Uint8Array.of(1)), PhysicalAccessFault);
    assert.throws(() => k.memory.dmaRead(1n << 50n, 1), PhysicalAccessFault);
  });

  it('huge page pools: MAP_HUGETLB takes 2 MiB pages until the pool is empty (ENOMEM), and gives them back', () => {
    const base = profiles['linux-7.3-noiommu'];
    const k = createModelKernel({ ...base, memory: { ...base.memory, hugepages: { '2M': 2, '1G': 0 } } });
    const a = k.mmap(-1, 2n * MiB, RW, ANON | MAP_HUGETLB, 0n);
    const b = k.mmap(-1, 1n, RW, ANON | MAP_HUGETLB, 0n);
    assert.equal(b.length, 2n * MiB, 'hugetlb lengths round up to whole huge pages');
    expectErrno('ENOMEM', () => k.mmap(-1, 2n * MiB, RW, ANON | MAP_HUGETLB, 0n));
    expectErrno('ENOMEM', () => k.mmap(-1, 1n << 30n, RW, ANON | MAP_HUGETLB | MAP_HUGE_1GB, 0n));
    assert.equal(k.readFile('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages').toString(), '0\n');
    k.munmap(a);
    assert.equal(k.readFile('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages').toString(), '1\n');
    const entries = pagemapEntries(k, b.address, 512);
    const pfn0 = entries[0]! & ((1n << 55n) - 1n);
    assert.ok(
      entries.every((e, i) => (e & ((1n << 55n) - 1n)) === pfn0 + BigInt(i)),
      'a huge page is physically contiguous',
    );
    assert.equal(pfn0 % 512n, 0n, 'and 2 MiB aligned');
  });
});

describe('process address space (mmap, munmap, mlock)', () => {
  it('get_unmapped_area (top-down): addresses look like 0x7fxx_xxxx_x000 and go downwards', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const a = k.mmap(-1, 4096n, RW, ANON, 0n);
    const b = k.mmap(-1, 4096n, RW, ANON, 0n);
    assert.equal(a.address >> 40n, 0x7fn);
    assert.equal(a.address % 4096n, 0n);
    assert.equal(b.address, a.address - 4096n);
  });

  it('__get_unmapped_area: private anonymous mappings of a multiple of 2 MiB are 2 MiB aligned (THP)', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    k.mmap(-1, 12288n, RW, ANON, 0n);
    const m = k.mmap(-1, 4n * MiB, RW, ANON, 0n);
    assert.equal(m.address % (2n * MiB), 0n);
    const odd = k.mmap(-1, 3n * MiB, RW, ANON, 0n);
    assert.equal(odd.address, m.address - 3n * MiB, 'other lengths are placed right below');
  });

  it('mmap: length 0, unaligned offset, both or neither of SHARED/PRIVATE → EINVAL; no fd → EBADF', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    expectErrno('EINVAL', () => k.mmap(-1, 0n, RW, ANON, 0n));
    expectErrno('EINVAL', () => k.mmap(-1, 4096n, RW, MAP_ANONYMOUS, 0n));
    expectErrno('EINVAL', () => k.mmap(-1, 4096n, RW, MAP_ANONYMOUS | MAP_SHARED | MAP_PRIVATE, 0n));
    const fd = k.memfdCreate('x', 0);
    k.ftruncate(fd, 8192n);
    expectErrno('EINVAL', () => k.mmap(fd, 4096n, RW, MAP_SHARED, 100n));
    expectErrno('EBADF', () => k.mmap(99, 4096n, RW, MAP_SHARED, 0n));
  });

  it('munmap detaches the ArrayBuffer: later access throws TypeError; a second munmap is a no-op', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const m = k.mmap(-1, 8192n, RW, ANON, 0n);
    new Uint8Array(m.buffer!)[0] = 1;
    k.munmap(m);
    assert.equal(m.buffer!.byteLength, 0);
    assert.throws(() => new Uint8Array(m.buffer!), TypeError);
    k.munmap(m);
    assert.throws(() => k.mmioRead(m, 0, 32), TypeError);
  });

  it('munmap frees frames nobody pinned; pinned frames keep their bytes for the device', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const m = k.mmap(-1, 8192n, RW, ANON, 0n);
    const pfns = pagemapEntries(k, m.address, 2).map((e) => e & ((1n << 55n) - 1n));
    new Uint8Array(m.buffer!).set([9, 8, 7], 4096);
    const held = k.space.pinPages(m.address + 4096n, 1, true);
    k.munmap(m);
    assert.equal(k.memory.isLive(Number(pfns[0])), false);
    assert.deepEqual([...k.memory.dmaRead(pfns[1]! * 4096n, 3)], [9, 8, 7]);
    k.memory.put(held[0]!);
    assert.equal(k.memory.isLive(Number(pfns[1])), false);
  });

  it('do_mlock: RLIMIT_MEMLOCK without CAP_IPC_LOCK → ENOMEM; MAP_LOCKED past it → EAGAIN; locked_vm is charged', () => {
    const k = createModelKernel('unprivileged');
    const m = k.mmap(-1, 4n * MiB, RW, ANON, 0n);
    k.mlock(m);
    assert.equal(k.locked.mmLockedPages, 1024);
    const big = k.mmap(-1, 8n * MiB, RW, ANON, 0n);
    expectErrno('ENOMEM', () => k.mlock(big));
    expectErrno('EAGAIN', () => k.mmap(-1, 8n * MiB, RW, ANON | MAP_LOCKED, 0n));
    k.munmap(m);
    assert.equal(k.locked.mmLockedPages, 0);
    k.mmap(-1, 8n * MiB, RW, ANON | MAP_LOCKED, 0n);
    assert.equal(k.locked.mmLockedPages, 2048);
  });

  it('can_do_mlock: RLIMIT_MEMLOCK 0 and no CAP_IPC_LOCK → EPERM', () => {
    const base = profiles.unprivileged;
    const k = createModelKernel({ ...base, process: { ...base.process, memlockLimit: 0n } });
    const m = k.mmap(-1, 4096n, RW, ANON, 0n);
    expectErrno('EPERM', () => k.mlock(m));
    expectErrno('EPERM', () => k.mmap(-1, 4096n, RW, ANON | MAP_LOCKED, 0n));
  });

  it('copy_from_user/copy_to_user: EFAULT outside mappings or against the protection', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const ro = k.mmap(-1, 4096n, PROT_READ, ANON, 0n);
    assert.throws(() => k.space.readUser(0x1000n, 4), { code: 'EFAULT' });
    assert.throws(() => k.space.writeUser(ro.address, Uint8Array.of(1)), { code: 'EFAULT' });
    assert.equal(k.space.readUser(ro.address, 4).length, 4);
  });

  it('mmioRead/mmioWrite on RAM mappings: exact width, little endian, bounds and alignment checked', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const m = k.mmap(-1, 4096n, RW, ANON, 0n);
    k.mmioWrite(m, 8, 64, 0x1122334455667788n);
    assert.equal(k.mmioRead(m, 8, 8), 0x88);
    assert.equal(k.mmioRead(m, 12, 32), 0x11223344);
    assert.throws(() => k.mmioRead(m, 2, 32), RangeError);
    assert.throws(() => k.mmioRead(m, 4096, 8), RangeError);
    assert.throws(() => k.mmioWrite(m, 0, 8, 256), RangeError);
  });
});

describe('memfd', () => {
  it('shared mappings of the same window share one ArrayBuffer; writes show in pread and in both', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const fd = k.memfdCreate('buf', 0);
    k.ftruncate(fd, 16384n);
    const a = k.mmap(fd, 16384n, RW, MAP_SHARED, 0n);
    const b = k.mmap(fd, 16384n, RW, MAP_SHARED, 0n);
    new Uint8Array(a.buffer!)[100] = 42;
    assert.equal(new Uint8Array(b.buffer!)[100], 42);
    const out = Buffer.alloc(1);
    k.pread(fd, out, 100n);
    assert.equal(out[0], 42);
    k.pwrite(fd, Uint8Array.of(43), 101n);
    assert.equal(new Uint8Array(a.buffer!)[101], 43);
  });

  it('the file keeps its bytes across unmap and a later mapping at an offset sees them', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const fd = k.memfdCreate('buf', 0);
    k.ftruncate(fd, 16384n);
    const a = k.mmap(fd, 16384n, RW, MAP_SHARED, 0n);
    new Uint8Array(a.buffer!)[8192 + 5] = 7;
    k.munmap(a);
    assert.throws(() => new Uint8Array(a.buffer!), TypeError);
    const tail = k.mmap(fd, 8192n, RW, MAP_SHARED, 8192n);
    assert.equal(new Uint8Array(tail.buffer!)[5], 7);
  });

  it('a shared window overlapping a different live one is refused (a model limitation, EINVAL)', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const fd = k.memfdCreate('buf', 0);
    k.ftruncate(fd, 16384n);
    k.mmap(fd, 16384n, RW, MAP_SHARED, 0n);
    expectErrno('EINVAL', () => k.mmap(fd, 4096n, RW, MAP_SHARED, 4096n));
  });

  it('MAP_PRIVATE of a memfd is a private copy', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const fd = k.memfdCreate('buf', 0);
    k.ftruncate(fd, 4096n);
    k.pwrite(fd, Uint8Array.of(5), 0n);
    const p = k.mmap(fd, 4096n, RW, MAP_PRIVATE, 0n);
    assert.equal(new Uint8Array(p.buffer!)[0], 5);
    new Uint8Array(p.buffer!)[0] = 6;
    const out = Buffer.alloc(1);
    k.pread(fd, out, 0n);
    assert.equal(out[0], 5);
  });

  it('memfd_create: unknown flags or a huge size without MFD_HUGETLB → EINVAL; hugetlbfs sizes are whole huge pages', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    expectErrno('EINVAL', () => k.memfdCreate('x', 0x100));
    expectErrno('EINVAL', () => k.memfdCreate('x', 21 << 26));
    const h = k.memfdCreate('huge', MFD_HUGETLB);
    expectErrno('EINVAL', () => k.ftruncate(h, 4096n));
    k.ftruncate(h, 2n * MiB);
    const m = k.mmap(h, 2n * MiB, RW, MAP_SHARED, 0n);
    assert.equal(m.address % (2n * MiB), 0n);
    const pfns = pagemapEntries(k, m.address, 512).map((e) => e & ((1n << 55n) - 1n));
    assert.ok(pfns.every((p, i) => p === pfns[0]! + BigInt(i)));
  });

  it('ftruncate needs a writable memfd (EINVAL otherwise)', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const efd = k.eventfd(0, 0);
    expectErrno('EINVAL', () => k.ftruncate(efd, 4096n));
    expectErrno('EBADF', () => k.ftruncate(99, 4096n));
  });
});

describe('/proc/self/pagemap (pagemap_read)', () => {
  it('present pages: bit 63, PFN in bits 0-54, bit 56 exclusive; shared/file pages set bit 61', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const anon = k.mmap(-1, 4096n, RW, ANON, 0n);
    const [e] = pagemapEntries(k, anon.address, 1);
    assert.equal(e! >> 63n, 1n);
    assert.equal((e! >> 61n) & 1n, 0n);
    assert.equal((e! >> 56n) & 1n, 1n);
    const pfn = e! & ((1n << 55n) - 1n);
    new Uint8Array(anon.buffer!)[3] = 0x77;
    assert.equal(k.memory.dmaRead(pfn * 4096n + 3n, 1)[0], 0x77);
    const fd = k.memfdCreate('f', 0);
    k.ftruncate(fd, 4096n);
    const shared = k.mmap(fd, 4096n, RW, MAP_SHARED, 0n);
    assert.equal((pagemapEntries(k, shared.address, 1)[0]! >> 61n) & 1n, 1n);
  });

  it('without CAP_SYS_ADMIN the PFN bits read as zero (present bit still set)', () => {
    const k = createModelKernel('unprivileged');
    const m = k.mmap(-1, 4096n, RW, ANON, 0n);
    const [e] = pagemapEntries(k, m.address, 1);
    assert.equal(e, (1n << 63n) | (1n << 56n));
  });

  it('unmapped pages read as 0; position or size not a multiple of 8 → EINVAL', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const m = k.mmap(-1, 4096n, RW, ANON, 0n);
    const entries = pagemapEntries(k, m.address - 4096n, 3);
    assert.equal(entries[0], 0n);
    assert.notEqual(entries[1], 0n);
    assert.equal(entries[2], 0n);
    const fd = k.open('/proc/self/pagemap', O_RDONLY);
    expectErrno('EINVAL', () => k.pread(fd, Buffer.alloc(8), 4n));
    expectErrno('EINVAL', () => k.pread(fd, Buffer.alloc(7), 0n));
  });

  it('one bulk pread of a large buffer answers every page', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const m = k.mmap(-1, 64n * MiB, RW, ANON, 0n);
    const entries = pagemapEntries(k, m.address, 16384);
    assert.ok(entries.every((e) => e >> 63n === 1n));
  });
});

describe('runtime huge page reservation (nr_hugepages)', () => {
  it('set_max_huge_pages: root grows the 2 MiB pool from free memory and shrinks it again', () => {
    const base = profiles['linux-7.3-noiommu'];
    const k = createModelKernel({ ...base, memory: { ...base.memory, hugepages: { '2M': 0, '1G': 0 } } });
    expectErrno('ENOMEM', () => k.mmap(-1, 2n * MiB, RW, ANON | MAP_HUGETLB, 0n));
    k.writeFile('/proc/sys/vm/nr_hugepages', '4\n');
    assert.equal(k.readFile('/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages').toString(), '4\n');
    assert.match(k.readFile('/proc/meminfo').toString(), /HugePages_Total:\s+4/);
    const m = k.mmap(-1, 2n * MiB, RW, ANON | MAP_HUGETLB, 0n);
    const pfns = pagemapEntries(k, m.address, 512).map((e) => e & ((1n << 55n) - 1n));
    assert.ok(pfns.every((p, i) => p === pfns[0]! + BigInt(i)));
    // Small allocations never land in the reserved pool.
    const small = new Set(pagemapEntries(k, k.mmap(-1, 4n * MiB, RW, ANON, 0n).address, 1024).map((e) => e & ((1n << 55n) - 1n)));
    assert.ok(pfns.every((p) => !small.has(p)));
    k.writeFile('/proc/sys/vm/nr_hugepages', '0');
    assert.equal(k.readFile('/proc/sys/vm/nr_hugepages').toString(), '1\n', 'the huge page in use stays');
    expectErrno('EINVAL', () => k.writeFile('/proc/sys/vm/nr_hugepages', 'many'));
  });

  it('an unprivileged process cannot change nr_hugepages (EACCES)', () => {
    const k = createModelKernel('unprivileged');
    expectErrno('EACCES', () => k.writeFile('/proc/sys/vm/nr_hugepages', '1'));
  });
});

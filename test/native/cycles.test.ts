import assert from 'node:assert/strict';
import fs from 'node:fs';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, O_RDONLY, PROT_READ, PROT_WRITE } from '../../lib/sys/constants';
import { kernel, linuxOnly, mappingsNamed, openFdCount } from './support';

describe('native kernel: nothing leaks over many cycles', function () {
  linuxOnly(this);

  it('10,000 open/close cycles leave /proc/self/fd unchanged', () => {
    const k = kernel();
    const before = openFdCount();
    for (let i = 0; i < 10_000; i++) k.close(k.open('/dev/null', O_RDONLY));
    assert.equal(openFdCount(), before);
  });

  it('1,000 mmap/munmap cycles (memfd and anonymous) leave /proc/self/maps and /proc/self/fd unchanged', () => {
    const k = kernel();
    const fdsBefore = openFdCount();
    const memfd = k.memfdCreate('node-vfio-test-cycles', 0);
    k.ftruncate(memfd, BigInt(4 * k.pageSize));
    const anonymous: bigint[] = [];
    for (let i = 0; i < 1_000; i++) {
      const shared = k.mmap(memfd, BigInt(4 * k.pageSize), PROT_READ | PROT_WRITE, MAP_SHARED, 0n);
      const anon = k.mmap(-1, BigInt(3 * k.pageSize), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
      new Uint8Array(shared.buffer!)[i] = 1;
      k.mmioWrite(anon, 8 * (i % 100), 64, BigInt(i));
      anonymous.push(anon.address);
      k.munmap(shared);
      k.munmap(anon);
    }
    assert.equal(mappingsNamed('node-vfio-test-cycles'), 0);
    k.close(memfd);
    assert.equal(openFdCount(), fdsBefore);
    // None of the anonymous ranges is still mapped at its address with its size.
    const maps = new Set(
      fs
        .readFileSync('/proc/self/maps', 'utf8')
        .split('\n')
        .map((l: string) => l.split(' ')[0]),
    );
    const size = BigInt(3 * k.pageSize);
    const stillMapped = anonymous.filter((a) => maps.has(`${a.toString(16)}-${(a + size).toString(16)}`));
    assert.deepEqual(stillMapped, []);
  });

  it('1,000 wait/wake cycles on an eventfd leave no fd or pending handle behind', async () => {
    const k = kernel();
    const before = openFdCount();
    const fd = k.eventfd(0, 0);
    for (let i = 0; i < 1_000; i++) {
      const waiting = k.waitReadable(fd);
      k.eventfdWrite(fd, 1n);
      await waiting;
      assert.equal(k.eventfdRead(fd), 1n);
    }
    k.close(fd);
    assert.equal(openFdCount(), before);
  });
});

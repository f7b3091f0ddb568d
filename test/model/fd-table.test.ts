import assert from 'node:assert/strict';
import { createModelKernel, profiles } from '../../lib/model';
import type { OpenFile } from '../../lib/model/open-file';
import { O_RDWR } from '../../lib/sys/constants';
import { expectErrno } from './harness';

describe('ModelKernel: fd allocation (alloc_fd, RLIMIT_NOFILE)', () => {
  it('EMFILE once the lowest free fd reaches RLIMIT_NOFILE (1024 by default, like a shell)', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    assert.equal(k.openFilesLimit, 1024);
    const fds: number[] = [];
    for (let i = 0; i < 1021; i++) fds.push(k.eventfd(0, 0));
    assert.equal(fds.at(-1), 1023);
    expectErrno('EMFILE', () => k.eventfd(0, 0));
    expectErrno('EMFILE', () => k.open('/dev/iommu', O_RDWR));
    expectErrno('EMFILE', () => k.memfdCreate('x', 0));
    k.close(500);
    assert.equal(k.eventfd(0, 0), 500, 'a closed fd below the limit is handed out again');
    for (const fd of fds) k.close(fd);
    assert.equal(k.openFdCount, 0);
  });

  it('the limit comes from the profile and can be changed per kernel (setrlimit)', () => {
    const base = profiles['linux-7.3-noiommu'];
    const k = createModelKernel({ ...base, process: { ...base.process, openFilesLimit: 5 } });
    assert.deepEqual([k.eventfd(0, 0), k.eventfd(0, 0)], [3, 4]);
    expectErrno('EMFILE', () => k.eventfd(0, 0));
    k.openFilesLimit = 6;
    assert.equal(k.eventfd(0, 0), 5);
    k.openFilesLimit = 3;
    k.close(3);
    expectErrno('EMFILE', () => k.eventfd(0, 0));
    assert.throws(() => {
      k.openFilesLimit = -1;
    }, RangeError);
  });

  it('at the limit, open(2) does not open the file and an installed file is released', () => {
    const base = profiles['linux-7.3-noiommu'];
    const k = createModelKernel({ ...base, process: { ...base.process, openFilesLimit: 3 } });
    let opened = 0;
    k.vfs.add('/dev/counting', {
      type: 'chardev',
      open: () => {
        opened++;
        return { kind: 'test' };
      },
    });
    expectErrno('EMFILE', () => k.open('/dev/counting', O_RDWR));
    assert.equal(opened, 0, 'do_sys_open takes the fd before it opens');
    let released = 0;
    const file: OpenFile = { kind: 'test', release: () => released++ };
    expectErrno('EMFILE', () => k.installFile(file));
    assert.equal(released, 1, 'the file that got no fd is put');
    assert.equal(k.liveFileCount, 0);
  });

  it('a failed open gives its fd back: the next open gets the same lowest fd', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    k.vfs.add('/dev/refusing', {
      type: 'chardev',
      open: () => {
        throw new Error('refused');
      },
    });
    assert.throws(() => k.open('/dev/refusing', O_RDWR), /refused/);
    assert.equal(k.eventfd(0, 0), 3);
  });

  it('the lowest free fd among many closed ones, in any order', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    k.openFilesLimit = 1 << 16;
    const fds = Array.from({ length: 200 }, () => k.eventfd(0, 0));
    const closed = [150, 7, 90, 3, 199, 42, 120];
    for (const fd of closed) k.close(fd);
    const reopened = closed.map(() => k.eventfd(0, 0));
    assert.deepEqual(
      reopened,
      [...closed].sort((a, b) => a - b),
    );
    assert.equal(k.eventfd(0, 0), 203);
    assert.equal(fds.length, 200);
  });
});

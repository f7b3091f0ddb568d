import assert from 'node:assert/strict';
import { Harness, MiB, expectErrno } from './harness';

describe('model smoke', () => {
  it('maps, attaches, gets PA, unmaps', () => {
    const h = new Harness();
    const ioas = h.ioasAlloc();
    assert.equal(ioas, 1);
    const m = h.anon(4n * MiB);
    const iova = h.map(ioas, m.address, 4n * MiB);
    console.log('va', m.address.toString(16), 'iova', iova.toString(16));
    expectErrno('EOPNOTSUPP', () => h.getPa(ioas, iova, 4096n));
    const dev = h.bind();
    const hwpt = h.ctx.attachDevice(dev, ioas);
    console.log('dev', dev, 'hwpt', hwpt, 'pinned', h.kernel.locked.pinnedPages);
    const pa = h.getPa(ioas, iova, 4n * MiB);
    console.log('pa', pa.phys.toString(16), pa.length.toString(16));
    new Uint8Array(m.buffer!)[0] = 0x42;
    assert.equal(h.kernel.memory.dmaRead(pa.phys, 1)[0], 0x42);
    assert.equal(h.unmap(ioas, iova, 4n * MiB), 4n * MiB);
    h.kernel.munmap(m);
    assert.throws(() => new Uint8Array(m.buffer!), TypeError);
  });
});

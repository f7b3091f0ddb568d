/**
 * VFIO info capability chains (vfio_main.c vfio_info_cap_add / vfio_info_cap_shift): 8-byte
 * aligned entries, `next` offsets relative to the chain while building and shifted by the info
 * struct's size when copied after it, the last entry's `next` 0.
 */
import assert from 'node:assert/strict';
import { InfoCapChain } from '../../../lib/model/vfio/info-caps';
import { VfioInfoCapHeader } from '../../../lib/uapi/vfio';

describe('VFIO info capability chains (vfio_info_cap_add, vfio_info_cap_shift)', () => {
  it('pads each capability to 8 bytes and links them in order', () => {
    const chain = new InfoCapChain();
    chain.add(3, 1);
    chain.add(1, 1, new Uint8Array([1, 2, 3, 4, 5]));
    chain.add(2, 2, new Uint8Array(8));
    assert.equal(chain.size, 8 + 16 + 16);
    const out = chain.shifted(32);
    assert.deepEqual(VfioInfoCapHeader.decode(out, 0), { id: 3, version: 1, next: 32 + 8 });
    assert.deepEqual(VfioInfoCapHeader.decode(out, 8), { id: 1, version: 1, next: 32 + 24 });
    assert.deepEqual(VfioInfoCapHeader.decode(out, 24), { id: 2, version: 2, next: 0 });
    assert.deepEqual([...out.subarray(16, 21)], [1, 2, 3, 4, 5]);
  });

  it('a single capability has next 0 whatever the shift', () => {
    const chain = new InfoCapChain();
    chain.add(3, 1);
    assert.equal(VfioInfoCapHeader.get(chain.shifted(104), 'next'), 0);
  });
});

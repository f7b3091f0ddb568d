import assert from 'node:assert/strict';
import { iova, physAddr, userVa, type Iova, type PhysAddr, type BusAddr } from '../../lib/sys/addresses';
import type { UserVa } from '../../lib/sys/kernel';

// Compile-time checks: each line below must fail to type-check, or the build breaks
// (`@ts-expect-error` on a line without an error is itself an error).
function takesIova(v: Iova): bigint {
  return v;
}
function takesPhys(v: PhysAddr): bigint {
  return v;
}
function takesUserVa(v: UserVa): bigint {
  return v;
}

describe('branded address types', () => {
  it('keep physical addresses, IOVAs and process addresses apart at compile time', () => {
    const phys = physAddr(0x1000n);
    const io = iova(0x2000n);
    const bus = 0x3000n as BusAddr;
    // @ts-expect-error a physical address is not an IOVA
    takesIova(phys);
    // @ts-expect-error an IOVA is not a physical address
    takesPhys(io);
    // @ts-expect-error a plain bigint is not an IOVA until marked
    takesIova(0x2000n);
    // @ts-expect-error an IOVA is not a process address
    takesUserVa(io);
    // @ts-expect-error a bus address is neither
    takesIova(bus);
    assert.equal(takesIova(io) + takesPhys(phys) + takesUserVa(userVa(1)), 0x3001n, 'all are plain bigints at run time');
  });

  it('range-check the values they mark', () => {
    assert.equal(iova(0), 0n);
    assert.equal(physAddr((1n << 64n) - 1n), (1n << 64n) - 1n);
    assert.throws(() => iova(-1n), RangeError);
    assert.throws(() => physAddr(1n << 64n), RangeError);
    assert.throws(() => userVa(-1), RangeError);
  });
});

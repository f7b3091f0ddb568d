/**
 * Every numeric, bigint and enum parameter of the public API is checked before anything reaches
 * the kernel, for callers in plain JavaScript too: a value of the wrong kind is a TypeError, one
 * out of range (or a fraction, NaN, a negative length) a RangeError, each naming the method and the
 * parameter; nothing is truncated into another value, and no call acts half-way.
 */
import assert from 'node:assert/strict';
import { createModelKernel } from '../../lib/model';
import { openDevice } from '../../lib/vfio/open-device';
import { Iommufd } from '../../lib/iommu/iommufd';
import { DmaBuffer } from '../../lib/dma/buffer';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../lib/sys/constants';
import type { Kernel } from '../../lib/sys/kernel';
import { EDU } from './support/edu';

const EDU_BDF = '0000:00:03.0';

/** A kernel that records the names of the calls made through it. */
function recording(kernel: Kernel): { kernel: Kernel; calls: string[] } {
  const calls: string[] = [];
  const proxy = new Proxy(kernel, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(property));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { kernel: proxy, calls };
}

const wrongValues = (bits: number) => [2 ** bits + 5, -1, NaN, 1.5, Infinity];

function rejects(call: () => unknown, kind: typeof RangeError | typeof TypeError, where: string, parameter: string): void {
  assert.throws(call, (e: unknown) => e instanceof kind && e.message.startsWith(`${where}: ${parameter} `), `${where} ${parameter}`);
}

describe('every value checked before it reaches the kernel [model linux-7.3-noiommu]', () => {
  it('Region.write8/16/32/64 refuse values that do not fit instead of truncating them, and issue no pwrite', () => {
    const { kernel, calls } = recording(createModelKernel('linux-7.3-noiommu'));
    using dev = openDevice(EDU_BDF, { kernel });
    const bar = dev.bar(0);
    const writes = { write8: 8, write16: 16, write32: 32 } as const;
    calls.length = 0;
    for (const [method, bits] of Object.entries(writes) as [keyof typeof writes, number][]) {
      for (const value of wrongValues(bits)) rejects(() => bar[method](EDU.LIVENESS, value), RangeError, `Region.${method}`, 'value');
      rejects(() => bar[method](EDU.LIVENESS, '5' as unknown as number), TypeError, `Region.${method}`, 'value');
    }
    rejects(() => bar.write64(0x80, 5 as unknown as bigint), TypeError, 'Region.write64', 'value');
    rejects(() => bar.write64(0x80, -1n), RangeError, 'Region.write64', 'value');
    rejects(() => bar.write64(0x80, 1n << 64n), RangeError, 'Region.write64', 'value');
    rejects(() => bar.write32(1.5, 0), RangeError, 'Region.write32', 'offset');
    rejects(() => bar.read32(NaN), RangeError, 'Region.read32', 'offset');
    rejects(() => bar.read(0, -1), RangeError, 'Region.read', 'length');
    rejects(() => bar.write(0, [1, 2] as unknown as Uint8Array), TypeError, 'Region.write', 'data');
    rejects(() => bar.mmap(0n, 1.5), RangeError, 'Region.mmap', 'length');
    assert.deepEqual(
      calls.filter((c) => c === 'pwrite' || c === 'pread' || c === 'mmap'),
      [],
    );
    bar.write32(EDU.LIVENESS, 0xffff_ffff);
    assert.equal(bar.read32(EDU.LIVENESS), 0, 'a value in range still goes through');
  });

  it('ConfigSpace.write8/16/32 and updateCommand refuse values that do not fit', () => {
    const kernel = createModelKernel('linux-7.3-noiommu');
    using dev = openDevice(EDU_BDF, { kernel });
    const config = dev.config;
    const before = config.read32(0x3c);
    for (const value of wrongValues(32)) rejects(() => config.write32(0x3c, value), RangeError, 'ConfigSpace.write32', 'value');
    for (const value of wrongValues(16)) rejects(() => config.write16(0x3c, value), RangeError, 'ConfigSpace.write16', 'value');
    for (const value of wrongValues(8)) rejects(() => config.write8(0x3c, value), RangeError, 'ConfigSpace.write8', 'value');
    rejects(() => config.write8(-4, 0), RangeError, 'ConfigSpace.write8', 'offset');
    rejects(() => config.updateCommand(0x1_0000), RangeError, 'ConfigSpace.updateCommand', 'set');
    assert.equal(config.read32(0x3c), before, 'nothing was written');
  });

  it('Ioas: a number where a bigint belongs, a negative or NaN length, are refused before the kernel acts', () => {
    const { kernel, calls } = recording(createModelKernel('linux-7.3-noiommu'));
    using iommufd = Iommufd.open({ kernel });
    const ioas = iommufd.ioas();
    const memory = kernel.mmap(-1, 16384n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
    calls.length = 0;
    rejects(() => ioas.map({ va: memory.address, length: 4096 as unknown as bigint }), TypeError, 'Ioas.map', 'source length');
    rejects(() => ioas.map(memory, { iova: 0x10000 as never }), TypeError, 'Ioas.map', 'options.iova');
    rejects(() => ioas.map(memory, { writable: 'yes' as unknown as boolean }), TypeError, 'Ioas.map', 'options.writable');
    rejects(() => ioas.segments(0n as never, -1n), RangeError, 'Ioas.segments', 'length');
    rejects(() => ioas.segments(0n as never, NaN as unknown as bigint), TypeError, 'Ioas.segments', 'length');
    rejects(() => ioas.unmap({ iova: 0 as never, length: 4096n }), TypeError, 'Ioas.unmap', 'range.iova');
    rejects(() => ioas.mapFile(1.5, 0n, 4096n), RangeError, 'Ioas.mapFile', 'fileFd');
    rejects(() => ioas.getPhysicalAddress(-1n as never, 4096n), RangeError, 'Ioas.getPhysicalAddress', 'iova');
    rejects(() => ioas.allowIovas([{ start: 5n, last: 4n } as never]), RangeError, 'Ioas.allowIovas', 'ranges[0].last');
    assert.deepEqual(
      calls.filter((c) => c === 'ioctl'),
      [],
      'no ioctl was issued',
    );
    const mapping = ioas.map({ va: memory.address, length: 4096n });
    mapping.close();
    kernel.munmap(memory);
  });

  it('DmaBuffer: sizes, offsets and options are checked', () => {
    const kernel = createModelKernel('linux-7.3-noiommu');
    using dev = openDevice(EDU_BDF, { kernel });
    rejects(() => DmaBuffer.allocate(4096.5, { space: dev.dmaSpace }), RangeError, 'DmaBuffer.allocate', 'size');
    rejects(() => DmaBuffer.allocate('4096' as unknown as number, { space: dev.dmaSpace }), TypeError, 'DmaBuffer.allocate', 'size');
    rejects(
      () => DmaBuffer.allocate(4096, { space: dev.dmaSpace, hugePage: '3M' as never }),
      TypeError,
      'DmaBuffer.allocate',
      'options.hugePage',
    );
    rejects(
      () => DmaBuffer.allocate(4096, { space: dev.dmaSpace, locked: 1 as unknown as boolean }),
      TypeError,
      'DmaBuffer.allocate',
      'options.locked',
    );
    rejects(() => DmaBuffer.allocate(4096, { space: {} as never }), TypeError, 'DmaBuffer.allocate', 'options.space');
    using dma = dev.allocateDma(4096);
    rejects(() => dma.dmaAddress(1.5), RangeError, 'DmaBuffer.dmaAddress', 'offset');
    rejects(() => dma.physicalAddress('8' as unknown as number), TypeError, 'DmaBuffer.physicalAddress', 'offset');
    assert.equal(dma.dmaAddress(8), dma.dmaAddress(8n));
  });

  it('VfioDevice.region refuses an index that is not an integer', () => {
    const kernel = createModelKernel('linux-7.3-noiommu');
    using dev = openDevice(EDU_BDF, { kernel });
    rejects(() => dev.region(0.5), RangeError, 'VfioDevice.region', 'index');
    rejects(() => dev.region(-1), RangeError, 'VfioDevice.region', 'index');
  });
});

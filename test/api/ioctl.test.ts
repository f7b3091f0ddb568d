import assert from 'node:assert/strict';
import * as U from '../../lib/uapi/iommufd';
import * as V from '../../lib/uapi/vfio';
import * as io from '../../lib/ioctl';
import { iova } from '../../lib/sys/addresses';
import { isVfioError } from '../../lib/sys/errors';
import { ScriptedKernel, fail } from './support/scripted-kernel';

const bytesOf = (arg: Uint8Array | number | null): Uint8Array => {
  if (!(arg instanceof Uint8Array)) throw new Error('expected a struct argument');
  return arg;
};

describe('lib/ioctl wrappers', () => {
  it('ioasAlloc packs size and returns out_ioas_id', () => {
    const k = new ScriptedKernel().on(U.IOMMU_IOAS_ALLOC, (arg) => {
      const b = bytesOf(arg);
      assert.equal(U.IommuIoasAlloc.get(b, 'size'), 12);
      assert.equal(U.IommuIoasAlloc.get(b, 'flags'), 0);
      U.IommuIoasAlloc.set(b, 'out_ioas_id', 7);
    });
    assert.equal(io.ioasAlloc(k, 3), 7);
    assert.equal(k.calls[0]!.fd, 3);
  });

  it('ioasMap sets FIXED_IOVA only when an IOVA is given, and access flags as asked', () => {
    const seen: number[] = [];
    const k = new ScriptedKernel().on(U.IOMMU_IOAS_MAP, (arg) => {
      const v = U.IommuIoasMap.decode(bytesOf(arg));
      seen.push(v.flags);
      assert.equal(v.size, 40);
      assert.equal(v.user_va, 0x1000n);
      if (!(v.flags & U.IOMMU_IOAS_MAP_FIXED_IOVA)) U.IommuIoasMap.set(bytesOf(arg), 'iova', 0x5000n);
    });
    assert.equal(io.ioasMap(k, 3, { ioasId: 2, userVa: 0x1000n, length: 4096n, readable: true, writable: false }), 0x5000n);
    assert.equal(
      io.ioasMap(k, 3, { ioasId: 2, userVa: 0x1000n, length: 4096n, iova: iova(0x9000n), readable: true, writable: true }),
      0x9000n,
    );
    assert.deepEqual(seen, [
      U.IOMMU_IOAS_MAP_READABLE,
      U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_FIXED_IOVA,
    ]);
  });

  it('ioasUnmap without a range asks for everything and returns the bytes unmapped', () => {
    const k = new ScriptedKernel().on(U.IOMMU_IOAS_UNMAP, (arg) => {
      const v = U.IommuIoasUnmap.decode(bytesOf(arg));
      assert.equal(v.iova, 0n);
      assert.equal(v.length, (1n << 64n) - 1n);
      U.IommuIoasUnmap.set(bytesOf(arg), 'length', 0x3000n);
    });
    assert.equal(io.ioasUnmap(k, 3, 1), 0x3000n);
  });

  it('ioasIovaRanges retries after EMSGSIZE with the count the kernel asked for, and frees its scratch memory', () => {
    const all = Array.from({ length: 11 }, (_, i) => ({ start: BigInt(i) << 32n, last: (BigInt(i) << 32n) + 0xffffn }));
    const k = new ScriptedKernel();
    k.on(U.IOMMU_IOAS_IOVA_RANGES, (arg) => {
      const b = bytesOf(arg);
      const v = U.IommuIoasIovaRanges.decode(b);
      const out = k.memoryAt(v.allowed_iovas, v.num_iovas * U.IommuIovaRange.size);
      all.slice(0, v.num_iovas).forEach((r, i) => U.IommuIovaRange.encode(r, out, i * U.IommuIovaRange.size));
      U.IommuIoasIovaRanges.set(b, 'num_iovas', all.length);
      U.IommuIoasIovaRanges.set(b, 'out_iova_alignment', 4096n);
      if (v.num_iovas < all.length) throw fail('EMSGSIZE', 'ioctl');
    });
    const got = io.ioasIovaRanges(k, 3, 1);
    assert.deepEqual(got.ranges, all);
    assert.equal(got.alignment, 4096n);
    assert.equal(k.calls.length, 2);
    assert.equal(k.mmapCount, k.munmapCount);
  });

  it('ioasAllowIovas passes the ranges through user memory', () => {
    const k = new ScriptedKernel();
    let passed: unknown[] = [];
    k.on(U.IOMMU_IOAS_ALLOW_IOVAS, (arg) => {
      const v = U.IommuIoasAllowIovas.decode(bytesOf(arg));
      const mem = k.memoryAt(v.allowed_iovas, v.num_iovas * 16);
      passed = Array.from({ length: v.num_iovas }, (_, i) => U.IommuIovaRange.decode(mem, i * 16));
    });
    io.ioasAllowIovas(k, 3, 1, [{ start: iova(0x1000n), last: iova(0x1fffn) }]);
    assert.deepEqual(passed, [{ start: 0x1000n, last: 0x1fffn }]);
  });

  it('noiommuGetPa returns the physical address and the contiguous length', () => {
    const k = new ScriptedKernel().on(U.IOMMU_IOAS_NOIOMMU_GET_PA, (arg) => {
      const v = U.IommuIoasNoiommuGetPa.decode(bytesOf(arg));
      assert.deepEqual([v.size, v.flags, v.ioas_id, v.__reserved, v.iova, v.length], [40, 0, 4, 0, 0x2000n, 1n << 20n]);
      U.IommuIoasNoiommuGetPa.set(bytesOf(arg), 'out_phys', 0x1234_5000n);
      U.IommuIoasNoiommuGetPa.set(bytesOf(arg), 'length', 0x3000n);
    });
    assert.deepEqual(io.noiommuGetPa(k, 3, 4, iova(0x2000n), 1n << 20n), { phys: 0x1234_5000n, length: 0x3000n });
  });

  it('names the ioctl in errors and gives the kernel-version hint for GET_PA ENOTTY', () => {
    const k = new ScriptedKernel();
    assert.throws(
      () => io.noiommuGetPa(k, 3, 1, iova(0n), 4096n),
      (e: unknown) => {
        assert.ok(isVfioError(e, 'ENOTTY'));
        assert.equal(e.ioctl, 'IOMMU_IOAS_NOIOMMU_GET_PA');
        assert.equal(e.syscall, 'ioctl');
        assert.match(e.hint ?? '', /7\.3/);
        return true;
      },
    );
  });

  it('deviceGetRegionInfo re-issues with the argsz the kernel asked for and decodes the capability chain', () => {
    const sparse = V.VfioRegionInfoCapSparseMmap.size + 2 * V.VfioRegionSparseMmapArea.size;
    const msix = V.VfioInfoCapHeader.size;
    const needed = V.VfioRegionInfo.size + sparse + msix;
    const argszSeen: number[] = [];
    const k = new ScriptedKernel().on(V.VFIO_DEVICE_GET_REGION_INFO, (arg) => {
      const b = bytesOf(arg);
      const argsz = V.VfioRegionInfo.get(b, 'argsz');
      argszSeen.push(argsz);
      assert.equal(b.length, argsz);
      assert.equal(V.VfioRegionInfo.get(b, 'index'), 2);
      const base = { index: 2, size: 0x4000n, offset: 2n << 40n, flags: 0b1111 };
      if (argsz < needed) {
        V.VfioRegionInfo.encode({ ...base, argsz: needed, cap_offset: 0 }, b);
        return;
      }
      V.VfioRegionInfo.encode({ ...base, argsz, cap_offset: 32 }, b);
      V.VfioRegionInfoCapSparseMmap.encode({ id: 1, version: 1, next: 32 + sparse, nr_areas: 2 }, b, 32);
      V.VfioRegionSparseMmapArea.encode({ offset: 0n, size: 0x1000n }, b, 32 + 16);
      V.VfioRegionSparseMmapArea.encode({ offset: 0x3000n, size: 0x1000n }, b, 32 + 32);
      V.VfioInfoCapHeader.encode({ id: 3, version: 1, next: 0 }, b, 32 + sparse);
    });
    const info = io.deviceGetRegionInfo(k, 5, 2);
    assert.deepEqual(argszSeen, [32, needed]);
    assert.equal(info.size, 0x4000n);
    assert.equal(info.offset, 2n << 40n);
    assert.deepEqual(info.sparseMmap, [
      { offset: 0n, size: 0x1000n },
      { offset: 0x3000n, size: 0x1000n },
    ]);
    assert.equal(info.msixMappable, true);
    assert.deepEqual(
      info.capabilities.map((c) => c.id),
      [1, 3],
    );
  });

  it('deviceGetRegionInfo makes one call when there is no chain', () => {
    const k = new ScriptedKernel().on(V.VFIO_DEVICE_GET_REGION_INFO, (arg) => {
      V.VfioRegionInfo.set(bytesOf(arg), 'size', 256n);
    });
    const info = io.deviceGetRegionInfo(k, 5, 7);
    assert.equal(k.calls.length, 1);
    assert.equal(info.size, 256n);
    assert.equal(info.sparseMmap, undefined);
    assert.equal(info.msixMappable, false);
  });

  it('struct memory reused from call to call: each call sends only its own inputs and returns its own answer', () => {
    const answers = [
      { phys: 0x1234_5000n, length: 0x3000n },
      { phys: 0x8_0000_0000n, length: 0x1000n },
    ];
    const k = new ScriptedKernel().on(U.IOMMU_IOAS_NOIOMMU_GET_PA, (arg, call) => {
      const v = U.IommuIoasNoiommuGetPa.decode(bytesOf(arg));
      // Nothing of the previous call's answer is left in what the kernel reads.
      assert.equal(v.out_phys, 0n);
      assert.deepEqual([v.size, v.flags, v.__reserved], [40, 0, 0]);
      U.IommuIoasNoiommuGetPa.set(bytesOf(arg), 'out_phys', answers[call]!.phys);
      U.IommuIoasNoiommuGetPa.set(bytesOf(arg), 'length', answers[call]!.length);
    });
    const lookup = new io.PhysicalAddressLookup();
    const first = lookup.lookup(k, 3, 4, iova(0x2000n), 1n << 20n);
    const second = lookup.lookup(k, 3, 9, iova(0x7000n), 4096n);
    assert.deepEqual([first, second], answers);
    const sent = k.calls.map((c) => U.IommuIoasNoiommuGetPa.decode(bytesOf(c.bytes)));
    assert.deepEqual(
      sent.map((v) => [v.ioas_id, v.iova, v.length]),
      [
        [4, 0x2000n, 1n << 20n],
        [9, 0x7000n, 4096n],
      ],
    );
  });

  it('noiommuGetPa reads back a length that differs from the cap in its high word only', () => {
    // The wrapper hands back the caller's cap when the kernel left it as it was; the comparison
    // covers both halves of the u64.
    const k = new ScriptedKernel().on(U.IOMMU_IOAS_NOIOMMU_GET_PA, (arg) => {
      U.IommuIoasNoiommuGetPa.set(bytesOf(arg), 'length', 0x1000n);
    });
    assert.equal(io.noiommuGetPa(k, 3, 1, iova(0n), 0x1_0000_1000n).length, 0x1000n);
    const unchanged = new ScriptedKernel().on(U.IOMMU_IOAS_NOIOMMU_GET_PA, () => undefined);
    assert.equal(io.noiommuGetPa(unchanged, 3, 1, iova(0n), 0xffff_ffff_ffff_f000n).length, 0xffff_ffff_ffff_f000n);
  });

  it('noiommuGetPa refuses an IOVA or a cap outside u64 instead of letting it wrap', () => {
    const k = new ScriptedKernel().on(U.IOMMU_IOAS_NOIOMMU_GET_PA, () => undefined);
    assert.throws(() => io.noiommuGetPa(k, 3, 1, -1n as ReturnType<typeof iova>, 4096n), {
      name: 'RangeError',
      message: /iova: -1 is out of range/,
    });
    assert.throws(() => io.noiommuGetPa(k, 3, 1, iova(0n), 1n << 64n), {
      name: 'RangeError',
      message: /length: 18446744073709551616 is out of range/,
    });
    assert.equal(k.calls.length, 0);
  });

  it('deviceGetRegionInfo range-checks the index as the codec does', () => {
    const k = new ScriptedKernel().on(V.VFIO_DEVICE_GET_REGION_INFO, () => undefined);
    assert.throws(() => io.deviceGetRegionInfo(k, 5, -1), {
      name: 'RangeError',
      message: /vfio_region_info\.index: -1 is out of range for u32/,
    });
    assert.throws(() => io.deviceGetRegionInfo(k, 5, 1.5), { name: 'RangeError', message: /not an integer/ });
    assert.throws(() => io.deviceGetRegionInfo(k, 5, 2 ** 32), RangeError);
    assert.equal(k.calls.length, 0);
  });

  it('capabilities keep their bytes after later calls reuse the struct memory', () => {
    // A chain that fits in the fixed struct (no kernel does this) would sit in the reused memory:
    // it is copied out. A chain after a raised argsz is in memory of its own.
    const k = new ScriptedKernel().on(V.VFIO_DEVICE_GET_INFO, (arg, call) => {
      const b = bytesOf(arg);
      if (call === 0) {
        V.VfioDeviceInfo.encode({ flags: V.VFIO_DEVICE_FLAGS_CAPS, num_regions: 9, num_irqs: 5, cap_offset: 16 }, b);
        V.VfioInfoCapHeader.encode({ id: 16, version: 0, next: 0 }, b, 16);
      } else {
        V.VfioDeviceInfo.encode({ flags: 0, num_regions: 1, num_irqs: 1, cap_offset: 0 }, b);
      }
    });
    const first = io.deviceGetInfo(k, 5);
    const before = Uint8Array.from(first.capabilities[0]!.bytes);
    const second = io.deviceGetInfo(k, 5);
    assert.deepEqual([first.numRegions, first.numIrqs, second.numRegions, second.capabilities], [9, 5, 1, []]);
    assert.deepEqual(first.capabilities[0]!.bytes, before);
    assert.equal(first.capabilities[0]!.id, 16);
  });

  it('deviceGetPciHotResetInfo retries after ENOSPC with the count the kernel reported', () => {
    const devices = Array.from({ length: 6 }, (_, i) => ({ group_id: 10 + i, segment: 0, bus: 1, devfn: i << 3 }));
    const k = new ScriptedKernel().on(V.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, (arg) => {
      const b = bytesOf(arg);
      const room = (V.VfioPciHotResetInfo.get(b, 'argsz') - 12) / 8;
      V.VfioPciHotResetInfo.set(b, 'count', devices.length);
      if (room < devices.length) throw fail('ENOSPC', 'ioctl');
      devices.forEach((d, i) => V.VfioPciDependentDevice.encode(d, b, 12 + i * 8));
    });
    const info = io.deviceGetPciHotResetInfo(k, 5);
    assert.equal(k.calls.length, 2);
    assert.deepEqual(
      info.devices.map((d) => d.groupOrDeviceId),
      [10, 11, 12, 13, 14, 15],
    );
    assert.equal(info.devices[2]!.devfn, 2 << 3);
  });

  it('deviceSetIrqs packs eventfds after the header with matching argsz and flags', () => {
    const k = new ScriptedKernel().on(V.VFIO_DEVICE_SET_IRQS, (arg) => {
      const b = Buffer.from(bytesOf(arg));
      const h = V.VfioIrqSet.decode(b);
      assert.equal(h.argsz, 20 + 12);
      assert.equal(h.flags, V.VFIO_IRQ_SET_DATA_EVENTFD | V.VFIO_IRQ_SET_ACTION_TRIGGER);
      assert.deepEqual([h.index, h.start, h.count], [2, 1, 3]);
      assert.deepEqual([b.readInt32LE(20), b.readInt32LE(24), b.readInt32LE(28)], [40, -1, 42]);
    });
    io.deviceSetIrqs(k, 5, { index: 2, action: 'trigger', start: 1, count: 3, data: { kind: 'eventfd', fds: [40, -1, 42] } });
    assert.equal(k.calls.length, 1);
  });

  it('deviceBindIommufd and deviceAttachIommufdPt return what the kernel wrote back', () => {
    const k = new ScriptedKernel()
      .on(V.VFIO_DEVICE_BIND_IOMMUFD, (arg) => {
        assert.equal(V.VfioDeviceBindIommufd.get(bytesOf(arg), 'iommufd'), 3);
        V.VfioDeviceBindIommufd.set(bytesOf(arg), 'out_devid', 9);
      })
      .on(V.VFIO_DEVICE_ATTACH_IOMMUFD_PT, (arg) => {
        assert.equal(V.VfioDeviceAttachIommufdPt.get(bytesOf(arg), 'flags'), 0);
        V.VfioDeviceAttachIommufdPt.set(bytesOf(arg), 'pt_id', 11);
      });
    assert.equal(io.deviceBindIommufd(k, 5, 3), 9);
    assert.equal(io.deviceAttachIommufdPt(k, 5, 2), 11);
  });

  it('group and container ioctls pass integers and strings the way the kernel reads them', () => {
    const k = new ScriptedKernel()
      .on(V.VFIO_GROUP_GET_DEVICE_FD, (arg) => {
        assert.deepEqual(Buffer.from(bytesOf(arg)).toString('latin1'), '0000:00:04.0\0');
        return 17;
      })
      .on(V.VFIO_GROUP_SET_CONTAINER, (arg) => assert.equal(Buffer.from(bytesOf(arg)).readInt32LE(0), 12))
      .on(V.VFIO_CHECK_EXTENSION, (arg) => (arg === V.VFIO_NOIOMMU_IOMMU ? 1 : 0))
      .on(V.VFIO_SET_IOMMU, (arg) => assert.equal(arg, V.VFIO_NOIOMMU_IOMMU));
    assert.equal(io.groupGetDeviceFd(k, 6, '0000:00:04.0'), 17);
    io.groupSetContainer(k, 6, 12);
    assert.equal(io.checkExtension(k, 12, V.VFIO_NOIOMMU_IOMMU), true);
    assert.equal(io.checkExtension(k, 12, V.VFIO_TYPE1v2_IOMMU), false);
    io.setIommu(k, 12, V.VFIO_NOIOMMU_IOMMU);
  });

  it('the same request number on a group fd is named as the group ioctl', () => {
    const k = new ScriptedKernel();
    assert.throws(
      () => io.groupGetStatus(k, 6),
      (e: unknown) => isVfioError(e, 'ENOTTY') && e.ioctl === 'VFIO_GROUP_GET_STATUS',
    );
  });

  it('readCapabilityChain refuses a looping or out-of-bounds chain', () => {
    const b = Buffer.alloc(64);
    V.VfioInfoCapHeader.encode({ id: 1, version: 1, next: 40 }, b, 32);
    V.VfioInfoCapHeader.encode({ id: 2, version: 1, next: 32 }, b, 40);
    assert.throws(() => io.readCapabilityChain(b, 32), /loops/);
    assert.throws(() => io.readCapabilityChain(b, 60), /outside/);
  });
});

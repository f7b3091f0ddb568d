import assert from 'node:assert/strict';
import { IommuFault } from '../../../lib/model';
import { O_RDWR } from '../../../lib/sys/constants';
import {
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED,
  IOMMU_HWPT_FAULT_ID_VALID,
  IommuFaultAlloc,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_IOAS_MAP_READABLE,
  IommuHwInfo,
  IommuHwInfoVtd,
  IommuHwptAlloc,
} from '../../../lib/uapi/iommufd';
import { Harness, MiB, expectErrno } from '../harness';
import { harnessWithIoas } from './fixtures';

describe('iommufd devices: bind, attach, replace, detach (device.c)', () => {
  it('iommufd_device_bind: device objects share the ID space with IOAS and HWPT', () => {
    const { h, ioas } = harnessWithIoas();
    const dev = h.bind();
    const hwpt = h.ctx.attachDevice(dev, ioas);
    assert.deepEqual([ioas, dev, hwpt], [1, 2, 3]);
  });

  it('iommufd_device_bind: an IOMMU group owned by another context → EPERM (iommu_device_claim_dma_owner; seen in the lab), and no ID is kept', () => {
    const a = new Harness('linux-7.3-iommu');
    a.bind('0000:00:03.0', 5);
    const fd2 = a.kernel.open('/dev/iommu', O_RDWR);
    const other = a.kernel.iommufdOf(fd2);
    assert.throws(() => other.bindDevice({ name: '0000:00:03.0', iommu: a.kernel.profile.iommu, iommuGroup: 5 }), { code: 'EPERM' });
    assert.equal(other.objects.size, 0);
    // The owner can bind another device of the same group.
    a.bind('0000:00:03.1', 5);
  });

  it('iommufd_object_remove: a bound device (the driver holds it) and an attached HWPT → EBUSY', () => {
    const { h, ioas } = harnessWithIoas();
    const dev = h.bind();
    expectErrno('EBUSY', () => h.destroy(dev));
    const hwpt = h.ctx.attachDevice(dev, ioas);
    expectErrno('EBUSY', () => h.destroy(hwpt));
  });

  it('iommufd_device_auto_get_domain: noiommu devices on one IOAS share one automatic HWPT', () => {
    const { h, ioas } = harnessWithIoas();
    const d1 = h.bind('0000:00:03.0');
    const d2 = h.bind('0000:00:04.0');
    const p1 = h.ctx.attachDevice(d1, ioas);
    const p2 = h.ctx.attachDevice(d2, ioas);
    assert.equal(p1, p2);
  });

  it('iommufd_hw_pagetable_attach: attaching an attached device again → EBUSY', () => {
    const { h, ioas } = harnessWithIoas();
    const dev = h.bind();
    h.ctx.attachDevice(dev, ioas);
    expectErrno('EBUSY', () => h.ctx.attachDevice(dev, ioas));
  });

  it('iommufd_device_change_pt: attaching to an unknown ID → ENOENT; to a device object → EINVAL', () => {
    const h = new Harness();
    const dev = h.bind();
    expectErrno('ENOENT', () => h.ctx.attachDevice(dev, 40));
    expectErrno('EINVAL', () => h.ctx.attachDevice(dev, dev));
  });

  it('iommufd_hw_pagetable_put: the automatic HWPT dies with the last detach and its ID is reused', () => {
    const { h, ioas } = harnessWithIoas();
    const dev = h.bind();
    const hwpt = h.ctx.attachDevice(dev, ioas);
    h.ctx.detachDevice(dev);
    assert.equal(h.ctx.objects.lookup(hwpt), undefined);
    assert.equal(h.ioasAlloc(), hwpt);
    // Detaching a detached device is a no-op.
    h.ctx.detachDevice(dev);
  });

  it('iommufd_device_do_replace: a device that is not attached → EINVAL', () => {
    const { h, ioas } = harnessWithIoas();
    const dev = h.bind();
    expectErrno('EINVAL', () => h.ctx.replaceDevice(dev, ioas));
  });

  it('iommufd_device_replace: moves to a new IOAS, keeps the mappings pinned there, frees the old auto HWPT', () => {
    const h = new Harness();
    const a = h.ioasAlloc();
    const b = h.ioasAlloc();
    const dev = h.bind();
    const m = h.anon(1n * MiB);
    h.map(a, m.address, 1n * MiB);
    h.map(b, m.address, 64n * 1024n);
    const pa = h.ctx.attachDevice(dev, a);
    assert.equal(h.kernel.locked.pinnedPages, 256);
    const pb = h.ctx.replaceDevice(dev, b);
    assert.notEqual(pa, pb);
    assert.equal(h.ctx.objects.lookup(pa), undefined);
    assert.equal(h.kernel.locked.pinnedPages, 16);
    assert.equal(h.ctx.replaceDevice(dev, pb), pb, 'replacing with the same HWPT changes nothing');
  });

  it('release of the iommufd destroys everything and unpins', () => {
    const { h, ioas } = harnessWithIoas('unprivileged');
    h.ctx.attachDevice(h.bind(), ioas);
    const m = h.anon(1n * MiB);
    h.map(ioas, m.address, 1n * MiB);
    assert.equal(h.kernel.locked.userLockedPages, 256);
    h.kernel.close(h.fd);
    assert.equal(h.kernel.locked.userLockedPages, 0);
    assert.equal(h.ctx.objects.size, 0);
  });

  it('pinning charges RLIMIT_MEMLOCK (user mode): past the limit → ENOMEM and nothing stays pinned', () => {
    const { h, ioas } = harnessWithIoas('unprivileged');
    h.ctx.attachDevice(h.bind(), ioas);
    const m = h.anon(16n * MiB);
    expectErrno('ENOMEM', () => h.map(ioas, m.address, 9n * MiB));
    assert.equal(h.kernel.locked.userLockedPages, 0);
    assert.equal(h.kernel.locked.pinnedPages, 0);
    h.map(ioas, m.address, 8n * MiB);
    expectErrno('ENOMEM', () => h.map(ioas, m.address + 8n * MiB, 4096n));
  });

  it('iopt_alloc_pages: CAP_IPC_LOCK makes pinning uncharged (IOPT_PAGES_ACCOUNT_NONE)', () => {
    const { h, ioas } = harnessWithIoas();
    h.ctx.attachDevice(h.bind(), ioas);
    const m = h.anon(16n * MiB);
    h.map(ioas, m.address, 16n * MiB);
    assert.equal(h.kernel.locked.userLockedPages, 0);
    assert.equal(h.kernel.locked.pinnedPages, 4096);
  });
});

describe('IOMMU_HWPT_ALLOC (iommufd_hwpt_alloc, noiommu_alloc_paging_flags)', () => {
  const alloc = (h: Harness, v: Parameters<typeof IommuHwptAlloc.encode>[0]) => h.call(IOMMU_HWPT_ALLOC, IommuHwptAlloc, v);

  it('noiommu: flags 0 and no data → a manual HWPT; destroyable once the device detaches', () => {
    const { h, ioas } = harnessWithIoas();
    const dev = h.bind();
    const hwpt = alloc(h, { dev_id: dev, pt_id: ioas }).out_hwpt_id;
    assert.equal(hwpt, 3);
    assert.equal(h.ctx.attachDevice(dev, hwpt), hwpt);
    expectErrno('EBUSY', () => h.destroy(hwpt));
    h.ctx.detachDevice(dev);
    assert.ok(h.ctx.objects.lookup(hwpt), 'a manual HWPT outlives its devices');
    h.destroy(hwpt);
    h.destroy(ioas);
  });

  it('noiommu_alloc_paging_flags: any flag → EOPNOTSUPP, and the reserved ID is released', () => {
    const { h, ioas } = harnessWithIoas();
    const dev = h.bind();
    expectErrno('EOPNOTSUPP', () => alloc(h, { dev_id: dev, pt_id: ioas, flags: IOMMU_HWPT_ALLOC_NEST_PARENT }));
    expectErrno('EOPNOTSUPP', () => alloc(h, { dev_id: dev, pt_id: ioas, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING }));
    expectErrno('EOPNOTSUPP', () => alloc(h, { dev_id: dev, pt_id: ioas, flags: 1 << 9 }));
    assert.equal(h.ioasAlloc(), 3);
  });

  it('noiommu_alloc_paging_flags: driver data → EOPNOTSUPP; data type/len mismatch → EINVAL', () => {
    const { h, ioas } = harnessWithIoas();
    const dev = h.bind();
    const data = h.anon(4096n);
    expectErrno('EOPNOTSUPP', () => alloc(h, { dev_id: dev, pt_id: ioas, data_type: 1, data_len: 24, data_uptr: data.address }));
    expectErrno('EINVAL', () => alloc(h, { dev_id: dev, pt_id: ioas, data_type: 0, data_len: 24 }));
    expectErrno('EINVAL', () => alloc(h, { dev_id: dev, pt_id: ioas, data_type: 1, data_len: 0 }));
    expectErrno('EOPNOTSUPP', () => alloc(h, { dev_id: dev, pt_id: ioas, __reserved: 1 }));
  });

  it('iommufd_hwpt_alloc: unknown device → ENOENT; unknown or device pt_id → EINVAL', () => {
    const { h, ioas } = harnessWithIoas();
    const dev = h.bind();
    expectErrno('ENOENT', () => alloc(h, { dev_id: 9, pt_id: ioas }));
    expectErrno('EINVAL', () => alloc(h, { dev_id: dev, pt_id: 9 }));
    expectErrno('EINVAL', () => alloc(h, { dev_id: dev, pt_id: dev }));
  });

  it('VT-d: a paging HWPT loads the IOAS and reserves the aperture and MSI window on attach', () => {
    const { h, ioas } = harnessWithIoas('linux-7.3-iommu');
    const dev = h.bind('0000:00:03.0', 1);
    const hwpt = alloc(h, { dev_id: dev, pt_id: ioas }).out_hwpt_id;
    // The aperture [2^39, ...) is reserved as soon as the domain is added to the IOAS.
    expectErrno('EINVAL', () => h.map(ioas, 0x1000n, 4096n, 1n << 40n));
    h.ctx.attachDevice(dev, hwpt);
    expectErrno('EINVAL', () => h.map(ioas, 0x1000n, 4096n, 0xfee0_0000n));
  });
});

describe('IOMMU_FAULT_QUEUE_ALLOC (iommufd_fault_alloc)', () => {
  it('creates a fault object with a non-seekable event fd; the fd keeps the object busy', () => {
    const h = new Harness();
    const r = h.call(IOMMU_FAULT_QUEUE_ALLOC, IommuFaultAlloc, {});
    assert.equal(r.out_fault_id, 1);
    assert.equal(h.kernel.fileOf(r.out_fault_fd).kind, 'iommufd-fault');
    expectErrno('ESPIPE', () => h.kernel.pread(r.out_fault_fd, Buffer.alloc(48), 0n));
    expectErrno('EBUSY', () => h.destroy(r.out_fault_id));
    h.kernel.close(r.out_fault_fd);
    h.destroy(r.out_fault_id);
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_FAULT_QUEUE_ALLOC, IommuFaultAlloc, { flags: 1 }));
  });

  it('HWPT_ALLOC with IOMMU_HWPT_FAULT_ID_VALID takes the queue; an unknown fault_id → ENOENT without leaking the HWPT ID', () => {
    const { h, ioas } = harnessWithIoas();
    const dev = h.bind();
    expectErrno('ENOENT', () =>
      h.call(IOMMU_HWPT_ALLOC, IommuHwptAlloc, { dev_id: dev, pt_id: ioas, flags: IOMMU_HWPT_FAULT_ID_VALID, fault_id: 9 }),
    );
    const q = h.call(IOMMU_FAULT_QUEUE_ALLOC, IommuFaultAlloc, {});
    assert.equal(q.out_fault_id, 3, 'the refused HWPT released its ID');
    const hwpt = h.call(IOMMU_HWPT_ALLOC, IommuHwptAlloc, {
      dev_id: dev,
      pt_id: ioas,
      flags: IOMMU_HWPT_FAULT_ID_VALID,
      fault_id: q.out_fault_id,
    }).out_hwpt_id;
    h.kernel.close(q.out_fault_fd);
    expectErrno('EBUSY', () => h.destroy(q.out_fault_id));
    h.destroy(hwpt);
    h.destroy(q.out_fault_id);
  });
});

describe('IOMMU_GET_HW_INFO (iommufd_get_hw_info)', () => {
  it('noiommu device → EOPNOTSUPP', () => {
    const h = new Harness();
    const dev = h.bind();
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_GET_HW_INFO, IommuHwInfo, { dev_id: dev }));
  });

  it('VT-d: type INTEL_VTD, the register values, data_len 24, ATS not supported', () => {
    const h = new Harness('linux-7.3-iommu');
    const dev = h.bind('0000:00:03.0', 1);
    const out = h.anon(4096n);
    const r = h.call(IOMMU_GET_HW_INFO, IommuHwInfo, { dev_id: dev, data_len: 64, data_uptr: out.address });
    assert.equal(r.out_data_type, IOMMU_HW_INFO_TYPE_INTEL_VTD);
    assert.equal(r.data_len, IommuHwInfoVtd.size);
    assert.equal(r.out_capabilities, BigInt(IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED));
    const vtd = IommuHwInfoVtd.decode(new Uint8Array(out.buffer!));
    assert.equal(vtd.cap_reg, h.kernel.profile.iommu!.capReg);
    assert.equal(vtd.ecap_reg, h.kernel.profile.iommu!.ecapReg);
  });

  it('unknown flags or non-zero __reserved → EOPNOTSUPP; unknown device → ENOENT', () => {
    const h = new Harness('linux-7.3-iommu');
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_GET_HW_INFO, IommuHwInfo, { flags: 2 }));
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_GET_HW_INFO, IommuHwInfo, { __reserved: [0, 1, 0] }));
    expectErrno('ENOENT', () => h.call(IOMMU_GET_HW_INFO, IommuHwInfo, { dev_id: 5 }));
  });
});

describe('DMA translation for IOMMU-translated device models', () => {
  it('translate: the physical pieces of a mapped IOVA range; faults for unmapped, read-only or detached', () => {
    const { h, ioas } = harnessWithIoas('linux-7.3-iommu');
    const dev = h.bind('0000:00:03.0', 1);
    assert.throws(
      () => h.ctx.translate(dev, 0x1000n, 4, false),
      (e: unknown) => e instanceof IommuFault && e.reason === 'blocked',
    );
    h.ctx.attachDevice(dev, ioas);
    const m = h.anon(64n * 1024n);
    h.map(ioas, m.address, 64n * 1024n, 0x10_0000n);
    h.map(ioas, m.address, 4096n, 0x20_0000n, IOMMU_IOAS_MAP_READABLE);
    const segs = h.ctx.translate(dev, 0x10_0ff0n, 0x20, true);
    assert.equal(
      segs.reduce((n, s) => n + s.length, 0),
      0x20,
    );
    h.kernel.memory.dmaWrite(segs[0]!.phys, Uint8Array.of(7));
    assert.equal(new Uint8Array(m.buffer!)[0xff0], 7);
    assert.throws(
      () => h.ctx.translate(dev, 0x30_0000n, 4, false),
      (e: unknown) => e instanceof IommuFault && e.reason === 'unmapped-iova',
    );
    assert.throws(
      () => h.ctx.translate(dev, 0x20_0000n, 4, true),
      (e: unknown) => e instanceof IommuFault && e.reason === 'permission',
    );
    assert.equal(h.ctx.translate(dev, 0x20_0000n, 4, false).length, 1);
  });

  it('noiommu devices do not translate: their bus addresses are physical', () => {
    const h = new Harness();
    const dev = h.bind();
    assert.throws(() => h.ctx.translate(dev, 0x1000n, 4, false), /physical/);
  });
});

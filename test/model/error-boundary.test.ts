/**
 * The model's side of the one error pipeline: model code raises only KernelErrors (errno.ts), and
 * the syscall boundary in model-kernel.ts is the one file that builds VfioErrors. Fault injection
 * is per kernel: each site asks the injector of its own kernel, never a module-global one.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createModelKernel } from '../../lib/model';
import { Iommufd } from '../../lib/iommu/iommufd';
import { VfioDevice } from '../../lib/vfio/device';
import { isVfioError } from '../../lib/sys/errors';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../lib/sys/constants';

const MODEL_SOURCES = path.resolve(__dirname, '../../../lib/model');
const BOUNDARY = 'model-kernel.ts';
const EDU = '0000:00:03.0';

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

describe('model errors: KernelError inside, VfioError only at the syscall boundary', () => {
  it('no file of lib/model but the boundary imports or builds a VfioError', () => {
    const files = sources(MODEL_SOURCES);
    assert.ok(files.length > 50, `read the model sources (${files.length} files under ${MODEL_SOURCES})`);
    const offenders = files
      .filter((f) => path.relative(MODEL_SOURCES, f) !== BOUNDARY)
      .filter((f) => /\bVfioError\b|\bisVfioError\b/.test(fs.readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')))
      .map((f) => path.relative(MODEL_SOURCES, f));
    assert.deepEqual(offenders, []);
  });

  it("a KernelError from deep in the VFIO model comes out with syscall, ioctl, path and the model's detail, the KernelError as cause", () => {
    const kernel = createModelKernel('linux-7.3-noiommu');
    const cdev = '/dev/vfio/devices/noiommu-vfio0';
    const fd = kernel.open(cdev, 2);
    try {
      const buffer = Buffer.alloc(16);
      buffer.writeUInt32LE(16, 0);
      // VFIO_DEVICE_GET_INFO before BIND_IOMMUFD: vfio_device_fops_unl_ioctl answers EINVAL.
      assert.throws(
        () => kernel.ioctl(fd, 0x3b6b, buffer),
        (e: unknown) => {
          assert.ok(isVfioError(e));
          assert.deepEqual([e.code, e.syscall, e.ioctl, e.path], ['EINVAL', 'ioctl', 'VFIO_DEVICE_GET_INFO', cdev]);
          assert.match(e.detail ?? '', /not granted yet/);
          assert.match(e.message, /not granted yet/);
          assert.equal((e.cause as Error).name, 'KernelError');
          return true;
        },
      );
    } finally {
      kernel.close(fd);
    }
  });
});

describe('fault injection is per kernel', () => {
  const mmap = (k: ReturnType<typeof createModelKernel>) => k.mmap(-1, 4096n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);

  it('two kernels armed at once fail only their own sites, also outside iommufd (address space, VFIO)', () => {
    const a = createModelKernel('linux-7.3-noiommu');
    const b = createModelKernel('linux-7.3-noiommu');
    a.faults.failNth(1);
    b.faults.failNth(1000);
    // b's mmap and device-file sites count on b's injector and leave a armed and untouched.
    b.munmap(mmap(b));
    using iommufd = Iommufd.open(b);
    using device = VfioDevice.open(EDU, { iommufd });
    assert.ok(device.info.numRegions > 0);
    assert.equal(a.faults.sitesSeen, 0, "a saw none of b's sites");
    assert.ok(b.faults.seen.has('mm.mmap') && b.faults.seen.has('vfio.device-file-alloc'), [...b.faults.seen.keys()].join(', '));
    assert.equal(b.faults.fired, false);
    // a's own first site fails, and only a's injector records it.
    assert.throws(
      () => mmap(a),
      (e: unknown) => isVfioError(e, 'ENOMEM'),
    );
    assert.equal(a.faults.firedAt, 'mm.mmap');
    assert.equal(b.faults.firedAt, undefined);
    a.faults.failNth(0);
    b.faults.failNth(0);
  });

  it('an unarmed kernel next to an armed one never fails', () => {
    const armed = createModelKernel('linux-7.3-noiommu');
    const quiet = createModelKernel('linux-7.3-noiommu');
    armed.faults.failNth(1);
    for (let i = 0; i < 3; i++) quiet.munmap(mmap(quiet));
    assert.equal(armed.faults.fired, false);
    armed.faults.failNth(0);
  });
});

/**
 * Cost of tracing to a file on the model's ioctl path: the same IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP
 * pairs through an untraced model kernel and through a tracing
 * kernel writing JSON Lines to a file, alternating rounds in one run, and the traced/untraced
 * ratio (goal ≤ 2×). A second ratio does the same for MMIO accesses to the edu BAR, which tracing
 * records only when asked (mmio: true). CPU time, median of rounds (see cpu-time.ts). Prints,
 * does not assert.
 *
 *   npm run build && node dist/bench/trace-overhead.js
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createModelKernel } from '../lib/model';
import type { Kernel } from '../lib';
import { MAP_ANONYMOUS, MAP_PRIVATE, O_RDWR, PROT_READ, PROT_WRITE } from '../lib/sys/constants';
import {
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IommuIoasAlloc,
  IommuIoasMap,
  IommuIoasUnmap,
} from '../lib/uapi/iommufd';
import { VFIO_DEVICE_BIND_IOMMUFD, VfioDeviceBindIommufd } from '../lib/uapi/vfio';
import { JsonlTraceWriter, traceKernel, type TracingKernel } from '../lib/trace';
import { cpuNow, median } from './cpu-time';

const ROUNDS = 9;
const OPS = 2000;

interface Subject {
  readonly kernel: Kernel;
  round(): number;
  end(): void;
}

function ioctlSubject(traced: TracingKernel | null, model: Kernel): Subject {
  const k = traced ?? model;
  const fd = k.open('/dev/iommu', O_RDWR);
  const alloc = IommuIoasAlloc.encode({ size: IommuIoasAlloc.size });
  k.ioctl(fd, IOMMU_IOAS_ALLOC.number, alloc);
  const ioas = IommuIoasAlloc.decode(alloc).out_ioas_id;
  const mem = k.mmap(-1, 0x1000n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
  const map = IommuIoasMap.allocate();
  const unmap = IommuIoasUnmap.allocate();
  return {
    kernel: k,
    round() {
      const start = cpuNow();
      for (let n = 0; n < OPS; n++) {
        const iova = 0x100000n + BigInt(n) * 0x1000n;
        map.$assign({
          size: IommuIoasMap.size,
          flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
          ioas_id: ioas,
          user_va: mem.address,
          length: 0x1000n,
          iova,
        });
        k.ioctl(fd, IOMMU_IOAS_MAP.number, map.$bytes);
        unmap.$assign({ size: IommuIoasUnmap.size, ioas_id: ioas, iova, length: 0x1000n });
        k.ioctl(fd, IOMMU_IOAS_UNMAP.number, unmap.$bytes);
      }
      return (cpuNow() - start) / (OPS * 2);
    },
    end() {
      traced?.endTrace();
    },
  };
}

function mmioSubject(traced: TracingKernel | null, model: Kernel): Subject {
  const k = traced ?? model;
  const dev = k.open('/dev/vfio/devices/noiommu-vfio0', O_RDWR);
  const iommufd = k.open('/dev/iommu', O_RDWR);
  k.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD.number, VfioDeviceBindIommufd.encode({ argsz: VfioDeviceBindIommufd.size, iommufd }));
  const bar = k.mmap(dev, 0x100000n, PROT_READ | PROT_WRITE, 1, 0n);
  return {
    kernel: k,
    round() {
      const start = cpuNow();
      for (let n = 0; n < OPS; n++) {
        k.mmioWrite(bar, 4, 32, n);
        k.mmioRead(bar, 4, 32);
      }
      return (cpuNow() - start) / (OPS * 2);
    },
    end() {
      traced?.endTrace();
    },
  };
}

function compare(name: string, make: (t: TracingKernel | null, m: Kernel) => Subject, mmio: boolean): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trace-bench-'));
  const plainModel = createModelKernel('linux-7.3-noiommu');
  const tracedModel = createModelKernel('linux-7.3-noiommu');
  const plain = make(null, plainModel);
  const traced = make(traceKernel(tracedModel, new JsonlTraceWriter(path.join(dir, 'bench.jsonl')), { mmio }), tracedModel);
  const a: number[] = [];
  const b: number[] = [];
  plain.round();
  traced.round();
  for (let r = 0; r < ROUNDS; r++) {
    a.push(plain.round());
    b.push(traced.round());
  }
  traced.end();
  const size = fs.statSync(path.join(dir, 'bench.jsonl')).size;
  fs.rmSync(dir, { recursive: true, force: true });
  const ratio = median(b) / median(a);
  console.log(
    `${name}: untraced ${(median(a) / 1000).toFixed(2)} µs/call, traced to a file ${(median(b) / 1000).toFixed(2)} µs/call, ratio ${ratio.toFixed(2)}x (goal ≤ 2x${mmio ? ', MMIO tracing is opt-in' : ''}); ${(size / 1024).toFixed(0)} KiB written`,
  );
}

compare('ioctl path (IOAS_MAP + IOAS_UNMAP)', ioctlSubject, false);
compare('MMIO on the edu BAR (opt-in mmio: true)', mmioSubject, true);

/**
 * Several devices initialised at once, after the kernel's vfio_pci_device_init_perf_test.c: each
 * unit of work (an IOMMU group on the group path, a device cdev on the cdev path) is set up by a
 * thread of its own against one shared container or one shared IOAS, as vfio_pci_device_init
 * does with a shared `struct iommu`: open the group, SET_CONTAINER, CHECK_EXTENSION, then a
 * VFIO_SET_IOMMU that the threads race for (lib/vfio_pci_device.c lets them: the first wins, the
 * others are refused because the type is set), then GET_DEVICE_FD and GET_INFO; on the cdev path
 * open, BIND_IOMMUFD and ATTACH_IOMMUFD_PT to the shared IOAS, then GET_INFO. A unit is a whole
 * IOMMU group on the group path because a group node opens once (a second open is EBUSY), so the
 * kernel's library cannot give two functions of one group a thread each.
 *
 * The steps run on any Kernel; `step` is the point between syscalls where another unit may run.
 * On the native kernel every unit runs in a worker thread (parallel-init-worker.ts): fds are the
 * process's, so the threads share the container fd as pthreads do. The model cannot be shared
 * that way: a ModelKernel is an object graph in one isolate, and a worker would get a structured
 * clone — another machine with its own fd table — so on the model the units run as concurrent
 * async tasks that yield to each other between syscalls (cases/parallel-init-cases.ts).
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Kernel } from '../sys/kernel';
import { isVfioError } from '../sys/errors';
import { O_CLOEXEC, O_RDWR } from '../sys/constants';
import * as V from '../uapi/vfio';
import { deviceAttachIommufdPt, deviceBindIommufd, deviceGetInfo } from '../ioctl/device-ioctls';
import { plainIoctl } from './raw-ioctl';

/** What the units share: the container (or iommufd standing in for one) and its IOMMU type, or an iommufd and IOAS. */
export type SharedIommu =
  | { readonly kind: 'group'; readonly containerFd: number; readonly iommuType: number }
  | { readonly kind: 'cdev'; readonly iommufd: number; readonly ioasId: number };

/** One thread's work: a group and the functions of it to open, or one device cdev. */
export type InitUnit =
  | { readonly kind: 'group'; readonly groupPath: string; readonly bdfs: readonly string[] }
  | { readonly kind: 'cdev'; readonly cdevPath: string; readonly bdf: string };

export interface InitResult {
  readonly unit: string;
  /** VFIO_SET_IOMMU's outcome on the group path: 'ok' or the errno. */
  readonly setIommu?: string;
  /** The functions set up, with the flags GET_INFO reported. */
  readonly devices: readonly { readonly bdf: string; readonly flags: number }[];
  /** Monotonic milliseconds (performance.now of the process) around the initialisation. */
  readonly startMs: number;
  readonly endMs: number;
  /** The failed step and its errno, when the unit could not be set up. */
  readonly error?: string;
}

export function describeUnit(unit: InitUnit): string {
  return unit.kind === 'group' ? `group ${unit.groupPath} (${unit.bdfs.join(', ')})` : `${unit.cdevPath} (${unit.bdf})`;
}

function outcome(e: unknown): string {
  return isVfioError(e) ? e.code : `${(e as Error).name}: ${(e as Error).message}`;
}

/**
 * Sets `unit` up against `shared`; returns what happened and the fds it opened (the caller closes
 * them once every unit is done, as the kernel's threads wait at a barrier before cleaning up).
 */
export async function initUnit(
  kernel: Kernel,
  unit: InitUnit,
  shared: SharedIommu,
  step: () => Promise<void>,
  now: () => number,
): Promise<{ result: InitResult; fds: number[] }> {
  const fds: number[] = [];
  const devices: { bdf: string; flags: number }[] = [];
  let setIommu: string | undefined;
  let current = 'open';
  const startMs = now();
  try {
    if (unit.kind === 'group') {
      if (shared.kind !== 'group') throw new Error('a group unit needs a shared container');
      current = `open ${unit.groupPath}`;
      const group = kernel.open(unit.groupPath, O_RDWR | O_CLOEXEC);
      fds.push(group);
      await step();
      current = 'VFIO_GROUP_SET_CONTAINER';
      const arg = Buffer.alloc(4);
      arg.writeInt32LE(shared.containerFd);
      kernel.ioctl(group, V.VFIO_GROUP_SET_CONTAINER.number, arg);
      await step();
      current = 'VFIO_CHECK_EXTENSION';
      if (plainIoctl(kernel, shared.containerFd, V.VFIO_CHECK_EXTENSION, shared.iommuType) <= 0) {
        throw new Error(`the container does not offer IOMMU type ${shared.iommuType}`);
      }
      await step();
      // The race: every thread tries, the first one sets the type, the others are refused.
      try {
        plainIoctl(kernel, shared.containerFd, V.VFIO_SET_IOMMU, shared.iommuType);
        setIommu = 'ok';
      } catch (e) {
        setIommu = outcome(e);
      }
      for (const bdf of unit.bdfs) {
        await step();
        current = `VFIO_GROUP_GET_DEVICE_FD ${bdf}`;
        const fd = kernel.ioctl(group, V.VFIO_GROUP_GET_DEVICE_FD.number, Buffer.from(`${bdf}\0`));
        fds.push(fd);
        current = `VFIO_DEVICE_GET_INFO ${bdf}`;
        devices.push({ bdf, flags: deviceGetInfo(kernel, fd).flags });
      }
    } else {
      if (shared.kind !== 'cdev') throw new Error('a cdev unit needs a shared IOAS');
      current = `open ${unit.cdevPath}`;
      const fd = kernel.open(unit.cdevPath, O_RDWR | O_CLOEXEC);
      fds.push(fd);
      await step();
      current = 'VFIO_DEVICE_BIND_IOMMUFD';
      deviceBindIommufd(kernel, fd, shared.iommufd);
      await step();
      current = 'VFIO_DEVICE_ATTACH_IOMMUFD_PT';
      deviceAttachIommufdPt(kernel, fd, shared.ioasId);
      await step();
      current = 'VFIO_DEVICE_GET_INFO';
      devices.push({ bdf: unit.bdf, flags: deviceGetInfo(kernel, fd).flags });
    }
  } catch (e) {
    const result = { unit: describeUnit(unit), devices, startMs, endMs: now(), error: `${current}: ${outcome(e)}` };
    return { result: setIommu === undefined ? result : { ...result, setIommu }, fds };
  }
  const result = { unit: describeUnit(unit), devices, startMs, endMs: now() };
  return { result: setIommu === undefined ? result : { ...result, setIommu }, fds };
}

/**
 * The units as concurrent async tasks on one kernel (the model's way): they start together and
 * yield to each other between syscalls, so the SET_IOMMU of one comes after the SET_CONTAINER of
 * the others, as threads racing do. The fds are closed once every task is done.
 */
export async function initConcurrently(kernel: Kernel, units: readonly InitUnit[], shared: SharedIommu): Promise<InitResult[]> {
  const yieldTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
  const now = () => performance.now();
  const done = await Promise.all(units.map((u) => initUnit(kernel, u, shared, yieldTurn, now)));
  for (const { fds } of [...done].reverse()) for (const fd of [...fds].reverse()) kernel.close(fd);
  return done.map((d) => d.result);
}

/**
 * The units in worker threads of their own on the native kernel, started together at a barrier
 * (parallel-init-worker.ts). Resolves when every worker has reported and exited; a worker that
 * dies reports its error as the unit's.
 */
export function initInWorkers(units: readonly InitUnit[], shared: SharedIommu, timeoutMs = 60_000): Promise<InitResult[]> {
  const barriers = new SharedArrayBuffer(8);
  const script = path.join(__dirname, 'parallel-init-worker.js');
  return Promise.all(
    units.map(
      (unit) =>
        new Promise<InitResult>((resolve) => {
          let result: InitResult | undefined;
          const worker = new Worker(script, {
            workerData: { unit, shared, barriers, parties: units.length, timeOrigin: performance.timeOrigin },
          });
          const timer = setTimeout(() => void worker.terminate(), timeoutMs);
          const failed = (why: string): InitResult => ({ unit: describeUnit(unit), devices: [], startMs: 0, endMs: 0, error: why });
          worker.on('message', (m: InitResult) => (result = m));
          worker.on('error', (e) => (result ??= failed(`worker: ${e.message}`)));
          worker.on('exit', (code) => {
            clearTimeout(timer);
            resolve(result ?? failed(`worker exited with code ${code} without a result`));
          });
        }),
    ),
  );
}

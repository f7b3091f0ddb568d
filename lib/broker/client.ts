/**
 * The client side of the broker (lib/broker/server.ts): asks for a device over the unix socket
 * and gets its iommufd and device cdev as fds, and on noiommu asks the broker for the physical
 * addresses of its own IOAS mappings (the one thing it cannot ask the kernel itself without
 * CAP_SYS_RAWIO). One request is in flight at a time; replies come in order.
 *
 * The connection is the lease: while it is open the broker keeps the device for this client;
 * closing it (or the process dying) lets the broker hand the device to someone else.
 */
import { VfioError } from '../sys/errors';
import type { Kernel } from '../sys/kernel';
import type { PhysAddr, Iova } from '../sys/addresses';
import { UnixSocket } from '../sys/unix-socket';
import { kernelFrom, type KernelOptions } from '../support/kernel-options';
import { Resource } from '../support/resource';
import { normalizeBdf } from '../pci/pci-device';
import { decodeReply, encodeRequest, MAX_MESSAGE_BYTES, type BrokerReply, type BrokerRequest } from './protocol';

/**
 * What a grant hands over: fds now owned by the caller.
 *
 * @category Passing fds
 */
export interface BrokerGrant {
  /** The device granted. */
  readonly bdf: string;
  /** An iommufd (the broker keeps a reference to the same open file, to answer GET_PA). */
  readonly iommufdFd: number;
  /** The device cdev, not yet bound: bind it to `iommufdFd` (VfioDevice.adopt does). */
  readonly deviceFd: number;
  /** The device has no IOMMU: physical addresses come from `physicalSegments`. */
  readonly noiommu: boolean;
  /**
   * Set when the broker bound the device to `iommufdFd` itself (an SR-IOV VF it bound with its
   * PF's VF token): the id that bind answered, for VfioDevice.adopt.
   */
  readonly deviceId?: number;
}

/**
 * One physically contiguous run of an IOAS range, as the broker's GET_PA answered it.
 *
 * @category Passing fds
 */
export interface BrokerPhysicalRun {
  /** Where the run starts in the IOAS. */
  readonly iova: Iova;
  /** The physical address the device must be given. */
  readonly phys: PhysAddr;
  /** Bytes. */
  readonly length: bigint;
}

/**
 * A connection to a broker.
 *
 * @example
 * ```ts
 * const client = await BrokerClient.connect('/run/vfio.sock');
 * const grant = await client.grant('0000:00:03.0');
 * ```
 *
 * @category Passing fds
 */
export class BrokerClient extends Resource {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    kernel: Kernel,
    private readonly socket: UnixSocket,
  ) {
    super(kernel, `broker connection ${socket.path}`);
    this.armSafetyNet(() => socket.close());
  }

  /** Connects to the broker listening at `path`. */
  static connect(path: string, options: KernelOptions = {}): BrokerClient {
    const kernel = kernelFrom(options);
    return new BrokerClient(kernel, UnixSocket.connect(path, { kernel }));
  }

  /** Asks for the device `bdf`; the fds are the caller's to close. */
  async grant(bdf: string): Promise<BrokerGrant> {
    const canonical = normalizeBdf(bdf);
    const { reply, fds } = await this.request({ type: 'grant', bdf: canonical });
    if (reply.type !== 'granted' || fds.length !== 2 || reply.bdf !== canonical) {
      for (const fd of fds) this.kernel.close(fd);
      throw unexpected(reply, 'GRANTED with an iommufd and a device fd');
    }
    return {
      bdf: canonical,
      iommufdFd: fds[0]!,
      deviceFd: fds[1]!,
      noiommu: reply.noiommu,
      ...(reply.deviceId === undefined ? {} : { deviceId: reply.deviceId }),
    };
  }

  /** Tells the broker this client is done with `bdf` (closing the connection does it for all). */
  async releaseDevice(bdf: string): Promise<void> {
    const { reply } = await this.request({ type: 'release', bdf: normalizeBdf(bdf) });
    if (reply.type !== 'released') throw unexpected(reply, 'RELEASED');
  }

  /**
   * The physical runs of [iova, iova+length) in IOAS `ioasId` of the iommufd granted with `bdf`
   * (noiommu only): the broker's IOMMU_IOAS_NOIOMMU_GET_PA, asked as often as the range needs.
   */
  async physicalSegments(bdf: string, ioasId: number, iova: Iova, length: bigint): Promise<BrokerPhysicalRun[]> {
    const canonical = normalizeBdf(bdf);
    const runs: BrokerPhysicalRun[] = [];
    const end = (iova as bigint) + length;
    let at = iova as bigint;
    while (at < end) {
      const { reply } = await this.request({ type: 'get-pa', bdf: canonical, ioasId, iova: at, length: end - at });
      if (reply.type !== 'physical') throw unexpected(reply, 'PHYSICAL');
      if (reply.runs.length === 0) throw new Error(`broker GET_PA answered no run at IOVA 0x${at.toString(16)}`);
      for (const r of reply.runs) {
        if (r.iova !== at || r.length === 0n || r.iova + r.length > end)
          throw new Error('broker GET_PA answered a run outside the range asked for');
        const last = runs[runs.length - 1];
        if (last && (last.phys as bigint) + last.length === r.phys) runs[runs.length - 1] = { ...last, length: last.length + r.length };
        else runs.push({ iova: r.iova as Iova, phys: r.phys as PhysAddr, length: r.length });
        at += r.length;
      }
    }
    return runs;
  }

  protected release(): void {
    this.socket.close();
  }

  private request(r: BrokerRequest): Promise<{ reply: BrokerReply; fds: readonly number[] }> {
    const run = async () => {
      this.assertOpen(`BrokerClient.${r.type}`);
      try {
        this.socket.send(encodeRequest(r));
      } catch (e) {
        // A broker that refuses a peer at once answers and closes before the request is sent: the
        // send is EPIPE, and the answer waits in our queue; anything else is the caller's error.
        if (!(e instanceof VfioError && e.code === 'EPIPE')) throw e;
      }
      let msg;
      try {
        msg = await this.socket.receive(MAX_MESSAGE_BYTES);
      } catch (e) {
        // A broker that refuses closes without reading our request: Linux then reports
        // ECONNRESET once, before the reply it sent, which the next receive returns.
        if (!(e instanceof VfioError && e.code === 'ECONNRESET')) throw e;
        msg = await this.socket.receive(MAX_MESSAGE_BYTES);
      }
      if (msg.data.length === 0 && msg.fds.length === 0) {
        throw VfioError.of('ECONNRESET', { syscall: 'recvmsg', path: this.socket.path, context: 'the broker closed the connection' });
      }
      let reply: BrokerReply;
      try {
        reply = decodeReply(msg.data);
      } catch (e) {
        for (const fd of msg.fds) this.kernel.close(fd);
        throw e;
      }
      if (reply.type !== 'granted') for (const fd of msg.fds) this.kernel.close(fd);
      return { reply, fds: reply.type === 'granted' ? msg.fds : [] };
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/** A refusal becomes a VfioError with the broker's code where it is an errno, else an Error naming it. */
function unexpected(reply: BrokerReply, wanted: string): Error {
  if (reply.type === 'error') {
    const e = new Error(`broker refused: ${reply.code}: ${reply.message}`) as Error & { code: string };
    e.code = reply.code;
    return e;
  }
  return new Error(`broker answered ${reply.type}, expected ${wanted}`);
}

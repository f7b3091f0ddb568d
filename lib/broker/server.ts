/**
 * The broker: a privileged process that binds the devices it was told to hand out to vfio-pci,
 * and gives an allowed peer (SO_PEERCRED) the fds it cannot open itself — an iommufd and the
 * device's cdev — over a unix socket. Nothing else is granted: a peer whose uid/gid is not
 * allowed, a device not listed, a name that is not a canonical PCI address, a malformed or
 * oversize message are refused with an ERROR reply and logged, and the broker goes on serving.
 *
 * Per connection the broker keeps its own reference to each iommufd it granted: on noiommu the
 * client cannot call IOMMU_IOAS_NOIOMMU_GET_PA (Linux checks CAP_SYS_RAWIO of the caller at each
 * call), so the broker answers GET_PA requests on that same open file with its own capability,
 * for that connection's iommufd only (docs/privileges.md). When the connection ends — RELEASE,
 * the client closing the socket, or dying — the broker drops its references and the device can
 * be granted again; fds a client sends are closed unread, never kept.
 *
 * A client that does not read its replies fills its socket: the broker's send then fails EAGAIN
 * and it drops that client instead of waiting on it. A client that sends more than
 * `maxBadMessages` bad messages is disconnected. Connections are served concurrently on the
 * event loop; each request is handled to its end before the next one of that connection.
 */
import { O_RDWR } from '../sys/constants';
import { VfioError } from '../sys/errors';
import type { Kernel } from '../sys/kernel';
import type { PeerCredentials } from '../sys/socket-calls';
import { UnixSocket } from '../sys/unix-socket';
import { kernelFrom, type KernelOptions } from '../support/kernel-options';
import { normalizeBdf, PciDevice, VFIO_PCI_DRIVER } from '../pci/pci-device';
import * as io from '../ioctl';
import { checkVfToken, vfTokenBytes } from '../vfio/vf-token';
import type { Iova } from '../sys/addresses';
import {
  decodeRequest,
  encodeReply,
  MAX_MESSAGE_BYTES,
  MAX_RUNS_PER_REPLY,
  ProtocolError,
  type BrokerReply,
  type BrokerRequest,
  type PhysicalRun,
} from './protocol';

/**
 * Options of `Broker.start`.
 *
 * @category Passing fds
 */
export interface BrokerOptions extends KernelOptions {
  /** Where to listen (a path that must not exist yet). */
  readonly socketPath: string;
  /** Effective uids whose processes may ask for devices. */
  readonly allowUids?: readonly number[];
  /** Effective (primary) gids whose processes may ask for devices. */
  readonly allowGids?: readonly number[];
  /** The PCI addresses it may hand out; nothing else is ever granted. */
  readonly devices: readonly string[];
  /** Bind the listed devices to vfio-pci at start (default true); noiommu devices need noiommu mode on. */
  readonly bind?: boolean;
  /** Where refusals and grants are reported (default: nowhere). */
  readonly log?: (entry: BrokerLogEntry) => void;
  /** Bad messages a connection may send before it is dropped (default 16). */
  readonly maxBadMessages?: number;
  /**
   * VF tokens by PF address: a listed SR-IOV VF of such a PF is bound to its iommufd by the
   * broker, with the PF user's token (VFIO_DEVICE_BIND_FLAG_TOKEN), before it is handed over, so
   * the client gets a VF it could not open itself and the token never leaves the broker.
   */
  readonly vfTokens?: Readonly<Record<string, string>>;
}

/**
 * One thing the broker did or refused.
 *
 * @category Passing fds
 */
export interface BrokerLogEntry {
  /** 'grant', 'release', 'refused', 'dropped' (a connection ended by the broker), 'error'. */
  readonly event: 'grant' | 'release' | 'refused' | 'dropped' | 'error';
  /** Who asked, as SO_PEERCRED reported it. */
  readonly peer?: PeerCredentials;
  /** The device concerned. */
  readonly bdf?: string;
  /** Why, in words. */
  readonly message: string;
}

interface Grant {
  readonly bdf: string;
  /** The broker's own fd of the iommufd it handed out (GET_PA is answered on it). */
  readonly iommufdFd: number;
  readonly noiommu: boolean;
}

interface Connection {
  readonly socket: UnixSocket;
  readonly peer: PeerCredentials;
  readonly grants: Map<string, Grant>;
  bad: number;
}

/**
 * A running broker (see the file header and docs/privileges.md).
 *
 * @example
 * ```ts
 * const broker = await Broker.start({ socketPath: '/run/vfio.sock', allowUids: [1000], devices: ['0000:00:03.0'] });
 * // … later
 * await broker.close();
 * ```
 *
 * @category Passing fds
 */
export class Broker {
  private readonly connections = new Set<Connection>();
  /** Which connection holds each granted device. */
  private readonly held = new Map<string, Connection>();
  private readonly lookup = new io.PhysicalAddressLookup();
  private readonly served: Promise<void>;
  private closing = false;

  private constructor(
    /** The kernel it runs on. */
    readonly kernel: Kernel,
    private readonly listener: UnixSocket,
    private readonly devices: ReadonlySet<string>,
    private readonly options: BrokerOptions,
  ) {
    this.served = this.acceptLoop();
  }

  /** Binds the listed devices (unless `bind: false`), listens on `socketPath` and starts serving. */
  static start(options: BrokerOptions): Broker {
    const kernel = kernelFrom(options);
    const devices = new Set(options.devices.map((d) => normalizeBdf(d)));
    for (const [pf, token] of Object.entries(options.vfTokens ?? {})) {
      normalizeBdf(pf);
      checkVfToken(token, `vfTokens['${pf}']`);
    }
    for (const bdf of devices) {
      const pci = PciDevice.get(bdf, { kernel });
      if (options.bind !== false && pci.driver !== VFIO_PCI_DRIVER) pci.bindVfio({ unsafeNoiommu: !pci.hasIommu });
    }
    const listener = UnixSocket.listen(options.socketPath, { kernel });
    return new Broker(kernel, listener, devices, options);
  }

  /** The socket path it listens on. */
  get socketPath(): string {
    return this.listener.path;
  }

  /** Devices granted now, and to whom. */
  grants(): {
    /** The device. */
    readonly bdf: string;
    /** The process it is granted to. */
    readonly peer: PeerCredentials;
  }[] {
    return [...this.held].map(([bdf, c]) => ({ bdf, peer: c.peer }));
  }

  /** Connections being served now. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Stops listening, ends every connection (releasing its grants) and removes the socket path. */
  async close(): Promise<void> {
    if (this.closing) return this.served;
    this.closing = true;
    this.listener.close();
    for (const c of [...this.connections]) c.socket.close();
    await this.served;
    try {
      UnixSocket.unlink(this.listener.path, { kernel: this.kernel });
    } catch {
      // Already gone (someone removed it): nothing to clean up.
    }
  }

  private async acceptLoop(): Promise<void> {
    const sessions = new Set<Promise<void>>();
    try {
      for (;;) {
        let socket: UnixSocket;
        try {
          socket = await this.listener.accept();
        } catch (e) {
          if (this.closing) break;
          // EMFILE and the like: report, and keep accepting once something frees up.
          this.log({ event: 'error', message: `accept failed: ${(e as Error).message}` });
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        const session = this.serve(socket).finally(() => sessions.delete(session));
        sessions.add(session);
      }
    } finally {
      await Promise.all([...sessions]);
    }
  }

  private async serve(socket: UnixSocket): Promise<void> {
    let peer: PeerCredentials;
    try {
      peer = socket.peer();
    } catch (e) {
      socket.close();
      this.log({ event: 'error', message: `SO_PEERCRED failed: ${(e as Error).message}` });
      return;
    }
    if (!this.allowed(peer)) {
      this.log({ event: 'refused', peer, message: `uid ${peer.uid} gid ${peer.gid} is not allowed` });
      trySend(socket, { type: 'error', code: 'EACCES', message: `uid ${peer.uid} / gid ${peer.gid} may not use this broker` });
      socket.close();
      return;
    }
    const c: Connection = { socket, peer, grants: new Map(), bad: 0 };
    this.connections.add(c);
    try {
      for (;;) {
        const msg = await socket.receive(MAX_MESSAGE_BYTES + 1);
        // Fds a client sends are never kept (or they would leak into the broker).
        for (const fd of msg.fds) this.kernel.close(fd);
        if (msg.data.length === 0 && !msg.truncated && msg.fds.length === 0) break; // hangup
        if (!this.handle(c, msg.data, msg.truncated || msg.data.length > MAX_MESSAGE_BYTES)) break;
      }
    } catch (e) {
      if (!this.closing) this.log({ event: 'dropped', peer, message: `connection ended: ${(e as Error).message}` });
    } finally {
      this.connections.delete(c);
      for (const g of [...c.grants.values()]) this.letGo(c, g, 'the connection ended');
      socket.close();
    }
  }

  /** One request; false when the connection is to be dropped. */
  private handle(c: Connection, data: Buffer, oversize: boolean): boolean {
    let request: BrokerRequest;
    try {
      if (oversize) throw new ProtocolError('ERR_SIZE', `message exceeds ${MAX_MESSAGE_BYTES} bytes`);
      request = decodeRequest(data);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      c.bad++;
      this.log({ event: 'refused', peer: c.peer, message: `bad message (${e.code}): ${e.message}` });
      if (!this.reply(c, { type: 'error', code: e.code, message: e.message })) return false;
      if (c.bad > (this.options.maxBadMessages ?? 16)) {
        this.log({ event: 'dropped', peer: c.peer, message: `more than ${this.options.maxBadMessages ?? 16} bad messages` });
        return false;
      }
      return true;
    }
    let reply: BrokerReply;
    let fds: number[] = [];
    try {
      ({ reply, fds } = this.answer(c, request));
    } catch (e) {
      const code = e instanceof VfioError ? e.code : 'EIO';
      this.log({ event: 'error', peer: c.peer, bdf: request.bdf, message: `${request.type} failed: ${(e as Error).message}` });
      reply = { type: 'error', code, message: (e as Error).message };
    }
    try {
      return this.reply(c, reply, fds);
    } finally {
      // The broker's copy of the device fd: the in-flight reference keeps the file for the client.
      for (const fd of fds.slice(1)) this.kernel.close(fd);
    }
  }

  private answer(c: Connection, r: BrokerRequest): { reply: BrokerReply; fds: number[] } {
    const refuse = (code: string, message: string) => {
      this.log({ event: 'refused', peer: c.peer, bdf: r.bdf, message });
      return { reply: { type: 'error', code, message } as BrokerReply, fds: [] };
    };
    if (!this.devices.has(r.bdf)) return refuse('ERR_NOT_LISTED', `${r.bdf} is not a device this broker hands out`);
    switch (r.type) {
      case 'grant': {
        if (c.grants.has(r.bdf)) return refuse('EALREADY', `${r.bdf} is already granted to this connection`);
        const holder = this.held.get(r.bdf);
        if (holder) return refuse('EBUSY', `${r.bdf} is granted to pid ${holder.peer.pid} (uid ${holder.peer.uid})`);
        const grant = this.open(r.bdf);
        c.grants.set(r.bdf, { bdf: r.bdf, iommufdFd: grant.iommufdFd, noiommu: grant.noiommu });
        this.held.set(r.bdf, c);
        this.log({
          event: 'grant',
          peer: c.peer,
          bdf: r.bdf,
          message: `granted ${grant.cdev}${grant.deviceId === undefined ? '' : ` (bound with its PF's VF token, device id ${grant.deviceId})`}`,
        });
        return {
          reply: {
            type: 'granted',
            bdf: r.bdf,
            noiommu: grant.noiommu,
            ...(grant.deviceId === undefined ? {} : { deviceId: grant.deviceId }),
          },
          fds: [grant.iommufdFd, grant.deviceFd],
        };
      }
      case 'release': {
        const g = c.grants.get(r.bdf);
        if (!g) return refuse('ENOENT', `${r.bdf} is not granted to this connection`);
        this.letGo(c, g, 'released by the client');
        return { reply: { type: 'released', bdf: r.bdf }, fds: [] };
      }
      case 'get-pa': {
        const g = c.grants.get(r.bdf);
        if (!g) return refuse('ENOENT', `${r.bdf} is not granted to this connection`);
        if (!g.noiommu) return refuse('EOPNOTSUPP', `${r.bdf} is behind an IOMMU: program it with IOVAs`);
        return { reply: { type: 'physical', runs: this.physicalRuns(g, r.ioasId, r.iova, r.length) }, fds: [] };
      }
    }
  }

  /** Opens /dev/iommu and the device cdev (the cdev of a noiommu device needs CAP_SYS_RAWIO). */
  private open(bdf: string): { iommufdFd: number; deviceFd: number; noiommu: boolean; cdev: string; deviceId?: number } {
    const pci = PciDevice.get(bdf, { kernel: this.kernel });
    const cdev = pci.cdevPath();
    if (cdev === null) {
      throw VfioError.condition('ERR_VFIO_NO_CDEV', {
        check: `${bdf} has no device cdev: the broker hands out cdevs with an iommufd only`,
      });
    }
    const iommufdFd = this.kernel.open('/dev/iommu', O_RDWR);
    let deviceFd: number;
    try {
      deviceFd = this.kernel.open(cdev, O_RDWR);
    } catch (e) {
      this.kernel.close(iommufdFd);
      throw e;
    }
    const noiommu = cdev.slice(cdev.lastIndexOf('/') + 1).startsWith('noiommu-');
    const pf = pci.physicalFunction;
    const token = pf === null ? undefined : Object.entries(this.options.vfTokens ?? {}).find(([at]) => normalizeBdf(at) === pf)?.[1];
    if (token === undefined) return { iommufdFd, deviceFd, noiommu, cdev };
    try {
      const deviceId = io.deviceBindIommufd(this.kernel, deviceFd, iommufdFd, vfTokenBytes(token));
      return { iommufdFd, deviceFd, noiommu, cdev, deviceId };
    } catch (e) {
      this.kernel.close(deviceFd);
      this.kernel.close(iommufdFd);
      throw VfioError.wrap(e, { context: `binding VF ${bdf} with the token configured for its PF ${pf}` });
    }
  }

  /** GET_PA on the broker's reference to the connection's iommufd, at most MAX_RUNS_PER_REPLY runs. */
  private physicalRuns(g: Grant, ioasId: number, iova: bigint, length: bigint): PhysicalRun[] {
    const runs: PhysicalRun[] = [];
    const end = iova + length;
    let at = iova;
    while (at < end) {
      const { phys, length: run } = this.lookup.lookup(this.kernel, g.iommufdFd, ioasId, at as Iova, end - at);
      if (run === 0n) break;
      const last = runs[runs.length - 1];
      if (last && last.phys + last.length === (phys as bigint)) runs[runs.length - 1] = { ...last, length: last.length + run };
      else if (runs.length === MAX_RUNS_PER_REPLY)
        break; // the client asks again from where this ends
      else runs.push({ iova: at, phys, length: run });
      at += run;
    }
    return runs;
  }

  private letGo(c: Connection, g: Grant, why: string): void {
    c.grants.delete(g.bdf);
    if (this.held.get(g.bdf) === c) this.held.delete(g.bdf);
    this.kernel.close(g.iommufdFd);
    this.log({ event: 'release', peer: c.peer, bdf: g.bdf, message: why });
  }

  private allowed(peer: PeerCredentials): boolean {
    return (this.options.allowUids ?? []).includes(peer.uid) || (this.options.allowGids ?? []).includes(peer.gid);
  }

  /** Sends a reply; a client that cannot take it (EAGAIN: not reading; EPIPE: gone) is dropped. */
  private reply(c: Connection, reply: BrokerReply, fds: readonly number[] = []): boolean {
    try {
      c.socket.send(encodeReply(reply), fds);
      return true;
    } catch (e) {
      this.log({ event: 'dropped', peer: c.peer, message: `reply not delivered: ${(e as Error).message}` });
      return false;
    }
  }

  private log(entry: BrokerLogEntry): void {
    this.options.log?.(entry);
  }
}

function trySend(socket: UnixSocket, reply: BrokerReply): void {
  try {
    socket.send(encodeReply(reply));
  } catch {
    // The refused peer is gone already: nothing to tell it.
  }
}

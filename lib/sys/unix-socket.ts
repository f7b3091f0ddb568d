/**
 * AF_UNIX SOCK_SEQPACKET sockets that carry fds (SCM_RIGHTS) and tell who is at the other end
 * (SO_PEERCRED): what a privileged process needs to hand VFIO and iommufd fds to an unprivileged
 * one, and what Node's net module cannot do. Native only: the calls go through the addon
 * (native/sockets.cc); waiting uses the Kernel's waitReadable, so nothing blocks the event loop.
 * Every socket is non-blocking and close-on-exec, and so is every fd received.
 */
import { loadAddon, isAddonErrnoError, type NativeAddon } from './addon';
import { ERRNO } from './constants';
import { VfioError } from './errors';
import { defaultKernel } from './default-kernel';

/**
 * Who is connected at the other end of a socket, as the kernel recorded it at connect().
 *
 * @category Passing fds
 */
export interface PeerCredentials {
  /** Process id of the peer, e.g. to log which client a broker served. */
  readonly pid: number;
  /** Effective user id of the peer: what a broker checks before handing out device fds. */
  readonly uid: number;
  /** Effective group id of the peer. */
  readonly gid: number;
}

/**
 * One message: its bytes and the fds that came with it (the receiver owns and must close them).
 *
 * @category Passing fds
 */
export interface ReceivedMessage {
  /** The message bytes. */
  readonly data: Buffer;
  /** The fds received with it, already installed in this process (close-on-exec). */
  readonly fds: readonly number[];
  /** The message or its fds did not fit and the rest was dropped by the kernel. */
  readonly truncated: boolean;
}

/**
 * The most fds one message carries (SCM_MAX_FD).
 *
 * @category Passing fds
 */
export const MAX_FDS_PER_MESSAGE = 253;

/**
 * A SOCK_SEQPACKET unix socket that sends and receives fds with each message.
 *
 * @example
 * ```ts
 * const server = UnixSocket.listen('/run/vfio-broker.sock');
 * const client = await server.accept();
 * if (client.peer().uid === allowedUid) client.send(Buffer.from('device'), [device.fd]);
 * client.close();
 * ```
 *
 * @category Passing fds
 */
export class UnixSocket {
  private open = true;

  private constructor(
    private readonly addon: NativeAddon,
    /** The socket's fd. */
    readonly fd: number,
    /** The path it listens on or is connected to ('socketpair' for a pair), for error messages. */
    readonly path: string,
  ) {}

  /** A listening socket bound to `path` (which must not exist yet: EADDRINUSE). */
  static listen(path: string, backlog = 64): UnixSocket {
    const addon = loadAddon();
    const fd = call(() => addon.unixSocket(), path);
    try {
      call(() => addon.unixListen(fd, path, backlog), path);
    } catch (e) {
      addon.close(fd);
      throw e;
    }
    return new UnixSocket(addon, fd, path);
  }

  /** A socket connected to the listener at `path` (ENOENT, ECONNREFUSED, EACCES name why not). */
  static connect(path: string): UnixSocket {
    const addon = loadAddon();
    const fd = call(() => addon.unixSocket(), path);
    try {
      call(() => addon.unixConnect(fd, path), path);
    } catch (e) {
      addon.close(fd);
      throw e;
    }
    return new UnixSocket(addon, fd, path);
  }

  /** Two connected sockets (socketpair), e.g. for a child process given one end at spawn. */
  static pair(): [UnixSocket, UnixSocket] {
    const addon = loadAddon();
    const [a, b] = call(() => addon.unixSocketPair(), 'socketpair');
    return [new UnixSocket(addon, a, 'socketpair'), new UnixSocket(addon, b, 'socketpair')];
  }

  /** Whether `close` has been called; every other call then fails EBADF. */
  get closed(): boolean {
    return !this.open;
  }

  /** The next connection, once one arrives. */
  async accept(signal?: AbortSignal): Promise<UnixSocket> {
    for (;;) {
      this.assertOpen('accept');
      try {
        return new UnixSocket(this.addon, this.addon.unixAccept(this.fd), this.path);
      } catch (e) {
        if (!isAddonErrnoError(e) || e.errno !== ERRNO.EAGAIN) throw translate(e, this.path);
      }
      await defaultKernel().waitReadable(this.fd, signal);
    }
  }

  /** Sends one message with `fds` attached (the sender keeps its own copies of them). */
  send(data: Uint8Array, fds: readonly number[] = []): void {
    this.assertOpen('send');
    if (fds.length > MAX_FDS_PER_MESSAGE) throw new RangeError(`fds: at most ${MAX_FDS_PER_MESSAGE} per message, got ${fds.length}`);
    const sent = call(() => this.addon.sendFds(this.fd, data, fds), this.path);
    if (sent !== data.length) {
      throw VfioError.of('EMSGSIZE', { syscall: 'sendmsg', path: this.path, context: `sent ${sent} of ${data.length} bytes` });
    }
  }

  /**
   * The next message, at most `maxBytes` long; an empty message with no fds when the peer has
   * closed (end of stream).
   */
  async receive(maxBytes = 4096, signal?: AbortSignal): Promise<ReceivedMessage> {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RangeError(`maxBytes must be a positive integer, got ${maxBytes}`);
    const into = Buffer.alloc(maxBytes);
    for (;;) {
      this.assertOpen('receive');
      try {
        const r = this.addon.recvFds(this.fd, into);
        return { data: into.subarray(0, r.bytes), fds: r.fds, truncated: r.truncated };
      } catch (e) {
        if (!isAddonErrnoError(e) || e.errno !== ERRNO.EAGAIN) throw translate(e, this.path);
      }
      await defaultKernel().waitReadable(this.fd, signal);
    }
  }

  /** SO_PEERCRED: the pid, uid and gid of the process that connected (or listened). */
  peer(): PeerCredentials {
    this.assertOpen('peer');
    return call(() => this.addon.peerCredentials(this.fd), this.path);
  }

  /** Closes the socket and ends pending accept/receive waits; closing twice is a no-op. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    // Through the kernel's close, which also ends the waits pending on this fd.
    defaultKernel().close(this.fd);
  }

  private assertOpen(what: string): void {
    if (!this.open) throw VfioError.of('EBADF', { syscall: what, path: this.path, context: 'the socket is closed' });
  }
}

function call<T>(body: () => T, path: string): T {
  try {
    return body();
  } catch (e) {
    throw translate(e, path);
  }
}

function translate(e: unknown, path: string): unknown {
  if (!isAddonErrnoError(e)) return e;
  return new VfioError({ errno: e.errno, syscall: e.syscall, path });
}

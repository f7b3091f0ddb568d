/**
 * AF_UNIX SOCK_SEQPACKET sockets that carry fds (SCM_RIGHTS) and tell who is at the other end
 * (SO_PEERCRED): what a privileged process needs to hand VFIO and iommufd fds to an unprivileged
 * one, and what Node's net module cannot do. The calls are the kernel's (`Kernel.sockets`): the
 * addon's on the native kernel (native/sockets.cc), simulated between processes on the model.
 * Waiting uses the kernel's waitReadable, so nothing blocks the event loop. Every socket is
 * non-blocking and close-on-exec, and so is every fd received.
 */
import { ERRNO } from './constants';
import { VfioError } from './errors';
import { defaultKernel } from './default-kernel';
import type { Kernel } from './kernel';
import type { PeerCredentials, SocketCalls } from './socket-calls';

export type { PeerCredentials } from './socket-calls';

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
 * Which kernel a socket lives on (the native one when absent).
 *
 * @category Passing fds
 */
export interface UnixSocketOptions {
  /** The kernel whose sockets to use: `nativeKernel()` by default, or a model process. */
  readonly kernel?: Kernel;
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
    /** The kernel the socket lives on; received fds are its fds. */
    readonly kernel: Kernel,
    private readonly calls: SocketCalls,
    /** The socket's fd. */
    readonly fd: number,
    /** The path it listens on or is connected to ('socketpair' for a pair), for error messages. */
    readonly path: string,
  ) {}

  /** A listening socket bound to `path` (which must not exist yet: EADDRINUSE). */
  static listen(path: string, options: UnixSocketOptions & { readonly backlog?: number } = {}): UnixSocket {
    const [kernel, calls] = socketsOf(options);
    const fd = call(() => calls.listen(path, options.backlog ?? 64), path);
    return new UnixSocket(kernel, calls, fd, path);
  }

  /** A socket connected to the listener at `path` (ENOENT, ECONNREFUSED, EACCES name why not). */
  static connect(path: string, options: UnixSocketOptions = {}): UnixSocket {
    const [kernel, calls] = socketsOf(options);
    const fd = call(() => calls.connect(path), path);
    return new UnixSocket(kernel, calls, fd, path);
  }

  /** Two connected sockets (socketpair), e.g. for a child process given one end at spawn. */
  static pair(options: UnixSocketOptions = {}): [UnixSocket, UnixSocket] {
    const [kernel, calls] = socketsOf(options);
    const [a, b] = call(() => calls.socketPair(), 'socketpair');
    return [new UnixSocket(kernel, calls, a, 'socketpair'), new UnixSocket(kernel, calls, b, 'socketpair')];
  }

  /** Removes the socket file a listener left at `path` (ENOENT when there is none). */
  static unlink(path: string, options: UnixSocketOptions = {}): void {
    const [, calls] = socketsOf(options);
    call(() => calls.unlink(path), path);
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
        return new UnixSocket(this.kernel, this.calls, this.calls.accept(this.fd), this.path);
      } catch (e) {
        if (!isEagain(e)) throw withPath(e, this.path);
      }
      await this.kernel.waitReadable(this.fd, signal);
    }
  }

  /** Sends one message with `fds` attached (the sender keeps its own copies of them). */
  send(data: Uint8Array, fds: readonly number[] = []): void {
    this.assertOpen('send');
    if (fds.length > MAX_FDS_PER_MESSAGE) throw new RangeError(`fds: at most ${MAX_FDS_PER_MESSAGE} per message, got ${fds.length}`);
    const sent = call(() => this.calls.send(this.fd, data, fds), this.path);
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
        const r = this.calls.receive(this.fd, into);
        return { data: into.subarray(0, r.bytes), fds: r.fds, truncated: r.truncated };
      } catch (e) {
        if (!isEagain(e)) throw withPath(e, this.path);
      }
      await this.kernel.waitReadable(this.fd, signal);
    }
  }

  /** SO_PEERCRED: the pid, uid and gid of the process that connected (or listened). */
  peer(): PeerCredentials {
    this.assertOpen('peer');
    return call(() => this.calls.peerCredentials(this.fd), this.path);
  }

  /** Closes the socket and ends pending accept/receive waits; closing twice is a no-op. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    // Through the kernel's close, which also ends the waits pending on this fd.
    this.kernel.close(this.fd);
  }

  private assertOpen(what: string): void {
    if (!this.open) throw VfioError.of('EBADF', { syscall: what, path: this.path, context: 'the socket is closed' });
  }
}

function socketsOf(options: UnixSocketOptions): [Kernel, SocketCalls] {
  const kernel = options.kernel ?? defaultKernel();
  if (!kernel.sockets) throw VfioError.of('EOPNOTSUPP', { syscall: 'socket', context: `${kernel.description} has no unix sockets` });
  return [kernel, kernel.sockets];
}

function isEagain(e: unknown): boolean {
  return e instanceof VfioError && e.errno === ERRNO.EAGAIN;
}

function call<T>(body: () => T, path: string): T {
  try {
    return body();
  } catch (e) {
    throw withPath(e, path);
  }
}

/** The socket calls name no path (they take fds): the socket's own is the useful one. */
function withPath(e: unknown, path: string): unknown {
  if (!(e instanceof VfioError) || e.path !== undefined) return e;
  return new VfioError({ errno: e.errno, syscall: e.syscall, path, ...(e.detail !== undefined ? { detail: e.detail } : {}), cause: e });
}

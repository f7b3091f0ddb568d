/**
 * The unix-socket system calls behind `UnixSocket`, as a part of the Kernel boundary: AF_UNIX
 * SOCK_SEQPACKET sockets that carry fds (SCM_RIGHTS) and report the peer's credentials
 * (SO_PEERCRED). NativeKernel issues them through the addon (native/sockets.cc); ModelKernel
 * runs them between its simulated processes, so a broker and an unprivileged client can be
 * tested on one model machine. Every socket is non-blocking: a call that would wait throws
 * EAGAIN, and the caller waits with `Kernel.waitReadable`.
 */

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
 * What one recvmsg returned: the bytes and the fds installed in the caller.
 *
 * @category Passing fds
 */
export interface ReceivedFds {
  /** Bytes copied into the buffer; 0 with no fds when the peer has closed. */
  readonly bytes: number;
  /** The fds received, already in the caller's fd table (close-on-exec). */
  readonly fds: number[];
  /** MSG_TRUNC or MSG_CTRUNC: the message or its fds did not all fit. */
  readonly truncated: boolean;
}

/**
 * The socket calls a Kernel may offer (`Kernel.sockets`); fds they return are ordinary fds of
 * that kernel (closed with `Kernel.close`, waited on with `Kernel.waitReadable`).
 *
 * @category Passing fds
 */
export interface SocketCalls {
  /** socketpair(AF_UNIX, SOCK_SEQPACKET): two connected sockets. */
  socketPair(): [number, number];
  /** socket + bind + listen at `path` (EADDRINUSE if it exists); returns the listening fd. */
  listen(path: string, backlog: number): number;
  /** socket + connect to the listener at `path` (ENOENT, ECONNREFUSED, EAGAIN with a full backlog). */
  connect(path: string): number;
  /** accept4: the next connection's fd (EAGAIN when none is waiting). */
  accept(fd: number): number;
  /** sendmsg of `data` with `fds` as SCM_RIGHTS; returns the bytes sent (EAGAIN when the peer's queue is full, EPIPE once it has closed). */
  send(fd: number, data: Uint8Array, fds: readonly number[]): number;
  /** recvmsg into `into` (EAGAIN when nothing is queued). */
  receive(fd: number, into: Uint8Array): ReceivedFds;
  /** getsockopt SO_PEERCRED. */
  peerCredentials(fd: number): PeerCredentials;
  /** unlink(2) of a socket path left by a listener (ENOENT when there is none). */
  unlink(path: string): void;
}

/**
 * AF_UNIX SOCK_SEQPACKET sockets between the processes of one model machine (net/unix/af_unix.c
 * as far as fd passing needs it): socketpair, bind+listen on a path, connect, accept, sendmsg with
 * SCM_RIGHTS, recvmsg, SO_PEERCRED, and the hangup a peer sees when the other end's last fd is
 * closed. Every socket is non-blocking, as UnixSocket makes the native ones.
 *
 * What Linux does and the model keeps:
 *  - An fd in flight is a reference on its open file (unix_inflight): the file lives while the
 *    message is queued, even if the sender closes its fd; the receiver gets a new fd in its own
 *    table (the lowest free one); a socket closed with messages queued drops their files.
 *  - SO_PEERCRED is what the kernel recorded at connect()/socketpair() (the connecting process
 *    for the listener's side, the listener's at listen() for the connecting side), never what a
 *    peer says about itself.
 *  - recvmsg of a message longer than the buffer copies what fits and drops the rest (MSG_TRUNC);
 *    fds beyond the receiver's RLIMIT_NOFILE are dropped (MSG_CTRUNC).
 *  - A queue holds at most SNDBUF bytes (each message charged its length plus a fixed overhead, as
 *    skb truesize is): a full queue is EAGAIN for the non-blocking sender, a message bigger than
 *    the buffer EMSGSIZE. A peer that has closed is EPIPE for send and end-of-stream for receive.
 *  - A peer that closes with messages of ours unread leaves us ECONNRESET (sk_err), which the
 *    next recvmsg returns once, before the messages still queued for us.
 *  - A path stays bound after its listener closes (the socket inode stays in the file system):
 *    connect then gets ECONNREFUSED and listen EADDRINUSE until it is unlinked.
 */
import { fail } from '../errno';
import type { OpenFile } from '../open-file';
import { ReadinessWatchers } from '../readiness-watchers';
import type { PeerCredentials, ReceivedFds } from '../../sys/socket-calls';

/** net.core.wmem_default, the SO_SNDBUF a new unix socket has. */
const SNDBUF = 212_992;
/** What the model charges a queued message besides its bytes (skb overhead). */
const MESSAGE_OVERHEAD = 576;
/** SCM_MAX_FD. */
const SCM_MAX_FD = 253;
/** sizeof(sun_path) less its NUL. */
const MAX_PATH = 107;

/**
 * What the socket code needs of the calling process (a ModelKernel provides it).
 *
 * @category Model
 */
export interface SocketProcess {
  /** What SO_PEERCRED reports for this process. */
  readonly credentials: PeerCredentials;
  /** fget: the open file behind an fd (EBADF). */
  fileOf(fd: number): OpenFile;
  /** fd_install at the lowest free fd. */
  installFile(file: OpenFile, path: string): number;
  /** get_file. */
  holdFile(file: OpenFile): void;
  /** fput. */
  dropFile(file: OpenFile): void;
  /** Free fd slots below RLIMIT_NOFILE. */
  freeFdSlots(): number;
}

interface Message {
  readonly data: Buffer;
  readonly files: OpenFile[];
}

/** One end of a connected pair (struct unix_sock of a SOCK_SEQPACKET socket). */
export class ConnectedSocket implements OpenFile {
  readonly kind = 'socket';
  peer: ConnectedSocket | null = null;
  /** Messages the peer sent, not yet received here. */
  readonly queue: Message[] = [];
  queuedBytes = 0;
  /** The peer closed its end. */
  hungUp = false;
  /** sk_err: ECONNRESET once the peer closed with messages of ours unread (unix_release_sock). */
  pendingReset = false;
  private readonly watchers = new ReadinessWatchers();
  private released = false;

  constructor(
    /** SO_PEERCRED of this end: who is at the other one. */
    readonly peerCredentials: PeerCredentials,
    private readonly dropFile: (file: OpenFile) => void,
  ) {}

  readable(): boolean {
    return this.queue.length > 0 || this.hungUp || this.pendingReset;
  }

  onReadable(cb: () => void): () => void {
    return this.watchers.add(cb);
  }

  notify(): void {
    this.watchers.notify();
  }

  /** unix_release: the peer sees the hangup, queued fds are dropped. */
  release(): void {
    if (this.released) return;
    this.released = true;
    const peer = this.peer;
    this.peer = null;
    const unread = this.queue.length > 0;
    this.dropQueue();
    if (peer) {
      peer.hungUp = true;
      if (unread) peer.pendingReset = true;
      peer.peer = null;
      peer.notify();
    }
  }

  dropQueue(): void {
    for (const m of this.queue.splice(0)) for (const f of m.files) this.dropFile(f);
    this.queuedBytes = 0;
  }
}

/** A socket bound to a path and listening. */
export class ListeningSocket implements OpenFile {
  readonly kind = 'socket';
  /** Server ends of connections not accepted yet. */
  readonly pending: ConnectedSocket[] = [];
  closed = false;
  private readonly watchers = new ReadinessWatchers();

  constructor(
    readonly path: string,
    readonly backlog: number,
    /** Recorded at listen(): what the connecting side's SO_PEERCRED reports. */
    readonly credentials: PeerCredentials,
  ) {}

  readable(): boolean {
    return this.pending.length > 0;
  }

  onReadable(cb: () => void): () => void {
    return this.watchers.add(cb);
  }

  notify(): void {
    this.watchers.notify();
  }

  /** Connections never accepted are reset: their connecting ends see the hangup. */
  release(): void {
    this.closed = true;
    for (const s of this.pending.splice(0)) s.release();
  }
}

/**
 * The machine's unix sockets: which paths are bound, and the calls each process makes (through
 * its `ModelKernel.sockets`).
 *
 * @category Model
 */
export class ModelSockets {
  /** Bound paths; a closed listener stays until unlinked. */
  private readonly bound = new Map<string, ListeningSocket>();

  /** socketpair(2) in process `p`. */
  socketPair(p: SocketProcess): [number, number] {
    const [a, b] = this.connectedPair(p, p.credentials, p.credentials);
    const fa = p.installFile(a, 'socket:[socketpair]');
    let fb: number;
    try {
      fb = p.installFile(b, 'socket:[socketpair]');
    } catch (e) {
      // The first end's fd is the caller's to close on a real kernel too; here it never got out.
      p.dropFile(a);
      throw e;
    }
    return [fa, fb];
  }

  /** socket + bind + listen at `path` (EADDRINUSE while bound). */
  listen(p: SocketProcess, path: string, backlog: number): number {
    checkPath(path);
    if (this.bound.has(path)) fail('EADDRINUSE');
    const listener = new ListeningSocket(path, Math.max(1, Math.min(backlog, 4096)), p.credentials);
    const fd = p.installFile(listener, `socket:[${path}]`);
    this.bound.set(path, listener);
    return fd;
  }

  /** socket + connect (ENOENT, ECONNREFUSED, EAGAIN with the backlog full). */
  connect(p: SocketProcess, path: string): number {
    checkPath(path);
    const listener = this.bound.get(path);
    if (!listener) fail('ENOENT');
    if (listener.closed) fail('ECONNREFUSED');
    // unix_stream_connect of a non-blocking socket with the backlog full.
    if (listener.pending.length >= listener.backlog) fail('EAGAIN', 'the listener backlog is full');
    const [client, server] = this.connectedPair(p, listener.credentials, p.credentials);
    const fd = p.installFile(client, `socket:[${path}]`);
    listener.pending.push(server);
    listener.notify();
    return fd;
  }

  /** accept4 (EAGAIN when nothing waits, EINVAL on a socket that is not listening). */
  accept(p: SocketProcess, fd: number): number {
    const file = p.fileOf(fd);
    if (!(file instanceof ListeningSocket)) fail(file instanceof ConnectedSocket ? 'EINVAL' : 'ENOTSOCK');
    const next = file.pending.shift();
    if (!next) fail('EAGAIN');
    // At RLIMIT_NOFILE installFile releases it (EMFILE): the connecting end sees the hangup.
    return p.installFile(next, `socket:[${file.path}]`);
  }

  /** sendmsg with SCM_RIGHTS (EAGAIN with the peer's queue full, EPIPE once it closed). */
  send(p: SocketProcess, fd: number, data: Uint8Array, fds: readonly number[]): number {
    const sock = connected(p, fd);
    // The addon refuses these before the syscall; so does the model, the same way.
    if (fds.length > SCM_MAX_FD) throw new RangeError(`fds: one message carries at most ${SCM_MAX_FD} fds (SCM_MAX_FD)`);
    if (fds.some((f) => !Number.isInteger(f) || f < 0 || f > 0x7fff_ffff))
      throw new RangeError('fds: every element must be a non-negative int32 fd');
    const peer = sock.peer;
    if (!peer) fail(sock.hungUp ? 'EPIPE' : 'ENOTCONN');
    const cost = data.length + MESSAGE_OVERHEAD;
    if (cost > SNDBUF) fail('EMSGSIZE');
    if (peer.queuedBytes + cost > SNDBUF) fail('EAGAIN', 'the peer has not received what is queued');
    const files = fds.map((f) => p.fileOf(f)); // EBADF before anything is taken
    for (const f of files) p.holdFile(f);
    peer.queue.push({ data: Buffer.from(data), files });
    peer.queuedBytes += cost;
    peer.notify();
    return data.length;
  }

  /** recvmsg (EAGAIN when empty; ECONNRESET once after a reset; 0 bytes at end of stream). */
  receive(p: SocketProcess, fd: number, into: Uint8Array): ReceivedFds {
    const sock = connected(p, fd);
    // __skb_try_recv_datagram reports a pending socket error (and clears it) before any message.
    if (sock.pendingReset) {
      sock.pendingReset = false;
      fail('ECONNRESET', 'the peer closed with messages it had not read');
    }
    const m = sock.queue.shift();
    if (!m) {
      if (sock.hungUp) return { bytes: 0, fds: [], truncated: false };
      fail('EAGAIN');
    }
    sock.queuedBytes -= m.data.length + MESSAGE_OVERHEAD;
    const bytes = Math.min(m.data.length, into.length);
    into.set(m.data.subarray(0, bytes));
    const room = p.freeFdSlots();
    const fds: number[] = [];
    for (const [i, file] of m.files.entries()) {
      if (i < room) fds.push(p.installFile(file, pathOfPassed(file)));
      // The in-flight reference goes either way: installed files now have their fd's.
      p.dropFile(file);
    }
    return { bytes, fds, truncated: bytes < m.data.length || fds.length < m.files.length };
  }

  /** getsockopt SO_PEERCRED. */
  peerCredentials(p: SocketProcess, fd: number): PeerCredentials {
    const file = p.fileOf(fd);
    if (file instanceof ListeningSocket) return file.credentials;
    if (!(file instanceof ConnectedSocket)) fail('ENOTSOCK');
    return file.peerCredentials;
  }

  /** unlink(2) of a bound socket path (ENOENT when none). */
  unlink(path: string): void {
    const listener = this.bound.get(path);
    if (!listener) fail('ENOENT');
    this.bound.delete(path);
  }

  private connectedPair(p: SocketProcess, credsOfB: PeerCredentials, credsOfA: PeerCredentials): [ConnectedSocket, ConnectedSocket] {
    const drop = (f: OpenFile) => p.dropFile(f);
    // a is the caller's end: its peer (b's owner) has credsOfB.
    const a = new ConnectedSocket(credsOfB, drop);
    const b = new ConnectedSocket(credsOfA, drop);
    a.peer = b;
    b.peer = a;
    return [a, b];
  }
}

function connected(p: SocketProcess, fd: number): ConnectedSocket {
  const file = p.fileOf(fd);
  if (file instanceof ListeningSocket) fail('ENOTCONN');
  if (!(file instanceof ConnectedSocket)) fail('ENOTSOCK');
  return file;
}

function checkPath(path: string): void {
  if (Buffer.byteLength(path) > MAX_PATH)
    throw new RangeError(`socket path: sun_path holds ${MAX_PATH} bytes, got ${Buffer.byteLength(path)}`);
  if (path === '') fail('ENOENT');
}

function pathOfPassed(file: OpenFile): string {
  return `anon_inode:[${file.kind}]`;
}

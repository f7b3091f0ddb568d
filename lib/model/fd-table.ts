/**
 * The process's fd table, allocating as alloc_fd does: the lowest free fd (from 3, stdin, stdout
 * and stderr being taken), EMFILE once that fd would reach RLIMIT_NOFILE. Closed fds wait in a
 * min-heap below the high-water mark, so finding the lowest free fd costs O(log n) however many
 * fds are open, where scanning upwards from 3 made opening n fds quadratic.
 */
import { fail } from './errno';

/** The first fd a process gets: 0, 1 and 2 are its standard streams. */
const FIRST_FD = 3;

export class FdTable<Entry> {
  private readonly entries = new Map<number, Entry>();
  /** Free fds below `highWater`, smallest on top. */
  private readonly freed: number[] = [];
  /** Every fd from here up has never been handed out. */
  private highWater = FIRST_FD;

  /** RLIMIT_NOFILE: fds are numbered below it. */
  constructor(public limit: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(fd: number): Entry | undefined {
    return this.entries.get(fd);
  }

  has(fd: number): boolean {
    return this.entries.has(fd);
  }

  [Symbol.iterator](): IterableIterator<[number, Entry]> {
    return this.entries[Symbol.iterator]();
  }

  /**
   * Reserves the lowest free fd (get_unused_fd_flags), EMFILE when it is not below the limit;
   * `install` fills it, `unreserve` gives it back when the open fails after all.
   */
  reserve(): number {
    const fd = this.freed.length > 0 ? this.freed[0]! : this.highWater;
    if (fd >= this.limit) fail('EMFILE', `RLIMIT_NOFILE is ${this.limit}`);
    if (this.freed.length > 0) this.popFreed();
    else this.highWater++;
    return fd;
  }

  install(fd: number, entry: Entry): void {
    this.entries.set(fd, entry);
  }

  unreserve(fd: number): void {
    this.pushFreed(fd);
  }

  /** Removes an fd's entry (close); the fd becomes free. */
  remove(fd: number): Entry | undefined {
    const entry = this.entries.get(fd);
    if (entry === undefined) return undefined;
    this.entries.delete(fd);
    this.pushFreed(fd);
    return entry;
  }

  private pushFreed(fd: number): void {
    const heap = this.freed;
    heap.push(fd);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]! <= fd) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = fd;
  }

  private popFreed(): void {
    const heap = this.freed;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]! < heap[left]! ? right : left;
      if (heap[child]! >= last) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
}

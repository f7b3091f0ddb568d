/**
 * The process's fd table, allocating as alloc_fd does: the lowest free fd (from 3, stdin, stdout
 * and stderr being taken), EMFILE once that fd would reach RLIMIT_NOFILE. Closed fds wait in a
 * min-heap below the high-water mark, so finding the lowest free fd costs O(log n) however many
 * fds are open, where scanning upwards from 3 made opening n fds quadratic.
 */
import { fail } from './errno';
import { MinHeap } from './structures/min-heap';

/** The first fd a process gets: 0, 1 and 2 are its standard streams. */
const FIRST_FD = 3;

export class FdTable<Entry> {
  private readonly entries = new Map<number, Entry>();
  /** Free fds below `highWater`, smallest on top. */
  private readonly freed = new MinHeap();
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
    const fd = this.freed.peek() ?? this.highWater;
    if (fd >= this.limit) fail('EMFILE', `RLIMIT_NOFILE is ${this.limit}`);
    if (this.freed.size > 0) this.freed.pop();
    else this.highWater++;
    return fd;
  }

  install(fd: number, entry: Entry): void {
    this.entries.set(fd, entry);
  }

  unreserve(fd: number): void {
    this.freed.push(fd);
  }

  /** Removes an fd's entry (close); the fd becomes free. */
  remove(fd: number): Entry | undefined {
    const entry = this.entries.get(fd);
    if (entry === undefined) return undefined;
    this.entries.delete(fd);
    this.freed.push(fd);
    return entry;
  }
}

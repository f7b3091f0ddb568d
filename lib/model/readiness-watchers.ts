/**
 * Who waits for a model file to become readable: the event loop's pending polls (model-kernel.ts
 * waitReadable) register here, and the file tells them all when data arrives or the peer goes.
 */
export class ReadinessWatchers {
  private readonly callbacks = new Set<() => void>();

  /** Adds `cb`; returns what removes it again. */
  add(cb: () => void): () => void {
    this.callbacks.add(cb);
    return () => this.callbacks.delete(cb);
  }

  /** Calls every watcher (a copy: a watcher may remove itself). */
  notify(): void {
    for (const cb of [...this.callbacks]) cb();
  }
}

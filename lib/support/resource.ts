/**
 * Ownership. Every fd and every mapping the API creates has exactly one owner object, a
 * `Resource`: `close()` releases it (idempotently), `[Symbol.dispose]` makes `using` work, and a
 * resource closes the resources it owns before itself (a device closes its BAR mappings and
 * interrupt vectors, an IOAS its DMA buffers). Using a closed resource throws a VfioError with
 * code EBADF before anything reaches the kernel, so a stale fd number (possibly reused by another
 * open) is never touched.
 *
 * A resource can also be held by others, the way the kernel counts references to a file: a
 * device bound with `ownIommufd` holds its iommufd, a device taken from a group holds the group
 * and its container. A held resource's `close()` only records that its owner is done with it;
 * it closes once the last holder has closed (or been dropped).
 *
 * A FinalizationRegistry releases what a dropped, never-closed resource held, as a safety net
 * only: the moment is up to the garbage collector. The releaser it runs never references the
 * resource object (that would keep it alive); fds go through a shared `FileDescriptor` record, so
 * a releaser can tell whether an fd it depends on was already closed and skip it.
 */
import type { Kernel } from '../sys/kernel';
import { VfioError } from '../sys/errors';

/** @internal An fd number plus whether it is still open; shared by the owner and the releasers that use it. */
export class FileDescriptor {
  private isOpen = true;
  constructor(
    readonly kernel: Kernel,
    readonly fd: number,
    readonly path: string,
  ) {}

  get open(): boolean {
    return this.isOpen;
  }

  /** Closes the fd once; later calls do nothing. */
  close(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.kernel.close(this.fd);
  }
}

type Releaser = () => void;
const safetyNet = new FinalizationRegistry<Releaser>((release) => {
  try {
    release();
  } catch {
    // Nothing can be reported from a finalizer; the kernel reclaims the rest at process exit.
  }
});

/**
 * Counts what the safety net had to release, so tests (and leak hunts) can observe it.
 *
 * @category Kernel
 */
export const safetyNetStats = { released: 0 };

/**
 * Base of every object that owns an fd or a mapping: `close()` releases it and what it owns,
 * `using` closes it at the end of a block, and using it after close throws EBADF.
 *
 * @category Kernel
 */
export abstract class Resource implements Disposable {
  private isClosed = false;
  // Owners hold what they own weakly: a dropped child must stay collectable (and then be
  // released by the safety net) even while its owner lives on.
  private readonly owned = new Set<WeakRef<Resource>>();
  private readonly selfRef = new WeakRef<Resource>(this);
  private owner: Resource | undefined;
  /** How many resources hold this one open, and whether close() was asked for meanwhile. */
  private holders = 0;
  private closeWanted = false;
  /** The resources this one holds open, let go of once it has closed. */
  private readonly held: Resource[] = [];

  protected constructor(
    /** The kernel every call of this resource goes to. */
    readonly kernel: Kernel,
    /** What this is, for error messages: "VFIO device 0000:00:04.0", "IOAS 2". */
    readonly description: string,
  ) {}

  /** True once `close()` ran (directly or through the owner). */
  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Releases this resource and everything it owns. Closing twice is allowed and does nothing.
   * While another resource holds this one, the release waits until the last holder closes.
   */
  close(): void {
    if (this.isClosed) return;
    if (this.holders > 0) {
      this.closeWanted = true;
      return;
    }
    this.isClosed = true;
    safetyNet.unregister(this);
    const errors: unknown[] = [];
    for (const child of this.ownedResources().reverse()) {
      try {
        child.close();
      } catch (e) {
        errors.push(e);
      }
    }
    this.owned.clear();
    try {
      this.release();
    } catch (e) {
      errors.push(e);
    }
    this.owner?.owned.delete(this.selfRef);
    this.owner = undefined;
    errors.push(...Resource.letGoOf(this.held));
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `closing ${this.description} failed in ${errors.length} places`);
  }

  /** Same as `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Frees what this resource itself holds (its children are already closed). */
  protected abstract release(): void;

  /** Makes `child` owned by this resource: it is closed before this one. */
  protected adopt<T extends Resource>(child: T): T {
    this.assertOpen('adopt');
    child.owner?.owned.delete(child.selfRef);
    child.owner = this;
    this.owned.add(child.selfRef);
    return child;
  }

  /**
   * Keeps `resource` open while this one is: its `close()` (by whoever else owns it) takes effect
   * once this one has closed too.
   */
  protected hold<T extends Resource>(resource: T): T {
    this.assertOpen('hold');
    resource.assertOpen('hold');
    resource.holders++;
    this.held.push(resource);
    return resource;
  }

  /** One holder less; the last one carries out a close() asked for meanwhile. */
  private letGo(): void {
    this.holders--;
    if (this.holders === 0 && this.closeWanted) this.close();
  }

  /** Lets go of every resource in `held` (emptying it), in the order they were taken; returns what failed. */
  private static letGoOf(held: Resource[]): unknown[] {
    const errors: unknown[] = [];
    for (const resource of held.splice(0)) {
      try {
        resource.letGo();
      } catch (e) {
        errors.push(e);
      }
    }
    return errors;
  }

  /** The resources this one currently owns, oldest first. */
  protected ownedResources(): Resource[] {
    const live: Resource[] = [];
    for (const ref of this.owned) {
      const r = ref.deref();
      if (r) live.push(r);
      else this.owned.delete(ref);
    }
    return live;
  }

  /**
   * Forgets this resource without calling `release()`, for when the kernel already dropped what
   * it held (e.g. its IOAS area went away with an explicit unmap).
   */
  protected markReleased(): void {
    if (this.isClosed) return;
    for (const child of this.ownedResources().reverse()) child.markReleased();
    this.isClosed = true;
    safetyNet.unregister(this);
    this.owner?.owned.delete(this.selfRef);
    this.owner = undefined;
  }

  /**
   * Arms the garbage-collection safety net. `release` must not reference `this`. What this
   * resource holds is let go of after `release`, as `close()` does.
   */
  protected armSafetyNet(release: Releaser): void {
    const held = this.held;
    safetyNet.register(
      this,
      () => {
        safetyNetStats.released++;
        try {
          release();
        } finally {
          Resource.letGoOf(held);
        }
      },
      this,
    );
  }

  /** Throws the use-after-close error; call first in every public method. */
  protected assertOpen(operation: string): void {
    if (this.isClosed) throw closedError(this.description, operation);
  }
}

/**
 * The error for using a closed resource: EBADF, as the kernel would answer for a closed fd.
 *
 * @category Kernel
 */
export function closedError(description: string, operation: string): VfioError {
  return VfioError.of('EBADF', {
    syscall: operation,
    context: `${description} is closed`,
    hint: 'the object was closed (or its owner was); open a new one instead of reusing it',
  });
}

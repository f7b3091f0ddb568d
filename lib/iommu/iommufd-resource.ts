/**
 * Base of the objects that live inside an iommufd: IOAS, HWPT, IOAS mappings. Each is torn down
 * in the kernel by one ioctl (IOMMU_DESTROY, IOMMU_IOAS_UNMAP), and one guard, the object's
 * `Teardown`, decides whether that ioctl is still due, for `close()` and for the
 * garbage-collection safety net alike: never twice, not while the iommufd closes or once it is
 * closed (the kernel drops every object with its fd), and not when what the object lives in is
 * already gone (a mapping of a destroyed IOAS).
 */
import { Resource } from '../support/resource';
import type { IommufdHandle } from './iommufd-handle';

/**
 * @internal The kernel side of one iommufd object: whether it still exists, and the ioctl that
 * destroys it. Shared by the object and its safety-net releaser, so it never references the object.
 */
export class Teardown {
  private ran = false;
  private destroyedHere = false;

  constructor(
    private readonly handle: IommufdHandle,
    /** The teardown of the object this one lives in (the IOAS of a mapping). */
    private readonly within: Teardown | undefined,
    private readonly destroy: () => void,
  ) {}

  /** True once the kernel no longer holds the object: torn down, or dropped with its iommufd or container. */
  get gone(): boolean {
    return this.ran || !this.handle.file.open || (this.within?.gone ?? false);
  }

  /** True once this object's own destroy ioctl succeeded. */
  get destroyed(): boolean {
    return this.destroyedHere;
  }

  /** Runs the destroy ioctl, at most once, and only while the kernel still holds the object alone. */
  run(): void {
    if (this.ran) return;
    const due = !this.handle.tearingDown && !this.gone;
    this.ran = true;
    if (!due) return;
    this.destroy();
    this.destroyedHere = true;
  }

  /** Records that the kernel already dropped the object (an explicit unmap covered it). */
  forget(): void {
    this.ran = true;
  }
}

/** An object inside an iommufd; `close()` and the safety net both end in its one `Teardown`. */
export abstract class IommufdResource extends Resource {
  /** @internal */
  readonly teardown: Teardown;

  protected constructor(
    /** @internal The iommufd this object lives in. */
    readonly handle: IommufdHandle,
    description: string,
    within: IommufdResource | undefined,
    /** The destroy ioctl; must not reference the object (the safety net runs it after the object is gone). */
    destroy: () => void,
  ) {
    super(handle.kernel, description);
    const teardown = new Teardown(handle, within?.teardown, destroy);
    this.teardown = teardown;
    this.armSafetyNet(() => teardown.run());
  }

  protected release(): void {
    this.teardown.run();
  }

  protected override markReleased(): void {
    this.teardown.forget();
    super.markReleased();
  }
}

/**
 * A device model's event log: what a real device would only show as misbehaviour (a wrong access
 * width, DMA that faulted, a command the hardware rejects, a handler that threw). Tests read the
 * log, subscribe to it, or switch on strict mode so that the events they name throw at the point
 * where the device noticed them: inside the driver's MMIO access, or inside `ModelClock.advance`
 * when the device was doing scheduled work.
 */
import type { DmaFault } from '../pci/dma';

/**
 * What kind of thing a device event reports; strict mode is switched on per kind.
 *
 * @category Device-model SDK
 */
export type DeviceEventKind =
  /** A DMA transaction the host's memory or IOMMU refused (see `fault`). */
  | 'dma-fault'
  /** DMA attempted while bus mastering is disabled: the transaction never leaves the function. */
  | 'dma-blocked'
  /** The emulated hardware stopped working (QEMU aborts the VM here; the model marks the device dead). */
  | 'hardware-error'
  /** The device ignored a guest mistake QEMU logs as LOG_GUEST_ERROR (a wrong access width, a clamped address). */
  | 'guest-error'
  /** The device model's own code threw; the access failed the way a broken device fails. */
  | 'model-error'
  /** A fault a test armed (device-faults.ts) fired: the point, the occurrence and what the device did. */
  | 'fault-injected';

/**
 * One entry of a device's event log (`device.events`, `device.onEvent`).
 *
 * @category Device-model SDK
 */
export interface DeviceEvent {
  /** What happened. */
  readonly kind: DeviceEventKind;
  /** What happened, in words, naming the register, address or command. */
  readonly message: string;
  /** The refused transaction, for 'dma-fault'. */
  readonly fault?: DmaFault;
  /** What the device model threw, for 'model-error'. */
  readonly cause?: unknown;
  /** The fault point, for 'fault-injected'. */
  readonly faultPoint?: string;
}

/**
 * Thrown in strict mode for an event of a kind the test made strict.
 *
 * @category Device-model SDK
 */
export class DeviceEventError extends Error {
  /** @param event The event strict mode threw for. */
  constructor(readonly event: DeviceEvent) {
    super(event.message, event.cause === undefined ? undefined : { cause: event.cause });
    this.name = 'DeviceEventError';
  }
}

/**
 * The kinds strict mode throws for when it is given no list: everything that is a bug somewhere.
 *
 * @category Device-model SDK
 */
export const STRICT_DEFAULT: readonly DeviceEventKind[] = ['dma-fault', 'dma-blocked', 'hardware-error', 'guest-error', 'model-error'];

export class DeviceEventLog {
  /** Every event, oldest first. */
  readonly entries: DeviceEvent[] = [];
  private readonly listeners = new Set<(e: DeviceEvent) => void>();
  private strictKinds: ReadonlySet<DeviceEventKind> = new Set();

  /** Appends an event, tells the listeners, and throws a DeviceEventError when its kind is strict. */
  record(event: DeviceEvent): void {
    this.entries.push(event);
    for (const l of [...this.listeners]) l(event);
    if (this.strictKinds.has(event.kind)) throw new DeviceEventError(event);
  }

  /** Subscribes to new events; returns an unsubscribe. */
  subscribe(listener: (e: DeviceEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Makes events of `kinds` throw (default: all kinds); `false` turns strict mode off. */
  setStrict(kinds: readonly DeviceEventKind[] | boolean): void {
    this.strictKinds = new Set(kinds === true ? STRICT_DEFAULT : kinds === false ? [] : kinds);
  }
}

/**
 * What commands see of the controller: its configuration, its namespaces and queues, and data
 * transfer to and from host memory along the command's data pointer.
 */
import type { Command, Completion } from './command';
import type { Namespace } from './namespace';
import type { DataRun } from './prp';
import type { CompletionQueue, SubmissionQueue } from './queues';
import type { DoorbellBuffer } from './shadow-doorbells';
import type { ControllerResources, VirtualFunctions } from './sriov-resources';

export interface CommandContext {
  /** CC.MPS as bytes: the page size of PRPs and queue base addresses. */
  readonly pageSize: number;
  /** Identify Controller MDTS (a power of two of pages; 0 is no limit). */
  readonly mdts: number;
  /** NN: namespace IDs 1..maxNamespaces are valid. */
  readonly maxNamespaces: number;
  namespace(nsid: number): Namespace | undefined;
  /** The bus-address runs of a command's data (PRPs), or the status that refuses it. */
  dataRuns(command: Command, length: number): DataRun[] | number;
  /** The same for a scatter-gather list (I/O commands with PSDT 1 or 2). */
  sglRuns(command: Command, length: number): DataRun[] | number;
  /**
   * Copies bytes from host memory along the runs. A run the host does not back reads as zeroes
   * and the command goes on: QEMU maps data for the block layer through a bounce buffer then.
   */
  readRuns(runs: readonly DataRun[], length: number): Uint8Array;
  /** Copies bytes to host memory along the runs (what the host does not back is lost). */
  writeRuns(runs: readonly DataRun[], data: Uint8Array): void;
  /** Whether Dataset Management deallocation reaches the storage (QEMU's drive discard=unmap; default ignore). */
  readonly discard: boolean;
}

export interface AdminContext extends CommandContext {
  /** I/O queue pairs the controller works with (QEMU's conf_ioqpairs: max_ioqpairs, less what SR-IOV keeps for VFs). */
  readonly ioQueuePairs: number;
  /** CAP.MQES, 0's based. */
  readonly maxQueueEntries: number;
  /** MSI-X vectors the controller works with (QEMU's conf_msix_qsize). */
  readonly interruptVectors: number;
  /** Its queue and interrupt resources, for Identify (Primary Controller Capabilities, Secondary Controller List). */
  readonly resources: ControllerResources;
  /** CNTLID. */
  readonly controllerId: number;
  /** The controller IDs of the NVM subsystem's controllers, or undefined outside a subsystem. */
  subsystemControllers(): readonly number[] | undefined;
  /** A controller of the subsystem by its ID (a VF's only while it exists), for Namespace Attachment. */
  subsystemController(cntlid: number): NamespaceAttachments | undefined;
  /** A namespace of the subsystem, attached here or not (QEMU's nvme_subsys_ns); none outside a subsystem. */
  subsystemNamespace(nsid: number): Namespace | undefined;
  /** The Changed Namespace List: the IDs changed since it was last read, ascending; reading it empties it. */
  takeChangedNamespaces(): number[];
  /** This PF's VFs (none for any other controller). */
  readonly virtualFunctions: VirtualFunctions;
  readonly msixEnabled: boolean;
  /** An I/O queue has been created since the controller was enabled. */
  readonly queuesCreated: boolean;
  submissionQueue(id: number): SubmissionQueue | undefined;
  completionQueue(id: number): CompletionQueue | undefined;
  createSubmissionQueue(id: number, base: bigint, size: number, cqid: number): void;
  createCompletionQueue(id: number, base: bigint, size: number, vector: number, interruptsEnabled: boolean): void;
  deleteSubmissionQueue(id: number): void;
  deleteCompletionQueue(id: number): void;
  /**
   * Queues an asynchronous event for the next Asynchronous Event Request (EVENT_TYPE, its
   * information code, the log page that clears it); held while an event of its type is unread.
   */
  enqueueEvent(type: number, info: number, logPage: number): void;
  /** Shadow doorbells from now until the controller is reset, for the queues there are and those to come. */
  configureDoorbellBuffer(buffer: DoorbellBuffer): void;
  readonly identifyController: Uint8Array;
  readonly features: FeatureState;
  /** Microseconds of the machine's clock, for the SMART log's power-on hours and the timestamp. */
  readonly nowMicroseconds: number;
  /** Copies data to the host for an admin command (Identify, Get Log Page, …). */
  toHost(command: Command, data: Uint8Array): Completion;
  fromHost(command: Command, length: number): Uint8Array | Completion;
}

/**
 * Which of the subsystem's namespaces one controller has attached. `namespace(nsid)` of its
 * command context answers only for those.
 */
export interface NamespaceAttachments {
  has(nsid: number): boolean;
  attach(nsid: number): void;
  detach(nsid: number): void;
  /** Adds the ID to the controller's Changed Namespace List, with a notice the first time until the list is read. */
  changed(nsid: number): void;
}

/** The features a Set Features changes (everything else reads its default). */
export interface FeatureState {
  temperatureOver: number;
  temperatureUnder: number;
  volatileWriteCache: boolean;
  asyncEventConfig: number;
  /** The host's timestamp (ms) and the clock reading (µs) when it was set. */
  timestampMs: bigint;
  timestampSetAt: number;
  timestampSetByHost: boolean;
  hostBehavior: Uint8Array;
}

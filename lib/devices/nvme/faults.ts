/**
 * The NVMe controller's fault points: how a real controller can misbehave, for testing a driver's
 * error paths. QEMU's controller never does any of this by itself; the model does it only where a
 * test armed it (`controller.faults.arm(name, trigger, params)`), and logs each as 'fault-injected'.
 */
import { faultPoint } from '../../model/device';

/** A command as the fault points see it: where it came from and what it is. */
export interface CommandSubject {
  /** 0 for the admin queue. */
  readonly queue: number;
  /** -1 for the completion of an Asynchronous Event Request's event. */
  readonly opcode: number;
  readonly cid: number;
  readonly nsid: number;
}

/** A completion queue about to signal its vector. */
export interface InterruptSubject {
  readonly cq: number;
  readonly vector: number;
}

export type CompletionField = 'cid' | 'sqid' | 'sqhd' | 'status';

const command = (c: CommandSubject) =>
  `${c.queue === 0 ? 'admin' : `I/O queue ${c.queue}`} ${c.opcode < 0 ? 'event completion' : `command 0x${c.opcode.toString(16).padStart(2, '0')}`} cid ${c.cid}`;
const interrupt = (i: InterruptSubject) => `completion queue ${i.cq}, vector ${i.vector}`;

export const NVME_FAULT_POINTS = {
  'admin-status': faultPoint<CommandSubject, { readonly status: number }>({
    description: 'an admin command is not executed and completes with the armed status (SC in bits 7:0, SCT in 10:8, DNR 0x4000)',
    defaults: { status: 0x0006 },
    describe: command,
  }),
  'io-status': faultPoint<CommandSubject, { readonly status: number }>({
    description: 'an I/O command is not executed and completes with the armed status (SC in bits 7:0, SCT in 10:8, DNR 0x4000)',
    defaults: { status: 0x0281 },
    describe: command,
  }),
  'dma-error': faultPoint<CommandSubject, Record<string, never>>({
    description: "the command's data transfer fails on the bus: nothing is transferred and it completes with Data Transfer Error",
    defaults: {},
    describe: command,
  }),
  'slow-completion': faultPoint<CommandSubject, { readonly microseconds: number }>({
    description: "the command's completion is posted only after the armed delay of machine time",
    defaults: { microseconds: 50_000 },
    describe: command,
  }),
  'phase-tag': faultPoint<CommandSubject, Record<string, never>>({
    description: 'the completion entry is written with the wrong phase tag: the host never sees it, the controller counts it posted',
    defaults: {},
    describe: command,
  }),
  'corrupt-completion': faultPoint<CommandSubject, { readonly field: CompletionField; readonly xor: number }>({
    description: 'one field of the completion entry is XORed with the armed value as it is written',
    defaults: { field: 'cid', xor: 0x8000 },
    describe: command,
  }),
  'lost-interrupt': faultPoint<InterruptSubject, Record<string, never>>({
    description: 'a completion queue does not signal its interrupt (MSI-X message or INTx) for the entries it just posted',
    defaults: {},
    describe: interrupt,
  }),
  'spurious-interrupt': faultPoint<InterruptSubject, { readonly vector: number }>({
    description: "besides its own, the controller signals the armed MSI-X vector, with nothing new in that vector's queues",
    defaults: { vector: 0 },
    describe: interrupt,
  }),
  'fatal-status': faultPoint<CommandSubject, Record<string, never>>({
    description: 'as it fetches the command the controller sets CSTS.CFS and stops processing every queue until it is reset',
    defaults: {},
    describe: command,
  }),
  'controller-reset': faultPoint<CommandSubject, Record<string, never>>({
    description:
      'as it fetches the command the controller resets itself: every queue and outstanding command is gone, CSTS.RDY drops, CC stays as written',
    defaults: {},
    describe: command,
  }),
  'surprise-removal': faultPoint<CommandSubject, Record<string, never>>({
    description:
      'as it fetches the command the controller falls off the bus: every register (CAP, CSTS, …) reads all ones, writes are lost, no DMA or interrupt again',
    defaults: {},
    describe: command,
  }),
};

/**
 * What can go wrong with an NVMe command, as values a caller can tell apart: the controller
 * completed it with an error status, it did not complete in time, or the controller stopped
 * (CSTS.CFS) or was reset under it.
 */

/** Which command: enough to find it in a trace. */
export interface CommandIdentity {
  readonly opcode: number;
  /** 0 for the admin queue. */
  readonly queue: number;
  readonly cid: number;
  readonly nsid: number;
}

/** Names of the status codes a caller is likely to meet (generic and command specific). */
const GENERIC: Readonly<Record<number, string>> = {
  0x01: 'Invalid Command Opcode',
  0x02: 'Invalid Field in Command',
  0x03: 'Command ID Conflict',
  0x04: 'Data Transfer Error',
  0x06: 'Internal Error',
  0x07: 'Command Abort Requested',
  0x08: 'Command Aborted due to SQ Deletion',
  0x0b: 'Invalid Namespace or Format',
  0x0c: 'Command Sequence Error',
  0x13: 'PRP Offset Invalid',
  0x80: 'LBA Out of Range',
  0x81: 'Capacity Exceeded',
};
const COMMAND_SPECIFIC: Readonly<Record<number, string>> = {
  0x00: 'Completion Queue Invalid',
  0x01: 'Invalid Queue Identifier',
  0x02: 'Invalid Queue Size',
  0x05: 'Asynchronous Event Request Limit Exceeded',
  0x08: 'Invalid Interrupt Vector',
  0x09: 'Invalid Log Page',
  0x0c: 'Invalid Queue Deletion',
  0x0d: 'Feature Identifier Not Saveable',
  0x0e: 'Feature Not Changeable',
  0x0f: 'Feature Not Namespace Specific',
};

export class NvmeCommandError extends Error {
  /** Status Code Type: 0 generic, 1 command specific, 2 media and data integrity errors. */
  readonly sct: number;
  /** Status Code. */
  readonly sc: number;
  /** Do Not Retry. */
  readonly dnr: boolean;
  /** The 15-bit status field (without the phase tag). */
  readonly status: number;
  /** Dword 0 of the completion. */
  readonly result: number;

  constructor(
    readonly command: CommandIdentity,
    status: number,
    result: number,
  ) {
    const sct = (status >>> 8) & 0x7;
    const sc = status & 0xff;
    const name = (sct === 0 ? GENERIC[sc] : sct === 1 ? COMMAND_SPECIFIC[sc] : undefined) ?? 'status';
    super(
      `nvme: ${describe(command)} failed: ${name} (SCT ${sct}, SC 0x${sc.toString(16).padStart(2, '0')}${status & 0x4000 ? ', DNR' : ''})`,
    );
    this.name = 'NvmeCommandError';
    this.sct = sct;
    this.sc = sc;
    this.dnr = (status & 0x4000) !== 0;
    this.status = status;
    this.result = result;
  }
}

export class NvmeTimeoutError extends Error {
  constructor(
    readonly command: CommandIdentity,
    readonly timeoutMs: number,
    readonly aborted: boolean,
  ) {
    super(
      `nvme: ${describe(command)} did not complete within ${timeoutMs} ms${aborted ? ' (aborted)' : '; the controller did not abort it'}`,
    );
    this.name = 'NvmeTimeoutError';
  }
}

/** The controller reported Controller Fatal Status, or was reset while commands were outstanding. */
export class NvmeControllerError extends Error {
  constructor(
    message: string,
    readonly command?: CommandIdentity,
  ) {
    super(command ? `nvme: ${describe(command)}: ${message}` : `nvme: ${message}`);
    this.name = 'NvmeControllerError';
  }
}

function describe(c: CommandIdentity): string {
  return `${c.queue === 0 ? 'admin' : `I/O queue ${c.queue}`} command 0x${c.opcode.toString(16).padStart(2, '0')} (cid ${c.cid}${c.nsid ? `, nsid ${c.nsid}` : ''})`;
}

/**
 * Asynchronous events: which of several outstanding Asynchronous Event Requests an event answers,
 * what the answer says, how an event of a type already reported waits until its log page is read
 * (and that Retain Asynchronous Event keeps it waiting), what a request beyond the limit gets, and
 * that a doorbell error raised while no request is outstanding is not kept for a later one.
 * Events are raised the ways QEMU 7.2 has: doorbell writes to a queue that does not exist or past
 * a queue's end (error events), and a temperature threshold set below the temperature with the
 * temperature event enabled (a SMART event).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DmaBuffer, type VfioDevice } from '../../lib';
import { NvmeDriver } from '../../examples/nvme/nvme-driver';
import type { Out } from './nvme-conformance';

const ASYNC_EVENT_REQUEST = 0x0c;
const GET_LOG_PAGE = 0x02;
const SET_FEATURES = 0x09;
const GET_FEATURES = 0x0a;
const TEMPERATURE_THRESHOLD = 0x04;
const ASYNC_EVENT_CONFIG = 0x0b;
const ERROR_LOG = 0x01;
const SMART_LOG = 0x02;
/** Get Log Page's Retain Asynchronous Event bit (cdw10 bit 15). */
const RETAIN = 1 << 15;
/** Doorbells: the tail of submission queue 5 (the driver creates one I/O queue), the admin completion queue's head. */
const MISSING_QUEUE_TAIL = 0x1000 + 2 * 5 * 4;
const ADMIN_HEAD = 0x1004;
/** How long QEMU's main loop under a loaded TCG guest may take to answer. */
const SETTLE_MS = 400;

export async function asyncEvents(device: VfioDevice, out: Out, outcome: (p: Promise<unknown>) => Promise<string>): Promise<void> {
  using nvme = await NvmeDriver.open(device, { ioQueues: 1, queueDepth: 16, completion: 'poll', commandTimeoutMs: 30_000 });
  using registers = device.bar(0).mmap();
  using log = DmaBuffer.allocate(4096, { space: device.dmaSpace });
  const requests: { readonly name: string; answer?: string; reported: boolean }[] = [];
  const request = (name: string) => {
    const r: { name: string; answer?: string; reported: boolean } = { name, reported: false };
    requests.push(r);
    void outcome(nvme.adminCommand({ opcode: ASYNC_EVENT_REQUEST })).then((s) => (r.answer = s));
  };
  /** The requests answered since the last call, after QEMU has had the time to answer. */
  const answered = async () => {
    await sleep(SETTLE_MS);
    const now = requests.filter((r) => r.answer !== undefined && !r.reported);
    for (const r of now) r.reported = true;
    return now.map((r) => `${r.name} ${r.answer}`).join('; ') || 'none';
  };
  const readLog = (lid: number, retain: boolean) =>
    outcome(
      nvme.adminCommand(
        { opcode: GET_LOG_PAGE, nsid: 0xffff_ffff, cdw10: (((64 / 4 - 1) << 16) | lid | (retain ? RETAIN : 0)) >>> 0 },
        { buffer: log, length: 64 },
      ),
    );

  // Four requests fit (AERL 3); the fifth is refused at once.
  for (const name of ['a', 'b', 'c', 'd']) request(name);
  out('aen.four-outstanding', await answered());
  request('e');
  out('aen.fifth', await answered());

  registers.write32(MISSING_QUEUE_TAIL, 1);
  out('aen.missing-queue-doorbell', await answered());
  // An error event again: its type was reported and its log not read, so it waits.
  registers.write32(ADMIN_HEAD, 0xffff);
  out('aen.head-beyond-queue', await answered());
  out('aen.error-log-retained', await readLog(ERROR_LOG, true));
  out('aen.after-retained-read', await answered());
  out('aen.error-log', await readLog(ERROR_LOG, false));
  out('aen.after-read', await answered());

  // A SMART event only where Asynchronous Event Configuration enables it.
  out('aen.config', await outcome(nvme.adminCommand({ opcode: GET_FEATURES, cdw10: ASYNC_EVENT_CONFIG })));
  out('aen.threshold-disabled', await outcome(nvme.adminCommand({ opcode: SET_FEATURES, cdw10: TEMPERATURE_THRESHOLD, cdw11: 0x100 })));
  out('aen.after-threshold-disabled', await answered());
  out('aen.config-temperature', await outcome(nvme.adminCommand({ opcode: SET_FEATURES, cdw10: ASYNC_EVENT_CONFIG, cdw11: 0x2 })));
  out('aen.threshold-enabled', await outcome(nvme.adminCommand({ opcode: SET_FEATURES, cdw10: TEMPERATURE_THRESHOLD, cdw11: 0x100 })));
  out('aen.after-threshold-enabled', await answered());
  out('aen.smart-log', await readLog(SMART_LOG, false));
  out('aen.threshold-restored', await outcome(nvme.adminCommand({ opcode: SET_FEATURES, cdw10: TEMPERATURE_THRESHOLD, cdw11: 0x157 })));

  // The last request takes an error event; with none outstanding, a doorbell error is dropped, not kept for the next request.
  out('aen.error-log-again', await readLog(ERROR_LOG, false));
  registers.write32(MISSING_QUEUE_TAIL, 1);
  out('aen.last-request', await answered());
  out('aen.error-log-last', await readLog(ERROR_LOG, false));
  registers.write32(MISSING_QUEUE_TAIL, 1);
  request('f');
  out('aen.request-after-unheld-error', await answered());
  registers.write32(MISSING_QUEUE_TAIL, 1);
  out('aen.error-with-request', await answered());
  out(
    'aen.unanswered',
    requests
      .filter((r) => r.answer === undefined)
      .map((r) => r.name)
      .join(' ') || 'none',
  );
  await nvme.shutdown();
}

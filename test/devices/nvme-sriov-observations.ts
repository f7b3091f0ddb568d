/**
 * The sriov machine's NVMe controllers (QEMU 7.2: an nvme-subsys, sriov_max_vfs=2,
 * sriov_vq_flexible=4, sriov_vi_flexible=2): what the PF says of itself in Identify (the
 * subsystem, the controller lists, Primary Controller Capabilities, the Secondary Controller
 * List) and the resources it works with; then, with both VFs enabled, a secondary controller's
 * life: offline until Virtualization Management assigns it queues and an interrupt and brings it
 * online, a controller of its own on the PF's namespace while online, offline again after;
 * Namespace Attachment (nvme-namespace-attachment.ts) without VFs and with them.
 * test/lab/sriov/nvme-sriov.test.ts runs it on QEMU's controller and on the model of that
 * machine; test/devices/nvme-sriov.test.ts holds the model to the lab's recording
 * (test/model/devices/fixtures/nvme-sriov-lab-7.3.txt).
 */
import { labRecording } from './lab-recording';
import { setTimeout as sleep } from 'node:timers/promises';
import { DmaBuffer, openDevice, PciDevice, PciSriov, type Kernel, type VfioDevice } from '../../lib';
import { NvmeDriver, type AdminCommand } from '../../examples/nvme/nvme-driver';
import { NvmeCommandError } from '../../examples/nvme/errors';
import { fillPattern, sparseHex } from './nvme-conformance';
import { SRIOV_PF } from './nvme-copy-observations';
import { attachmentOnPrimary, attachmentWithVfs } from './nvme-namespace-attachment';

const TOKEN = '52ac9bff-3a88-4fbd-901a-0d767c3b6c97';
const IDENTIFY = 0x06;
const VIRTUALIZATION_MANAGEMENT = 0x1c;
/** Virtualization Management actions and resource types. */
const ACT = { PRIMARY_ALLOCATION: 0x1, OFFLINE: 0x7, ASSIGN: 0x8, ONLINE: 0x9 } as const;
const QUEUES = 0,
  INTERRUPTS = 1;
const REG = { CAP: 0x00, VS: 0x08, CC: 0x14, CSTS: 0x1c } as const;
/** Where QEMU 7.2 puts the NVMe PF's SR-IOV capability. */
const SRIOV_AT = 0x120;

type Out = (key: string, value: string) => void;

async function outcome(p: Promise<number>): Promise<string> {
  try {
    return `ok 0x${(await p).toString(16).padStart(8, '0')}`;
  } catch (e) {
    if (e instanceof NvmeCommandError) return `status 0x${e.status.toString(16).padStart(4, '0')}`;
    throw e;
  }
}

/** Identify with CDW10's CNTID as well (the controller lists start there). */
async function identify(nvme: NvmeDriver, device: VfioDevice, cns: number, nsid = 0, cntid = 0): Promise<string> {
  using data = DmaBuffer.allocate(4096, { space: device.dmaSpace });
  data.bytes.fill(0);
  const status = await outcome(nvme.adminCommand({ opcode: IDENTIFY, nsid, cdw10: cns | (cntid << 16) }, { buffer: data, length: 4096 }));
  return status.startsWith('ok') ? sparseHex(data.bytes) : status;
}

export async function observeSriovControllers(kernel: Kernel): Promise<string[]> {
  const lines: string[] = [];
  const out: Out = (key, value) => lines.push(`${key} = ${value}`);
  using pf = openDevice(SRIOV_PF, { kernel, prefer: 'cdev', vfToken: TOKEN });
  pf.config.enableBusMaster();
  using nvme = await NvmeDriver.open(pf, { ioQueues: 1, queueDepth: 16, completion: 'poll', commandTimeoutMs: 10_000 });
  await primaryController(nvme, pf, out);
  await attachmentOnPrimary(nvme, pf, out);
  await secondaryControllers(kernel, nvme, pf, out);
  await withSriov(kernel, async (sriov) => {
    sriov.enable(2);
    await attachmentWithVfs(nvme, pf, out);
  });
  await nvme.shutdown();
  await withSriov(kernel, () => resetWithVfs(kernel, pf, out));
  return lines;
}

async function primaryController(nvme: NvmeDriver, pf: VfioDevice, out: Out): Promise<void> {
  out('pf.identify.controller', await identify(nvme, pf, 0x01));
  out('pf.identify.namespace', await identify(nvme, pf, 0x00, 1));
  out('pf.identify.controllers-on-namespace', await identify(nvme, pf, 0x12, 1));
  out('pf.identify.controllers-on-namespace.nsid-0', await identify(nvme, pf, 0x12, 0));
  out('pf.identify.controllers-in-subsystem', await identify(nvme, pf, 0x13));
  out('pf.identify.primary-controller-capabilities', await identify(nvme, pf, 0x14));
  out('pf.identify.secondary-controllers', await identify(nvme, pf, 0x15));
  out('pf.identify.secondary-controllers.from-2', await identify(nvme, pf, 0x15, 0, 2));
  // The resources it works with: what Number of Queues answers, the queue IDs it takes, its MSI-X table.
  out('pf.features.number-of-queues', await outcome(nvme.getFeatures(0x07)));
  using ring = DmaBuffer.allocate(4096, { space: pf.dmaSpace });
  for (const cqid of [60, 61, 64]) {
    const created = await outcome(
      nvme.adminCommand({ opcode: 0x05, cdw10: (15 << 16) | cqid, cdw11: 1, prp1: Number(ring.dmaAddress(0)) }),
    );
    out(`pf.create-cq-${cqid}`, created);
    if (created.startsWith('ok')) await nvme.adminCommand({ opcode: 0x04, cdw10: cqid });
  }
  out('pf.msix.table-size', String(pf.config.msix()?.tableSize ?? 'none'));
  out('pf.msix.irq-count', String(pf.irqs.info('msix').count));
}

/** Runs `body` with vfio-pci allowed to enable the PF's VFs; none are left enabled after. */
async function withSriov(kernel: Kernel, body: (sriov: NonNullable<PciDevice['sriov']>) => Promise<void> | void): Promise<void> {
  const sriov = PciDevice.get(SRIOV_PF, { kernel }).sriov;
  if (!sriov) throw new Error(`${SRIOV_PF} has no SR-IOV capability: this is the sriov machine's observation`);
  const allowed = PciSriov.vfioPciAllowed({ kernel });
  if (!allowed) PciSriov.allowVfioPci(true, { kernel });
  try {
    await body(sriov);
  } finally {
    if (sriov.numVfs) sriov.disable();
    if (!allowed) PciSriov.allowVfioPci(false, { kernel });
  }
}

async function secondaryControllers(kernel: Kernel, nvme: NvmeDriver, pf: VfioDevice, out: Out): Promise<void> {
  await withSriov(kernel, async (sriov) => {
    const [first] = sriov.enable(2);
    await withVfs(kernel, nvme, pf, first!, out);
  });
}

/**
 * A function reset of the PF with its VFs enabled: QEMU takes them off the bus (their config
 * space reads all ones, their BARs 0) and NumVFs reads 0, while VF Enable stays set and Linux,
 * which restores nothing then, still lists them; disabling and enabling VFs again brings new ones.
 */
function resetWithVfs(kernel: Kernel, pf: VfioDevice, out: Out): void {
  const sriov = PciDevice.get(SRIOV_PF, { kernel }).sriov!;
  const config = (bdf: string) => kernel.readFile(`/sys/bus/pci/devices/${bdf}/config`);
  const hex16 = (b: Buffer, at: number) => `0x${b.readUInt16LE(at).toString(16)}`;
  const sriovRegisters = () => {
    const c = config(SRIOV_PF);
    return `control ${hex16(c, SRIOV_AT + 0x08)} NumVFs ${c.readUInt16LE(SRIOV_AT + 0x10)}; sriov_numvfs ${sriov.numVfs}`;
  };
  const [first] = sriov.enable(2);
  {
    using vf = openDevice(first!, { kernel, prefer: 'cdev', vfToken: TOKEN });
    vf.config.enableBusMaster();
    using bar = vf.bar(0).mmap();
    out('pf-reset.before.vf-command', hex16(config(first!), 0x04));
    out('pf-reset.before.sriov', sriovRegisters());
    pf.reset();
    out('pf-reset.after.vf-command', hex16(config(first!), 0x04));
    out('pf-reset.after.vf-header', `0x${config(first!).readUInt32LE(0x08).toString(16)}`);
    out('pf-reset.after.sriov', sriovRegisters());
    out('pf-reset.after.vf-cap', `0x${bar.read64(REG.CAP).toString(16)}`);
    out('pf-reset.after.vf-csts', `0x${bar.read32(REG.CSTS).toString(16)}`);
  }
  sriov.disable();
  const [again] = sriov.enable(1);
  out('pf-reset.enabled-again.sriov', sriovRegisters());
  out('pf-reset.enabled-again.vf-command', hex16(config(again!), 0x04));
  using vf = openDevice(again!, { kernel, prefer: 'cdev', vfToken: TOKEN });
  using bar = vf.bar(0).mmap();
  out('pf-reset.enabled-again.vf-csts', `0x${bar.read32(REG.CSTS).toString(16)}`);
}

async function withVfs(kernel: Kernel, nvme: NvmeDriver, pf: VfioDevice, vfAddress: string, out: Out): Promise<void> {
  const manage = (action: number, type: number, cntlid: number, count = 0) =>
    outcome(nvme.adminCommand({ opcode: VIRTUALIZATION_MANAGEMENT, cdw10: action | (type << 8) | (cntlid << 16), cdw11: count }));
  out('vfs.identify.controllers-in-subsystem', await identify(nvme, pf, 0x13));
  out('vfs.identify.controllers-in-subsystem.from-2', await identify(nvme, pf, 0x13, 0, 2));
  out('vfs.identify.controllers-on-namespace', await identify(nvme, pf, 0x12, 1));
  using vf = openDevice(vfAddress, { kernel, prefer: 'cdev', vfToken: TOKEN });
  vf.config.enableBusMaster();
  using bar = vf.bar(0).mmap();
  const registers = (key: string) => {
    out(`${key}.cap`, `0x${bar.read64(REG.CAP).toString(16)}`);
    out(`${key}.vs`, `0x${bar.read32(REG.VS).toString(16)}`);
    out(`${key}.cc`, `0x${bar.read32(REG.CC).toString(16)}`);
    out(`${key}.csts`, `0x${bar.read32(REG.CSTS).toString(16)}`);
    out(`${key}.msix.table-size`, String(vf.config.msix()?.tableSize ?? 'none'));
    out(`${key}.msix.irq-count`, String(vf.irqs.info('msix').count));
  };
  registers('vf1.offline');
  // An offline secondary controller ignores register writes: enabling it does nothing.
  bar.write32(REG.CC, 0x00460001);
  await sleep(50);
  out('vf1.offline.after-enable.cc', `0x${bar.read32(REG.CC).toString(16)}`);
  out('vf1.offline.after-enable.csts', `0x${bar.read32(REG.CSTS).toString(16)}`);
  out(
    'vf1.offline.driver',
    await NvmeDriver.open(vf, { completion: 'poll', commandTimeoutMs: 10_000 }).then(
      (d) => {
        d.close();
        return 'opened';
      },
      (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e)),
    ),
  );

  out('vm.resource-type-2', await manage(ACT.ASSIGN, 2, 1, 1));
  out('vm.action-2', await manage(2, QUEUES, 1, 1));
  out('vm.assign-queues-beyond-per-secondary', await manage(ACT.ASSIGN, QUEUES, 1, 3));
  out('vm.assign-to-no-secondary', await manage(ACT.ASSIGN, QUEUES, 3, 1));
  out('vm.assign-to-primary', await manage(ACT.ASSIGN, QUEUES, 0, 1));
  out('vm.online-without-resources', await manage(ACT.ONLINE, QUEUES, 1));
  out('vm.assign-queues', await manage(ACT.ASSIGN, QUEUES, 1, 2));
  out('vm.online-without-interrupts', await manage(ACT.ONLINE, QUEUES, 1));
  out('vm.assign-interrupts', await manage(ACT.ASSIGN, INTERRUPTS, 1, 1));
  out('vm.assign-queues-vf2', await manage(ACT.ASSIGN, QUEUES, 2, 2));
  out('vm.assign-interrupts-vf2-beyond-free', await manage(ACT.ASSIGN, INTERRUPTS, 2, 2));
  out('vm.primary-allocation-beyond-free', await manage(ACT.PRIMARY_ALLOCATION, QUEUES, 0, 1));
  out('vm.primary-allocation-beyond-total', await manage(ACT.PRIMARY_ALLOCATION, QUEUES, 0, 5));
  out('vm.primary-allocation-other-controller', await manage(ACT.PRIMARY_ALLOCATION, QUEUES, 1, 0));
  out('vm.primary-allocation-none', await manage(ACT.PRIMARY_ALLOCATION, INTERRUPTS, 0, 0));
  out('vm.assigned.secondary-controllers', await identify(nvme, pf, 0x15));
  out('vm.assigned.primary-controller-capabilities', await identify(nvme, pf, 0x14));
  out('vm.online', await manage(ACT.ONLINE, QUEUES, 1));
  out('vm.online-again', await manage(ACT.ONLINE, INTERRUPTS, 1));
  out('vm.assign-while-online', await manage(ACT.ASSIGN, QUEUES, 1, 1));
  out('vm.online.secondary-controllers', await identify(nvme, pf, 0x15));
  registers('vf1.online');

  {
    // Online, it is a controller of its own, with what it was given, on the subsystem's namespace.
    using secondary = await NvmeDriver.open(vf, { ioQueues: 1, queueDepth: 16, completion: 'poll', commandTimeoutMs: 10_000 });
    out('vf1.identify.controller', await identify(secondary, vf, 0x01));
    out('vf1.identify.primary-controller-capabilities', await identify(secondary, vf, 0x14));
    out('vf1.identify.secondary-controllers', await identify(secondary, vf, 0x15));
    out('vf1.identify.controllers-in-subsystem', await identify(secondary, vf, 0x13));
    out('vf1.features.number-of-queues', await outcome(secondary.getFeatures(0x07)));
    out(
      'vf1.virtualization-management',
      await outcome(secondary.adminCommand({ opcode: VIRTUALIZATION_MANAGEMENT, cdw10: ACT.ONLINE | (2 << 16) })),
    );
    using ring = DmaBuffer.allocate(4096, { space: vf.dmaSpace });
    const createCq = (cqid: number): AdminCommand => ({
      opcode: 0x05,
      cdw10: (15 << 16) | cqid,
      cdw11: 1,
      prp1: Number(ring.dmaAddress(0)),
    });
    out('vf1.create-cq-2', await outcome(secondary.adminCommand(createCq(2))));
    using written = DmaBuffer.allocate(8 * 512, { space: vf.dmaSpace });
    fillPattern(written.bytes);
    await secondary.write(1, 300, 8, written);
    using read = DmaBuffer.allocate(8 * 512, { space: pf.dmaSpace });
    await nvme.read(1, 300, 8, read);
    out('vf1.write-read-on-pf', Buffer.compare(read.bytes, written.bytes) === 0 ? 'the same blocks' : 'different blocks');
    await secondary.shutdown();
  }

  out('vm.offline', await manage(ACT.OFFLINE, QUEUES, 1));
  out('vm.offline.secondary-controllers', await identify(nvme, pf, 0x15));
  out('vm.offline.primary-controller-capabilities', await identify(nvme, pf, 0x14));
  out('vf1.offline-again.csts', `0x${bar.read32(REG.CSTS).toString(16)}`);
  out('vf1.offline-again.cap', `0x${bar.read64(REG.CAP).toString(16)}`);
  out('vm.offline-vf2', await manage(ACT.OFFLINE, INTERRUPTS, 2));
  out('vm.offline-vf2.secondary-controllers', await identify(nvme, pf, 0x15));
}

/** The lab's recording, without its comment lines. */
export function recordedSriovControllers(): string[] {
  return labRecording('nvme-sriov-lab-7.3.txt');
}

#!/usr/bin/env node
/**
 * The NVMe driver end to end: open a controller bound to vfio-pci, bring it up, identify it,
 * write a pattern and read it back, show the SMART log, shut the controller down.
 *
 *   node dist/examples/nvme/main.js [BDF] [--model[=noiommu|iommu]] [--write] [--lba=N] [--blocks=N]
 *                                    [--queues=N] [--completion=auto|poll|interrupt|intx]
 *
 * Without BDF it takes the first NVMe controller already bound to vfio-pci (it never takes a
 * disk away from its driver by itself); with none — or with --model — it runs on node-vfio's
 * kernel model with QEMU 7.2's controller placed at 0000:00:04.0, and says so. On a real device
 * the pattern is written only with --write: it overwrites the blocks it uses.
 */
import { randomBytes } from 'node:crypto';
// The module's binding: the global `performance` is a lazy accessor in Node 20, run on every use (it showed in the poll loop's profile).
import { performance } from 'node:perf_hooks';
import { DmaBuffer, PciDevice, isVfioError, nativeKernel, openDevice, type Kernel } from '../../lib';
import { createModelKernel, profiles } from '../../lib/model';
import { NvmeDriver, type CompletionMode } from './nvme-driver';
import { LOG } from './nvme-spec';

interface Options {
  bdf?: string;
  model?: 'noiommu' | 'iommu';
  write: boolean;
  lba: number;
  blocks: number;
  queues: number;
  completion: CompletionMode;
}

const MODEL_BDF = '0000:00:04.0';

function parse(argv: string[]): Options {
  const o: Options = { write: false, lba: 2048, blocks: 64, queues: 2, completion: 'auto' };
  const int = (a: string, name: string) => {
    const n = Number(a.slice(name.length + 3));
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} wants a non-negative integer, got '${a}'`);
    return n;
  };
  for (const a of argv) {
    if (a === '--model') o.model = 'noiommu';
    else if (a === '--model=noiommu' || a === '--model=iommu') o.model = a.slice(8) as 'noiommu' | 'iommu';
    else if (a === '--write') o.write = true;
    else if (a.startsWith('--lba=')) o.lba = int(a, 'lba');
    else if (a.startsWith('--blocks=')) o.blocks = Math.max(1, int(a, 'blocks'));
    else if (a.startsWith('--queues=')) o.queues = Math.max(1, int(a, 'queues'));
    else if (['--completion=auto', '--completion=poll', '--completion=interrupt', '--completion=intx'].includes(a))
      o.completion = a.slice(13) as CompletionMode;
    else if (a === '--help' || a === '-h') {
      console.log(
        'usage: nvme [BDF] [--model[=noiommu|iommu]] [--write] [--lba=N] [--blocks=N] [--queues=N] [--completion=auto|poll|interrupt|intx]',
      );
      process.exit(0);
    } else if (!a.startsWith('-') && o.bdf === undefined) o.bdf = a;
    else throw new Error(`unknown argument '${a}'`);
  }
  return o;
}

const NVME_CLASS = { baseClass: 0x01, subclass: 0x08, progIf: 0x02 } as const;

/** The model's lab machine: its presets with the built-in 'nvme' device where the lab has its controller. */
function modelKernel(mode: 'noiommu' | 'iommu'): Kernel {
  const base = profiles[`linux-7.3-${mode}`];
  return createModelKernel({
    ...base,
    name: `${base.name}+nvme`,
    pci: [{ address: MODEL_BDF, device: 'nvme', driver: 'vfio-pci', options: { serial: 'nodevfio0001' } }],
  });
}

/** The real kernel when it has an NVMe controller on vfio-pci (or the one named), otherwise the model. */
function choose(o: Options): { kernel: Kernel; bdf: string; model: boolean; why: string } {
  if (o.model)
    return {
      kernel: modelKernel(o.model),
      bdf: MODEL_BDF,
      model: true,
      why: `--model: the kernel model (linux-7.3-${o.model}) with QEMU 7.2's NVMe controller`,
    };
  let native: Kernel;
  try {
    native = nativeKernel();
  } catch (e) {
    return {
      kernel: modelKernel('noiommu'),
      bdf: MODEL_BDF,
      model: true,
      why: `the native addon is not usable here (${(e as Error).message}); running on the kernel model`,
    };
  }
  if (o.bdf) return { kernel: native, bdf: o.bdf, model: false, why: `the real kernel: ${o.bdf} as asked` };
  const bound = native.exists('/sys/bus/pci/devices') ? PciDevice.list({ ...NVME_CLASS, driver: 'vfio-pci' }, native) : [];
  if (bound[0])
    return {
      kernel: native,
      bdf: bound[0].bdf,
      model: false,
      why: `the real kernel: ${bound[0].bdf} is an NVMe controller bound to vfio-pci`,
    };
  return {
    kernel: modelKernel('noiommu'),
    bdf: MODEL_BDF,
    model: true,
    why: "no NVMe controller bound to vfio-pci here: running on the kernel model (linux-7.3-noiommu) with QEMU 7.2's controller",
  };
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  const { kernel, bdf, model, why } = choose(o);
  console.log(`nvme: ${why}`);
  const pci = PciDevice.get(bdf, kernel);
  if (pci.driver !== 'vfio-pci') {
    console.error(
      `nvme: ${bdf} is bound to ${pci.driver ?? 'no driver'}, not vfio-pci; bind it first (e.g. vfio bind ${bdf}) — this example does not take a disk from its driver`,
    );
    return 1;
  }
  using device = openDevice(bdf, { kernel });
  console.log(`nvme: ${bdf} opened through the ${device.backend.kind} path${device.backend.noiommu ? ' (noiommu)' : ''}`);
  const started = performance.now();
  using nvme = await NvmeDriver.open(device, { ioQueues: o.queues, completion: o.completion });
  const c = nvme.controller;
  const cap = nvme.capabilities;
  console.log(
    `nvme: ready in ${(performance.now() - started).toFixed(1)} ms; completions by ${{ interrupt: 'MSI-X interrupt', intx: 'INTx interrupt', poll: 'polling' }[nvme.completion]}, ${nvme.ioQueueCount} I/O queue pair(s)`,
  );
  console.log(
    `nvme: controller ${c.model} serial ${c.serial} firmware ${c.firmware}, NVMe ${c.version}, vendor 0x${c.vendorId.toString(16)}/0x${c.subsystemVendorId.toString(16)}, controller id ${c.controllerId}`,
  );
  console.log(
    `nvme: CAP: ${cap.maxQueueEntries} entries per queue, doorbell stride ${cap.doorbellStride}, ready timeout ${cap.readyTimeoutMs} ms, pages ${cap.minPageSize}..${cap.maxPageSize}; MDTS ${c.maxTransferBytes} bytes; ${c.namespaceCount} namespace IDs`,
  );
  const ns = nvme.namespaces[0];
  if (!ns) {
    console.error('nvme: the controller has no active namespace');
    return 1;
  }
  for (const n of nvme.namespaces) {
    console.log(
      `nvme: namespace ${n.nsid}: ${n.blocks} blocks of ${n.blockSize} bytes (${Number(n.blocks * BigInt(n.blockSize)) / 2 ** 20} MiB), LBA format ${n.format} of ${n.formats}`,
    );
  }
  let ok = true;
  if (model || o.write) {
    const bytes = o.blocks * ns.blockSize;
    using buffer = DmaBuffer.allocate(2 * bytes + 4096, { space: device.dmaSpace });
    const pattern = randomBytes(bytes);
    buffer.bytes.set(pattern, 0);
    const back = bytes + 4096; // a page further, so the read's PRPs start elsewhere
    buffer.bytes.fill(0, back, back + bytes);
    const t0 = performance.now();
    await nvme.write(ns.nsid, o.lba, o.blocks, buffer, 0);
    await nvme.flush(ns.nsid);
    const t1 = performance.now();
    await nvme.read(ns.nsid, o.lba, o.blocks, buffer, back);
    const t2 = performance.now();
    ok = Buffer.from(buffer.bytes.subarray(back, back + bytes)).equals(pattern);
    console.log(
      `nvme: wrote ${o.blocks} blocks at LBA ${o.lba} (${bytes} bytes, ${buffer.addressing === 'physical' ? 'physical' : 'IOVA'} addresses) in ${(t1 - t0).toFixed(1)} ms, read them back in ${(t2 - t1).toFixed(1)} ms: ${ok ? 'data intact' : 'DATA DIFFERS'}`,
    );
  } else {
    console.log('nvme: a real device: not writing (pass --write to write and read back a pattern at --lba)');
  }
  const smart = await nvme.getLogPage(LOG.SMART, 512);
  const v = new DataView(smart.buffer);
  console.log(
    `nvme: SMART: critical warning 0x${smart[0]!.toString(16)}, temperature ${v.getUint16(1, true) - 273} °C, ${v.getBigUint64(32, true)} thousand 512-byte units read, ${v.getBigUint64(48, true)} written, ${v.getBigUint64(64, true)} read and ${v.getBigUint64(80, true)} write commands`,
  );
  await nvme.shutdown();
  console.log(`nvme: shut down (CSTS 0x${nvme.status.toString(16)})`);
  console.log(ok ? 'nvme: all checks passed' : 'nvme: CHECKS FAILED');
  return ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`nvme: ${isVfioError(e) ? e.message : ((e as Error).stack ?? String(e))}`);
    process.exitCode = 1;
  },
);

/**
 * The broker on the real kernel (edu machine, both modes): this root process runs the broker
 * (lib/broker/server.ts) on a socket in a temporary directory, and a child run by setpriv without
 * CAP_SYS_RAWIO asks it for the edu device with `openDevice(bdf, { broker })`. The child reads
 * config space, checks MMIO, maps its own memory into the IOAS it got, takes the DMA addresses
 * from the broker (noiommu: the broker's GET_PA, after its own is refused EPERM) or uses IOVAs
 * (IOMMU), and runs an edu DMA round trip. A second broker that does not allow the child's uid
 * refuses it. Afterwards the broker holds no grant and this process no fd it did not have.
 *
 * The child runs asynchronously (spawn, not spawnSync): the broker serves on this event loop.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nativeKernel } from '../../lib/sys/native-kernel';
import { PciDevice } from '../../lib/pci/pci-device';
import { Broker, type BrokerLogEntry } from '../../lib/broker/server';
import { requireLab, type LabEnvironment } from './lab-environment';
import { findSetpriv, spawnWithoutRawio } from './unprivileged';

const CHILD = `
const lib = ${JSON.stringify(path.resolve(__dirname, '../../lib'))};
const { openDevice } = require(lib + '/vfio/open-device');
const { brokerPhysicalSegments } = require(lib + '/broker/open-brokered');
const { nativeKernel } = require(lib + '/sys/native-kernel');
const k = nativeKernel();
(async () => {
  const socket = process.argv[1];
  const out = { rawio: k.capabilities().sysRawio };
  let dev;
  try {
    dev = await openDevice(process.argv[2], { kernel: k, broker: socket });
  } catch (e) {
    out.refused = e.code || String(e);
    process.stdout.write(JSON.stringify(out));
    return;
  }
  out.noiommu = dev.backend.noiommu;
  out.vendor = dev.config.read16(0);
  const bar = dev.bar(0).mmap();
  bar.write32(0x04, 0x12345678);
  out.liveness = bar.read32(0x04) === (~0x12345678 >>> 0);
  const memory = k.mmap(-1, 8192n, 3, 0x22, 0n);
  const mapping = dev.ioas.map(memory);
  const bytes = new Uint8Array(memory.buffer);
  for (let i = 0; i < 256; i++) bytes[i] = i ^ 0x5a;
  let address;
  if (dev.backend.noiommu) {
    try { dev.ioas.getPhysicalAddress(mapping.iova, 4096n); out.ownGetPa = 'ok'; } catch (e) { out.ownGetPa = e.code; }
    const runs = await brokerPhysicalSegments(dev, mapping.iova, 8192n);
    out.runs = runs.length;
    address = (off) => {
      const at = mapping.iova + BigInt(off);
      const r = runs.find((r) => r.iova <= at && at < r.iova + r.length);
      return r.phys + (at - r.iova);
    };
  } else {
    address = (off) => mapping.iova + BigInt(off);
  }
  dev.config.enableBusMaster();
  const dma = async (ram, toRam) => {
    bar.write64(0x80, toRam ? 0x40000n : ram);
    bar.write64(0x88, toRam ? ram : 0x40000n);
    bar.write64(0x90, 256n);
    bar.write64(0x98, toRam ? 3n : 1n);
    for (let i = 0; bar.read64(0x98) & 1n; i++) {
      if (i > 2000) throw new Error('edu DMA did not finish');
      await new Promise((r) => setTimeout(r, 1));
    }
  };
  await dma(address(0), false);
  await dma(address(4096), true);
  out.dmaOk = bytes.subarray(4096, 4096 + 256).every((b, i) => b === (i ^ 0x5a));
  mapping.close();
  k.munmap(memory);
  // The same through the library's own DMA buffer, whose bus addresses the broker answers.
  if (dev.backend.noiommu) {
    try { dev.allocateDma(4096); out.syncAllocate = 'ok'; } catch (e) { out.syncAllocate = e.code; }
  }
  const buffer = await dev.allocateDmaAsync(8192);
  for (let i = 0; i < 256; i++) buffer.bytes[i] = i ^ 0x3c;
  await dma(buffer.busRun(0).address, false);
  await dma(buffer.busRun(4096).address, true);
  out.asyncDmaOk = buffer.bytes.subarray(4096, 4096 + 256).every((b, i) => b === (i ^ 0x3c));
  buffer.close();
  bar.close();
  dev.close();
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
`;

function runChild(socket: string, bdf: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return spawnWithoutRawio([process.execPath, '-e', CHILD, socket, bdf]);
}

describe('lab: a root broker hands the edu device to a child without CAP_SYS_RAWIO', function () {
  let lab: LabEnvironment;
  before(function () {
    lab = requireLab(this);
  });

  it('grant, MMIO, DMA with broker-given physical addresses (noiommu) or IOVAs (IOMMU), release; a uid not allowed is refused', async function () {
    this.timeout(120_000);
    if (lab.machine !== 'edu') {
      console.log(`      (skipped: the edu DMA round trip needs the edu machine, this is ${lab.machine})`);
      this.skip();
    }
    if (findSetpriv() === null) {
      console.log('      (skipped: no setpriv on this machine to drop CAP_SYS_RAWIO)');
      this.skip();
    }
    const kernel = nativeKernel();
    if (PciDevice.get(lab.bdf, { kernel }).cdevPath() === null || !kernel.exists('/dev/iommu')) {
      console.log(`      (skipped: this kernel gives ${lab.bdf} no device cdev with /dev/iommu; the broker hands out cdevs only)`);
      this.skip();
    }
    const fdsBefore = fs.readdirSync('/proc/self/fd').length;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfio-broker-lab-'));
    const log: BrokerLogEntry[] = [];
    const socket = path.join(dir, 'broker.sock');
    // The child keeps uid 0 (setpriv drops only CAP_SYS_RAWIO), so uid 0 is what is allowed.
    const broker = Broker.start({ kernel, socketPath: socket, allowUids: [0], devices: [lab.bdf], log: (e) => log.push(e) });
    const refusing = Broker.start({ kernel, socketPath: path.join(dir, 'other.sock'), allowUids: [4242], devices: [lab.bdf] });
    try {
      const run = await runChild(socket, lab.bdf);
      console.log(`      saw: ${run.stdout}`);
      assert.equal(run.status, 0, run.stderr);
      const out = JSON.parse(run.stdout) as Record<string, unknown>;
      assert.equal(out['rawio'], false);
      assert.equal(out['vendor'], 0x1234);
      assert.equal(out['liveness'], true);
      assert.equal(out['noiommu'], lab.mode === 'noiommu');
      if (lab.mode === 'noiommu') {
        assert.equal(out['ownGetPa'], 'EPERM', 'GET_PA is checked against the caller: the child has no CAP_SYS_RAWIO');
        assert.ok((out['runs'] as number) >= 1);
      }
      assert.equal(out['dmaOk'], true, 'the bytes came back through the device');
      assert.equal(out['asyncDmaOk'], true, 'allocateDmaAsync: the bytes came back through the device');
      if (lab.mode === 'noiommu')
        assert.equal(out['syncAllocate'], 'ERR_VFIO_ASYNC_LOOKUP', 'the synchronous lookup cannot ask the broker');
      for (let i = 0; i < 50 && broker.grants().length > 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(broker.grants(), [], 'the child closing the device released it');
      assert.ok(log.some((e) => e.event === 'grant') && log.some((e) => e.event === 'release'));

      const refused = await runChild(path.join(dir, 'other.sock'), lab.bdf);
      assert.equal(refused.status, 0, refused.stderr);
      assert.equal((JSON.parse(refused.stdout) as { refused?: string }).refused, 'EACCES');
    } finally {
      await broker.close();
      await refusing.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(fs.readdirSync('/proc/self/fd').length, fdsBefore, 'the broker kept no fd');
  });
});

/**
 * VF tokens through the broker on the real kernel (the sriov machine): this process, as the PF's
 * user, opens the PF with a token and creates one VF; a broker configured with that token binds the
 * VF to the iommufd it grants, and a child without CAP_SYS_RAWIO (setpriv) that never sees the
 * token gets a working VF; a broker without the token is refused by the kernel with EACCES.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nativeKernel } from '../../../lib/sys/native-kernel';
import { openDevice } from '../../../lib/vfio/open-device';
import { PciDevice } from '../../../lib/pci/pci-device';
import { PciSriov } from '../../../lib/pci/sriov';
import { Broker } from '../../../lib/broker/server';
import { requireLab } from '../lab-environment';
import { findSetpriv, spawnWithoutRawio } from '../unprivileged';

const TOKEN = '4ebcbd0f-9a7c-4d8e-8fd0-3f1b5c2a6d71';

const CHILD = `
const lib = ${JSON.stringify(path.resolve(__dirname, '../../../lib'))};
const { openDevice } = require(lib + '/vfio/open-device');
const { nativeKernel } = require(lib + '/sys/native-kernel');
(async () => {
  const out = {};
  try {
    const dev = await openDevice(process.argv[2], { kernel: nativeKernel(), broker: process.argv[1] });
    out.vendor = dev.config.read16(0);
    out.attached = dev.ioas !== undefined;
    dev.close();
  } catch (e) {
    out.refused = e.code || String(e);
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
`;

describe("lab: the broker hands out an SR-IOV VF bound with its PF's token", function () {
  this.timeout(180_000);
  it('a child without the token gets the VF from a broker that has it; without it the kernel says EACCES', async function () {
    const lab = requireLab(this);
    if (!findSetpriv()) {
      console.log('      skipped: no setpriv on this machine to drop CAP_SYS_RAWIO');
      this.skip();
    }
    const kernel = nativeKernel();
    const sriov = PciDevice.get(lab.bdf, { kernel }).sriov;
    if (!sriov || sriov.totalVfs === 0) {
      console.log(`      skipped: ${lab.bdf} is no SR-IOV PF`);
      this.skip();
    }
    const wasAllowed = PciSriov.vfioPciAllowed({ kernel });
    if (!wasAllowed) PciSriov.allowVfioPci(true, { kernel });
    const pf = openDevice(lab.bdf, { kernel, vfToken: TOKEN });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfio-broker-vf-'));
    let brokers: Broker[] = [];
    try {
      const [vf] = sriov.enable(1);
      assert.ok(vf, 'one VF');
      const withToken = path.join(dir, 'with.sock');
      const without = path.join(dir, 'without.sock');
      brokers = [
        Broker.start({ kernel, socketPath: withToken, allowUids: [0], devices: [vf], vfTokens: { [lab.bdf]: TOKEN } }),
        Broker.start({ kernel, socketPath: without, allowUids: [0], devices: [vf] }),
      ];
      const got = await spawnWithoutRawio([process.execPath, '-e', CHILD, withToken, vf]);
      console.log(`      saw: ${got.stdout}`);
      assert.equal(got.status, 0, got.stderr);
      assert.deepEqual(JSON.parse(got.stdout), { vendor: 0x1b36, attached: true });
      const refused = await spawnWithoutRawio([process.execPath, '-e', CHILD, without, vf]);
      assert.equal(refused.status, 0, refused.stderr);
      assert.deepEqual(JSON.parse(refused.stdout), { refused: 'EACCES' });
    } finally {
      for (const b of brokers) await b.close();
      sriov.disable();
      pf.close();
      if (!wasAllowed) PciSriov.allowVfioPci(false, { kernel });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

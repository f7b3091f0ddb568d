/**
 * VF tokens through the broker, on the model of the lab's sriov machine: the PF's user (root)
 * sets a token, and a VF of that PF opens only with it. A broker configured with the token binds
 * the VF to the iommufd it grants, so an unprivileged client gets a working VF without ever
 * learning the token; a broker without it refuses with the kernel's EACCES, and a bad token in
 * the configuration is refused at start.
 */
import assert from 'node:assert/strict';
import { createModelKernel } from '../../lib/model';
import { Broker } from '../../lib/broker/server';
import { openDevice } from '../../lib/vfio/open-device';
import { PciDevice } from '../../lib/pci/pci-device';
import { PciSriov } from '../../lib/pci/sriov';
import { isVfioError } from '../../lib/sys/errors';
import { labSriovProfile } from '../../tools/fuzz/lab-sriov-machine';
import { SOCKET, unprivileged } from './support';

const PF = '0000:00:04.0';
const TOKEN = '4ebcbd0f-9a7c-4d8e-8fd0-3f1b5c2a6d71';

function machineWithVf(mode: 'noiommu' | 'iommu') {
  const root = createModelKernel(labSriovProfile(mode));
  PciSriov.allowVfioPci(true, { kernel: root });
  const pf = openDevice(PF, { kernel: root, vfToken: TOKEN });
  const [vf] = PciDevice.get(PF, { kernel: root }).sriov!.enable(1);
  return { root, pf, vf: vf! };
}

describe('broker: SR-IOV VFs whose PF has a VF token [model]', () => {
  for (const mode of ['noiommu', 'iommu'] as const) {
    it(`a broker with the PF's token hands an unprivileged client a VF bound with it (${mode})`, async () => {
      const { root, pf, vf } = machineWithVf(mode);
      const log: string[] = [];
      const broker = Broker.start({
        kernel: root,
        socketPath: SOCKET,
        allowUids: [1000],
        devices: [vf],
        vfTokens: { [PF]: TOKEN },
        log: (e) => log.push(e.message),
      });
      const client = root.spawnProcess(unprivileged());
      assert.throws(
        () => openDevice(vf, { kernel: client }),
        (e: unknown) => isVfioError(e),
        'the client cannot open the VF itself',
      );
      const dev = await openDevice(vf, { kernel: client, broker: SOCKET });
      assert.equal(dev.config.read16(0), 0x1b36, "the VF's config space through the received fd");
      assert.ok(dev.ioas, 'attached to its IOAS');
      assert.ok(log.some((m) => /bound with its PF's VF token/.test(m)));
      assert.ok(!log.some((m) => m.includes(TOKEN)), 'the token is never logged');
      dev.close();
      await broker.close();
      pf.close();
      assert.equal(client.openFdCount, 0);
    });
  }

  it('a broker without the token is refused by the kernel (EACCES), and a malformed token at start', async () => {
    const { root, pf, vf } = machineWithVf('noiommu');
    assert.throws(
      () => Broker.start({ kernel: root, socketPath: SOCKET, allowUids: [1000], devices: [vf], vfTokens: { [PF]: 'not-a-uuid' } }),
      TypeError,
    );
    const broker = Broker.start({ kernel: root, socketPath: SOCKET, allowUids: [1000], devices: [vf] });
    const client = root.spawnProcess(unprivileged());
    await assert.rejects(openDevice(vf, { kernel: client, broker: SOCKET }), (e: unknown) => isVfioError(e, 'EACCES'));
    await broker.close();
    pf.close();
    assert.equal(client.openFdCount, 0, `client fds: ${JSON.stringify(client.openFiles().map((f) => f.path))}`);
  });
});

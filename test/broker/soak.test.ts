/**
 * Bounded soak: 10 000 grant/release cycles on the model, alternating a kept connection and a
 * new connection per cycle, without fd growth in the broker or the client and without open
 * files piling up on the machine.
 */
import assert from 'node:assert/strict';
import { BrokerClient } from '../../lib/broker/client';
import { EDU, SOCKET, startBroker, unprivileged } from './support';

describe('broker: soak [model]', () => {
  it('10k grant/release cycles leave no fd behind', async function () {
    this.timeout(120_000);
    const { root, broker } = startBroker('linux-7.3-noiommu');
    const client = root.spawnProcess(unprivileged());
    const brokerFds = root.openFdCount;
    const liveFiles = root.liveFileCount;
    let kept = BrokerClient.connect(SOCKET, { kernel: client });
    for (let i = 0; i < 10_000; i++) {
      const fresh = i % 2 === 1;
      const c = fresh ? BrokerClient.connect(SOCKET, { kernel: client }) : kept;
      const grant = await c.grant(EDU);
      client.close(grant.deviceFd);
      client.close(grant.iommufdFd);
      if (fresh)
        c.close(); // the hangup releases it
      else await c.releaseDevice(EDU);
      if (i % 1000 === 999) {
        // Let the broker see the last hangup, then nothing may have grown.
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setImmediate(r));
        assert.equal(root.openFdCount, brokerFds + 1, `broker fds after ${i + 1} cycles (+1: the kept connection)`);
        assert.equal(client.openFdCount, 1, `client fds after ${i + 1} cycles`);
        assert.equal(root.liveFileCount, liveFiles + 2, 'open files: the kept connection, both ends');
      }
    }
    kept.close();
    kept = undefined as never;
    await broker.close();
    assert.equal(root.openFdCount, 0);
    assert.equal(client.openFdCount, 0);
  });
});

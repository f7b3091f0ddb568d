/**
 * A model machine with a broker running as root and client processes of other users, the way
 * the broker is deployed: the broker's process has every capability, a client has none.
 */
import { createModelKernel, type ModelKernel } from '../../lib/model';
import type { ProcessCredentials } from '../../lib/model/profile';
import { Broker, type BrokerLogEntry, type BrokerOptions } from '../../lib/broker/server';

export const EDU = '0000:00:03.0';
export const SOCKET = '/run/vfio-broker.sock';

/** A user with no capabilities and no access to the device nodes: uid 1000 unless told. */
export function unprivileged(uid = 1000, gid = uid): ProcessCredentials {
  return {
    uid,
    gid,
    capabilities: { sysRawio: false, sysAdmin: false, ipcLock: false, sysResource: false },
    memlockLimit: 8n << 20n,
    deviceNodeAccess: false,
  };
}

export interface BrokerSetup {
  readonly root: ModelKernel;
  readonly broker: Broker;
  readonly log: BrokerLogEntry[];
}

export function startBroker(profile: 'linux-7.3-noiommu' | 'linux-7.3-iommu', options: Partial<BrokerOptions> = {}): BrokerSetup {
  const root = createModelKernel(profile);
  const log: BrokerLogEntry[] = [];
  const broker = Broker.start({
    kernel: root,
    socketPath: SOCKET,
    allowUids: [1000],
    devices: [EDU],
    log: (e) => log.push(e),
    ...options,
  });
  return { root, broker, log };
}

/** Lets the broker's event-loop work run (its accept and receive waits are promises). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

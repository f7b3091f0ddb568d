/**
 * `openDevice(bdf, { broker })`: the device opened by a broker and handed over, built into the
 * same objects a direct open returns (a VfioDevice on the cdev path that owns its iommufd and
 * IOAS), by adopting the received fds. The device holds the broker connection: closing the device
 * closes it, and the broker hands the device out again.
 */
import { VfioError } from '../sys/errors';
import type { Iova } from '../sys/addresses';
import { kernelFrom, type KernelOptions } from '../support/kernel-options';
import { Iommufd } from '../iommu/iommufd';
import { VfioDevice } from '../vfio/device';
import { BrokerClient, type BrokerPhysicalRun } from './client';

const leases = new WeakMap<VfioDevice, { readonly client: BrokerClient; readonly bdf: string }>();

/**
 * Asks the broker at `options.broker` for `bdf` and adopts what it sends (see `openDevice`).
 *
 * @category Passing fds
 */
export async function openBrokeredDevice(bdf: string, options: KernelOptions & { readonly broker: string }): Promise<VfioDevice> {
  const kernel = kernelFrom(options);
  const client = BrokerClient.connect(options.broker, { kernel });
  try {
    const grant = await client.grant(bdf);
    let iommufd: Iommufd;
    try {
      iommufd = Iommufd.adopt(grant.iommufdFd, { kernel });
    } catch (e) {
      kernel.close(grant.iommufdFd);
      kernel.close(grant.deviceFd);
      throw e;
    }
    let device: VfioDevice;
    try {
      device = VfioDevice.adopt(grant.deviceFd, {
        iommufd,
        ownIommufd: true,
        bdf: grant.bdf,
        // A device the broker bound (a VF, with its PF's token) is not attached yet: attach it here.
        ...(grant.deviceId === undefined ? {} : { deviceId: grant.deviceId, attach: iommufd.ioas() }),
        holds: [client],
        reason: `received from the broker at ${options.broker} (${grant.noiommu ? 'noiommu cdev: physical addresses from the broker' : 'IOMMU-translated DMA'})`,
      });
    } catch (e) {
      // A wrong fd stays the caller's; any later failure already closed it.
      if (e instanceof VfioError && e.code === 'ERR_VFIO_WRONG_FD') kernel.close(grant.deviceFd);
      iommufd.close();
      throw e;
    }
    leases.set(device, { client, bdf: grant.bdf });
    const ioas = device.ioas;
    if (grant.noiommu && ioas) ioas.physicalResolver = (iova, length) => client.physicalSegments(grant.bdf, ioas.id, iova, length);
    // The device holds the connection now; this only gives up the caller's claim on it.
    client.close();
    return device;
  } catch (e) {
    client.close();
    throw e;
  }
}

/**
 * The physical runs of [iova, iova+length) of the IOAS a brokered noiommu device is attached to,
 * answered by its broker (the client cannot call IOMMU_IOAS_NOIOMMU_GET_PA without CAP_SYS_RAWIO).
 *
 * @category Passing fds
 */
export function brokerPhysicalSegments(device: VfioDevice, iova: Iova, length: bigint): Promise<BrokerPhysicalRun[]> {
  const lease = leases.get(device);
  if (!lease) throw new TypeError(`${device.description} was not opened through a broker`);
  const ioas = device.ioas;
  if (!ioas) throw new TypeError(`${device.description} is not attached to an IOAS`);
  return lease.client.physicalSegments(lease.bdf, ioas.id, iova, length);
}

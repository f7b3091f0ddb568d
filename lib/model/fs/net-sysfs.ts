/**
 * Network devices in sysfs as net/core/net-sysfs.c and register_netdevice publish them: each
 * interface is a class device `net/<ifname>` below its parent device (a PCI function for a NIC,
 * /sys/devices/virtual for lo), linked from /sys/class/net/<ifname>, with the attributes of
 * net_class_groups (address, flags, ifindex, mtu, operstate, carrier, …), a `device` link to the
 * parent (none for virtual devices) and `subsystem` back to the class.
 *
 * State is what the host set: an interface that is up has IFF_UP and a carrier (operstate `up`);
 * one that is down reads operstate `down`, and carrier, speed and duplex fail with EINVAL as
 * they do while !netif_running. ifindex values are never reused: lo is 1, every registration
 * takes the next one (dev_index_reserve's cyclic allocation), so a NIC rebound to its driver
 * comes back with a new index, down, as no one brings it up again.
 */
import { fail } from '../errno';
import type { Vfs } from '../vfs';
import { link, roAttr } from './nodes';
import { upToSys } from './pci-sysfs';

const IFF_UP = 0x1;
const IFF_BROADCAST = 0x2;
const IFF_LOOPBACK = 0x8;
const IFF_MULTICAST = 0x1000;
const ARPHRD_ETHER = 1;
const ARPHRD_LOOPBACK = 772;

/** One registered net_device. */
export interface NetInterface {
  readonly name: string;
  readonly ifindex: number;
  /** The sysfs directory of the class device. */
  readonly dir: string;
}

export interface NetDeviceSpec {
  readonly name: string;
  readonly up: boolean;
  /** MAC address as `aa:bb:cc:dd:ee:ff`. */
  readonly address: string;
}

export class NetSysfs {
  private nextIfindex = 1;

  constructor(private readonly vfs: Vfs) {
    vfs.mkdir('/sys/class/net');
    // loopback_net_init registers lo first in every network namespace; nothing brings it up in
    // the model (the lab's init does not either), so it is down: flags IFF_LOOPBACK only.
    this.register('/sys/devices/virtual', { name: 'lo', up: false, address: '00:00:00:00:00:00' }, 'loopback');
  }

  /** register_netdevice of an Ethernet device whose parent is the device at `parentDir`. */
  registerEthernet(parentDir: string, spec: NetDeviceSpec): NetInterface {
    return this.register(parentDir, spec, 'ether');
  }

  /** unregister_netdevice: the class device and its /sys/class/net link go. */
  unregister(nif: NetInterface): void {
    this.vfs.remove(`/sys/class/net/${nif.name}`);
    this.vfs.remove(nif.dir);
    const parent = nif.dir.slice(0, -`/${nif.name}`.length);
    const node = this.vfs.lookup(parent, false);
    // The `net` directory of a parent goes with its last interface (kobject_put of the glue dir).
    if (node?.type === 'dir' && node.children.size === 0) this.vfs.remove(parent);
  }

  private register(parentDir: string, spec: NetDeviceSpec, kind: 'ether' | 'loopback'): NetInterface {
    if (this.vfs.lookup(`/sys/class/net/${spec.name}`, false)) fail('EEXIST', `interface ${spec.name} exists`);
    const ifindex = this.nextIfindex++;
    const dir = `${parentDir}/net/${spec.name}`;
    const loopback = kind === 'loopback';
    const running = spec.up;
    const flags = (running ? IFF_UP : 0) | (loopback ? IFF_LOOPBACK : IFF_BROADCAST | IFF_MULTICAST);
    const whileRunning = (value: string) => () => {
      // carrier_show, speed_show, duplex_show: -EINVAL unless netif_running.
      if (!running) fail('EINVAL', `${spec.name} is down`);
      return value;
    };
    const attrs: Record<string, () => string> = {
      addr_assign_type: () => '0\n',
      addr_len: () => '6\n',
      address: () => `${spec.address}\n`,
      broadcast: () => (loopback ? '00:00:00:00:00:00\n' : 'ff:ff:ff:ff:ff:ff\n'),
      carrier: whileRunning('1\n'),
      dev_id: () => '0x0\n',
      dev_port: () => '0\n',
      dormant: () => '0\n',
      flags: () => `0x${flags.toString(16)}\n`,
      ifindex: () => `${ifindex}\n`,
      iflink: () => `${ifindex}\n`,
      link_mode: () => '0\n',
      mtu: () => (loopback ? '65536\n' : '1500\n'),
      // NET_NAME_ENUM for alloc_etherdev's eth%d, NET_NAME_UNKNOWN for lo.
      name_assign_type: () => (loopback ? fail('EINVAL') : '1\n'),
      operstate: () => (running ? (loopback ? 'unknown\n' : 'up\n') : 'down\n'),
      tx_queue_len: () => '1000\n',
      type: () => `${loopback ? ARPHRD_LOOPBACK : ARPHRD_ETHER}\n`,
      uevent: () => `INTERFACE=${spec.name}\nIFINDEX=${ifindex}\n`,
    };
    if (!loopback) {
      attrs['speed'] = whileRunning('1000\n');
      attrs['duplex'] = whileRunning('full\n');
    }
    for (const [name, show] of Object.entries(attrs)) this.vfs.add(`${dir}/${name}`, roAttr(show));
    this.vfs.mkdir(`${dir}/statistics`);
    this.vfs.mkdir(`${dir}/queues/rx-0`);
    this.vfs.mkdir(`${dir}/queues/tx-0`);
    this.vfs.mkdir(`${dir}/power`);
    this.vfs.add(`${dir}/subsystem`, link(`${upToSys(dir)}/class/net`));
    // netdev_register_kobject: a `device` link only when the net_device has a parent device.
    if (!loopback) this.vfs.add(`${dir}/device`, link('../../../' + parentDir.split('/').pop()!));
    this.vfs.add(`/sys/class/net/${spec.name}`, link(`../..${dir.slice('/sys'.length)}`));
    return { name: spec.name, ifindex, dir };
  }
}

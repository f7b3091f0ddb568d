/**
 * Disks in sysfs as block/genhd.c (device_add_disk) and block/partitions/core.c (add_partition)
 * publish them: a disk is a class device below its parent (an NVMe controller's class device,
 * a SCSI device's `block/` directory), linked from /sys/block/<disk> (the block_depr directory,
 * whole disks only), /sys/class/block/<name> and /sys/dev/block/<major>:<minor>; its partitions
 * are subdirectories of the disk (`nvme0n1/nvme0n1p1`) linked from /sys/class/block and
 * /sys/dev/block only. Each has dev, size, ro, the alignment attributes, `holders/` (empty: no
 * LVM, RAID or dm-crypt above them in the model) and a `device` link for the disk.
 *
 * Device numbers are the kernel's: SCSI disks take major 8 with 16 minors each (sda 8:0, sda1
 * 8:1); NVMe disks have no minors of their own, so the disk and each partition take the next
 * free minor of the extended major 259 (nvme0n1 259:0, nvme0n1p1 259:1).
 */
import type { Vfs } from '../vfs';
import { link, roAttr } from './nodes';
import { upToSys } from './pci-sysfs';

const SCSI_DISK0_MAJOR = 8;
const BLOCK_EXT_MAJOR = 259;
const SD_MINORS = 16;
/** Where a partition table's first partition starts (1 MiB, as fdisk and parted align it). */
const FIRST_PARTITION_SECTOR = 2048n;

export interface DiskSpec {
  readonly name: string;
  readonly sectors: bigint;
  readonly partitions: number;
  /** 'sd': minors from the disk's index (sd_probe); 'ext': from the extended major. */
  readonly numbering: { readonly kind: 'sd'; readonly index: number } | { readonly kind: 'ext' };
  /** The disk's `device` link: to its parent device (`../../nvme0`; `../../../0:0:0:0` past a SCSI device's block/). */
  readonly deviceLink: string;
}

/** One added gendisk, for del_gendisk. */
export interface Disk {
  readonly name: string;
  readonly dir: string;
  readonly parts: readonly string[];
  readonly devs: readonly string[];
  readonly extMinors: readonly number[];
}

export class BlockSysfs {
  private readonly extMinorsTaken = new Set<number>();
  private diskseq = 0;

  constructor(private readonly vfs: Vfs) {
    vfs.mkdir('/sys/block');
    vfs.mkdir('/sys/class/block');
    vfs.mkdir('/sys/dev/block');
  }

  /** device_add_disk below `parentDir`, then the partition scan (bdev_disk_changed). */
  addDisk(parentDir: string, spec: DiskSpec): Disk {
    const { vfs } = this;
    const dir = `${parentDir}/${spec.name}`;
    const seq = ++this.diskseq;
    const extMinors: number[] = [];
    const devOf = (partno: number): [number, number] => {
      if (spec.numbering.kind === 'sd' && partno < SD_MINORS) return [SCSI_DISK0_MAJOR, spec.numbering.index * SD_MINORS + partno];
      let minor = 0;
      while (this.extMinorsTaken.has(minor)) minor++;
      this.extMinorsTaken.add(minor);
      extMinors.push(minor);
      return [BLOCK_EXT_MAJOR, minor];
    };
    const [major, minor] = devOf(0);
    const common = (d: string, sectors: bigint) => {
      vfs.add(
        `${d}/size`,
        roAttr(() => `${sectors}\n`),
      );
      vfs.add(
        `${d}/ro`,
        roAttr(() => '0\n'),
      );
      vfs.add(
        `${d}/alignment_offset`,
        roAttr(() => '0\n'),
      );
      vfs.add(
        `${d}/discard_alignment`,
        roAttr(() => '0\n'),
      );
      vfs.add(
        `${d}/stat`,
        roAttr(() => `${Array.from({ length: 17 }, () => '0'.padStart(8)).join(' ')}\n`),
      );
      vfs.add(
        `${d}/inflight`,
        roAttr(() => `${'0'.padStart(8)} ${'0'.padStart(8)}\n`),
      );
      vfs.mkdir(`${d}/holders`);
      vfs.mkdir(`${d}/power`);
      vfs.add(`${d}/subsystem`, link(`${upToSys(d)}/class/block`));
    };
    const devAttr = (d: string, maj: number, min: number) => {
      vfs.add(
        `${d}/dev`,
        roAttr(() => `${maj}:${min}\n`),
      );
      vfs.add(`/sys/dev/block/${maj}:${min}`, link(`../..${d.slice('/sys'.length)}`));
    };
    common(dir, spec.sectors);
    devAttr(dir, major, minor);
    // disk->minors: 16 for sd, 0 for NVMe (everything from the extended range); ext_range 256.
    vfs.add(
      `${dir}/range`,
      roAttr(() => (spec.numbering.kind === 'sd' ? '16\n' : '0\n')),
    );
    vfs.add(
      `${dir}/ext_range`,
      roAttr(() => '256\n'),
    );
    vfs.add(
      `${dir}/removable`,
      roAttr(() => '0\n'),
    );
    vfs.add(
      `${dir}/hidden`,
      roAttr(() => '0\n'),
    );
    vfs.add(
      `${dir}/diskseq`,
      roAttr(() => `${seq}\n`),
    );
    vfs.add(
      `${dir}/uevent`,
      roAttr(() => `MAJOR=${major}\nMINOR=${minor}\nDEVNAME=${spec.name}\nDEVTYPE=disk\nDISKSEQ=${seq}\n`),
    );
    vfs.mkdir(`${dir}/slaves`);
    vfs.mkdir(`${dir}/queue`);
    vfs.add(`${dir}/device`, link(spec.deviceLink));
    vfs.add(`/sys/block/${spec.name}`, link(`../devices${dir.slice('/sys/devices'.length)}`));
    vfs.add(`/sys/class/block/${spec.name}`, link(`../../devices${dir.slice('/sys/devices'.length)}`));
    const parts: string[] = [];
    const devs = [`${major}:${minor}`];
    if (spec.partitions > 0) {
      const each = (spec.sectors - FIRST_PARTITION_SECTOR) / BigInt(spec.partitions);
      for (let n = 1; n <= spec.partitions; n++) {
        // disk_name(): a 'p' between a name that ends in a digit and the partition number.
        const name = /\d$/.test(spec.name) ? `${spec.name}p${n}` : `${spec.name}${n}`;
        const pdir = `${dir}/${name}`;
        const [pmaj, pmin] = devOf(n);
        const start = FIRST_PARTITION_SECTOR + BigInt(n - 1) * each;
        common(pdir, each);
        devAttr(pdir, pmaj, pmin);
        vfs.add(
          `${pdir}/partition`,
          roAttr(() => `${n}\n`),
        );
        vfs.add(
          `${pdir}/start`,
          roAttr(() => `${start}\n`),
        );
        vfs.add(
          `${pdir}/uevent`,
          roAttr(() => `MAJOR=${pmaj}\nMINOR=${pmin}\nDEVNAME=${name}\nDEVTYPE=partition\nDISKSEQ=${seq}\nPARTN=${n}\n`),
        );
        vfs.add(`/sys/class/block/${name}`, link(`../../devices${pdir.slice('/sys/devices'.length)}`));
        parts.push(name);
        devs.push(`${pmaj}:${pmin}`);
      }
    }
    return { name: spec.name, dir, parts, devs, extMinors };
  }

  /** del_gendisk: partitions, the disk and every link to them go; extended minors are freed. */
  removeDisk(disk: Disk): void {
    for (const name of [...disk.parts, disk.name]) this.vfs.remove(`/sys/class/block/${name}`);
    for (const dev of disk.devs) this.vfs.remove(`/sys/dev/block/${dev}`);
    this.vfs.remove(`/sys/block/${disk.name}`);
    this.vfs.remove(disk.dir);
    for (const m of disk.extMinors) this.extMinorsTaken.delete(m);
  }
}

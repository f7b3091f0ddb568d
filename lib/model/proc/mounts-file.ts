/**
 * /proc/self/mounts (and /proc/mounts, a symlink to it) as fs/proc_namespace.c's show_vfsmnt
 * prints each mount of the process's namespace: the device name (`none` when there is none), the
 * mount point, the type and the options, then two zeros for fstab's dump and pass fields. Spaces,
 * tabs, newlines and backslashes in the first three are octal escapes (`\040`), as mangle() and
 * seq_path_root() write them. The model's namespace has proc at /proc and sysfs at /sys (the
 * lab's init mounts them first) and then the profile's mounts.
 *
 * /proc/swaps (mm/swapfile.c) is only its header: the model has no active swap.
 */
import type { HostMountSpec } from '../profile';
import type { Vfs } from '../vfs';
import { link, roAttr } from '../fs/nodes';

const BASE_MOUNTS: readonly HostMountSpec[] = [
  { source: 'proc', target: '/proc', fstype: 'proc', options: 'rw,relatime' },
  { source: 'sysfs', target: '/sys', fstype: 'sysfs', options: 'rw,relatime' },
];

/** seq_escape's octal form for the characters /proc/mounts cannot print plainly. */
function mangle(s: string): string {
  return s.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

export function mountsText(mounts: readonly HostMountSpec[]): string {
  return [...BASE_MOUNTS, ...mounts]
    .map(
      (m) => `${mangle(m.source === '' ? 'none' : m.source)} ${mangle(m.target)} ${mangle(m.fstype)} ${m.options ?? 'rw,relatime'} 0 0\n`,
    )
    .join('');
}

/** Adds /proc/self/mounts, the /proc/mounts link and /proc/swaps. */
export function addMountsFiles(vfs: Vfs, mounts: readonly HostMountSpec[]): void {
  const text = mountsText(mounts);
  vfs.add(
    '/proc/self/mounts',
    roAttr(() => text),
  );
  vfs.add('/proc/mounts', link('self/mounts'));
  vfs.add(
    '/proc/swaps',
    roAttr(() => 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n'),
  );
}

/**
 * Small helpers for publishing kernel objects in the model's sysfs and devtmpfs: attribute
 * files with show/store callbacks, symlinks, and device nodes that appear and disappear with the
 * device (devtmpfs also removes directories it created once they are empty).
 */
import type { AttrNode, CharDevNode, LinkNode, Vfs } from '../vfs';
import { split } from '../vfs';

/** A read-only sysfs attribute (mode 0444). */
export function roAttr(show: () => string | Buffer): AttrNode {
  return { type: 'attr', read: show, mode: 0o444 };
}

/** A read-write sysfs attribute (mode 0644, or `mode`). */
export function rwAttr(show: () => string | Buffer, store: (data: Buffer) => void, mode = 0o644): AttrNode {
  return { type: 'attr', read: show, write: store, mode };
}

/** A write-only sysfs attribute (mode 0200). */
export function woAttr(store: (data: Buffer) => void): AttrNode {
  return { type: 'attr', write: store, mode: 0o200 };
}

export function link(target: string): LinkNode {
  return { type: 'link', target: () => target };
}

/** Adds a device node under /dev, creating parent directories as devtmpfs does. */
export function addDevNode(vfs: Vfs, path: string, node: CharDevNode): void {
  vfs.add(path, node);
}

/** Removes a device node and the now-empty directories devtmpfs created for it (not /dev itself). */
export function removeDevNode(vfs: Vfs, path: string): void {
  vfs.remove(path);
  const parts = split(path);
  parts.pop();
  while (parts.length > 1) {
    const dir = vfs.lookup('/' + parts.join('/'), false);
    if (!dir || dir.type !== 'dir' || dir.children.size > 0) break;
    vfs.remove('/' + parts.join('/'));
    parts.pop();
  }
}

/** "0x1234\n" as sysfs prints IDs. */
export function hex(n: number, width: number): string {
  return `0x${n.toString(16).padStart(width, '0')}\n`;
}

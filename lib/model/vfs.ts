/**
 * The simulated file system tree: sysfs, devfs and procfs of the model host. Nodes are either
 * directories, attribute files (read and write callbacks that can fail with an errno, like sysfs
 * store functions), symlinks, or character devices whose open() creates an OpenFile.
 */
import { fail } from './errno';
import type { OpenFile } from './open-file';

export interface AttrNode {
  readonly type: 'attr';
  read?(): string | Buffer;
  /** A sysfs store: throws a KernelError with the kernel's errno on bad input. */
  write?(data: Buffer): void;
  /** Unix permission bits, for EACCES checks (default 0o644, or 0o444 without write). */
  readonly mode?: number;
}
export interface LinkNode {
  readonly type: 'link';
  /** Relative or absolute target, as readlink returns it. */
  target(): string;
}
export interface CharDevNode {
  readonly type: 'chardev';
  open(flags: number, path: string): OpenFile;
}
export interface DirNode {
  readonly type: 'dir';
  readonly children: Map<string, VNode>;
}
export type VNode = AttrNode | LinkNode | CharDevNode | DirNode;

export class Vfs {
  readonly root: DirNode = { type: 'dir', children: new Map() };

  /** Creates the directory and its parents (mkdir -p); returns it. */
  mkdir(path: string): DirNode {
    let dir = this.root;
    for (const part of split(path)) {
      let next = dir.children.get(part);
      if (!next) {
        next = { type: 'dir', children: new Map() };
        dir.children.set(part, next);
      }
      if (next.type !== 'dir') throw new Error(`model vfs: ${path}: ${part} is not a directory`);
      dir = next;
    }
    return dir;
  }

  /** Adds (or replaces) a node, creating parent directories. */
  add(path: string, node: VNode): void {
    const parts = split(path);
    const name = parts.pop();
    if (!name) throw new Error('model vfs: cannot add the root');
    this.mkdir(parts.join('/')).children.set(name, node);
  }

  /** Removes a node (and everything below it); absent is fine. */
  remove(path: string): void {
    const parts = split(path);
    const name = parts.pop();
    if (!name) return;
    const parent = this.lookup('/' + parts.join('/'), false);
    if (parent?.type === 'dir') parent.children.delete(name);
  }

  /**
   * Resolves a path, following symlinks in every component (and in the last one when `follow`).
   * Returns undefined when a component does not exist. As link_path_walk does, every component
   * after the first, `.` and `..` included, is looked up in a directory: one that follows an
   * attribute or a device (`vendor/..`, `vendor/.`, `vendor/`) is ENOTDIR.
   */
  lookup(path: string, follow = true, depth = 0): VNode | undefined {
    if (depth > 40) fail('ELOOP');
    const parts = path.split('/').filter((p) => p !== '');
    const trailingSlash = parts.length > 0 && path.endsWith('/');
    let node: VNode = this.root;
    const walked: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (node.type !== 'dir') fail('ENOTDIR');
      if (part === '.') continue;
      if (part === '..') {
        walked.pop();
        node = this.lookup('/' + walked.join('/'), true, depth + 1) ?? this.root;
        continue;
      }
      const child = node.children.get(part);
      if (!child) return undefined;
      const last = i === parts.length - 1;
      if (child.type === 'link' && (!last || follow || trailingSlash)) {
        const target = child.target();
        const base = target.startsWith('/') ? target : '/' + [...walked, target].join('/');
        const resolved = this.lookup(base, true, depth + 1);
        if (!resolved) return undefined;
        node = resolved;
        walked.splice(0, walked.length, ...split(this.realpath(base, depth + 1)));
        continue;
      }
      node = child;
      walked.push(part);
    }
    if (trailingSlash && node.type !== 'dir') fail('ENOTDIR');
    return node;
  }

  /** The canonical path with symlinks resolved. */
  realpath(path: string, depth = 0): string {
    if (depth > 40) fail('ELOOP');
    const out: string[] = [];
    const parts = split(path);
    let node: VNode = this.root;
    for (const part of parts) {
      if (part === '..') {
        out.pop();
        node = this.lookup('/' + out.join('/'), true, depth + 1) ?? this.root;
        continue;
      }
      if (node.type !== 'dir') return '/' + [...out, part].join('/');
      const child = node.children.get(part);
      if (!child) {
        out.push(part);
        continue;
      }
      if (child.type === 'link') {
        const t = child.target();
        const abs = t.startsWith('/') ? t : '/' + [...out, t].join('/');
        const real = this.realpath(abs, depth + 1);
        out.splice(0, out.length, ...split(real));
        node = this.lookup(real, true, depth + 1) ?? this.root;
        continue;
      }
      out.push(part);
      node = child;
    }
    return '/' + out.join('/');
  }
}

/** Splits a path into components, dropping empty ones and '.'. */
export function split(path: string): string[] {
  return path.split('/').filter((p) => p !== '' && p !== '.');
}

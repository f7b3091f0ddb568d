/**
 * Open files for the plain nodes of the model's file tree: sysfs-style attributes (pread reads
 * the attribute's current text, pwrite calls its store function) and directories (which can be
 * opened for reading but have no data operations).
 */
import { fail } from './errno';
import type { OpenFile, SyscallContext } from './open-file';
import type { AttrNode } from './vfs';

export class AttrFile implements OpenFile {
  readonly kind = 'attr';

  constructor(private readonly node: AttrNode) {}

  pread(into: Uint8Array, offset: bigint, _ctx: SyscallContext): number {
    if (!this.node.read) fail('EINVAL');
    if (offset < 0n) fail('EINVAL');
    const raw = this.node.read();
    const content = typeof raw === 'string' ? Buffer.from(raw) : raw;
    if (offset >= BigInt(content.length)) return 0;
    const start = Number(offset);
    const n = Math.min(into.length, content.length - start);
    into.set(content.subarray(start, start + n));
    return n;
  }

  pwrite(from: Uint8Array, _offset: bigint, _ctx: SyscallContext): number {
    if (!this.node.write) fail('EINVAL');
    this.node.write(Buffer.from(from));
    return from.length;
  }
}

export class DirectoryFile implements OpenFile {
  readonly kind = 'directory';
}

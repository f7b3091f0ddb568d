/**
 * Shared setup of the native tests: they need Linux (the addon exists only there). On Linux a
 * missing addon is a failure, not a skip: CI must notice a broken build.
 */
import fs from 'node:fs';
import path from 'node:path';
import { addonStatus, type NativeAddon } from '../../lib/sys/addon';
import { NativeKernel, nativeKernel } from '../../lib/sys/native-kernel';

export function linuxOnly(suite: Mocha.Suite): void {
  suite.beforeAll(function () {
    if (process.platform !== 'linux') {
      console.log(`    (skipped: the native kernel needs Linux, this is ${process.platform})`);
      this.skip();
    }
    const status = addonStatus();
    if (!status.available) throw new Error(`native addon failed to load on Linux: ${status.reason}`);
  });
}

/** The addon itself, for what NativeKernel never passes it (bad arguments, raw callbacks). */
export function addon(): NativeAddon {
  const status = addonStatus();
  if (!status.available) throw new Error(status.reason);
  return status.addon;
}

export function kernel(): NativeKernel {
  return nativeKernel();
}

/** Runs `body` with `fd` and closes the fd when body returns or throws. */
export function withFd<T>(k: NativeKernel, fd: number, body: (fd: number) => T): T {
  try {
    return body(fd);
  } finally {
    k.close(fd);
  }
}

/** withFd for an async body: the fd is closed once the body's promise settles. */
export async function withFdAsync<T>(k: NativeKernel, fd: number, body: (fd: number) => Promise<T>): Promise<T> {
  try {
    return await body(fd);
  } finally {
    k.close(fd);
  }
}

/** Absolute path of a compiled module under dist/lib, for worker threads to require. */
export function distLib(relative: string): string {
  return path.resolve(__dirname, '../../lib', relative);
}

export function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Lines of /proc/self/maps that mention `name` (a memfd shows as /memfd:<name> (deleted)). */
export function mappingsNamed(name: string): number {
  return fs
    .readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes(`/memfd:${name}`)).length;
}

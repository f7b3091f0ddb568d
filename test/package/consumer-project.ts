/**
 * A throwaway project that depends on the packed tarball the way a user's project would, and the
 * files it consists of: small programs that import both entry points (ESM and CommonJS), TypeScript
 * sources with one tsconfig per moduleResolution, and the edu example's driver compiled against the
 * package instead of the source tree.
 */
import { execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const repositoryRoot = path.resolve(__dirname, '../../..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Runs a command, returning its stdout; on failure the error carries its stdout and stderr. */
function run(file: string, args: readonly string[], options: ExecFileSyncOptions & { cwd: string }): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, ...options }) as string;
  } catch (e) {
    const failure = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${path.basename(file)} ${args.join(' ')} failed: ${failure.message}\n${failure.stdout ?? ''}\n${failure.stderr ?? ''}`,
    );
  }
}

/**
 * Runs npm as a user would in `cwd`: without the npm_* variables of the `npm run` this test runs
 * under (they would point npm at this checkout), but with the Node headers to compile against,
 * which node-gyp cannot download here.
 */
export function runNpm(args: readonly string[], options: { cwd: string; env?: Record<string, string> }): string {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const nodedir = process.env.npm_config_nodedir ?? (fs.existsSync(path.join(prefix, 'include/node/node_api.h')) ? prefix : undefined);
  if (nodedir) env.npm_config_nodedir = nodedir;
  return run(npm, args, { cwd: options.cwd, env: { ...env, ...options.env } });
}

/**
 * The model program every consumer runs: open the model's edu device through the public API, read
 * its identification register, check its liveness register, and try the native kernel (an eventfd
 * round trip), printing one JSON line.
 */
const MODEL_PROGRAM = `
const kernel = createModelKernel('linux-7.3-iommu');
const [pci] = PciDevice.list({ vendorId: 0x1234, deviceId: 0x11e8 }, kernel);
const device = openDevice(pci.bdf, { kernel });
const registers = device.bar(0).mmap();
const identification = registers.read32(0);
registers.write32(4, 0x12345678);
const liveness = registers.read32(4);
registers.close();
device.close();
let native;
try {
  const host = nativeKernel();
  const fd = host.eventfd(0, 0);
  host.eventfdWrite(fd, 42n);
  native = { eventfd: String(host.eventfdRead(fd)) };
  host.close(fd);
} catch (e) {
  native = { code: e.code, syscall: e.syscall, isVfioError: isVfioError(e), hint: e.hint };
}
console.log(JSON.stringify({ identification, liveness, native }));
`;

/** What MODEL_PROGRAM prints about the model: QEMU's edu identification and NOT of the probe. */
export const MODEL_RESULT = { identification: 0x010000ed, liveness: ~0x12345678 >>> 0 } as const;

/** Types from both entry points, including one a wrong resolution (to `any`) would not catch. */
const TYPES_PROGRAM = `
import { isVfioError, openDevice, type Kernel, type VfioDevice } from 'node-vfio';
import { createModelKernel, profiles, type ModelKernel, type ProfileName } from 'node-vfio/model';

const profile: ProfileName = 'linux-7.3-iommu';
const model: ModelKernel = createModelKernel(profiles[profile]);
const kernel: Kernel = model;
const device: VfioDevice = openDevice('0000:00:03.0', { kernel });
export const identification: number = device.bar(0).mmap().read32(0);
// @ts-expect-error: a profile name is checked, so this only compiles while the types are real
createModelKernel('no-such-profile');
export const check: (e: unknown) => boolean = isVfioError;
`;

/** The edu example's main, cut down to what runs on the model; the driver is examples/edu/edu-device.ts. */
const EDU_MAIN = `
import { randomBytes } from 'node:crypto';
import { DmaBuffer, PciDevice, openDevice } from 'node-vfio';
import { createModelKernel } from 'node-vfio/model';
import { EDU_DEVICE_ID, EDU_MAX_TRANSFER, EDU_VENDOR_ID, EduDevice } from './edu-device';

async function main(): Promise<void> {
  const kernel = createModelKernel('linux-7.3-iommu');
  const [pci] = PciDevice.list({ vendorId: EDU_VENDOR_ID, deviceId: EDU_DEVICE_ID }, kernel);
  if (!pci) throw new Error('the model has no edu device');
  const device = openDevice(pci.bdf, { kernel });
  const edu = new EduDevice(device);
  const buffer = DmaBuffer.allocate(8192, { space: device.dmaSpace });
  try {
    const factorial = await edu.factorial(10);
    const pattern = randomBytes(EDU_MAX_TRANSFER);
    buffer.bytes.set(pattern, 0);
    await edu.dmaToDevice(buffer.dmaAddress(0), 0, pattern.length);
    await edu.dmaToHost(0, buffer.dmaAddress(4096), pattern.length);
    const intact = Buffer.from(buffer.bytes.subarray(4096, 4096 + pattern.length)).equals(pattern);
    console.log(JSON.stringify({ identification: edu.identification(), factorial, intact }));
  } finally {
    buffer.close();
    edu.close();
    device.close();
  }
}
main().catch((e: unknown) => { console.error(e); process.exitCode = 1; });
`;

/** The edu example's driver with its imports of the source tree turned into imports of the package. */
function eduDriverAgainstPackage(): string {
  const source = fs.readFileSync(path.join(repositoryRoot, 'examples/edu/edu-device.ts'), 'utf8');
  const rewritten = source
    .replace(/from '\.\.\/\.\.\/lib'/g, "from 'node-vfio'")
    .replace(/from '\.\.\/\.\.\/lib\/model'/g, "from 'node-vfio/model'");
  const leftover = rewritten.match(/from '\.\.?\/[^']*'/);
  if (leftover) throw new Error(`examples/edu/edu-device.ts imports ${leftover[0]}, which a consumer of the package cannot`);
  return rewritten;
}

export type ModuleResolution = 'node' | 'node16' | 'bundler';

/** One tsconfig per resolution; "node" also emits, so the edu example can then run. */
function tsconfig(resolution: ModuleResolution): object {
  const module = { node: 'commonjs', node16: 'node16', bundler: 'esnext' }[resolution];
  const files = ['types.ts', 'edu-device.ts', 'edu-main.ts', ...(resolution === 'node16' ? ['types.mts'] : [])];
  return {
    compilerOptions: {
      strict: true,
      target: 'ES2022',
      lib: ['ES2022'],
      module,
      moduleResolution: resolution,
      types: ['node'],
      typeRoots: [path.join(repositoryRoot, 'node_modules/@types')],
      skipLibCheck: false,
      ...(resolution === 'node' ? { outDir: 'out' } : { noEmit: true }),
    },
    files,
  };
}

/** Writes the consumer's sources (not its dependencies) into `dir`. */
export function writeConsumerSources(dir: string): void {
  const write = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text);
  write(
    'main.mjs',
    `import { PciDevice, isVfioError, nativeKernel, openDevice } from 'node-vfio';\nimport { createModelKernel } from 'node-vfio/model';\n${MODEL_PROGRAM}`,
  );
  write(
    'main.cjs',
    `const { PciDevice, isVfioError, nativeKernel, openDevice } = require('node-vfio');\nconst { createModelKernel } = require('node-vfio/model');\n${MODEL_PROGRAM}`,
  );
  // Which addon file the package's loader (node-gyp-build) takes in this install.
  write(
    'addon-file.cjs',
    `const dir = require('node:path').dirname(require.resolve('node-vfio/package.json'));\nconsole.log(require(require.resolve('node-gyp-build', { paths: [dir] })).resolve(dir));\n`,
  );
  // Loaded with --require: what node-vfio's loader sees on macOS or Windows.
  write('simulate-platform.cjs', `Object.defineProperty(process, 'platform', { value: process.env.SIMULATED_PLATFORM });\n`);
  write('types.ts', TYPES_PROGRAM);
  write('types.mts', TYPES_PROGRAM);
  write('edu-device.ts', eduDriverAgainstPackage());
  write('edu-main.ts', EDU_MAIN);
  for (const resolution of ['node', 'node16', 'bundler'] as const) {
    write(`tsconfig.${resolution}.json`, JSON.stringify(tsconfig(resolution), null, 2));
  }
}

/** Runs a file of the consumer with this Node, returning its stdout. */
export function runConsumer(dir: string, args: readonly string[], env: Record<string, string> = {}): string {
  return run(process.execPath, args, { cwd: dir, env: { ...process.env, ...env } });
}

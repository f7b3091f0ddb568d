/**
 * The prebuilt addons `npm run build:prebuilds` makes for the tarball: each is a stripped N-API
 * module for its machine, node-gyp-build picks this machine's one, and the arm64 one passes the
 * native unit tests under qemu-user (with an arm64 Node from scripts/prebuild/arm64-node.sh).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ELF_MACHINE, readElf } from './elf';

const root = path.resolve(__dirname, '../../..');
const ARCHES = ['x64', 'arm64'] as const;
const prebuild = (arch: string) => path.join(root, 'prebuilds', `linux-${arch}`, 'node-vfio.napi.glibc.node');

/**
 * Native tests whose outcome qemu-user decides, not the addon (each passes natively on x64):
 * qemu-user answers ioctl requests it has no translation for (all of VFIO's and iommufd's) with
 * ENOSYS itself, it cannot start an aarch64 child process without binfmt_misc, and its mmap
 * rejects MAP_HUGETLB with EINVAL.
 */
const DECIDED_BY_QEMU = [
  'native kernel: errors carry errno, syscall, ioctl name and path an iommufd ioctl on /dev/null fails ENOTTY naming the request and the path',
  'native kernel: errors carry errno, syscall, ioctl name and path a VFIO request number on an unknown kind of fd lists every name it has',
  'native kernel: errors carry errno, syscall, ioctl name and path refuses a struct whose size field claims more bytes than the buffer has, before the kernel sees it',
  'native kernel: errors carry errno, syscall, ioctl name and path an integer or null argument is passed through',
  'native addon loading importing the package works without the addon; native calls then throw a VfioError saying why',
  'native kernel: mappings MAP_HUGETLB without free huge pages fails ENOMEM as a VfioError',
  'native ioctl binding: the run walk a step the kernel refuses is its errno, with the request and path named by NativeKernel',
];

/**
 * Runs mocha on `files`, marking `excluded` tests pending; prints one JSON line of counts. A file,
 * not `--input-type=module -e`: workers inherit execArgv, and the tests' eval'd CommonJS workers
 * must not become ES modules.
 */
const runner = (mocha: string) => `
import Mocha from ${JSON.stringify(pathToFileURL(mocha).href)};
const { files, excluded } = JSON.parse(process.env.NODE_VFIO_ARM64_RUN);
const mocha = new Mocha({ reporter: 'dot', timeout: 120000 });
for (const f of files) mocha.addFile(f);
await mocha.loadFilesAsync();
const tests = [];
(function walk(suite) { tests.push(...suite.tests); suite.suites.forEach(walk); })(mocha.suite);
const missing = excluded.filter((title) => !tests.some((t) => t.fullTitle() === title));
for (const t of tests) if (excluded.includes(t.fullTitle())) t.pending = true;
const counts = { arch: process.arch, passed: 0, failed: 0, skipped: 0, failures: [], missing };
const runner = mocha.run(() => {
  console.log('\\n' + JSON.stringify(counts));
  setTimeout(() => process.exit(0), 10000).unref();
});
runner.on('pass', () => counts.passed++);
runner.on('fail', (t, e) => { counts.failed++; counts.failures.push(t.fullTitle() + ': ' + String(e && e.message).split('\\n')[0]); });
runner.on('pending', () => counts.skipped++);
`;

function onPath(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('prebuilt addons', () => {
  for (const arch of ARCHES) {
    it(`linux-${arch}: a stripped shared object for its machine that exports the N-API entry point`, () => {
      assert.ok(fs.existsSync(prebuild(arch)), `${prebuild(arch)} is missing: run npm run build:prebuilds`);
      const elf = readElf(fs.readFileSync(prebuild(arch)));
      assert.equal(elf.machine, ELF_MACHINE[arch]);
      assert.equal(elf.sharedObject, true);
      assert.equal(elf.stripped, true);
      assert.ok(elf.exportedFunctions.includes('napi_register_module_v1'), `exports: ${elf.exportedFunctions.join(', ')}`);
      // -fvisibility=hidden: the module's own code stays private; only N-API's entry points are public.
      assert.deepEqual(
        elf.exportedFunctions.filter((name) => !name.startsWith('napi_') && !name.startsWith('node_api_')),
        [],
      );
    });
  }

  it("node-gyp-build picks this machine's prebuild when there is no local build, and it works", function () {
    if (process.platform !== 'linux' || !(ARCHES as readonly string[]).includes(os.arch())) {
      console.log(`      skipped: no prebuild is shipped for ${process.platform}-${os.arch()}`);
      this.skip();
    }
    const script = `
      const source = require('node-gyp-build').resolve(${JSON.stringify(root)});
      const addon = require(source);
      const fd = addon.eventfd(0, 0);
      addon.eventfdWrite(fd, 41n);
      addon.eventfdWrite(fd, 1n);
      const sum = addon.eventfdRead(fd);
      addon.close(fd);
      console.log(JSON.stringify({ source, pageSize: addon.pageSize(), sum: String(sum) }));`;
    // PREBUILDS_ONLY makes node-gyp-build ignore build/Release, as in an install that compiled nothing.
    const out = JSON.parse(
      execFileSync(process.execPath, ['-e', script], { cwd: root, env: { ...process.env, PREBUILDS_ONLY: '1' }, encoding: 'utf8' }),
    ) as unknown;
    assert.deepEqual(out, { source: prebuild(os.arch()), pageSize: 4096, sum: '42' });
  });

  it('linux-arm64 passes the native unit tests under qemu-user', function () {
    this.timeout(600_000);
    if (os.arch() === 'arm64') {
      console.log('      skipped: on an arm64 host the ordinary native test run covers the arm64 build');
      this.skip();
    }
    const missing = ['qemu-aarch64', 'apt-get', 'dpkg-deb'].filter((c) => !onPath(c));
    if (missing.length) {
      // CI installs qemu-user: there, no emulator is a failure, not a skip.
      if (process.env.CI) assert.fail(`${missing.join(', ')} not found (apt-get install qemu-user)`);
      console.log(`    (skipped: ${missing.join(', ')} not found; apt-get install qemu-user)`);
      this.skip();
    }
    const sysroot = execFileSync('bash', [path.join(root, 'scripts/prebuild/arm64-node.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
    const files = fs
      .readdirSync(path.join(root, 'dist/test/native'))
      .filter((f) => f.endsWith('.test.js'))
      .map((f) => path.join(root, 'dist/test/native', f));
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'node-vfio-arm64-'));
    let out: string;
    try {
      fs.writeFileSync(path.join(scratch, 'run.mjs'), runner(require.resolve('mocha')));
      out = execFileSync('qemu-aarch64', ['-L', sysroot, path.join(sysroot, 'usr/bin/node'), path.join(scratch, 'run.mjs')], {
        cwd: root,
        encoding: 'utf8',
        env: {
          ...process.env,
          NODE_VFIO_ADDON: prebuild('arm64'),
          NODE_VFIO_PROC_MAPS: 'qemu-user',
          NODE_VFIO_ARM64_RUN: JSON.stringify({ files, excluded: DECIDED_BY_QEMU }),
        },
        maxBuffer: 16 << 20,
      });
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
    const counts = JSON.parse(out.trim().split('\n').pop() ?? '{}') as {
      arch: string;
      passed: number;
      failed: number;
      skipped: number;
      failures: string[];
      missing: string[];
    };
    console.log(`    (under qemu-user: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped)`);
    assert.equal(counts.arch, 'arm64');
    assert.deepEqual(counts.missing, [], 'tests listed as decided by qemu no longer exist');
    assert.deepEqual(counts.failures, []);
    assert.ok(counts.passed >= 50, `only ${counts.passed} native tests ran`);
  });
});

/**
 * The package as a user gets it: `npm pack`, then installs of the tarball into fresh projects
 * (offline: its dependencies come from this checkout's node_modules, packed), with and without
 * install scripts; both entry points from ESM, CommonJS and TypeScript under each
 * moduleResolution; the edu example on the model; macOS and Windows simulated at the loader; and
 * publint and Are the Types Wrong on the tarball.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MODEL_RESULT, repositoryRoot as root, runConsumer, runNpm, writeConsumerSources, type ModuleResolution } from './consumer-project';

const PREBUILD_NAME = 'node-vfio.napi.glibc.node';
/** Where an install's node-vfio is, and the addon file node-gyp-build takes there. */
const installed = (project: string) => path.join(project, 'node_modules/node-vfio');

describe('the packed package, installed into a fresh project', function () {
  this.timeout(300_000);
  let scratch: string;
  let tarball: string;
  let packedFiles: string[];
  const dependencyTarballs: string[] = [];

  before(() => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'node-vfio-package-'));
    for (const arch of ['x64', 'arm64']) {
      assert.ok(fs.existsSync(path.join(root, 'prebuilds', `linux-${arch}`, PREBUILD_NAME)), 'no prebuilds: run npm run build:prebuilds');
    }
    // --ignore-scripts: prepack would rebuild what test:package has just built.
    const [pack] = JSON.parse(runNpm(['pack', '--ignore-scripts', '--json', '--pack-destination', scratch], { cwd: root })) as {
      filename: string;
      files: { path: string }[];
    }[];
    assert.ok(pack);
    tarball = path.join(scratch, pack.filename);
    packedFiles = pack.files.map((f) => f.path).sort();
    // The tarball's own dependencies, packed from this checkout so no install needs the registry.
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const name of Object.keys(manifest.dependencies)) {
      const [packed] = JSON.parse(
        runNpm(['pack', '--json', '--pack-destination', scratch, path.join(root, 'node_modules', name)], { cwd: scratch }),
      ) as { filename: string }[];
      assert.ok(packed);
      dependencyTarballs.push(path.join(scratch, packed.filename));
    }
  });

  after(() => {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  /** A new project depending on the tarball, installed with `flags`; returns its directory. */
  function install(name: string, flags: readonly string[], env: Record<string, string> = {}): string {
    const project = path.join(scratch, name);
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: `consumer-${name}`, private: true }));
    runNpm(['install', '--offline', '--no-audit', '--no-fund', ...flags, ...dependencyTarballs, tarball], { cwd: project, env });
    writeConsumerSources(project);
    return project;
  }

  function modelRun(
    project: string,
    file: string,
    env: Record<string, string> = {},
  ): { identification: number; liveness: number; native: Record<string, unknown> } {
    const out = runConsumer(project, env.SIMULATED_PLATFORM ? ['--require', './simulate-platform.cjs', file] : [file], env);
    const result = JSON.parse(out) as { identification: number; liveness: number; native: Record<string, unknown> };
    assert.deepEqual({ identification: result.identification, liveness: result.liveness }, MODEL_RESULT);
    return result;
  }

  it('the tarball holds the compiled library, the native sources, both prebuilds, and no tests or local build', () => {
    for (const expected of [
      'package.json',
      'binding.gyp',
      'native/addon.cc',
      'dist/lib/index.js',
      'dist/lib/index.d.ts',
      'dist/lib/model/index.js',
      'dist/lib/model/index.d.ts',
      'dist/lib/trace/index.d.ts',
      'dist/lib/trace/index.js',
      'dist/lib/cli/main.js',
      `prebuilds/linux-x64/${PREBUILD_NAME}`,
      `prebuilds/linux-arm64/${PREBUILD_NAME}`,
    ])
      assert.ok(packedFiles.includes(expected), `${expected} is not in the tarball`);
    const unwanted = packedFiles.filter((f) => /^(build|test|dist\/test|dist\/examples|lib|scripts|node_modules)\//.test(f));
    assert.deepEqual(unwanted, []);
  });

  it('publint finds nothing to report, not even a suggestion', () => {
    const out = runConsumer(root, [path.join(root, 'node_modules/.bin/publint'), 'run', tarball, '--strict', '--level', 'suggestion']);
    assert.doesNotMatch(out, /Errors:|Warnings:|Suggestions:/, out);
    assert.match(out, /All good!/);
  });

  it('Are the Types Wrong finds no problem for any entry point under any resolution', () => {
    const report = JSON.parse(runConsumer(root, [path.join(root, 'node_modules/.bin/attw'), tarball, '--format', 'json'])) as {
      analysis: {
        problems: unknown[];
        entrypoints: Record<string, { resolutions: Record<string, { resolution?: { fileName?: string } }> }>;
      };
    };
    assert.deepEqual(report.analysis.problems, []);
    assert.deepEqual(Object.keys(report.analysis.entrypoints).sort(), ['.', './model', './package.json', './selftest', './trace']);
    for (const entry of ['model', 'trace', 'selftest']) {
      const resolved = report.analysis.entrypoints[`./${entry}`];
      assert.ok(resolved);
      for (const kind of ['node10', 'node16-cjs', 'node16-esm', 'bundler']) {
        assert.match(
          String(resolved.resolutions[kind]?.resolution?.fileName),
          new RegExp(`dist/lib/${entry}/index\\.d\\.ts$`),
          `node-vfio/${entry} under ${kind}`,
        );
      }
    }
  });

  describe('installed with --ignore-scripts', () => {
    let project: string;
    before(() => {
      project = install('no-scripts', ['--ignore-scripts']);
    });

    it('nothing is compiled, and the loader takes the prebuild for this machine', function () {
      if (process.platform !== 'linux' || !['x64', 'arm64'].includes(os.arch())) {
        console.log(`      skipped: no prebuild is shipped for ${process.platform}-${os.arch()}`);
        this.skip();
      }
      assert.equal(fs.existsSync(path.join(installed(project), 'build')), false);
      assert.equal(
        runConsumer(project, ['addon-file.cjs']).trim(),
        path.join(fs.realpathSync(installed(project)), 'prebuilds', `linux-${os.arch()}`, PREBUILD_NAME),
      );
    });

    for (const file of ['main.mjs', 'main.cjs']) {
      it(`${file === 'main.mjs' ? 'ESM import' : 'CommonJS require'} of both entry points: the model drives edu, the native kernel works`, () => {
        const { native } = modelRun(project, file);
        if (process.platform === 'linux') assert.deepEqual(native, { eventfd: '42' });
        else assert.equal(native.code, 'EOPNOTSUPP');
      });
    }

    for (const resolution of ['node', 'node16', 'bundler'] as const satisfies readonly ModuleResolution[]) {
      it(`TypeScript with moduleResolution ${resolution} type-checks a consumer of both entry points and the edu driver`, () => {
        runConsumer(project, [require.resolve('typescript/bin/tsc'), '-p', `tsconfig.${resolution}.json`]);
      });
    }

    it('the edu example, compiled against the package, runs on the model: factorial interrupt and DMA round trip', () => {
      runConsumer(project, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.node.json']);
      assert.deepEqual(JSON.parse(runConsumer(project, ['out/edu-main.js'])), {
        identification: MODEL_RESULT.identification,
        factorial: 3628800,
        intact: true,
      });
    });

    for (const platform of ['darwin', 'win32']) {
      it(`on ${platform} (simulated at the loader) both entry points load and the model works; native calls say why not`, () => {
        for (const file of ['main.mjs', 'main.cjs']) {
          const { native } = modelRun(project, file, { SIMULATED_PLATFORM: platform });
          assert.equal(native.code, 'EOPNOTSUPP');
          assert.equal(native.syscall, 'dlopen');
          assert.equal(native.isVfioError, true);
          assert.match(String(native.hint), new RegExp(`only on Linux \\(this is ${platform}\\)`));
        }
      });
    }
  });

  describe('installed with its install script', () => {
    it('finds the prebuild for this machine and compiles nothing', function () {
      if (process.platform !== 'linux' || !['x64', 'arm64'].includes(os.arch())) {
        console.log(`      skipped: no prebuild is shipped for ${process.platform}-${os.arch()}`);
        this.skip();
      }
      const project = install('scripts', []);
      assert.equal(fs.existsSync(path.join(installed(project), 'build')), false);
      assert.match(
        runConsumer(project, ['addon-file.cjs']).trim(),
        new RegExp(`prebuilds/linux-${os.arch()}/${PREBUILD_NAME.replace(/\./g, '\\.')}$`),
      );
      assert.deepEqual(modelRun(project, 'main.cjs').native, { eventfd: '42' });
    });

    it('where no prebuild fits (musl, simulated), compiles the addon, and the package loads that build', function () {
      if (process.platform !== 'linux') {
        console.log('      skipped: the compile fallback builds a Linux addon');
        this.skip();
      }
      // node-gyp-build reads LIBC to choose a prebuild: musl matches none of the glibc ones.
      const musl = { LIBC: 'musl' };
      const project = install('compile-fallback', [], musl);
      const built = path.join(fs.realpathSync(installed(project)), 'build/Release/vfio.node');
      assert.ok(fs.existsSync(built), 'the install script did not compile the addon');
      assert.equal(runConsumer(project, ['addon-file.cjs'], musl).trim(), built);
      assert.deepEqual(modelRun(project, 'main.cjs', musl).native, { eventfd: '42' });
    });
  });

  it('npm accepts the package on macOS and Windows (its os field) without building anything', () => {
    for (const platform of ['darwin', 'win32']) {
      const project = install(`os-${platform}`, ['--ignore-scripts', `--os=${platform}`]);
      assert.ok(fs.existsSync(path.join(installed(project), 'dist/lib/index.js')));
    }
  });
});

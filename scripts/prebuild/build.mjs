#!/usr/bin/env node
// Builds the prebuilt addons the published tarball carries, one per Linux architecture, as
// prebuilds/linux-<arch>/node-vfio.napi.glibc.node: the name node-gyp-build looks for (any Node
// with N-API 9, glibc), stripped. An architecture other than this machine's is cross-compiled
// with Debian's GNU cross compiler for it (g++-aarch64-linux-gnu for arm64).
//
//   node scripts/prebuild/build.mjs [x64] [arm64]      (default: both)
//
// Each build runs in a scratch copy of the sources, so build/Release (the local compile the tests
// load) is never replaced by a foreign binary. A prebuild newer than native/ and binding.gyp is kept.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The GNU target triplet of each supported architecture: the prefix of its cross tools. */
const TRIPLETS = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };
/** What prebuild of `arch` the tarball carries (relative to the package root). */
function prebuildPath(arch) {
  return path.join('prebuilds', `linux-${arch}`, 'node-vfio.napi.glibc.node');
}

function newestMtime(p) {
  const stat = fs.statSync(p);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...fs.readdirSync(p).map((name) => newestMtime(path.join(p, name))));
}

/** npm's own node-gyp (npm names it to its scripts; next to npm otherwise). */
function nodeGypScript() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  const found = candidates.find((p) => p && fs.existsSync(p));
  if (!found) throw new Error('node-gyp not found: run this through npm (`npm run prebuild`)');
  return found;
}

/** Headers of the running Node: npm's nodedir setting, else the install prefix (node-gyp cannot download them here). */
function nodeDir() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const configured = process.env.npm_config_nodedir;
  if (configured) return configured;
  if (fs.existsSync(path.join(prefix, 'include/node/node_api.h'))) return prefix;
  throw new Error(`no Node headers under ${prefix}/include/node: set npm's nodedir`);
}

function toolFor(arch, tool) {
  if (arch === os.arch()) return tool;
  const cross = `${TRIPLETS[arch]}-${tool}`;
  try {
    execFileSync('sh', ['-c', `command -v ${cross}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${cross} not found: cross-compiling for ${arch} needs Debian's g++-${TRIPLETS[arch]}`);
  }
  return cross;
}

function build(arch) {
  const output = path.join(root, prebuildPath(arch));
  const sources = Math.max(newestMtime(path.join(root, 'native')), newestMtime(path.join(root, 'binding.gyp')));
  if (fs.existsSync(output) && fs.statSync(output).mtimeMs >= sources) {
    console.log(`prebuild: ${prebuildPath(arch)} is up to date`);
    return;
  }
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `node-vfio-prebuild-${arch}-`));
  try {
    fs.cpSync(path.join(root, 'native'), path.join(scratch, 'native'), { recursive: true });
    fs.copyFileSync(path.join(root, 'binding.gyp'), path.join(scratch, 'binding.gyp'));
    // binding.gyp finds node-addon-api's headers through require().
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(scratch, 'node_modules'));
    const env = { ...process.env, CC: toolFor(arch, 'gcc'), CXX: toolFor(arch, 'g++') };
    console.log(`prebuild: building linux-${arch} with ${env.CXX}`);
    execFileSync(process.execPath, [nodeGypScript(), 'rebuild', `--arch=${arch}`, `--nodedir=${nodeDir()}`], {
      cwd: scratch,
      env,
      stdio: 'inherit',
    });
    fs.mkdirSync(path.dirname(output), { recursive: true });
    execFileSync(toolFor(arch, 'strip'), ['--strip-all', '-o', output, path.join(scratch, 'build/Release/vfio.node')], {
      stdio: 'inherit',
    });
    console.log(`prebuild: wrote ${prebuildPath(arch)} (${fs.statSync(output).size} bytes)`);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.platform !== 'linux') throw new Error('prebuilds are built on Linux (the addon is Linux-only)');
const requested = process.argv.slice(2);
const unknown = requested.filter((a) => !Object.hasOwn(TRIPLETS, a));
if (unknown.length) throw new Error(`unknown architecture ${unknown.join(', ')} (known: ${Object.keys(TRIPLETS).join(', ')})`);
for (const arch of requested.length ? requested : Object.keys(TRIPLETS)) build(arch);

#!/usr/bin/env node
// Rebuilds the native addon when its sources are newer than the built binary, so a `git pull` that
// changes native/ never leaves tests running new JavaScript against an old addon. Does nothing on
// non-Linux systems (the addon is Linux-only) or when a prebuild is used instead.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (process.platform !== 'linux') process.exit(0);

function newest(dir) {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return t;
}

const binary = path.join(root, 'build/Release/vfio.node');
const sources = Math.max(newest(path.join(root, 'native')), fs.statSync(path.join(root, 'binding.gyp')).mtimeMs);
const built = fs.existsSync(binary) ? fs.statSync(binary).mtimeMs : 0;
if (built >= sources) process.exit(0);
console.log(built ? 'native addon sources changed: rebuilding the addon' : 'native addon not built yet: building it');
execFileSync('npm', ['run', 'build:native', '--silent'], { cwd: root, stdio: 'inherit' });

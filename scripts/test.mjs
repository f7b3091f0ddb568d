#!/usr/bin/env node
// Runs the mocha suites on the compiled output and ends with the one line CI reads:
// "N passed, N failed, N skipped". Arguments: spec files/globs (default: every dist/test/**/*.test.js)
// and optionally --grep=PATTERN. NODE_VFIO_TEST_RUNNING=FILE keeps in FILE the case or hook under way.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import Mocha from 'mocha';

const require = createRequire(import.meta.url);
const { globSync } = require('./glob.cjs');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const patterns = args.filter((a) => !a.startsWith('-'));
const grep = args.find((a) => a.startsWith('--grep='));
const files = globSync(root, patterns.length ? patterns : ['dist/test/**/*.test.js']);
if (files.length === 0) {
  console.error('no test files matched: ' + (patterns.join(' ') || 'dist/test/**/*.test.js'));
  process.exit(1);
}
const mocha = new Mocha({ reporter: 'spec', timeout: 30000, grep: grep ? grep.slice('--grep='.length) : undefined });
for (const f of files) mocha.addFile(f);
await mocha.loadFilesAsync();
let passed = 0,
  failed = 0,
  skipped = 0;
const runner = mocha.run((failures) => {
  console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exitCode = failures ? 1 : 0;
  // A test that leaves a handle open (a pending wait, a timer) must not hang CI: name what is
  // still alive and leave.
  setTimeout(() => {
    console.error(`test run finished but the process did not exit; still active: ${process.getActiveResourcesInfo().join(', ')}`);
    process.exit(failures ? 1 : 2);
  }, 10_000).unref();
});
// Where a run that is stopped from outside (the lab's guest timeout) can tell which case or hook it
// was in: a case that blocks the event loop never lets mocha's own timeout report it.
const runningFile = process.env.NODE_VFIO_TEST_RUNNING;
if (runningFile) {
  const note = (kind) => (t) => fs.writeFileSync(runningFile, `${kind}: ${t.fullTitle()} (${path.relative(root, t.file ?? '')})\n`);
  runner.on('test', note('case'));
  runner.on('hook', note('hook'));
}
runner.on('pass', () => passed++);
runner.on('fail', () => failed++);
runner.on('pending', () => skipped++);

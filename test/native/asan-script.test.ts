import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

/**
 * `npm run test:asan` compiles the ASan addon into build/asan/. Its `npm run build` step may run
 * `node-gyp rebuild` (scripts/ensure-addon.mjs does whenever native/ is newer than the build, as in
 * a fresh checkout), and node-gyp deletes all of build/ first: that step must come before the
 * ASan compile, or the run tests without the binary it just made.
 */
describe('npm run test:asan', () => {
  it('builds the JavaScript (which may rebuild build/) before compiling the ASan addon into build/asan', () => {
    const script = fs.readFileSync(path.resolve(__dirname, '../../../scripts/asan/run.sh'), 'utf8').split('\n');
    const build = script.findIndex((line) => /^\s*npm run (--silent )?build\s*$/.test(line));
    const compile = script.findIndex((line) => line.includes('-o "$OUT/vfio.node"'));
    assert.ok(build >= 0 && compile >= 0, 'run.sh has both steps');
    assert.match(script.find((line) => line.startsWith('OUT=')) ?? '', /build\/asan/);
    assert.ok(build < compile, `npm run build (line ${build + 1}) runs after the ASan compile (line ${compile + 1}), which it may delete`);
  });
});

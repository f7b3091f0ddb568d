/**
 * `vfio selftest --tap` as a CI system would run it on a real Linux 7.3 host: the command must pass
 * on the real edu device, and its TAP must parse.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Parser, type FinalResults } from 'tap-parser';
import { requireLab } from './lab-environment';

const run = promisify(execFile);
const cli = path.resolve(__dirname, '../../lib/cli/main.js');

function parseTap(text: string): Promise<FinalResults> {
  return new Promise((resolve) => {
    const p = new Parser((results) => resolve(results));
    p.end(text);
  });
}

describe('lab: vfio selftest --tap on the real kernel', function () {
  this.timeout(600_000);

  it('passes against the real edu device and prints TAP 13 that a TAP parser accepts', async function () {
    const lab = requireLab(this);
    let stdout: string;
    try {
      ({ stdout } = await run(process.execPath, [cli, 'selftest', lab.bdf, '--tap'], { timeout: 540_000, maxBuffer: 64 << 20 }));
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; code?: number };
      fs.writeFileSync(path.join(lab.resultsDir, 'vfio-selftest.tap'), err.stdout ?? '');
      assert.fail(
        `vfio selftest exited ${err.code}: ${(err.stdout ?? '')
          .split('\n')
          .filter((l) => l.startsWith('not ok'))
          .join('\n')}\n${err.stderr ?? ''}`,
      );
    }
    fs.writeFileSync(path.join(lab.resultsDir, 'vfio-selftest.tap'), stdout);
    const results = await parseTap(stdout);
    console.log(`      vfio selftest (${lab.mode}/${lab.kernel}): ${results.pass} passed, ${results.fail} failed, ${results.skip} skipped`);
    assert.equal(results.ok, true);
    assert.equal(results.fail, 0);
    assert.ok(results.pass > 200, `most cases ran (${results.pass})`);
    assert.match(stdout, /# Totals: pass:\d+ fail:0 /);
  });
});

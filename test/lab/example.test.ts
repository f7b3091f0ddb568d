/**
 * The edu example driver on the real Linux 7.3 kernel: the same program a user runs with
 * `npm start`, unchanged, must find the real edu device, drive it through the native path and
 * round-trip DMA by physical address (noiommu) or by IOVA (IOMMU).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { requireLab } from './lab-environment';

const run = promisify(execFile);
const main = path.resolve(__dirname, '../../examples/edu/main.js');

describe('lab: the edu example driver on the real kernel', function () {
  this.timeout(300_000);

  it('drives the real edu device end to end: identification, liveness, factorial by MSI, DMA round trip', async function () {
    const lab = requireLab(this);
    const { stdout, stderr } = await run(process.execPath, [main, `--bdf=${lab.bdf}`], { timeout: 240_000 });
    const out = stdout + stderr;
    console.log(
      out
        .split('\n')
        .map((l) => `      ${l}`)
        .join('\n'),
    );
    assert.match(out, /the real kernel: an edu device is present/);
    assert.match(out, /identification 0x010000ed/);
    assert.match(out, /10! = 3628800/);
    assert.match(out, lab.mode === 'noiommu' ? /physical addresses 0x[0-9a-f]+/ : /IOVA addresses 0x[0-9a-f]+/);
    assert.match(out, /opened through the cdev path/);
    assert.match(out, /data intact/);
    assert.match(out, /all checks passed/);
  });
});

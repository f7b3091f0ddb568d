import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { addonStatus } from '../../lib/sys/addon';

const indexJs = path.resolve(__dirname, '../../lib/index.js');

/** Runs `script` in a fresh node with the given environment and returns what it prints (JSON). */
function runNode(script: string, env: Record<string, string>): unknown {
  const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return JSON.parse(out);
}

describe('native addon loading', () => {
  it('importing the package works without the addon; native calls then throw a VfioError saying why', () => {
    const result = runNode(
      `
      const vfio = require(${JSON.stringify(indexJs)});
      let error;
      try { vfio.nativeKernel(); } catch (e) { error = { name: e.name, code: e.code, syscall: e.syscall, hint: e.hint, isVfio: vfio.isVfioError(e) }; }
      console.log(JSON.stringify({ exports: Object.keys(vfio).length > 0, error }));
    `,
      { NODE_VFIO_ADDON: '/nonexistent/vfio.node' },
    ) as { exports: boolean; error?: Record<string, unknown> };
    assert.equal(result.exports, true);
    assert.ok(result.error, 'nativeKernel() should have thrown');
    assert.equal(result.error.name, 'VfioError');
    assert.equal(result.error.isVfio, true);
    assert.equal(result.error.code, 'EOPNOTSUPP');
    assert.equal(result.error.syscall, 'dlopen');
    const why = process.platform === 'linux' ? /nonexistent\/vfio\.node/ : /only on Linux/;
    assert.match(String(result.error.hint), why);
  });

  it('on Linux the addon of this checkout loads', function () {
    if (process.platform !== 'linux') {
      console.log(`    (skipped: the addon is built only on Linux, this is ${process.platform})`);
      this.skip();
    }
    const status = addonStatus();
    assert.ok(status.available, status.available ? '' : status.reason);
    assert.equal(typeof status.addon.read32, 'function');
  });
});

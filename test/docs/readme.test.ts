/**
 * The README's programs are the files in examples/readme, word for word, and they run: the
 * TypeScript one as compiled with the project, the JavaScript one as it is, both importing the
 * package by its name (Node resolves a package's own name through its "exports").
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const root = path.join(__dirname, '../../..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

async function run(file: string): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return stdout;
}

describe('README', () => {
  for (const [fence, source] of [
    ['ts', 'examples/readme/minimal.ts'],
    ['js', 'examples/readme/minimal.js'],
  ] as const) {
    it(`shows ${source} as it is, in a ${fence} block`, () => {
      const text = fs.readFileSync(path.join(root, source), 'utf8');
      assert.ok(readme.includes('```' + fence + '\n' + text + '```\n'), `README.md has a copy of ${source} that differs from it`);
    });
  }

  it('the TypeScript program runs on the model: identification, a factorial by MSI, a 4095-byte DMA round trip', async () => {
    const out = await run(path.join(root, 'dist/examples/readme/minimal.js'));
    assert.match(out, /^identification 0x10000ed$/m);
    assert.match(out, /^10! = 3628800$/m);
    assert.match(out, /^DMA round trip of 4095 bytes: the bytes came back$/m);
  });

  it('the plain JavaScript program runs on the model', async () => {
    const out = await run(path.join(root, 'examples/readme/minimal.js'));
    assert.match(out, /^10! = 3628800$/m);
    assert.match(out, /^DMA of 4095 bytes into the device: done$/m);
  });

  it('says what edu needs on real QEMU and why transfers are 4095 bytes', () => {
    assert.match(readme, /dma_mask=0xffffffffffffffff/);
    assert.match(readme, /4095 bytes, not the 4096/);
  });
});

/**
 * Device models see the host only through the public SDK: every model in lib/devices imports
 * nothing but lib/model/device (the SDK's entry) and its siblings, and the out-of-tree example
 * imports nothing but the installed package's `node-vfio` and `node-vfio/model` (plus node's own
 * modules and its own files). An import of anything internal fails here, naming file and import.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '../../..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sources(rel));
    else if (entry.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

/** Module specifiers of every import, export … from, dynamic import and require in a file. */
function importsOf(text: string): string[] {
  const specs: string[] = [];
  const pattern =
    /(?:^|[\s;])(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(pattern)) specs.push((m[1] ?? m[2] ?? m[3])!);
  return specs;
}

function offending(files: string[], allowed: (spec: string, file: string) => boolean): string[] {
  const bad: string[] = [];
  for (const file of files) {
    for (const spec of importsOf(fs.readFileSync(path.join(root, file), 'utf8'))) {
      if (!allowed(spec, file)) bad.push(`${file}: '${spec}'`);
    }
  }
  return bad;
}

describe('device models use only the public device-model SDK', () => {
  it('finds imports in every form the rule must see', () => {
    assert.deepEqual(
      importsOf(
        `import a from 'x';\nimport { b,\n c } from "y";\nexport * from 'z';\nimport 'w';\nconst q = require('v'); await import('u');`,
      ),
      ['x', 'y', 'z', 'w', 'v', 'u'],
    );
  });

  it('lib/devices imports only lib/model/device and its own files', () => {
    const files = sources('lib/devices');
    assert.ok(
      files.some((f) => f.endsWith('edu.ts')),
      'edu is among the device models',
    );
    const bad = offending(files, (spec, file) => {
      const target = path.normalize(path.join(path.dirname(file), spec));
      return (
        spec.startsWith('.') &&
        (target === path.normalize('lib/model/device') || target.startsWith(path.normalize('lib/devices') + path.sep))
      );
    });
    assert.deepEqual(bad, []);
  });

  it('the out-of-tree example imports only node-vfio, node-vfio/model, node-vfio/selftest (its selftest driver), node built-ins and itself', () => {
    const files = sources('examples/dma-copy');
    assert.ok(files.length >= 3);
    const bad = offending(
      files,
      (spec) =>
        spec === 'node-vfio' ||
        spec === 'node-vfio/model' ||
        spec === 'node-vfio/selftest' ||
        spec.startsWith('node:') ||
        (spec.startsWith('./') && !spec.includes('..')),
    );
    assert.deepEqual(bad, []);
  });
});

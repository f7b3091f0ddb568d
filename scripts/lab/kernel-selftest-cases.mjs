#!/usr/bin/env node
// Prints the case-instances of the kernel's VFIO selftests (fixture.variant.test, as the kselftest
// harness names them) from a kernel source tree, for test/conformance/kernel-vfio-selftest-cases.txt:
//   node scripts/lab/kernel-selftest-cases.mjs ~/.cache/node-vfio-lab/src/linux-source-7.3 > list
// The list is checked in so npm test never reads the lab cache.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2];
if (!root) {
  console.error('usage: kernel-selftest-cases.mjs <linux source tree>');
  process.exit(2);
}
const dir = join(root, 'tools/testing/selftests/vfio');
const iommuHeader = readFileSync(join(dir, 'lib/include/libvfio/iommu.h'), 'utf8');
// The modes FIXTURE_VARIANT_ADD_ALL_IOMMU_MODES expands to, in its order.
const allModes = [...iommuHeader.matchAll(/FIXTURE_VARIANT_ADD_IOMMU_MODE\((\w+), ##__VA_ARGS__\)/g)].map((m) => m[1]);

const lines = [];
for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('_test.c'))
  .sort()) {
  const source = readFileSync(join(dir, file), 'utf8');
  const variants = new Map();
  const add = (fixture, name) => (variants.get(fixture) ?? variants.set(fixture, []).get(fixture)).push(name);
  // A file defines FIXTURE_VARIANT_ADD_IOMMU_MODE for a fixture, then expands ALL_IOMMU_MODES with it.
  const defines = [...source.matchAll(/#define FIXTURE_VARIANT_ADD_IOMMU_MODE\((\w+)(, \w+)?[^)]*\)[^\n]*\nFIXTURE_VARIANT_ADD\((\w+),/g)];
  for (const m of source.matchAll(/^FIXTURE_VARIANT_ADD_ALL_IOMMU_MODES\(([^,)]*)/gm)) {
    const define = defines.filter((d) => d.index < m.index).at(-1);
    const suffix = m[1].trim();
    for (const mode of allModes) add(define[3], suffix && define[2] ? `${mode}_${suffix}` : mode);
  }
  // Plain variants (the macro's own FIXTURE_VARIANT_ADD line names its parameter, `_iommu_mode`).
  for (const m of source.matchAll(/^FIXTURE_VARIANT_ADD\((\w+), ([a-z]\w*)\)/gm)) add(m[1], m[2]);
  for (const m of source.matchAll(/^TEST_F(?:_TIMEOUT)?\((\w+), (\w+)/gm)) {
    for (const variant of variants.get(m[1]) ?? [null])
      lines.push(`${file.replace(/\.c$/, '')} ${m[1]}.${variant ? `${variant}.` : ''}${m[2]}`);
  }
}
process.stdout.write(`${lines.join('\n')}\n`);

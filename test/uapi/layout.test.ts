/**
 * Compares every struct layout, ioctl request number and named constant in lib/uapi with the real
 * Linux 7.3 uapi headers (Debian's linux-libc-dev 7.3, fetched into the lab cache by
 * scripts/lab/fetch.sh --headers-only). A C program generated from the TypeScript descriptions
 * prints what the compiler says; any difference fails.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StructType, type FieldType } from '../../lib/uapi/codec';
import { allIoctls } from '../../lib/uapi/requests';
import * as iommufd from '../../lib/uapi/iommufd';
import * as vfio from '../../lib/uapi/vfio';
import * as pci from '../../lib/uapi/pci';

const projectDir = path.resolve(__dirname, '../../..');
const cacheDir =
  process.env.NODE_VFIO_LAB_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'node-vfio-lab');
const includeDir = process.env.NODE_VFIO_UAPI_HEADERS ?? path.join(cacheDir, 'headers/usr/include');

const modules: Record<string, Record<string, unknown>> = { iommufd, vfio, pci };
const headerOf: Record<string, string> = { iommufd: 'linux/iommufd.h', vfio: 'linux/vfio.h', pci: 'linux/pci_regs.h' };

/** Structs described flat in lib/uapi whose header nests `struct vfio_info_cap_header header`. */
function cFieldPath(s: StructType<Record<string, FieldType>>, field: string): string {
  const flattenedHeader =
    s.name !== 'vfio_info_cap_header' && s.fields[0]?.name === 'id' && s.fields[1]?.name === 'version' && s.fields[2]?.name === 'next';
  return flattenedHeader && ['id', 'version', 'next'].includes(field) ? `header.${field}` : field;
}

function headersAvailable(): boolean {
  if (fs.existsSync(path.join(includeDir, 'linux/iommufd.h'))) return true;
  if (process.env.NODE_VFIO_UAPI_HEADERS) return false;
  try {
    execFileSync('bash', [path.join(projectDir, 'scripts/lab/fetch.sh'), '--headers-only'], {
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: 300_000,
    });
  } catch {
    return false;
  }
  return fs.existsSync(path.join(includeDir, 'linux/iommufd.h'));
}

interface Probe {
  key: string;
  expected: bigint;
  expr: string;
}

describe('uapi layouts against the Linux 7.3 headers', function () {
  this.timeout(600_000);
  const probes: Probe[] = [];
  let actual = new Map<string, bigint>();

  before(function () {
    if (!headersAvailable()) {
      console.log(`      skipped: Linux 7.3 uapi headers not available in ${includeDir} and could not be fetched`);
      this.skip();
    }
    const headerText = Object.values(headerOf)
      .map((h) => fs.readFileSync(path.join(includeDir, h), 'utf8'))
      .join('\n');
    const headerWords = new Set(headerText.match(/\b[A-Z_][A-Z0-9_a-z]*\b/g) ?? []);
    for (const [modName, mod] of Object.entries(modules)) {
      for (const [exportName, value] of Object.entries(mod)) {
        if (value instanceof StructType) {
          const s = value as StructType<Record<string, FieldType>>;
          probes.push({ key: `sizeof(${s.name})`, expected: BigInt(s.size), expr: `sizeof(struct ${s.name})` });
          for (const f of s.fields) {
            const cPath = cFieldPath(s, f.name);
            probes.push({ key: `offsetof(${s.name}.${f.name})`, expected: BigInt(f.offset), expr: `offsetof(struct ${s.name}, ${cPath})` });
            const elementSize = f.type.kind === 'array' ? f.type.element.size : f.type.size;
            const member = `((struct ${s.name} *)0)->${cPath}`;
            const sizeExpr = f.type.kind === 'array' ? `sizeof(${member}[0])` : `sizeof(${member})`;
            probes.push({ key: `sizeof(${s.name}.${f.name})`, expected: BigInt(elementSize), expr: sizeExpr });
          }
        } else if (typeof value === 'number' && /^[A-Z][A-Z0-9_a-z]*$/.test(exportName) && headerWords.has(exportName)) {
          probes.push({ key: `${modName}.${exportName}`, expected: BigInt(value), expr: `(long long)(${exportName})` });
        }
      }
    }
    for (const req of allIoctls()) {
      probes.push({ key: `ioctl ${req.name}`, expected: BigInt(req.number), expr: `(long long)(${req.name})` });
    }
    const program = [
      '#include <stddef.h>',
      '#include <stdio.h>',
      '#include <linux/types.h>',
      ...Object.values(headerOf).map((h) => `#include <${h}>`),
      'int main(void) {',
      ...probes.map((p) => `  printf("%s=%lld\\n", ${JSON.stringify(p.key)}, (long long)(${p.expr}));`),
      '  return 0;',
      '}',
    ].join('\n');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-vfio-layout-'));
    try {
      fs.writeFileSync(path.join(dir, 'layout.c'), program);
      execFileSync(
        'cc',
        [
          '-std=gnu11',
          '-Wall',
          '-Werror',
          '-I',
          includeDir,
          '-I',
          path.join(includeDir, 'x86_64-linux-gnu'),
          '-o',
          path.join(dir, 'layout'),
          path.join(dir, 'layout.c'),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const out = execFileSync(path.join(dir, 'layout'), { encoding: 'utf8' });
      actual = new Map(
        out
          .trim()
          .split('\n')
          .map((line) => {
            const eq = line.lastIndexOf('=');
            return [line.slice(0, eq), BigInt(line.slice(eq + 1))];
          }),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("has every struct size, field offset and field width equal to the C compiler's", () => {
    const wrong = probes
      .filter((p) => p.key.startsWith('sizeof') || p.key.startsWith('offsetof'))
      .filter((p) => actual.get(p.key) !== p.expected)
      .map((p) => `${p.key}: lib/uapi says ${p.expected}, the header says ${actual.get(p.key)}`);
    assert.deepEqual(wrong, []);
    assert.ok(probes.filter((p) => p.key.startsWith('offsetof')).length > 150, 'the check covers the structs');
  });

  it("has every ioctl request number equal to the header's", () => {
    const wrong = probes
      .filter((p) => p.key.startsWith('ioctl '))
      .filter((p) => actual.get(p.key) !== p.expected)
      .map((p) => `${p.key}: 0x${p.expected.toString(16)} vs 0x${actual.get(p.key)?.toString(16)}`);
    assert.deepEqual(wrong, []);
    assert.ok(allIoctls().length >= 40);
  });

  it("has every named flag and constant equal to the header's", () => {
    const constants = probes.filter((p) => /^(iommufd|vfio|pci)\./.test(p.key));
    // Header values are C ints: a bit-31 flag is negative there, positive here.
    const wrong = constants
      .filter((p) => BigInt.asUintN(32, actual.get(p.key) ?? -1n) !== BigInt.asUintN(32, p.expected))
      .map((p) => `${p.key}: ${p.expected} vs ${actual.get(p.key)}`);
    assert.deepEqual(wrong, []);
    assert.ok(constants.length > 100, `checked ${constants.length} constants`);
  });
});

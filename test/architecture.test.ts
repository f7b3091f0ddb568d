/**
 * The layering of lib/ and tools/, checked from the source: every import (`import`, `import type`,
 * `export … from`, `import()`, `require()`, `import x = require()`) is read with the TypeScript
 * parser and must follow the rules below, and the module graph must have no cycle, type-only
 * imports included (a type cycle is still two files that cannot be understood one without the
 * other). docs/architecture.md explains the layers; this test is what keeps them true.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '..', '..');

type Layer =
  'uapi' | 'sys' | 'ioctl' | 'support' | 'api' | 'model' | 'devices' | 'selftest' | 'trace' | 'cli' | 'index' | 'tools' | 'outside';

/** Which layer a repository-relative path belongs to. */
function layerOf(file: string): Layer {
  if (file === 'lib/index.ts') return 'index';
  const [top, folder] = file.split('/');
  if (top === 'tools') return 'tools';
  if (top !== 'lib') return 'outside';
  switch (folder) {
    case 'uapi':
      return 'uapi';
    case 'sys':
      return 'sys';
    case 'ioctl':
      return 'ioctl';
    case 'support':
      return 'support';
    case 'iommu':
    case 'vfio':
    case 'dma':
    case 'pci':
    case 'broker':
      return 'api';
    case 'model':
      return 'model';
    case 'devices':
      return 'devices';
    case 'selftest':
      return 'selftest';
    case 'trace':
      return 'trace';
    case 'cli':
      return 'cli';
    default:
      return 'outside';
  }
}

/** What each layer may import (besides itself), and why. */
const ALLOWED: Record<Exclude<Layer, 'outside'>, { readonly may: readonly Layer[]; readonly why: string }> = {
  uapi: {
    may: [],
    why: 'struct layouts and request numbers are the ground truth both kernels and every wrapper share; they depend on nothing',
  },
  sys: { may: ['uapi'], why: 'the Kernel interface, its errors and the native kernel are the one syscall boundary; above the uapi only' },
  ioctl: { may: ['sys', 'uapi'], why: 'one wrapper per ioctl: encode, Kernel.ioctl, decode; no policy, no objects' },
  support: {
    may: ['sys', 'uapi'],
    why: 'ownership and error hints are used by every typed-API folder, so they must not depend on any of them',
  },
  api: {
    may: ['ioctl', 'sys', 'uapi', 'support'],
    why: 'the typed API builds on the wrappers; it never reaches into the model, which it must be able to run against unchanged',
  },
  model: {
    may: ['uapi', 'sys', 'devices'],
    why: 'the model is a kernel: it decodes the same bytes the real kernel does and must not borrow the API or wrappers whose behaviour it is there to check; its machines name built-in device models from lib/devices',
  },
  devices: {
    may: ['model'],
    why: "device models (edu, NVMe, users' own) are written on the public device-model SDK only; test/devices/sdk-boundary.test.ts pins them to lib/model/device",
  },
  selftest: {
    may: ['api', 'ioctl', 'sys', 'uapi', 'support'],
    why: 'conformance cases run against any Kernel (the model or a real 7.3 host), so they cannot know the model',
  },
  trace: {
    may: ['sys', 'uapi'],
    why: 'the tracer wraps any Kernel (native or model) at the syscall boundary and decodes with the uapi layouts; it must not know the typed API or the model, or a trace would record their view instead of the calls',
  },
  cli: {
    may: ['uapi', 'sys', 'ioctl', 'support', 'api', 'model', 'devices', 'selftest', 'trace', 'index'],
    why: 'the command is the top of lib: it may choose the model or the native kernel and run the selftest',
  },
  index: {
    may: ['api', 'sys', 'support', 'ioctl'],
    why: 'the public surface re-exports the typed API and the Kernel interface (support for Resource, ioctl for result types); never the model, which has its own entry point',
  },
  tools: {
    may: ['uapi', 'sys', 'ioctl', 'support', 'api', 'model', 'devices', 'selftest', 'trace', 'cli', 'index'],
    why: 'tools (fuzzing) drive the library from outside; lib must never depend on them',
  },
};

/** Files a layer may not import even though it may import their layer, and why. */
const FORBIDDEN_FILES: readonly { readonly from: Layer; readonly files: readonly string[]; readonly why: string }[] = [
  {
    from: 'model',
    files: ['lib/sys/native-kernel.ts', 'lib/sys/addon.ts', 'lib/sys/default-kernel.ts'],
    why: 'the model implements the Kernel interface; it must never load or fall back to the native addon',
  },
  {
    from: 'api',
    files: ['lib/sys/native-kernel.ts', 'lib/sys/addon.ts', 'lib/sys/default-kernel.ts'],
    why: 'the typed API uses the kernel its objects were opened on; only a static opener given no kernel defaults to the real one, through support/kernel-options',
  },
];

/** Single edges allowed against their layers' rules, and why. */
const ALLOWED_EDGES: readonly { readonly from: string; readonly to: string; readonly why: string }[] = [
  {
    from: 'lib/sys/kernel-wrapper.ts',
    to: 'lib/trace/environment.ts',
    why: 'NODE_VFIO_TRACE must trace a program without changing it, so the place every kernel is made loads the tracer (lazily, with require, only when the variable is set)',
  },
];

interface Edge {
  readonly from: string;
  readonly to: string;
  readonly line: number;
  readonly typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...sourceFiles(rel));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Every module specifier `file` names, with whether the reference is erased at run time. */
function specifiers(file: string): { spec: string; line: number; typeOnly: boolean }[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: { spec: string; line: number; typeOnly: boolean }[] = [];
  const add = (node: ts.Node, lit: ts.Expression | undefined, typeOnly: boolean) => {
    if (lit && ts.isStringLiteralLike(lit))
      found.push({ spec: lit.text, line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const allTypes =
        !!clause &&
        (clause.isTypeOnly ||
          (!clause.name &&
            !!clause.namedBindings &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node, node.moduleSpecifier, allTypes);
    } else if (ts.isExportDeclaration(node)) {
      add(node, node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, node.moduleReference.expression, node.isTypeOnly);
    } else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require'))
        add(node, node.arguments[0], false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, node.argument.literal, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** Resolves a relative specifier to a repository-relative .ts file; undefined for packages. */
function resolve(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  for (const candidate of [`${base}.ts`, `${base}/index.ts`, base]) {
    if (candidate.endsWith('.ts') && fs.existsSync(path.join(ROOT, candidate))) return candidate;
  }
  throw new Error(`${from}: cannot resolve '${spec}'`);
}

function importGraph(): Edge[] {
  const edges: Edge[] = [];
  for (const file of [...sourceFiles('lib'), ...sourceFiles('tools')]) {
    for (const { spec, line, typeOnly } of specifiers(file)) {
      const to = resolve(file, spec);
      if (to !== undefined) edges.push({ from: file, to, line, typeOnly });
    }
  }
  return edges;
}

/** The edges that break a layering rule, as "from:line → to (why the rule exists)". */
export function forbiddenEdges(edges: readonly Edge[]): string[] {
  const bad: string[] = [];
  for (const e of edges) {
    const from = layerOf(e.from);
    const to = layerOf(e.to);
    if (from === 'outside') continue;
    if (to === 'outside') {
      bad.push(`${e.from}:${e.line} → ${e.to} (lib and tools must not import test/, bench/ or examples/)`);
      continue;
    }
    const banned = FORBIDDEN_FILES.find((f) => f.from === from && f.files.includes(e.to));
    if (banned) bad.push(`${e.from}:${e.line} → ${e.to} (${banned.why})`);
    if (from === to) continue;
    if (ALLOWED_EDGES.some((a) => a.from === e.from && a.to === e.to)) continue;
    const rule = ALLOWED[from];
    if (!rule.may.includes(to)) bad.push(`${e.from}:${e.line} → ${e.to} (${from} → ${to} is forbidden: ${rule.why})`);
  }
  return bad;
}

/** Every elementary cycle found by a depth-first search, each once, as "a → b → … → a". */
export function cycles(edges: readonly Edge[]): string[] {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    const list = next.get(e.from) ?? [];
    if (!list.includes(e.to)) list.push(e.to);
    next.set(e.from, list);
  }
  // Tarjan's strongly connected components: a component of more than one file (or a file that
  // imports itself) is a cycle; one path through it is reported to show where to cut.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[] = [];
  const strongConnect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        strongConnect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (next.get(v) ?? []).includes(v)) found.push(describeCycle(component.sort(), next));
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) strongConnect(v);
  return found;
}

/** One closed path through a strongly connected component, starting at its first file. */
function describeCycle(component: string[], next: Map<string, string[]>): string {
  const members = new Set(component);
  const start = component[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of next.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const pathBack = [v];
        while (pathBack[0] !== start) pathBack.unshift(previous.get(pathBack[0]!)!);
        return `${[...pathBack, start].join(' → ')} (${component.length} files in the cycle)`;
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return component.join(', ');
}

describe('architecture', () => {
  const edges = importGraph();

  it('sees the imports of lib and tools, type-only and dynamic ones included', () => {
    const has = (from: string, to: string) => edges.some((e) => e.from === from && e.to === to);
    assert.ok(edges.length > 300, `only ${edges.length} imports found`);
    assert.ok(has('lib/sys/default-kernel.ts', 'lib/sys/native-kernel.ts'), 'require() is read');
    assert.ok(
      edges.some((e) => e.typeOnly),
      'import type is read',
    );
    assert.ok(has('lib/index.ts', 'lib/vfio/device.ts'), 'export … from is read');
  });

  it('finds a forbidden edge and a cycle when there is one', () => {
    const planted: Edge[] = [
      { from: 'lib/model/x.ts', to: 'lib/iommu/ioas.ts', line: 1, typeOnly: true },
      { from: 'lib/ioctl/a.ts', to: 'lib/support/resource.ts', line: 1, typeOnly: false },
      { from: 'lib/pci/a.ts', to: 'test/api/support/edu.ts', line: 1, typeOnly: false },
      { from: 'lib/iommu/a.ts', to: 'lib/iommu/b.ts', line: 1, typeOnly: true },
      { from: 'lib/iommu/b.ts', to: 'lib/iommu/a.ts', line: 1, typeOnly: true },
      { from: 'lib/model/y.ts', to: 'lib/sys/native-kernel.ts', line: 1, typeOnly: false },
      { from: 'lib/model/y.ts', to: 'lib/sys/kernel.ts', line: 1, typeOnly: true },
    ];
    assert.equal(forbiddenEdges(planted).length, 4);
    assert.deepEqual(cycles(planted), ['lib/iommu/a.ts → lib/iommu/b.ts → lib/iommu/a.ts (2 files in the cycle)']);
  });

  it('every import follows the layering rules', () => {
    assert.deepEqual(forbiddenEdges(edges), []);
  });

  it('the import graph of lib and tools has no cycle, type-only imports included', () => {
    assert.deepEqual(cycles(edges), []);
  });
});

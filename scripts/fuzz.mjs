#!/usr/bin/env node
// Longer fuzz runs in one command.
//
//   node scripts/fuzz.mjs [--seeds N] [--first S] [--length L] [--mode noiommu|iommu] [--lab] [--record]
//
// Without --lab: N seeds (default 500) per lab mode on the model, every trace checked against the
// invariants and every run checked for leaks; the recorded real-kernel traces in
// test/reliability/lab-traces are replayed too.
// With --lab: boots the QEMU lab once per mode (scripts/lab/run.sh) and runs the N seeds on the real
// Linux 7.3 kernel and on the model inside the guest (test/lab/fuzz.test.ts); any difference is
// shrunk there and printed. --record then copies the real kernel's traces into
// test/reliability/lab-traces, the corpus the model suite replays on every run.
// Builds the project first (npm run build). Exit status 1 when anything disagrees.
import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
}
const flag = (name) => process.argv.includes(`--${name}`);
const count = Number(option('seeds', '500'));
const first = Number(option('first', '1'));
const length = option('length', undefined);
const modes = option('mode', undefined) ? [option('mode')] : ['noiommu', 'iommu'];
for (const [name, v] of [
  ['seeds', count],
  ['first', first],
]) {
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a non-negative integer`);
}

if (!flag('no-build')) execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });

let failed = false;
if (flag('lab')) {
  for (const mode of modes) {
    const results = path.join(root, '.lab-results', `fuzz-${new Date().toISOString().replace(/[:.]/g, '-')}-${mode}`);
    const env = [
      `NODE_VFIO_FUZZ_SEEDS=${count}`,
      `NODE_VFIO_FUZZ_FIRST_SEED=${first}`,
      ...(length ? [`NODE_VFIO_FUZZ_LENGTH=${length}`] : []),
    ];
    const args = [
      path.join(root, 'scripts/lab/run.sh'),
      mode,
      '--timeout',
      String(600 + count * 5),
      '--results',
      results,
      ...env.flatMap((e) => ['--env', e]),
      '--',
      'node',
      'scripts/test.mjs',
      'dist/test/lab/fuzz.test.js',
    ];
    console.log(`fuzz: ${count} seeds from ${first} in the lab, ${mode} mode`);
    const run = spawnSync('bash', args, { cwd: root, stdio: 'inherit' });
    const summaryFile = path.join(results, 'fuzz', `summary-${mode}-group.json`);
    if (!fs.existsSync(summaryFile)) {
      console.log(`fuzz: the lab run wrote no summary (exit ${run.status}); see ${results}/console.log`);
      failed = true;
      continue;
    }
    const summary = JSON.parse(fs.readFileSync(summaryFile, 'utf8'));
    console.log(
      `fuzz: Linux ${summary.release} ${mode}: ${summary.seeds} seeds in ${summary.seconds.toFixed(1)} s, ` +
        `${summary.divergences.length} divergences, ${summary.violations.length} invariant violations`,
    );
    const report = fs.readFileSync(path.join(results, 'fuzz', `report-${mode}-group.txt`), 'utf8');
    if (report) console.log(report);
    if (run.status !== 0) failed = true;
    if (flag('record')) {
      const target = path.join(root, 'test/reliability/lab-traces', `lab-traces-${mode}-group.json`);
      fs.copyFileSync(path.join(results, 'fuzz', `lab-traces-${mode}-group.json`), target);
      console.log(`fuzz: recorded ${path.relative(root, target)}`);
    }
  }
} else {
  const { runCampaign, formatCampaign } = require(path.join(root, 'dist/tools/fuzz/campaign.js'));
  const { runProgram } = require(path.join(root, 'dist/tools/fuzz/program-runner.js'));
  const { labModelKernel } = require(path.join(root, 'dist/tools/fuzz/lab-model.js'));
  const { parseLabTraceFile, replayLabTraces } = require(path.join(root, 'dist/tools/fuzz/corpus.js'));
  const seeds = Array.from({ length: count }, (_, i) => first + i);
  for (const mode of modes) {
    const kernel = labModelKernel(mode);
    const free = kernel.memory.freeFrames;
    const started = Date.now();
    let done = 0;
    const result = runCampaign({
      seeds,
      pageSize: kernel.pageSize,
      ...(length ? { length: Number(length) } : {}),
      model: { label: `model ${mode}`, run: (p) => runProgram(kernel, p, { bdf: '0000:00:03.0' }) },
      onSeed: () => {
        if (++done % 100 === 0 && process.stdout.isTTY) process.stdout.write(`fuzz: ${mode} ${done}/${count}\r`);
      },
    });
    const leaks = [];
    if (kernel.openFdCount !== 0) leaks.push(`${kernel.openFdCount} fds`);
    if (kernel.locked.pinnedPages !== 0) leaks.push(`${kernel.locked.pinnedPages} pinned pages`);
    if (kernel.memory.freeFrames !== free) leaks.push(`${free - kernel.memory.freeFrames} frames`);
    console.log(
      `fuzz: model ${mode}: ${count} seeds in ${((Date.now() - started) / 1000).toFixed(1)} s, ` +
        `${result.violations.length} invariant violations, leaks: ${leaks.length ? leaks.join(', ') : 'none'}`,
    );
    const report = formatCampaign(result);
    if (report) console.log(report);
    if (report || leaks.length) failed = true;
  }
  const corpus = path.join(root, 'test/reliability/lab-traces');
  for (const name of fs.existsSync(corpus) ? fs.readdirSync(corpus).filter((f) => f.endsWith('.json')) : []) {
    const file = parseLabTraceFile(fs.readFileSync(path.join(corpus, name), 'utf8'), name);
    const mismatches = replayLabTraces(file, (p) => runProgram(labModelKernel(file.mode, file.bdf, file.labKernel), p, { bdf: file.bdf }));
    console.log(`fuzz: ${name}: ${file.runs.length} recorded programs, ${mismatches.length} differ from the model`);
    for (const m of mismatches) console.log(m.report);
    if (mismatches.length) failed = true;
  }
}
process.exitCode = failed ? 1 : 0;

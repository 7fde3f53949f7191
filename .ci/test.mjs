#!/usr/bin/env node
// Runs the test suite with node's own test runner (TypeScript through tsx).
// Unit tests: *.test.ts. Integration tests on the real Docker engine, QEMU
// and kernel tree: *.itest.ts (they share one warm base, so they run one
// file at a time). `--unit` runs the unit tests only; test files given as
// arguments (paths from the repository root) are run instead of all of them.
// The spec reporter's output is followed by one line, `N passed, N failed`
// (.ci/summary-reporter.mjs), whatever the outcome; the exit code is the
// test runner's.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const argv = process.argv.slice(2);
const unitOnly = argv.includes('--unit');
const given = argv.filter((a) => !a.startsWith('--'));
const skipDirs = new Set(['node_modules', 'dist', '.git', 'fixtures']);

function find(dir, suffix, out = []) {
  for (const name of readdirSync(dir)) {
    if (skipDirs.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) find(path, suffix, out);
    else if (name.endsWith(suffix)) out.push(relative(root, path));
  }
  return out;
}

function allFiles() {
  const roots = ['services', 'runners', 'bench'].map((d) => join(root, d));
  const unit = roots.flatMap((d) => find(d, '.test.ts')).sort();
  const integration = unitOnly ? [] : roots.flatMap((d) => find(d, '.itest.ts')).sort();
  return [...unit, ...integration];
}

const files = given.length > 0 ? given : allFiles();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// Two reporters on the same run: spec to stdout, the counts to a file that
// is printed after the run, so the line is the last one.
const summaryDir = mkdtempSync(join(tmpdir(), 'patchbay-test-summary-'));
const summaryFile = join(summaryDir, 'summary.txt');
const args = [
  '--import', 'tsx', '--test', '--test-concurrency=1',
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  `--test-reporter=${join(root, '.ci', 'summary-reporter.mjs')}`, `--test-reporter-destination=${summaryFile}`,
  ...files,
];
// A job leaves the host part of its CPUs by default (config.ts,
// defaultJobCpus); the test machine runs nothing else, so its jobs take all
// of them unless the caller says otherwise. The CI budget is measured so.
const env = { ...process.env, PATCHBAY_JOB_CPUS: process.env.PATCHBAY_JOB_CPUS ?? String(availableParallelism()) };
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env });
let summary = '';
try {
  summary = readFileSync(summaryFile, 'utf8').trim();
} catch {
  // reported below
}
rmSync(summaryDir, { recursive: true, force: true });
const how = r.error ? r.error.message : r.signal ? `signal ${r.signal}` : `exit ${r.status}`;
console.log(summary !== '' ? summary : `no test counts: the test runner ended without them (${how})`);
process.exit(r.status ?? 1);

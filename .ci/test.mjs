#!/usr/bin/env node
// Runs the test suite with node's own test runner (TypeScript through tsx).
// Unit tests: *.test.ts. Integration tests on the real Docker engine, QEMU
// and kernel tree: *.itest.ts (they share one warm base, so they run one
// file at a time). `--unit` runs the unit tests only.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const unitOnly = process.argv.includes('--unit');
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

const roots = ['services', 'runners', 'bench'].map((d) => join(root, d));
const unit = roots.flatMap((d) => find(d, '.test.ts')).sort();
const integration = unitOnly ? [] : roots.flatMap((d) => find(d, '.itest.ts')).sort();
const files = [...unit, ...integration];
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const args = ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files];
// A job leaves the host part of its CPUs by default (config.ts,
// defaultJobCpus); the test machine runs nothing else, so its jobs take all
// of them unless the caller says otherwise. The CI budget is measured so.
const env = { ...process.env, PATCHBAY_JOB_CPUS: process.env.PATCHBAY_JOB_CPUS ?? String(availableParallelism()) };
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env });
process.exit(r.status ?? 1);

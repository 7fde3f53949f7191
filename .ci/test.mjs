#!/usr/bin/env node
// Runs the test suite with node's own test runner (TypeScript through tsx).
// Unit tests: *.test.ts. Integration tests: *.itest.ts; those on the real
// Docker engine, QEMU and kernel tree share one warm base, so they run one
// file at a time, with the rest beside them in a second lane (below).
// `--unit` runs the unit tests only; test files given as arguments (paths
// from the repository root) are run instead of all of them, in one lane.
// The spec output is followed by one line, `N passed, N failed`
// (.ci/summary-reporter.mjs, the lanes added up), whatever the outcome; the
// exit code is non-zero when a lane's test runner's is.
import { spawn } from 'node:child_process';
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

// Two lanes when the whole suite runs. The engine lane: the integration
// tests that run jobs on the Docker engine and QEMU (they share one warm
// base and the machine's CPUs, so one file at a time), streamed as they run.
// The other lane, beside it: unit tests and the integration tests that need
// only Redis, PostgreSQL/PGlite, git, public-inbox, b4 or a browser, one
// file at a time too; its output is printed when both are done. A test that
// uses the engine from another folder still works in the other lane (the
// warm base and every cache are locked), only with the CPUs shared.
const ENGINE = /^(runners\/|services\/serve\/test\/(compose|hostile|report|resilience|service)\.|services\/api\/test\/(api|edges)\.|services\/lore\/test\/inbox\.)/;
const lanes = given.length > 0 || unitOnly
  ? [{ name: 'tests', files, live: true }]
  : [
      { name: 'engine', files: files.filter((f) => f.endsWith('.itest.ts') && ENGINE.test(f)), live: true },
      { name: 'beside', files: files.filter((f) => !(f.endsWith('.itest.ts') && ENGINE.test(f))), live: false },
    ].filter((l) => l.files.length > 0);

// A job leaves the host part of its CPUs by default (config.ts,
// defaultJobCpus); the test machine runs nothing else, so its jobs take all
// of them unless the caller says otherwise. The CI budget is measured so.
const env = { ...process.env, PATCHBAY_JOB_CPUS: process.env.PATCHBAY_JOB_CPUS ?? String(availableParallelism()) };
const workDir = mkdtempSync(join(tmpdir(), 'patchbay-test-summary-'));

/** One node --test run: spec to stdout (live) or to a file, the counts (.ci/summary-reporter.mjs) to a file. */
function runLane(lane) {
  const summaryFile = join(workDir, `${lane.name}.summary`);
  const specFile = join(workDir, `${lane.name}.spec`);
  const args = [
    '--import', 'tsx', '--test', '--test-concurrency=1',
    '--test-reporter=spec', `--test-reporter-destination=${lane.live ? 'stdout' : specFile}`,
    `--test-reporter=${join(root, '.ci', 'summary-reporter.mjs')}`, `--test-reporter-destination=${summaryFile}`,
    ...lane.files,
  ];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: lane.live ? 'inherit' : ['ignore', 'inherit', 'inherit'], env });
    child.on('error', (e) => { resolve({ lane, status: 1, how: e.message, summaryFile, specFile }); });
    child.on('close', (code, signal) => { resolve({ lane, status: code ?? 1, how: signal ? `signal ${signal}` : `exit ${code}`, summaryFile, specFile }); });
  });
}

const read = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};
const ended = await Promise.all(lanes.map(runLane));
for (const e of ended.filter((x) => !x.lane.live)) {
  process.stdout.write(`\n# ${e.lane.name}: ${e.lane.files.length} test files run beside the engine's\n${read(e.specFile)}`);
}

// The one last line: the lanes' counts added up.
const COUNTS = /^(\d+) passed, (\d+) failed(?: \((\d+) cancelled\))?(?:, (\d+) skipped)?(?:, (\d+) todo)?(?:, (\d+) suite errors?)?$/;
const total = [0, 0, 0, 0, 0, 0];
const missing = [];
for (const e of ended) {
  const m = COUNTS.exec(read(e.summaryFile).trim());
  if (m === null) {
    missing.push(`${e.lane.name}: the test runner ended without them (${e.how})`);
    continue;
  }
  for (let i = 0; i < total.length; i++) total[i] += Number(m[i + 1] ?? 0);
}
rmSync(workDir, { recursive: true, force: true });
const [passed, failed, cancelled, skipped, todo, suiteErrors] = total;
let line = `${passed} passed, ${failed} failed`;
if (cancelled > 0) line += ` (${cancelled} cancelled)`;
if (skipped > 0) line += `, ${skipped} skipped`;
if (todo > 0) line += `, ${todo} todo`;
if (suiteErrors > 0) line += `, ${suiteErrors} suite error${suiteErrors === 1 ? '' : 's'}`;
if (missing.length > 0) line = `no test counts from ${missing.join('; ')}${passed + failed > 0 ? ` (the rest: ${line})` : ''}`;
console.log(line);
process.exit(ended.some((e) => e.status !== 0) ? 1 : 0);

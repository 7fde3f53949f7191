/**
 * What the job sandbox costs: the same jobs run by the code before the
 * sandbox and by this checkout, interleaved in one run on one machine (the
 * shared, noisy machines make only side-by-side ratios meaningful).
 *
 *   - the warm job: pass-kbuf-pin on smoke;
 *   - the kbuf+fuse job: pass-kmbuf-ring on kbuf and fuse.
 *
 * "Before" is a git worktree of --before (default 03bfcb0, the last commit
 * before the sandbox) sharing this checkout's node_modules and the same
 * cache folder (warm base, tree mirror). Each version first runs each job
 * once untimed (its images and base runs cached; --no-warmup when an
 * earlier run left them), then --runs timed runs alternate before/after.
 * Writes bench/results/isolation-<date>-<jobs>.json and prints a markdown
 * table.
 *
 * Run: npm run bench:isolation [-- --before REV --runs N --only smoke --no-warmup]
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { JobResult } from '../services/domain/job.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const say = (s: string): void => { process.stderr.write(`bench: ${s}\n`); };
const seconds = (ms: number): number => Math.round(ms / 100) / 10;

const JOBS = {
  smoke: { mbox: 'pass-kbuf-pin.mbox', suites: ['smoke'] },
  'kbuf+fuse': { mbox: 'pass-kmbuf-ring.mbox', suites: ['kbuf', 'fuse'] },
} as const;
type JobName = keyof typeof JOBS;

interface Sample {
  version: 'before' | 'after';
  job: JobName;
  status: string;
  totalS: number;
  stages: Record<string, number>;
}

function run(checkout: string, job: JobName): Promise<JobResult> {
  const spec = JOBS[job];
  const args = [join(checkout, 'bin', 'patchbay.mjs'), 'run', '--tree', 'linux-7.1.y', '--mbox', join(root, 'fixtures', 'series', spec.mbox), '--json', ...spec.suites.flatMap((s) => ['--suite', s])];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: checkout, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out) as JobResult);
      } catch (e) {
        reject(new Error(`patchbay run (${checkout}) printed no JSON (exit ${code})`, { cause: e }));
      }
    });
  });
}

function sample(version: Sample['version'], job: JobName, r: JobResult): Sample {
  const stages: Record<string, number> = {};
  for (const s of r.stages) stages[s.stage] = seconds((stages[s.stage] ?? 0) * 1000 + s.durationMs);
  return { version, job, status: r.status, totalS: seconds(r.durationMs), stages };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { before: { type: 'string', default: '03bfcb0' }, runs: { type: 'string', default: '2' }, only: { type: 'string' }, 'no-warmup': { type: 'boolean', default: false } } });
  const runs = Number(values.runs);
  const jobs = (values.only !== undefined ? [values.only] : Object.keys(JOBS)) as JobName[];
  const worktree = mkdtempSync(join(tmpdir(), 'patchbay-before-'));
  rmSync(worktree, { recursive: true });
  const added = spawnSync('git', ['-C', root, 'worktree', 'add', '--detach', worktree, values.before], { stdio: 'inherit' });
  if (added.status !== 0) throw new Error(`git worktree add ${values.before} failed`);
  const samples: Sample[] = [];
  try {
    symlinkSync(join(root, 'node_modules'), join(worktree, 'node_modules'));
    const versions = [['before', worktree], ['after', root]] as const;
    for (const job of jobs) {
      for (const [version, checkout] of values['no-warmup'] ? [] : versions) {
        say(`${job}, ${version}: warm-up run (images, base runs)`);
        const r = await run(checkout, job);
        if (r.status !== 'PASS') throw new Error(`${job} (${version}) did not pass: ${r.summary}`);
      }
      for (let i = 0; i < runs; i++) {
        for (const [version, checkout] of i % 2 === 0 ? versions : [...versions].reverse()) {
          const r = await run(checkout, job);
          const s = sample(version, job, r);
          say(`${job}, ${version}, run ${i + 1}: ${s.totalS} s ${JSON.stringify(s.stages)}`);
          samples.push(s);
        }
      }
    }
  } finally {
    spawnSync('git', ['-C', root, 'worktree', 'remove', '--force', worktree], { stdio: 'inherit' });
  }
  const summary = jobs.map((job) => {
    const of = (v: Sample['version']): number => median(samples.filter((s) => s.job === job && s.version === v).map((s) => s.totalS));
    const before = of('before');
    const after = of('after');
    return { job, beforeS: before, afterS: after, ratio: Math.round((after / before) * 100) / 100 };
  });
  const figures = { date: new Date().toISOString(), before: values.before, runs, warmup: !values['no-warmup'], summary, samples };
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  const out = join(root, 'bench', 'results', `isolation-${figures.date.slice(0, 10)}-${jobs.join('-').replace(/\+/g, '-')}.json`);
  writeFileSync(out, `${JSON.stringify(figures, null, 2)}\n`);
  const table = ['| job | before (median s) | after (median s) | after / before |', '| --- | ---: | ---: | ---: |', ...summary.map((s) => `| ${s.job} | ${s.beforeS} | ${s.afterS} | ${s.ratio}x |`)];
  process.stdout.write(`${table.join('\n')}\nwritten to ${out}\n`);
  if (!existsSync(out)) process.exitCode = 1;
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});

/**
 * Benchmark of the suites under this machine's accelerator, in one run:
 *   1. the passing fixture on kbuf and fuse with no cached base run for its
 *      base (the job boots the base kernel too),
 *   2. the same again, now that the base run is cached,
 * giving per-suite and per-test runtimes (from the guest's "# time=" lines)
 * and what the base-run cache saves a second series on the same base.
 * Writes bench/results/suites-<date>.json and prints a markdown table.
 *
 * Run: npm run bench:suites   (about 25 minutes on 2 cores under TCG)
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJob } from '../runners/executor/pipeline.ts';
import { loadConfig } from '../services/config/config.ts';
import type { JobResult } from '../services/domain/job.ts';
import { parseMbox } from '../services/domain/mbox.ts';
import { assembleSeries } from '../services/domain/series.ts';
import { makeExecutorDeps } from '../runners/executor/deps.ts';
import { loadCatalogs } from '../services/catalog/load.ts';
import { makeLogger } from '../services/platform/logger.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const say = (s: string): void => { process.stderr.write(`bench: ${s}\n`); };
const seconds = (ms: number): number => Math.round(ms / 100) / 10;
const SUITES = ['fuse', 'kbuf'];

/** Per-test seconds from a KTAP file: "ok N name # time=1.2s" nested under "ok M suite". */
function testTimes(ktap: string): Array<{ suite: string; test: string; seconds: number }> {
  const out: Array<{ suite: string; test: string; seconds: number }> = [];
  const pending: Array<{ test: string; seconds: number }> = [];
  for (const line of ktap.split('\n')) {
    const nested = /^ {4}(?:not )?ok \d+ (\S+).*time=([\d.]+)s/.exec(line);
    if (nested?.[1] !== undefined && nested[2] !== undefined) pending.push({ test: nested[1], seconds: Number(nested[2]) });
    const top = /^(?:not )?ok \d+ (\S+)/.exec(line);
    if (top?.[1] !== undefined) {
      for (const p of pending.splice(0)) out.push({ suite: top[1], ...p });
    }
  }
  return out;
}

async function main(): Promise<void> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const config = loadConfig(process.env);
  const catalogs = loadCatalogs(config);
  const logger = makeLogger(config);
  const { deps, engine } = makeExecutorDeps(config, process.env, logger);
  await engine.ping();
  const tree = catalogs.trees.get('linux-7.1.y');
  const series = assembleSeries(parseMbox(readFileSync(join(root, 'fixtures/series/pass-kbuf-pin.mbox')).toString('latin1')));
  const suites = catalogs.suites.select(SUITES);

  // Forget the base runs of these suites on this base: the first job boots the base.
  const cacheDir = join(config.cacheDir, 'base-runs');
  if (existsSync(cacheDir)) {
    for (const f of readdirSync(cacheDir)) {
      const run = JSON.parse(readFileSync(join(cacheDir, f), 'utf8')) as { suite?: string; baseCommit?: string };
      if (run.baseCommit === series.baseCommit && SUITES.includes(run.suite ?? '')) rmSync(join(cacheDir, f));
    }
  }

  const job = async (name: string): Promise<{ result: JobResult; ms: number }> => {
    say(`${name} ...`);
    const t0 = performance.now();
    const result = await runJob({ jobId: `bench-suites-${name}-${stamp}`, tree, base: null, series, prerequisites: null, suites, kernelFragment: catalogs.kernelFragment }, deps, () => undefined);
    const ms = performance.now() - t0;
    say(`${name}: ${result.status} in ${seconds(ms)} s (${result.summary})`);
    if (result.status !== 'PASS') throw new Error(`the bench job did not pass: ${result.summary}`);
    return { result, ms };
  };
  const cold = await job('base-not-cached');
  const warm = await job('base-cached');
  const testStage = (r: JobResult): number => r.stages.filter((s) => s.stage === 'boot' || s.stage === 'test').reduce((a, s) => a + s.durationMs, 0);

  const times = testTimes(readFileSync(join(warm.result.artifactsDir ?? '', 'ktap.txt'), 'utf8'));
  const perSuite = SUITES.map((s) => ({ suite: s, tests: times.filter((t) => t.suite === s).length, seconds: Math.round(times.filter((t) => t.suite === s).reduce((a, t) => a + t.seconds, 0) * 10) / 10 }));
  const figures = {
    date: new Date().toISOString(),
    machine: { cpus: config.job.cpus, accel: warm.result.accel },
    baseNotCached: { totalS: seconds(cold.ms), bootAndTestsS: seconds(testStage(cold.result)), base: cold.result.base?.suites.map((s) => `${s.suite}: ${s.source}`) ?? [] },
    baseCached: { totalS: seconds(warm.ms), bootAndTestsS: seconds(testStage(warm.result)), base: warm.result.base?.suites.map((s) => `${s.suite}: ${s.source}`) ?? [] },
    cacheSavesS: seconds(testStage(cold.result) - testStage(warm.result)),
    notCachedOverCached: Math.round((cold.ms / warm.ms) * 100) / 100,
    perSuite,
    perTest: [...times].sort((a, b) => b.seconds - a.seconds),
  };
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  const out = join(root, 'bench', 'results', `suites-${stamp.slice(0, 10)}.json`);
  writeFileSync(out, `${JSON.stringify(figures, null, 2)}\n`);
  const table = [
    '| test | suite | seconds |',
    '| --- | --- | ---: |',
    ...figures.perTest.map((t) => `| ${t.test} | ${t.suite} | ${t.seconds} |`),
  ].join('\n');
  process.stdout.write(`${JSON.stringify({ ...figures, perTest: undefined }, null, 2)}\n\n${table}\nwritten to ${out}\n`);
  logger.flush();
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});

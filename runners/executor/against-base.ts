/**
 * The test stage's comparison with the base kernel: the suites' base results
 * (from the cache, or one boot of the base kernel for the suites it lacks),
 * then N re-runs on both kernels of every test whose outcome differs, then a
 * classification of every test (see services/domain/compare.ts).
 *
 * The base kernel boots only in the base sandbox, which no series touched:
 * what the series' build or guest did cannot reach the base's results, nor
 * the cache every later job on this base reads.
 */
import type { SuiteManifest } from '../../services/catalog/suites.ts';
import { type ComparedResult, type TestKey, compareWithBase, testsToRerun } from '../../services/domain/compare.ts';
import type { BaseComparison, TestResult } from '../../services/domain/job.ts';
import { type BaseRunCache, baseRunKey, type BaseRunKeyParts } from './base-runs.ts';
import { BASE_KERNEL } from './accel.ts';
import { type GuestOutcome, type PlanLine, runGuest } from './guest.ts';
import type { ArtifactsDir, Sandbox } from './sandbox.ts';

/** The series' kernel in its sandbox (the warm base's own stays in the base sandbox). */
export const SERIES_KERNEL = '/job/out/bzImage';
/** build.tree output of the base tree and of the tree under test. */
export const BASE_SUITES_EXTRA = '/job/out/base-suites';
export const SERIES_SUITES_EXTRA = '/job/out/suites';

export interface AgainstBaseInput {
  jobId: string;
  /** The series' sandbox (its kernel built) and the base sandbox (untouched by the series). */
  series: Sandbox;
  base: Sandbox;
  artifacts: ArtifactsDir;
  logLimitBytes: number;
  accel: 'kvm' | 'tcg';
  bootTimeoutSeconds: number;
  reruns: number;
  /** The suites that ran on the series, and its results. */
  suites: readonly SuiteManifest[];
  results: readonly TestResult[];
  /** Cache key parts shared by every suite; suiteVersion per suite. */
  keyParts: Omit<BaseRunKeyParts, 'suite' | 'suiteVersion'>;
  suiteVersion: (suite: SuiteManifest) => string;
  /** Suites whose base could not be prepared (build.tree failed on the base tree). */
  unavailable: ReadonlyMap<string, string>;
  cache: BaseRunCache;
  log: (text: string) => void;
  checkAborted: () => void;
}

export interface AgainstBaseOutcome {
  results: ComparedResult[];
  base: BaseComparison;
}

const keyOf = (k: TestKey): string => `${k.suite}\0${k.test}`;

export async function compareAgainstBase(input: AgainstBaseInput): Promise<AgainstBaseOutcome> {
  const base: BaseComparison = { commit: input.keyParts.baseCommit, suites: [], rerun: null };
  const baseResults = new Map<string, TestResult[]>();
  const toRun: SuiteManifest[] = [];

  for (const suite of input.suites) {
    const why = input.unavailable.get(suite.name);
    if (why !== undefined) {
      base.suites.push({ suite: suite.name, source: 'unavailable', jobId: null, summary: why });
      continue;
    }
    const key = baseRunKey({ ...input.keyParts, suite: suite.name, suiteVersion: input.suiteVersion(suite) });
    const cached = input.cache.get(key);
    if (cached) {
      baseResults.set(suite.name, cached.results);
      base.suites.push({ suite: suite.name, source: 'cached', jobId: cached.jobId, summary: `cached from job ${cached.jobId}` });
    } else {
      toRun.push(suite);
    }
  }

  if (toRun.length > 0) {
    input.log(`patchbay: booting the base kernel for ${toRun.map((s) => s.name).join(', ')} (not cached for this base)\n`);
    const started = Date.now();
    const run = await runGuest(input.base, input.artifacts, {
      name: 'base',
      accel: input.accel,
      kernel: BASE_KERNEL,
      plan: toRun.map((suite) => ({ suite, tests: [] })),
      suiteExtra: BASE_SUITES_EXTRA,
      bootTimeoutSeconds: input.bootTimeoutSeconds,
      onOutput: input.log,
    }, input.logLimitBytes);
    input.checkAborted();
    const durationMs = Date.now() - started;
    for (const suite of toRun) {
      const results = run.results.filter((r) => r.suite === suite.name);
      const broken = baseUnusable(run, suite.name);
      if (broken !== null) {
        base.suites.push({ suite: suite.name, source: 'unavailable', jobId: null, summary: broken });
        continue;
      }
      const key = baseRunKey({ ...input.keyParts, suite: suite.name, suiteVersion: input.suiteVersion(suite) });
      input.cache.put({ key, suite: suite.name, baseCommit: input.keyParts.baseCommit, results, jobId: input.jobId, createdAt: new Date().toISOString(), durationMs });
      baseResults.set(suite.name, results);
      base.suites.push({ suite: suite.name, source: 'run', jobId: input.jobId, summary: `run in this job (${Math.round(durationMs / 1000)}s)` });
    }
  }

  // Re-run what differs, on both kernels, suite by suite.
  const comparable = input.results.filter((r) => baseResults.has(r.suite));
  // A name with spaces cannot be passed to the guest's filter: compared once.
  const differing = testsToRerun(comparable, [...baseResults.values()].flat()).filter((k) => !/\s/.test(k.test));
  let seriesReruns: TestResult[] = [];
  let baseReruns: TestResult[] = [];
  if (differing.length > 0 && input.reruns > 0) {
    const plan = rerunPlan(input.suites, differing, input.reruns);
    const wanted = new Set(differing.map(keyOf));
    input.log(`patchbay: re-running ${differing.length} differing test(s) ${input.reruns} time(s) on both kernels: ${differing.map((d) => `${d.suite}/${d.test}`).join(', ')}\n`);
    const again = async (box: Sandbox, name: string, kernel: string, extra: string): Promise<TestResult[]> => {
      const run = await runGuest(box, input.artifacts, { name, accel: input.accel, kernel, plan, suiteExtra: extra, bootTimeoutSeconds: input.bootTimeoutSeconds, onOutput: input.log }, input.logLimitBytes);
      input.checkAborted();
      return run.results.filter((r) => wanted.has(keyOf(r)));
    };
    seriesReruns = await again(input.series, 'rerun-series', SERIES_KERNEL, SERIES_SUITES_EXTRA);
    baseReruns = await again(input.base, 'rerun-base', BASE_KERNEL, BASE_SUITES_EXTRA);
    base.rerun = { tests: differing.length, times: input.reruns };
  }

  // compareWithBase keeps its input's order; put both parts back in the series' order.
  const uncompared = input.results.filter((r) => !baseResults.has(r.suite));
  const compared = new Map<TestResult, ComparedResult>();
  const pair = (rows: readonly TestResult[], out: readonly ComparedResult[]): void => {
    rows.forEach((r, i) => {
      const c = out[i];
      if (c) compared.set(r, c);
    });
  };
  pair(comparable, compareWithBase({ series: comparable, base: [...baseResults.values()].flat(), seriesReruns, baseReruns }));
  pair(uncompared, compareWithBase({ series: uncompared, base: null }));
  const results = input.results.map((r) => compared.get(r)).filter((c): c is ComparedResult => c !== undefined);
  return { results, base };
}

/** Why a base run of a suite cannot be compared with, or null when it can. */
function baseUnusable(run: GuestOutcome, suite: string): string | null {
  if (run.boot.status !== 'PASS') return `the base kernel did not boot cleanly: ${run.boot.summary}`;
  const rows = run.results.filter((r) => r.suite === suite);
  if (rows.length === 0) return 'the base run printed no results for this suite';
  const notRun = rows.find((r) => r.test === '(suite)' && r.detail.startsWith('not run'));
  if (notRun) return `the base run did not reach this suite: ${notRun.detail}`;
  return null;
}

/** Each suite with differing tests, limited to them, repeated `times` times. */
export function rerunPlan(suites: readonly SuiteManifest[], tests: readonly TestKey[], times: number): PlanLine[] {
  const lines: PlanLine[] = [];
  for (const suite of suites) {
    const mine = tests.filter((t) => t.suite === suite.name).map((t) => t.test);
    if (mine.length === 0) continue;
    for (let i = 0; i < times; i++) lines.push({ suite, tests: mine });
  }
  return lines;
}

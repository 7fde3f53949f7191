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
import { type BootEvidence, type BootSplat, type CompareInput, type ComparedResult, type SplatComparison, type KernelEvidence, type TestKey, type VerdictPolicy, compareSplats, compareWithBase, keyOf, splatsNeedingBoots, testsNeedingMoreRuns, testsToRerun, withoutBase } from '../../services/domain/compare.ts';
import type { BaseComparison, TestResult } from '../../services/domain/job.ts';
import { filterRows } from '../../services/domain/test-filter.ts';
import { type BaseRunCache, baseRunKey, type BaseRunKeyParts } from './base-runs.ts';
import { BASE_KERNEL } from './accel.ts';
import { type GuestOutcome, type PlanLine, planFor, runGuest } from './guest.ts';
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
  /** The flake rule: alpha, re-runs per round, the most runs a borderline test may reach. */
  policy: VerdictPolicy;
  /** The suites that ran on the series, its results (as the filter keeps them), and the suites whose run finished. */
  suites: readonly SuiteManifest[];
  results: readonly TestResult[];
  completed: readonly string[];
  /** The splats of the series' first boot. */
  splats: readonly BootSplat[];
  /** Cache key parts shared by every suite; suiteVersion per suite. */
  keyParts: Omit<BaseRunKeyParts, 'suite' | 'suiteVersion'>;
  suiteVersion: (suite: SuiteManifest) => string;
  /** Suites whose base could not be prepared (build.tree failed on the base tree). */
  unavailable: ReadonlyMap<string, string>;
  cache: BaseRunCache;
  /**
   * The job's test filter (testsBySuite): a suite named here runs only these
   * tests on the base too, its rows are kept by the same rule, and its base
   * runs are cached under a key of their own. Empty: every suite whole.
   */
  only: ReadonlyMap<string, readonly string[]>;
  log: (text: string) => void;
  checkAborted: () => void;
}

export interface AgainstBaseOutcome {
  results: ComparedResult[];
  splats: SplatComparison[];
  base: BaseComparison;
}

/** A kernel's evidence as it grows: boots are added, re-runs asked are counted. */
interface Evidence extends KernelEvidence {
  boots: KernelEvidence['boots'][number][];
  asked: Map<string, number>;
  rerunBoots: number;
}

export async function compareAgainstBase(input: AgainstBaseInput): Promise<AgainstBaseOutcome> {
  const base: BaseComparison = { commit: input.keyParts.baseCommit, suites: [], rerun: null };
  const baseResults = new Map<string, TestResult[]>();
  /** The splats of the base's first boot(s): as recorded with each cached suite, or this job's boot. */
  const baseSplats = new Map<string, BootSplat>();
  /** The cache key of each suite with a base to compare with, and its earlier re-run boots. */
  const keys = new Map<string, string>();
  const history: BootEvidence[] = [];
  const toRun: SuiteManifest[] = [];

  for (const suite of input.suites) {
    const why = input.unavailable.get(suite.name);
    if (why !== undefined) {
      base.suites.push({ suite: suite.name, source: 'unavailable', jobId: null, summary: why });
      continue;
    }
    const key = baseRunKey(keyPartsOf(input, suite));
    const cached = input.cache.get(key);
    if (cached) {
      baseResults.set(suite.name, filterRows(cached.results, input.only));
      keys.set(suite.name, key);
      history.push(...input.cache.history(key, suite.name));
      for (const x of cached.splats) baseSplats.set(x.fingerprint, x);
      base.suites.push({ suite: suite.name, source: 'cached', jobId: cached.run.jobId, summary: `cached from job ${cached.run.jobId}` });
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
      plan: planFor(toRun, input.only),
      suiteExtra: BASE_SUITES_EXTRA,
      bootTimeoutSeconds: input.bootTimeoutSeconds,
      onOutput: input.log,
    }, input.logLimitBytes);
    input.checkAborted();
    const durationMs = Date.now() - started;
    for (const x of run.splats) baseSplats.set(x.fingerprint, x);
    for (const suite of toRun) {
      const results = filterRows(run.results.filter((r) => r.suite === suite.name), input.only);
      const broken = baseUnusable(run, suite.name);
      if (broken !== null) {
        base.suites.push({ suite: suite.name, source: 'unavailable', jobId: null, summary: broken });
        continue;
      }
      const inputs = keyPartsOf(input, suite);
      const key = baseRunKey(inputs);
      input.cache.put({ key, suite: suite.name, baseCommit: input.keyParts.baseCommit, inputs, boot: run.raw, jobId: input.jobId, createdAt: new Date().toISOString(), durationMs });
      baseResults.set(suite.name, results);
      keys.set(suite.name, key);
      base.suites.push({ suite: suite.name, source: 'run', jobId: input.jobId, summary: `run in this job (${Math.round(durationMs / 1000)}s)` });
    }
  }

  // Re-run what differs, on both kernels, one boot per re-run, in rounds:
  // a borderline test gets another round, up to the policy's maxRuns.
  const comparable = input.results.filter((r) => baseResults.has(r.suite));
  const series: Evidence = {
    boots: [{ results: comparable, completed: new Set(input.completed.filter((s) => baseResults.has(s))), only: null, splats: input.splats }],
    asked: new Map(),
    rerunBoots: 0,
  };
  // The base's first run, then what earlier jobs' re-runs of it saw, then this job's re-runs.
  const onBase: Evidence = {
    boots: [{ results: [...baseResults.values()].flat(), completed: new Set(baseResults.keys()), only: null, splats: [...baseSplats.values()] }, ...history],
    asked: new Map(),
    rerunBoots: 0,
  };
  if (history.length > 0) input.log(`patchbay: the base's record holds ${history.length} earlier re-run boot(s); they count as evidence too\n`);
  const policy = input.policy;
  const evidence = (): CompareInput => ({ series, base: onBase, policy });
  // A splat the series printed and the base not in every boot earns boots
  // of its own: the tests it landed in are re-run too (a splat at boot needs
  // only the boot).
  const splatTests = (list: readonly SplatComparison[]): TestKey[] => list.flatMap((x) => x.landed.flatMap((w) => {
    const slash = w.indexOf('/');
    return slash > 0 ? [{ suite: w.slice(0, slash), test: w.slice(slash + 1) }] : [];
  })).filter((k) => baseResults.has(k.suite) && !/\s/.test(k.test));
  const nextRound = (first: boolean): { tests: TestKey[]; splats: SplatComparison[] } => {
    if (policy.reruns === 0) return { tests: [], splats: [] };
    const tests = first ? testsToRerun(compareWithBase(evidence())) : testsNeedingMoreRuns(evidence());
    const splats = splatsNeedingBoots(evidence());
    const all = new Map<string, TestKey>();
    for (const k of [...tests, ...splatTests(splats)]) all.set(keyOf(k), k);
    return { tests: [...all.values()], splats };
  };
  let next = nextRound(true);
  const rerun = new Set<string>();
  while (next.tests.length > 0 || next.splats.length > 0) {
    const round = next.tests;
    const only = new Set(round.map(keyOf));
    for (const k of only) rerun.add(k);
    const plan = rerunPlan(input.suites, round);
    const why = [
      round.length > 0 ? `${round.length} test(s): ${round.map((d) => `${d.suite}/${d.test}`).join(', ')}` : '',
      next.splats.length > 0 ? `${next.splats.length} kernel splat(s): ${next.splats.map((x) => x.fingerprint).join(', ')}` : '',
    ].filter((x) => x !== '').join('; ');
    input.log(`patchbay: re-running on both kernels, ${policy.reruns} boot(s) each, for ${why}\n`);
    for (let i = 1; i <= policy.reruns; i++) {
      for (const [ev, box, name, kernel, extra] of [
        [series, input.series, 'rerun-series', SERIES_KERNEL, SERIES_SUITES_EXTRA],
        [onBase, input.base, 'rerun-base', BASE_KERNEL, BASE_SUITES_EXTRA],
      ] as const) {
        for (const k of only) ev.asked.set(k, (ev.asked.get(k) ?? 0) + 1);
        ev.rerunBoots++;
        const run = await runGuest(box, input.artifacts, { name: `${name}-${ev.boots.length}`, accel: input.accel, kernel, plan, suiteExtra: extra, bootTimeoutSeconds: input.bootTimeoutSeconds, onOutput: input.log }, input.logLimitBytes);
        input.checkAborted();
        // A boot that never reached the kernel (MISS) is no evidence either way: it is not counted.
        if (run.boot.status === 'MISS') continue;
        const boot: BootEvidence = { results: run.results.filter((r) => only.has(keyOf(r))), completed: new Set(run.completed), only, splats: run.splats };
        ev.boots.push(boot);
        if (ev === onBase) {
          for (const suite of new Set(round.map((k) => k.suite))) {
            const key = keys.get(suite);
            if (key !== undefined) input.cache.addBoot(key, suite, input.jobId, run.raw, only);
          }
        }
      }
    }
    next = nextRound(false);
  }
  if (rerun.size > 0) base.rerun = { tests: rerun.size, times: Math.max(0, ...[...rerun].map((k) => series.asked.get(k) ?? 0)) };

  const uncompared = input.results.filter((r) => !baseResults.has(r.suite));
  const results = [...compareWithBase(evidence()), ...withoutBase(uncompared)];
  return { results, splats: compareSplats(evidence()), base };
}

/** A suite's base-run key parts: the shared ones, its version, and its tests when the job's filter names it. */
export function keyPartsOf(input: Pick<AgainstBaseInput, 'keyParts' | 'suiteVersion' | 'only'>, suite: SuiteManifest): BaseRunKeyParts {
  const only = input.only.get(suite.name);
  return { ...input.keyParts, suite: suite.name, suiteVersion: input.suiteVersion(suite), ...(only === undefined ? {} : { only }) };
}

/** Why a base run of a suite cannot be compared with, or null when it can. */
function baseUnusable(run: GuestOutcome, suite: string): string | null {
  if (run.boot.status !== 'PASS') return `the base kernel did not boot cleanly: ${run.boot.summary}`;
  const rows = run.results.filter((r) => r.suite === suite);
  if (rows.length === 0) return 'the base run printed no results for this suite';
  const notRun = rows.find((r) => r.test === '(suite)' && r.detail.startsWith('not run'));
  if (notRun) return `the base run did not reach this suite: ${notRun.detail}`;
  if (!run.completed.includes(suite)) return 'the base run of this suite did not finish';
  const timeout = rows.find((r) => r.test === '(timeout)');
  if (timeout) return `the base run of this suite timed out: ${timeout.detail}`;
  return null;
}

/** One run of each suite with tests to re-run, limited to them. */
export function rerunPlan(suites: readonly SuiteManifest[], tests: readonly TestKey[]): PlanLine[] {
  return suites.flatMap((suite) => {
    const mine = tests.filter((t) => t.suite === suite.name).map((t) => t.test);
    return mine.length === 0 ? [] : [{ suite, tests: mine }];
  });
}

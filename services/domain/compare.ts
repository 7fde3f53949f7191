/**
 * A series is blamed only for what it broke. Its test results are compared
 * with the same suites on the base kernel; every test that is not a plain
 * pass (or skip) on the series is re-run on both, one boot per re-run, and
 * each test is then judged on its counts (fails:runs, skips, missing) on
 * each kernel by a one-sided Fisher exact test (see the README's "Verdict
 * rules"):
 *
 *   new-failure   fails on the series significantly more often than on the base
 *   now-skips     passes on the base, skips on the series (significantly)
 *   now-missing   runs on the base, absent from the series' runs (significantly)
 *   unconfirmed   a difference whose re-runs did not all happen: not blamed
 *   pre-existing  fails in every run on both kernels
 *   fixed         fails on the base significantly more often than on the series
 *   flaky         fails in some runs, with no significant difference
 *   unchanged     passes (or skips) in every run on both
 *   no-base       the base could not be run: nothing is blamed on this evidence
 *
 * A failure is FAIL or ERROR. A test the base lacks (added by the series) is
 * "missing" in each of the base's runs of its suite, so a new test that
 * fails every time is a new failure.
 */
import type { TestResult } from './job.ts';
import type { Status, TestStatus } from './status.ts';

export const COMPARISONS = ['new-failure', 'now-skips', 'now-missing', 'unconfirmed', 'pre-existing', 'fixed', 'flaky', 'unchanged', 'no-base'] as const;
export type Comparison = (typeof COMPARISONS)[number];

/** Comparisons that blame the series (its job is FAIL). */
export const BLAMED: ReadonlySet<Comparison> = new Set(['new-failure', 'now-skips', 'now-missing']);

/**
 * A test's runs on one kernel. `runs` counts every run it was due in; those
 * that passed are runs - fails - skips - missing.
 */
export interface Tally {
  runs: number;
  fails: number;
  skips: number;
  /** Runs of its suite that finished without it. */
  missing: number;
}

/** The rule that turns counts into blame; configuration, see config.ts. */
export interface VerdictPolicy {
  /** Blame when the one-sided Fisher p-value is at most this. */
  alpha: number;
  /** Re-run more (up to maxRuns) when the p-value is above alpha and at most this. */
  borderline: number;
  /** Re-run boots per kernel in one round (0: none; nothing is then confirmed). */
  reruns: number;
  /** Runs per kernel (the first included) that a borderline test may reach. */
  maxRuns: number;
}

export const DEFAULT_POLICY: VerdictPolicy = { alpha: 0.05, borderline: 0.25, reruns: 3, maxRuns: 10 };

export interface ComparedResult extends TestResult {
  /** The test's status in the base's first run; null when the base has no such test or was not run. */
  baseStatus: TestStatus | null;
  comparison: Comparison;
  seriesRuns: Tally;
  /** Null when the base was not run. */
  baseRuns: Tally | null;
}

export interface TestKey {
  suite: string;
  test: string;
}

export function isFailure(status: TestStatus): boolean {
  return status === 'FAIL' || status === 'ERROR';
}

export const keyOf = (r: TestKey): string => `${r.suite}\0${r.test}`;

/** Rows the guest adds about a suite as a whole, "(suite)", "(timeout)": they cannot be re-run alone. */
export function isSuiteRow(test: string): boolean {
  return test.startsWith('(');
}

/** A kernel splat seen in one boot (once per fingerprint), and what was running when it came. */
export interface BootSplat {
  fingerprint: string;
  kind: string;
  title: string;
  culprit: string | null;
  /** The suite and test running when it was printed; null for both when it came at boot. */
  suite: string | null;
  test: string | null;
}

/**
 * One boot of one kernel, as the comparison sees it: its rows, the suites
 * whose run finished (a test absent from a finished run it was due in is
 * "missing" there), the tests it was asked for (null: every test of its
 * suites, a first run), and the kernel splats it printed.
 */
export interface BootEvidence {
  results: readonly TestResult[];
  completed: ReadonlySet<string>;
  only: ReadonlySet<string> | null;
  splats?: readonly BootSplat[];
}

/** Every boot of one kernel: the first run, then the re-runs. */
export interface KernelEvidence {
  boots: readonly BootEvidence[];
  /** Re-run boots asked of this kernel for each test key (those that did not happen count too). */
  asked: ReadonlyMap<string, number>;
  /** Re-run boots asked of this kernel in all (a splat is judged per boot); 0 when absent. */
  rerunBoots?: number;
}

function outcomeOf(status: TestStatus): 'fail' | 'skip' | 'pass' {
  if (isFailure(status)) return 'fail';
  return status === 'SKIP' ? 'skip' : 'pass';
}

/** Each boot's rows by test key, built once: a guest may print many rows, and every test is tallied. */
const rowsByKey = new WeakMap<BootEvidence, Map<string, TestResult[]>>();
function rowsOf(boot: BootEvidence, k: string): readonly TestResult[] {
  let index = rowsByKey.get(boot);
  if (index === undefined) {
    index = new Map();
    for (const r of boot.results) {
      const list = index.get(keyOf(r));
      if (list) list.push(r);
      else index.set(keyOf(r), [r]);
    }
    rowsByKey.set(boot, index);
  }
  return index.get(k) ?? [];
}

/** A test's tally over a kernel's boots. */
export function tallyOf(key: TestKey, boots: readonly BootEvidence[]): Tally {
  const k = keyOf(key);
  const t: Tally = { runs: 0, fails: 0, skips: 0, missing: 0 };
  for (const boot of boots) {
    const rows = rowsOf(boot, k);
    if (rows.length > 0) {
      for (const r of rows) {
        t.runs++;
        const o = outcomeOf(r.status);
        if (o === 'fail') t.fails++;
        else if (o === 'skip') t.skips++;
      }
      continue;
    }
    const due = boot.only === null ? !isSuiteRow(key.test) : boot.only.has(k);
    if (due && boot.completed.has(key.suite)) {
      t.runs++;
      t.missing++;
    }
  }
  return t;
}

function logChoose(n: number, k: number): number {
  let s = 0;
  for (let i = 1; i <= k; i++) s += Math.log(n - k + i) - Math.log(i);
  return s;
}

/**
 * One-sided Fisher exact test: the probability, with the margins fixed, of
 * `a` or more events among the `n` runs of one kernel when the other has
 * `b` among `m`. Small when the first kernel has significantly more.
 */
export function fisherGreater(a: number, n: number, b: number, m: number): number {
  const events = a + b;
  const total = n + m;
  if (n === 0 || m === 0) return 1;
  const denom = logChoose(total, events);
  let p = 0;
  for (let x = a; x <= Math.min(n, events); x++) {
    if (events - x > m) continue;
    p += Math.exp(logChoose(n, x) + logChoose(m, events - x) - denom);
  }
  return Math.min(1, p);
}

const notRun = (t: Tally): number => t.skips + t.missing;

/** Whether the test's first runs differ at all: such a test is re-run on both kernels. */
export function differs(s: Tally, b: Tally): boolean {
  return s.fails > 0 || b.fails > 0 || (notRun(s) > 0 && notRun(b) < b.runs);
}

export interface Judgement {
  comparison: Comparison;
  /** The p-value the comparison rests on (series worse than base), or null when nothing differs. */
  p: number | null;
  /** Borderline: more runs would settle it, and the policy allows them. */
  moreRuns: boolean;
}

/**
 * Classifies one test from its tallies. `asked` is how many runs each kernel
 * was asked for (1 + re-run boots): fewer actual runs leave a difference
 * unconfirmed, never blamed.
 */
export function judge(s: Tally, b: Tally, asked: { series: number; base: number }, policy: VerdictPolicy): Judgement {
  if (!differs(s, b)) return { comparison: 'unchanged', p: null, moreRuns: false };
  const complete = s.runs >= asked.series && b.runs >= asked.base;
  const borderline = (p: number): boolean => p > policy.alpha && p <= policy.borderline && Math.max(s.runs, b.runs) < policy.maxRuns;
  if (s.fails > 0 || b.fails > 0) {
    const worse = fisherGreater(s.fails, s.runs, b.fails, b.runs);
    const better = fisherGreater(b.fails, b.runs, s.fails, s.runs);
    if (!complete) return { comparison: 'unconfirmed', p: worse, moreRuns: false };
    if (worse <= policy.alpha) return { comparison: 'new-failure', p: worse, moreRuns: false };
    if (better <= policy.alpha) return { comparison: 'fixed', p: worse, moreRuns: false };
    if (s.fails === s.runs && b.fails === b.runs) return { comparison: 'pre-existing', p: worse, moreRuns: false };
    return { comparison: 'flaky', p: worse, moreRuns: borderline(worse) };
  }
  // No failure anywhere: the series runs the test less often than the base.
  const p = fisherGreater(notRun(s), s.runs, notRun(b), b.runs);
  if (!complete) return { comparison: 'unconfirmed', p, moreRuns: false };
  if (p <= policy.alpha) return { comparison: s.missing > s.skips ? 'now-missing' : 'now-skips', p, moreRuns: false };
  return { comparison: 'flaky', p, moreRuns: borderline(p) };
}

export interface CompareInput {
  series: KernelEvidence;
  /** The base's evidence, or null when the base could not be run. */
  base: KernelEvidence | null;
  policy: VerdictPolicy;
}

/** The test keys of the first runs: the series' in its order, then those only the base has. */
function keysOf(series: readonly TestResult[], base: readonly TestResult[]): { key: TestKey; row: TestResult | null }[] {
  const out: { key: TestKey; row: TestResult | null }[] = [];
  const seen = new Set<string>();
  for (const r of series) {
    const k = keyOf(r);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ key: { suite: r.suite, test: r.test }, row: r });
  }
  for (const r of base) {
    const k = keyOf(r);
    if (seen.has(k) || isSuiteRow(r.test)) continue;
    seen.add(k);
    out.push({ key: { suite: r.suite, test: r.test }, row: null });
  }
  return out;
}

const asked = (e: KernelEvidence, k: string): number => 1 + (e.asked.get(k) ?? 0);

/** Every test of either kernel's first run, judged; a test only the base ran gets a row of its own. */
export function compareWithBase(input: CompareInput): ComparedResult[] {
  const sFirst = input.series.boots[0]?.results ?? [];
  const bFirst = input.base?.boots[0]?.results ?? [];
  const baseFirst = new Map<string, TestResult>();
  for (const r of bFirst) if (!baseFirst.has(keyOf(r))) baseFirst.set(keyOf(r), r);
  return keysOf(sFirst, input.base === null ? [] : bFirst).map(({ key, row }): ComparedResult => {
    const k = keyOf(key);
    const seriesRuns = tallyOf(key, input.series.boots);
    const shown: TestResult = row ?? { suite: key.suite, test: key.test, status: 'SKIP', detail: 'not in the series kernel\'s run (the base ran it)' };
    if (input.base === null) return { ...shown, baseStatus: null, comparison: 'no-base', seriesRuns, baseRuns: null };
    const baseRuns = tallyOf(key, input.base.boots);
    const j = judge(seriesRuns, baseRuns, { series: asked(input.series, k), base: asked(input.base, k) }, input.policy);
    return { ...shown, baseStatus: baseFirst.get(k)?.status ?? null, comparison: j.comparison, seriesRuns, baseRuns };
  });
}

/** A run with no base to compare with (the guest never reached init, or no suite's base could be run). */
export function withoutBase(results: readonly TestResult[]): ComparedResult[] {
  return compareWithBase({ series: { boots: [{ results, completed: new Set(), only: null }], asked: new Map() }, base: null, policy: DEFAULT_POLICY });
}

/**
 * The tests to re-run after the first runs, in order: every re-runnable test
 * the series did not plainly pass, i.e. that failed on it (whatever the base
 * did: a failure on both is re-run on both too), or that it skipped or
 * lacked while the base ran it. A test the series passes is not re-run,
 * even where the base failed: nothing is blamed on it either way.
 */
export function testsToRerun(results: readonly ComparedResult[]): TestKey[] {
  return results
    .filter((r) => r.baseRuns !== null && !isSuiteRow(r.test) && !/\s/.test(r.test) && (r.seriesRuns.fails > 0 || (notRun(r.seriesRuns) > 0 && notRun(r.baseRuns) < r.baseRuns.runs)))
    .map((r) => ({ suite: r.suite, test: r.test }));
}

/** After a round of re-runs: the borderline tests that another round may settle. */
export function testsNeedingMoreRuns(input: CompareInput): TestKey[] {
  if (input.base === null) return [];
  const base = input.base;
  return compareWithBase(input)
    .filter((r) => {
      if (r.baseRuns === null || isSuiteRow(r.test) || /\s/.test(r.test)) return false;
      const k = keyOf(r);
      return judge(r.seriesRuns, r.baseRuns, { series: asked(input.series, k), base: asked(base, k) }, input.policy).moreRuns;
    })
    .map((r) => ({ suite: r.suite, test: r.test }));
}

export interface ComparedVerdict {
  status: Status;
  summary: string;
}

const listOf = (rows: readonly ComparedResult[]): string =>
  rows.slice(0, 5).map((r) => `${r.suite}/${r.test}`).join(', ') + (rows.length > 5 ? ', ...' : '');

/**
 * The test stage's verdict. FAIL only for what is blamed (new failures, and
 * tests that now skip or are missing, each reproduced); MISS when a
 * difference could not be confirmed or there was no base to compare a
 * failure with; otherwise PASS, or SKIP when nothing ran.
 */
export function comparedVerdict(results: readonly ComparedResult[], splats: readonly SplatComparison[] = []): ComparedVerdict {
  const of = (c: Comparison): ComparedResult[] => results.filter((r) => r.comparison === c);
  const splatsOf = (c: Comparison): SplatComparison[] => splats.filter((x) => x.comparison === c);
  const notes: string[] = [];
  for (const c of ['pre-existing', 'flaky'] as const) {
    const n = of(c).length;
    if (n > 0) notes.push(`${n} ${c}`);
  }
  const oldSplats = splats.filter((x) => x.comparison === 'pre-existing' || x.comparison === 'flaky' || x.comparison === 'fixed').length;
  if (oldSplats > 0) notes.push(`${oldSplats} kernel splat(s) the base prints too`);
  const tail = notes.length > 0 ? ` (${notes.join(', ')}: not blamed)` : '';
  const blamed: string[] = [];
  for (const x of splatsOf('new-failure')) blamed.push(`${splatText(x)} (new: in ${formatBoots(x.series)} of the series kernel, ${x.base ? formatBoots(x.base) : '-'} of the base)`);
  const newFailures = of('new-failure');
  if (newFailures.length > 0) blamed.push(`${newFailures.length} new failure(s): ${listOf(newFailures)}`);
  const skips = of('now-skips');
  if (skips.length > 0) blamed.push(`${skips.length} test(s) now skip: ${listOf(skips)}`);
  const missing = of('now-missing');
  if (missing.length > 0) blamed.push(`${missing.length} test(s) no longer run: ${listOf(missing)}`);
  if (blamed.length > 0) return { status: 'FAIL', summary: `${blamed.join('; ')}${tail}` };

  const splatsUnsettled = [...splatsOf('unconfirmed'), ...splatsOf('no-base')];
  if (splatsUnsettled.length > 0) {
    const how = splatsUnsettled.slice(0, 3).map((x) => `${splatText(x)}: ${formatBoots(x.series)} of the series kernel, ${x.base ? formatBoots(x.base) : 'no base run'}`).join('; ');
    return { status: 'MISS', summary: `${splatsUnsettled.length} kernel splat(s) could not be compared with the base over the boots asked (${how})` };
  }
  const unconfirmed = of('unconfirmed');
  if (unconfirmed.length > 0) {
    const how = unconfirmed.slice(0, 3).map((r) => `${r.suite}/${r.test} ${formatTally(r.seriesRuns)} vs ${r.baseRuns ? formatTally(r.baseRuns) : '-'}`).join(', ');
    return { status: 'MISS', summary: `${unconfirmed.length} difference(s) from the base could not be confirmed: their re-runs did not all happen (${how})` };
  }
  const noBase = of('no-base').filter((r) => isFailure(r.status));
  if (noBase.length > 0) {
    return { status: 'MISS', summary: `${noBase.length} failure(s) with no base run to compare with: ${listOf(noBase)}` };
  }
  if (results.length === 0) return { status: 'ERROR', summary: 'no test results' };
  // A test ran when any of its runs passed or failed (a first-run skip may pass on re-runs).
  const ran = results.filter((r) => r.seriesRuns.runs > r.seriesRuns.skips + r.seriesRuns.missing).length;
  if (ran === 0) return { status: 'SKIP', summary: `all ${results.length} tests skipped` };
  const passed = results.filter((r) => r.status === 'PASS').length;
  const skipped = results.filter((r) => r.status === 'SKIP').length;
  const fixed = of('fixed');
  return { status: 'PASS', summary: `no new failures: ${passed} passed, ${skipped} skipped${tail}${fixed.length > 0 ? `; fixed by the series: ${listOf(fixed)}` : ''}` };
}

const splatText = (x: SplatComparison): string => `kernel ${x.kind} "${x.title}" [${x.fingerprint}]`;
const formatBoots = (t: Tally): string => `${t.fails} of ${t.runs} boot(s)`;

/** "fails:runs", with skipped and missing runs when there are any: "0:4 (3 skipped)". */
export function formatTally(t: Tally): string {
  const extra = [t.skips > 0 ? `${t.skips} skipped` : '', t.missing > 0 ? `${t.missing} missing` : ''].filter((x) => x !== '');
  return `${t.fails}:${t.runs}${extra.length > 0 ? ` (${extra.join(', ')})` : ''}`;
}

/**
 * A kernel splat judged per kernel, not per test: in how many boots of each
 * kernel its fingerprint appeared (a WARN_ON_ONCE lands in whichever test
 * first reaches it, so per-test rows would call it a flake). Judged by the
 * same rule as a test, boots for runs.
 */
export interface SplatComparison {
  fingerprint: string;
  kind: string;
  title: string;
  culprit: string | null;
  /** Where it landed in the series' boots: "suite/test", or "(boot)". */
  landed: string[];
  /** fails: boots that printed it; runs: boots. */
  series: Tally;
  base: Tally | null;
  comparison: Comparison;
}

const splatTally = (fingerprint: string, boots: readonly BootEvidence[]): Tally => ({
  runs: boots.length,
  fails: boots.filter((b) => (b.splats ?? []).some((x) => x.fingerprint === fingerprint)).length,
  skips: 0,
  missing: 0,
});

/** Every splat either kernel printed, judged; the series' first, in the order they came. */
export function compareSplats(input: CompareInput): SplatComparison[] {
  const seen = new Map<string, BootSplat>();
  const landed = new Map<string, Set<string>>();
  for (const b of input.series.boots) {
    for (const x of b.splats ?? []) {
      if (!seen.has(x.fingerprint)) seen.set(x.fingerprint, x);
      const where = landed.get(x.fingerprint) ?? new Set<string>();
      where.add(x.test !== null && x.suite !== null ? `${x.suite}/${x.test}` : x.suite ?? '(boot)');
      landed.set(x.fingerprint, where);
    }
  }
  for (const b of input.base?.boots ?? []) for (const x of b.splats ?? []) if (!seen.has(x.fingerprint)) seen.set(x.fingerprint, x);
  return [...seen.values()].map((x): SplatComparison => {
    const series = splatTally(x.fingerprint, input.series.boots);
    const head = { fingerprint: x.fingerprint, kind: x.kind, title: x.title, culprit: x.culprit, landed: [...(landed.get(x.fingerprint) ?? [])] };
    if (input.base === null) return { ...head, series, base: null, comparison: 'no-base' };
    const base = splatTally(x.fingerprint, input.base.boots);
    const asked = { series: 1 + (input.series.rerunBoots ?? 0), base: 1 + (input.base.rerunBoots ?? 0) };
    return { ...head, series, base, comparison: judge(series, base, asked, input.policy).comparison };
  });
}

/**
 * Whether the series' splats call for (more) re-run boots: one the series
 * printed that the base did not print in every boot, not yet settled, or
 * borderline with runs to spare.
 */
export function splatsNeedingBoots(input: CompareInput): SplatComparison[] {
  if (input.base === null) return [];
  const base = input.base;
  const asked = { series: 1 + (input.series.rerunBoots ?? 0), base: 1 + (base.rerunBoots ?? 0) };
  return compareSplats(input).filter((c) => {
    if (c.base === null || c.series.fails === 0) return false;
    if ((input.series.rerunBoots ?? 0) === 0) return c.base.fails < c.base.runs && input.policy.reruns > 0;
    return judge(c.series, c.base, asked, input.policy).moreRuns;
  });
}

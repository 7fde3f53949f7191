/**
 * A series is blamed only for what it broke: its test results are compared
 * with the same suites on the base kernel, and every test that differs is
 * re-run on both kernels so that a flake is not blamed.
 *
 *   new-failure   fails on the series every time, passes on the base every time
 *   pre-existing  fails on both (not blamed)
 *   fixed         passes on the series, fails on the base
 *   flaky         failed some runs and passed others, on either kernel
 *   unchanged     passes (or skips) on both
 *   no-base       the base could not be run; the series' own status stands
 *
 * A failure is FAIL or ERROR. A test the base does not have (added by the
 * series, or a kernel splat row) counts as passing on the base.
 */
import type { TestResult } from './job.ts';
import type { Status, TestStatus } from './status.ts';

export const COMPARISONS = ['new-failure', 'pre-existing', 'fixed', 'flaky', 'unchanged', 'no-base'] as const;
export type Comparison = (typeof COMPARISONS)[number];

/** Failed runs out of runs, reported as "fails:runs". */
export interface Tally {
  fails: number;
  runs: number;
}

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

const keyOf = (r: TestKey): string => `${r.suite}\0${r.test}`;

/** Rows the guest adds about a suite as a whole; re-running them means nothing. */
export function isSuiteRow(test: string): boolean {
  return test.startsWith('(');
}

function index(results: readonly TestResult[]): Map<string, TestResult[]> {
  const m = new Map<string, TestResult[]>();
  for (const r of results) {
    const k = keyOf(r);
    const list = m.get(k);
    if (list) list.push(r);
    else m.set(k, [r]);
  }
  return m;
}

/**
 * The tests whose outcome differs between the series and the base (a failure
 * on one side only), in the series' order: these are re-run on both kernels.
 */
export function testsToRerun(series: readonly TestResult[], base: readonly TestResult[]): TestKey[] {
  const onBase = index(base);
  const out: TestKey[] = [];
  const seen = new Set<string>();
  for (const r of series) {
    const k = keyOf(r);
    if (seen.has(k) || isSuiteRow(r.test)) continue;
    seen.add(k);
    const b = onBase.get(k)?.[0];
    const baseFailed = b !== undefined && isFailure(b.status);
    if (isFailure(r.status) !== baseFailed) out.push({ suite: r.suite, test: r.test });
  }
  return out;
}

function tally(first: TestResult | undefined, reruns: readonly TestResult[] | undefined): Tally {
  const all = [...(first ? [first] : []), ...(reruns ?? [])];
  return { fails: all.filter((r) => isFailure(r.status)).length, runs: all.length };
}

function classify(s: Tally, b: Tally): Comparison {
  const sAll = s.fails === s.runs;
  const sNone = s.fails === 0;
  const bAll = b.fails === b.runs;
  const bNone = b.fails === 0;
  if (sNone && bNone) return 'unchanged';
  if (sAll && bNone) return 'new-failure';
  if (sAll && bAll) return 'pre-existing';
  if (sNone && bAll) return 'fixed';
  return 'flaky';
}

export interface CompareInput {
  series: readonly TestResult[];
  /** The base's results, or null when the base could not be run. */
  base: readonly TestResult[] | null;
  /** Results of the re-runs (a test may appear several times). */
  seriesReruns?: readonly TestResult[];
  baseReruns?: readonly TestResult[];
}

export function compareWithBase(input: CompareInput): ComparedResult[] {
  const sRe = index(input.seriesReruns ?? []);
  const bRe = index(input.baseReruns ?? []);
  const onBase = input.base === null ? null : index(input.base);
  return input.series.map((r): ComparedResult => {
    const k = keyOf(r);
    const seriesRuns = tally(r, sRe.get(k));
    if (onBase === null) {
      return { ...r, baseStatus: null, comparison: 'no-base', seriesRuns, baseRuns: null };
    }
    const b = onBase.get(k)?.[0];
    // A test the base lacks passed there, once (plus any re-runs).
    const baseRuns = b ? tally(b, bRe.get(k)) : { fails: 0, runs: Math.max(1, bRe.get(k)?.length ?? 0) };
    return { ...r, baseStatus: b?.status ?? null, comparison: classify(seriesRuns, baseRuns), seriesRuns, baseRuns };
  });
}

export interface ComparedVerdict {
  status: Status;
  summary: string;
}

/**
 * The test stage's verdict: FAIL (or ERROR) only for new failures; otherwise
 * PASS, or SKIP when nothing ran. Without a base, the worst status stands.
 */
export function comparedVerdict(results: readonly ComparedResult[]): ComparedVerdict {
  const count = (c: Comparison): number => results.filter((r) => r.comparison === c).length;
  const names = (c: Comparison): string =>
    results
      .filter((r) => r.comparison === c)
      .slice(0, 5)
      .map((r) => `${r.suite}/${r.test}`)
      .join(', ');
  const notes: string[] = [];
  for (const c of ['pre-existing', 'flaky'] as const) {
    const n = count(c);
    if (n > 0) notes.push(`${n} ${c}`);
  }
  const tail = notes.length > 0 ? ` (${notes.join(', ')}: not blamed)` : '';
  const noBase = results.filter((r) => r.comparison === 'no-base');
  const blamed = results.filter((r) => r.comparison === 'new-failure' || (r.comparison === 'no-base' && isFailure(r.status)));
  if (blamed.length > 0) {
    // A test that passes on the base and fails (or times out) on the series
    // every time is the series' doing: FAIL. Without a base, a test's own
    // ERROR stays an ERROR.
    const status: Status = blamed.some((r) => r.comparison === 'new-failure' || r.status === 'FAIL') ? 'FAIL' : 'ERROR';
    const what = noBase.length > 0 && count('new-failure') === 0 ? 'failure(s), no base to compare with' : 'new failure(s)';
    const list = blamed.slice(0, 5).map((r) => `${r.suite}/${r.test}`).join(', ');
    return { status, summary: `${blamed.length} ${what}: ${list}${blamed.length > 5 ? ', ...' : ''}${tail}` };
  }
  const ran = results.filter((r) => r.status !== 'SKIP').length;
  if (results.length > 0 && ran === 0) return { status: 'SKIP', summary: `all ${results.length} tests skipped` };
  if (results.length === 0) return { status: 'ERROR', summary: 'no test results' };
  const passed = results.filter((r) => r.status === 'PASS').length;
  const skipped = results.filter((r) => r.status === 'SKIP').length;
  const fixed = count('fixed') > 0 ? `; fixed by the series: ${names('fixed')}` : '';
  return { status: 'PASS', summary: `no new failures: ${passed} passed, ${skipped} skipped${tail}${fixed}` };
}

export function formatTally(t: Tally): string {
  return `${t.fails}:${t.runs}`;
}

/**
 * A job's result and how its verdict is reached: pure functions from what
 * the stages produced (git's output, the build log, the console, the KTAP
 * channel) to statuses. The executor runs things; this decides.
 */
import type { ApplyFailure, BuildMode, CompilerDiagnostic } from './build.ts';
import type { ComparedResult } from './compare.ts';
import { findCrashes, type CrashReport } from './console.ts';
import { flattenKtap, parseKtap } from './ktap.ts';
import { type Stage, type Status, type TestStatus, worstStatus } from './status.ts';

export type StageName = 'setup' | Stage;

export interface StageRun {
  stage: StageName;
  status: Status;
  durationMs: number;
  summary: string;
}

export interface TestResult {
  suite: string;
  test: string;
  status: TestStatus;
  detail: string;
}

/** How the series' results were compared with the base kernel's. */
export interface BaseComparison {
  commit: string;
  /** Per suite: where its base results came from, or why there are none. */
  suites: Array<{ suite: string; source: 'cached' | 'run' | 'unavailable'; jobId: string | null; summary: string }>;
  /** The differing tests re-run on both kernels, and how many times each. */
  rerun: { tests: number; times: number } | null;
}

export interface JobResult {
  jobId: string;
  status: Status;
  /** Where a FAIL or ERROR was found, or where infrastructure failed (MISS); null when it passed. */
  stage: StageName | null;
  summary: string;
  tree: { name: string; ref: string };
  baseCommit: string | null;
  headCommit: string | null;
  series: { title: string; version: number; patches: number } | null;
  suites: string[];
  accel: 'kvm' | 'tcg' | null;
  buildMode: BuildMode | null;
  stages: StageRun[];
  /** Every test of the series' run, compared with the base. */
  results: ComparedResult[];
  /** Null when the tests did not run (the job ended before them). */
  base: BaseComparison | null;
  crashes: CrashReport[];
  applyFailure: ApplyFailure | null;
  buildErrors: CompilerDiagnostic[];
  error: { code: string; message: string } | null;
  artifactsDir: string | null;
  artifacts: string[];
  startedAt: string;
  durationMs: number;
}

/** Markers the guest prints on the console (the init, and ktap.sh per test). */
export const GUEST_MARKERS = {
  init: 'patchbay: init started',
  suiteStart: /^(?:\[[\s\d.]+\]\s*)?patchbay: suite (\S+) start/,
  suiteEnd: /^(?:\[[\s\d.]+\]\s*)?patchbay: suite (\S+) end/,
  test: /^(?:\[[\s\d.]+\]\s*)?patchbay: test ([^/\s]+)\/(\S+) (start|end)$/,
  done: 'patchbay: all suites done',
} as const;

export interface GuestRun {
  consoleLog: string;
  ktap: string;
  /** QEMU's exit status; null if it was killed by the boot timeout. */
  exitCode: number | null;
  timedOut: boolean;
  timeoutSeconds: number;
  /** The suites run, in order; a suite may appear more than once (re-runs). */
  suites: readonly string[];
}

export interface GuestVerdict {
  boot: { status: Status; summary: string };
  test: { status: Status; summary: string } | null;
  results: TestResult[];
  crashes: CrashReport[];
}

interface Span {
  suite: string;
  /** The test announced by ktap.sh, and which run of it (0-based) this is. */
  test: string | null;
  occurrence: number;
  from: number;
  to: number;
}

/** What was running at each console line (1-based): the innermost suite or test span. */
function spansOf(lines: readonly string[]): (line: number) => Span | null {
  const suites: Span[] = [];
  const tests: Span[] = [];
  const seen = new Map<string, number>();
  let suite: Span | null = null;
  let test: Span | null = null;
  for (const [i, text] of lines.entries()) {
    const n = i + 1;
    const start = GUEST_MARKERS.suiteStart.exec(text);
    if (start?.[1] !== undefined) suite = { suite: start[1], test: null, occurrence: 0, from: n, to: Number.POSITIVE_INFINITY };
    const end = GUEST_MARKERS.suiteEnd.exec(text);
    if (end?.[1] !== undefined && suite) {
      suites.push({ ...suite, to: n });
      suite = null;
    }
    const t = GUEST_MARKERS.test.exec(text);
    if (t?.[1] !== undefined && t[2] !== undefined) {
      if (t[3] === 'start') {
        const key = `${t[1]}\0${t[2]}`;
        const occurrence = seen.get(key) ?? 0;
        seen.set(key, occurrence + 1);
        test = { suite: t[1], test: t[2], occurrence, from: n, to: Number.POSITIVE_INFINITY };
      } else if (test) {
        tests.push({ ...test, to: n });
        test = null;
      }
    }
  }
  if (suite) suites.push(suite);
  if (test) tests.push(test);
  return (line) => tests.find((s) => line >= s.from && line <= s.to) ?? suites.find((s) => line >= s.from && line <= s.to) ?? null;
}

/** Judges the boot and test stages from one guest run. */
export function judgeGuestRun(run: GuestRun): GuestVerdict {
  const lines = run.consoleLog.split(/\r?\n/);
  const initLine = lines.findIndex((l) => l.includes(GUEST_MARKERS.init)) + 1; // 0: never
  const finished = lines.some((l) => l.includes(GUEST_MARKERS.done));
  const crashes = findCrashes(run.consoleLog);

  if (initLine === 0) {
    const fatal = crashes.find((c) => c.kind !== 'warning') ?? crashes[0];
    let summary: string;
    if (fatal) summary = `kernel crashed during boot: ${fatal.title}`;
    else if (run.timedOut) summary = `the kernel did not reach init within ${run.timeoutSeconds}s`;
    else summary = `the kernel stopped before init (QEMU exit ${run.exitCode ?? 'unknown'})`;
    return { boot: { status: 'FAIL', summary }, test: null, results: [], crashes };
  }

  const bootSplats = crashes.filter((c) => c.line < initLine);
  const boot = bootSplats[0]
    ? { status: 'FAIL' as const, summary: `kernel ${bootSplats[0].kind} during boot: ${bootSplats[0].title}` }
    : { status: 'PASS' as const, summary: 'booted to init' };

  const doc = parseKtap(run.ktap);
  // A suite listed more than once (re-runs) comes back as "NAME #N" from
  // the KTAP: its rows keep the suite's name, in run order.
  const suiteName = (top: string | undefined): string => {
    if (top === undefined) return '(unknown)';
    const m = / #\d+$/.exec(top);
    const bare = m ? top.slice(0, m.index) : top;
    return m && run.suites.includes(bare) ? bare : top;
  };
  const results: TestResult[] = flattenKtap(doc).map((r) => ({
    suite: suiteName(r.path[0]),
    test: r.path.length > 1 ? r.path.slice(1).join('.') : '(suite)',
    status: r.status,
    detail: r.detail,
  }));

  // Suites with no result at all: the guest stopped before them.
  for (const suite of run.suites) {
    if (!results.some((r) => r.suite === suite)) {
      results.push({
        suite,
        test: '(suite)',
        status: 'ERROR',
        detail: finished ? 'the suite printed no result' : 'not run: the guest stopped before this suite finished',
      });
    }
  }

  // A splat while a test ran fails that test, whatever it printed; one
  // outside any test fails its suite as a row of its own.
  const at = spansOf(lines);
  for (const c of crashes.filter((x) => x.line >= initLine)) {
    const span = at(c.line);
    const what = `kernel ${c.kind}: ${c.title} [${c.fingerprint}]${c.culprit ? ` in ${c.culprit}` : ''}`;
    if (span?.test != null) {
      const rows = results.filter((r) => r.suite === span.suite && r.test === span.test);
      const row = rows[span.occurrence];
      if (row) {
        row.status = 'FAIL';
        if (!row.detail.includes(c.fingerprint)) row.detail = row.detail === '' ? what : `${what}\n${row.detail}`;
      } else {
        // The guest died in this test (a panic): it never printed a result.
        results.push({ suite: span.suite, test: span.test, status: 'FAIL', detail: what });
      }
      continue;
    }
    results.push({ suite: span?.suite ?? '(between suites)', test: `kernel-${c.kind}`, status: 'FAIL', detail: what });
  }

  if (!finished && run.timedOut) {
    const running = at(lines.length)?.suite ?? null;
    results.push({
      suite: running ?? '(guest)',
      test: '(timeout)',
      status: 'ERROR',
      detail: `the guest did not finish within ${run.timeoutSeconds}s`,
    });
  }

  const status = worstStatus(results.map((r) => r.status)) ?? 'ERROR';
  const counts = countStatuses(results);
  const testSummary =
    results.length === 0 ? 'no test results' : Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ');
  return { boot, test: { status, summary: testSummary }, results, crashes };
}

export function countStatuses(results: ReadonlyArray<{ status: Status }>): Partial<Record<Status, number>> {
  const counts: Partial<Record<Status, number>> = {};
  for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
}

/** The job's status and the stage it is attributed to, from its stage runs in order. */
export function overallStatus(stages: readonly StageRun[]): { status: Status; stage: StageName | null; summary: string } {
  for (const s of stages) {
    if (s.status === 'MISS' || s.status === 'FAIL' || s.status === 'ERROR') {
      return { status: s.status, stage: s.stage, summary: `${s.stage}: ${s.summary}` };
    }
  }
  // Everything before the tests passed: the tests say PASS or SKIP (all skipped).
  const last = stages[stages.length - 1];
  if (!last) return { status: 'MISS', stage: 'setup', summary: 'no stage ran' };
  return { status: last.status, stage: null, summary: last.summary };
}

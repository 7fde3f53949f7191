/**
 * A job's result and how its verdict is reached: pure functions from what
 * the stages produced (git's output, the build log, the console, the KTAP
 * channel) to statuses. The executor runs things; this decides.
 */
import type { ApplyFailure, BuildMode, CompilerDiagnostic } from './build.ts';
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
  results: TestResult[];
  crashes: CrashReport[];
  applyFailure: ApplyFailure | null;
  buildErrors: CompilerDiagnostic[];
  error: { code: string; message: string } | null;
  artifactsDir: string | null;
  artifacts: string[];
  startedAt: string;
  durationMs: number;
}

/** Markers the guest init prints on the console. */
export const GUEST_MARKERS = {
  init: 'patchbay: init started',
  suiteStart: /^(?:\[[\s\d.]+\]\s*)?patchbay: suite (\S+) start/,
  suiteEnd: /^(?:\[[\s\d.]+\]\s*)?patchbay: suite (\S+) end/,
  done: 'patchbay: all suites done',
} as const;

export interface GuestRun {
  consoleLog: string;
  ktap: string;
  /** QEMU's exit status; null if it was killed by the boot timeout. */
  exitCode: number | null;
  timedOut: boolean;
  timeoutSeconds: number;
  suites: readonly string[];
}

export interface GuestVerdict {
  boot: { status: Status; summary: string };
  test: { status: Status; summary: string } | null;
  results: TestResult[];
  crashes: CrashReport[];
}

/** Which suite was running at each console line (null before/between suites). */
function suiteAtLine(lines: readonly string[]): (line: number) => string | null {
  const spans: Array<{ suite: string; from: number; to: number }> = [];
  let open: { suite: string; from: number } | null = null;
  lines.forEach((text, i) => {
    const start = GUEST_MARKERS.suiteStart.exec(text);
    if (start?.[1] !== undefined) open = { suite: start[1], from: i + 1 };
    const end = GUEST_MARKERS.suiteEnd.exec(text);
    if (end?.[1] !== undefined && open) {
      spans.push({ ...open, to: i + 1 });
      open = null;
    }
  });
  const last = open as { suite: string; from: number } | null;
  if (last) spans.push({ ...last, to: Number.POSITIVE_INFINITY });
  return (line) => spans.find((s) => line >= s.from && line <= s.to)?.suite ?? null;
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
  const results: TestResult[] = flattenKtap(doc).map((r) => ({
    suite: r.path[0] ?? '(unknown)',
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

  // A splat while a suite ran fails that suite, whatever its tests printed.
  const suiteAt = suiteAtLine(lines);
  for (const c of crashes.filter((x) => x.line >= initLine)) {
    const suite = suiteAt(c.line) ?? '(between suites)';
    results.push({
      suite,
      test: `kernel-${c.kind}`,
      status: 'FAIL',
      detail: `${c.title} [${c.fingerprint}]${c.culprit ? ` in ${c.culprit}` : ''}`,
    });
  }

  if (!finished && run.timedOut) {
    const running = suiteAt(lines.length);
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

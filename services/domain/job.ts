/**
 * A job's result and how its verdict is reached: pure functions from what
 * the stages produced (git's output, the build log, the console, the KTAP
 * channel) to statuses. The executor runs things; this decides.
 */
import type { ApplyFailure, BuildMode, CompilerDiagnostic } from './build.ts';
import type { BootSplat, ComparedResult, SplatComparison } from './compare.ts';
import { findCrashes, type CrashReport } from './console.ts';
import type { PrerequisitesApplied } from './prerequisites.ts';
import { flattenKtap, KTAP_MISSING, KTAP_TRUNCATED, ktapProblemLines, parseKtap } from './ktap.ts';
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

/** What a running job reports as it goes: the live log, the stage timeline, metrics. */
export type JobEvent =
  | { type: 'stage-start'; stage: StageName }
  | { type: 'stage-end'; stage: StageName; status: Status; durationMs: number; summary: string }
  | { type: 'log'; stage: StageName; text: string };

/** How the series' results were compared with the base kernel's. */
export interface BaseComparison {
  /** The base commit; with prerequisites, the commit they were applied on. */
  commit: string;
  /**
   * Prerequisite patches applied on the commit to make the base kernel (the
   * series' own kernel has them too). Absent in results recorded before
   * prerequisites existed: none.
   */
  prerequisites?: number;
  /** The base kernel for people: "<commit> + N prerequisite patch(es)", or the commit alone (describeBase). */
  kernel?: string;
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
  /**
   * The rule that picked baseCommit: requested (the job named it; the lore
   * watcher names the base its own rule found), base-commit (the series'
   * trailer), or tree-ref (neither: the tree's ref, a guess the job page
   * and reports say is one).
   */
  baseRule?: 'requested' | 'base-commit' | 'tree-ref';
  headCommit: string | null;
  series: { title: string; version: number; patches: number } | null;
  /**
   * The prerequisite patches the job applied on the base before the series
   * (on both kernels), null when it had none. Absent in results recorded
   * before prerequisites existed: read absent as null.
   */
  prerequisites?: PrerequisitesApplied | null;
  suites: string[];
  accel: 'kvm' | 'tcg' | null;
  buildMode: BuildMode | null;
  stages: StageRun[];
  /** Every test of the series' run, compared with the base. */
  results: ComparedResult[];
  /** Null when the tests did not run (the job ended before them). */
  base: BaseComparison | null;
  crashes: CrashReport[];
  /** Every kernel splat fingerprint, counted per boot on each kernel and judged (absent in results recorded before issue 11). */
  splats?: SplatComparison[];
  /** The series' first run's KTAP problems (see GuestVerdict); absent in results recorded before issue 11. */
  ktapProblems?: string[];
  applyFailure: ApplyFailure | null;
  buildErrors: CompilerDiagnostic[];
  error: { code: string; message: string } | null;
  artifactsDir: string | null;
  artifacts: string[];
  startedAt: string;
  durationMs: number;
  /** The image, compiler, QEMU and kernel configuration the job ran with; absent in results recorded before issue 13. */
  environment?: JobEnvironment;
}

/** The build and run environment a job recorded (JobResult.environment); absent in results recorded before issue 13. */
export interface JobEnvironment {
  /** The runner image the job ran in: its tag and Docker image id. */
  image: { tag: string; id: string } | null;
  /** `gcc --version`'s first line in that image, e.g. "gcc (Debian 14.2.0-19) 14.2.0". */
  compiler: string | null;
  /** `qemu-system-x86_64 --version`'s first line. */
  qemu: string | null;
  /** The QEMU command line the guest boots with, as boot.sh runs it (paths inside the job container). */
  qemuCommand: string | null;
  /** The kernel configuration: how it was made, and the fragments merged, in order (repository paths). */
  config: { base: string; fragments: string[]; sha256: string | null } | null;
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
  /** Suites whose run finished (init printed their end marker), in order: a test absent from one is missing there. */
  completed: string[];
  /** Each splat fingerprint once, where it first came. */
  splats: BootSplat[];
  /**
   * What was wrong with the structure of the guest's KTAP (ktap.txt), one
   * line each, at most 20, the last then counting the rest; line numbers
   * are ktap.txt's. Empty when it was well formed.
   */
  ktapProblems: string[];
}

/** The kernel's first line ("Linux version 7.1.8 (...)"): the kernel started. */
const KERNEL_BANNER = /(?:^|\]\s*)Linux version \d/;

/** Each fingerprint once, at its first report, with the suite and test running then (none before init). */
function bootSplats(crashes: readonly CrashReport[], initLine: number, at: (line: number) => Span | null): BootSplat[] {
  const out = new Map<string, BootSplat>();
  for (const c of crashes) {
    if (out.has(c.fingerprint)) continue;
    const span = initLine === 0 || c.line < initLine ? null : at(c.line);
    out.set(c.fingerprint, { fingerprint: c.fingerprint, kind: c.kind, title: c.title, culprit: c.culprit, suite: span?.suite ?? null, test: span?.test ?? null });
  }
  return [...out.values()];
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
  // Spans are in order and do not overlap: the last one starting at or before the line, if it is still open there.
  const find = (spans: readonly Span[], line: number): Span | null => {
    let lo = 0;
    let hi = spans.length - 1;
    let best: Span | null = null;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = spans[mid];
      if (s === undefined) break;
      if (s.from <= line) {
        best = s;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return best !== null && line <= best.to ? best : null;
  };
  return (line) => find(tests, line) ?? find(suites, line);
}

const KTAP_SUITE_BLOCK = /^ {4}# Subtest: (\S+)\s*$/;
const KTAP_TOP_RESULT = /^(?:not )?ok \d+\b/;
const SUITE_START_TIMEOUT = /^(?:\[[\s\d.]+\]\s*)?patchbay: suite (\S+) start(?: \(timeout (\d+)s\))?/;
const SUITE_END_RC = /^(?:\[[\s\d.]+\]\s*)?patchbay: suite (\S+) end \(exit (\d+)\)/;

/**
 * A suite's own result line ("ok N NAME", printed by init after the suite)
 * can be lost on the KTAP channel (seen under TCG, at the end and between
 * suites, with every subtest line there). When the console shows init's
 * end marker for that same suite run, its exit code gives the line init
 * printed (images/guest/init: 0 ok, 4/77 skip, 124/137 timeout with the
 * seconds of the start marker, else not ok), put back where it belongs,
 * with a note. A block without an end marker (the guest died in the
 * suite) is left as it came.
 */
export function restoreLastResult(ktap: string, consoleLines: readonly string[]): { ktap: string; notes: string[] } {
  const lines = ktap.split('\n');
  const blocks: Array<{ at: number; name: string }> = [];
  for (let i = 0; i < lines.length; i++) {
    const m = KTAP_SUITE_BLOCK.exec(lines[i] ?? '');
    if (m?.[1] !== undefined) blocks.push({ at: i, name: m[1] });
  }
  if (blocks.length === 0) return { ktap, notes: [] };
  const marks = (re: RegExp): Array<{ suite: string; value: string }> => consoleLines.flatMap((l) => {
    const m = re.exec(l);
    return m?.[1] === undefined ? [] : [{ suite: m[1], value: m[2] ?? '' }];
  });
  const ends = marks(SUITE_END_RC);
  const starts = marks(SUITE_START_TIMEOUT);
  const inserts = new Map<number, string>();
  const notes: string[] = [];
  blocks.forEach((b, k) => {
    const next = blocks[k + 1]?.at ?? lines.length;
    if (lines.slice(b.at + 1, next).some((l) => KTAP_TOP_RESULT.test(l))) return;
    const end = ends[k];
    if (end?.suite !== b.name || end.value === '') return;
    const rc = Number(end.value);
    const start = starts[k];
    const seconds = start?.suite === b.name && start.value !== '' ? ` ${start.value} seconds` : '';
    const n = k + 1;
    const line = rc === 0 ? `ok ${n} ${b.name}`
      : rc === 4 || rc === 77 ? `ok ${n} ${b.name} # SKIP suite reported skip (exit ${rc})`
        : rc === 124 || rc === 137 ? `not ok ${n} ${b.name} # TIMEOUT${seconds}`
          : `not ok ${n} ${b.name} # exit=${rc}`;
    // Before the next block's "# Subtest:" line, or after the last line of the document.
    let at = next;
    if (k === blocks.length - 1) {
      at = lines.length;
      while (at > 0 && lines[at - 1] === '') at--;
    }
    inserts.set(at, line);
    notes.push(`the KTAP channel lost suite ${b.name}'s result line (suite ${n}); it was taken from the console's end marker (exit ${rc})`);
  });
  if (inserts.size === 0) return { ktap, notes: [] };
  const out: string[] = [];
  for (let i = 0; i <= lines.length; i++) {
    const add = inserts.get(i);
    if (add !== undefined) out.push(add);
    if (i < lines.length) out.push(lines[i] ?? '');
  }
  let text = out.join('\n');
  if (!text.endsWith('\n')) text += '\n';
  return { ktap: text, notes };
}

/** Judges the boot and test stages from one guest run. */
export function judgeGuestRun(run: GuestRun): GuestVerdict {
  const lines = run.consoleLog.split(/\r?\n/);
  const initLine = lines.findIndex((l) => l.includes(GUEST_MARKERS.init)) + 1; // 0: never
  const finished = lines.some((l) => l.includes(GUEST_MARKERS.done));
  const crashes = findCrashes(run.consoleLog);
  const completed = [...new Set(lines.flatMap((l) => {
    const m = GUEST_MARKERS.suiteEnd.exec(l);
    return m?.[1] === undefined ? [] : [m[1]];
  }))];

  const at = spansOf(lines);
  const splats = bootSplats(crashes, initLine, at);

  if (initLine === 0) {
    // FAIL only once the kernel is seen to have started: its banner, then a
    // crash, a hang or a stop. No banner: QEMU or the harness failed.
    const fatal = crashes.find((c) => c.kind !== 'warning') ?? crashes[0];
    const started = lines.some((l) => KERNEL_BANNER.test(l));
    let boot: GuestVerdict['boot'];
    if (fatal) boot = { status: 'FAIL', summary: `kernel crashed during boot: ${fatal.title}` };
    else if (!started) boot = { status: 'MISS', summary: `no kernel banner on the console: QEMU or the harness failed before the kernel started (QEMU exit ${run.timedOut ? 'timeout' : run.exitCode ?? 'unknown'})` };
    else if (run.timedOut) boot = { status: 'FAIL', summary: `the kernel started but did not reach init within ${run.timeoutSeconds}s` };
    else boot = { status: 'FAIL', summary: `the kernel started and stopped before init (QEMU exit ${run.exitCode ?? 'unknown'})` };
    return { boot, test: null, results: [], crashes, completed, splats, ktapProblems: [] };
  }

  // A splat at boot is judged against the base's boots (test stage), not here.
  const early = splats.filter((x) => x.suite === null).length;
  const boot = { status: 'PASS' as const, summary: early > 0 ? `booted to init, with ${early} kernel splat(s) on the way (compared with the base's boots)` : 'booted to init' };

  const restored = restoreLastResult(run.ktap, lines);
  const doc = parseKtap(restored.ktap);
  // A suite listed more than once (re-runs) comes back as "NAME #N" from
  // the KTAP: its rows keep the suite's name, in run order.
  const suiteName = (top: string | undefined): string => {
    if (top === undefined) return '(unknown)';
    const m = / #\d+$/.exec(top);
    const bare = m ? top.slice(0, m.index) : top;
    return m && run.suites.includes(bare) ? bare : top;
  };
  // Top-level tests the parser made up: a suite with no result at all
  // ("(missing)") is left to the "not run" rows below; an unfinished block
  // no "# Subtest:" line named ("(truncated)", an older init) is the suite
  // at its position (init numbers suites in run order).
  const tops = doc.tests.flatMap((t) => {
    if (t.name === KTAP_MISSING) return [];
    const slot = t.name === KTAP_TRUNCATED && t.number !== null ? run.suites[t.number - 1] : undefined;
    return [slot === undefined ? t : { ...t, name: slot }];
  });
  const results: TestResult[] = flattenKtap({ ...doc, tests: tops }).map((r) => ({
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

  // A splat is evidence about the kernel, judged per boot against the
  // base's (services/domain/compare.ts, compareSplats), not per test: a
  // WARN_ON_ONCE lands in whichever test reaches it first. The test it came
  // in keeps its own result and gets a note; a test the kernel died in,
  // which printed no result, is an ERROR row.
  const rowsOf = new Map<string, TestResult[]>();
  for (const r of results) {
    const k = `${r.suite}\0${r.test}`;
    const list = rowsOf.get(k);
    if (list) list.push(r);
    else rowsOf.set(k, [r]);
  }
  const rowOf = (span: Span): TestResult | undefined => rowsOf.get(`${span.suite}\0${span.test ?? ''}`)?.[span.occurrence];
  const addRow = (r: TestResult): void => {
    results.push(r);
    rowsOf.set(`${r.suite}\0${r.test}`, [...(rowsOf.get(`${r.suite}\0${r.test}`) ?? []), r]);
  };
  for (const c of crashes.filter((x) => x.line >= initLine)) {
    const span = at(c.line);
    if (span?.test == null) continue;
    const what = `kernel ${c.kind} while this test ran: ${c.title} [${c.fingerprint}]${c.culprit ? ` in ${c.culprit}` : ''} (judged per kernel, against the base's boots)`;
    const row = rowOf(span);
    if (row) {
      if (!row.detail.includes(c.fingerprint)) row.detail = row.detail === '' ? what : `${what}\n${row.detail}`;
    } else {
      addRow({ suite: span.suite, test: span.test, status: 'ERROR', detail: `did not finish: ${what}` });
    }
  }

  if (!finished && run.timedOut) {
    // The test that was running when time ran out, if any, takes the
    // timeout (it can be re-run); else its suite, or the guest as a whole.
    const span = at(lines.length);
    const detail = `the guest did not finish within ${run.timeoutSeconds}s`;
    if (span?.test != null && rowOf(span) === undefined) addRow({ suite: span.suite, test: span.test, status: 'ERROR', detail: `did not finish: ${detail} while this test ran` });
    else results.push({ suite: span?.suite ?? '(guest)', test: '(timeout)', status: 'ERROR', detail });
  }

  const status = worstStatus(results.map((r) => r.status)) ?? 'ERROR';
  const counts = countStatuses(results);
  const testSummary =
    results.length === 0 ? 'no test results' : Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ');
  return { boot, test: { status, summary: testSummary }, results, crashes, completed, splats, ktapProblems: [...restored.notes, ...ktapProblemLines(doc.problems)] };
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

/**
 * A result with nothing learned yet: MISS, no stages, no tests. The
 * executor starts every job's result from one; the store records one for a
 * job whose runner vanished on its last attempt.
 */
export function blankResult(fields: Pick<JobResult, 'jobId' | 'tree' | 'suites' | 'series' | 'startedAt'> & Partial<JobResult>): JobResult {
  return {
    status: 'MISS',
    stage: null,
    summary: '',
    baseCommit: null,
    headCommit: null,
    accel: null,
    buildMode: null,
    stages: [],
    results: [],
    base: null,
    crashes: [],
    splats: [],
    ktapProblems: [],
    applyFailure: null,
    buildErrors: [],
    error: null,
    artifactsDir: null,
    artifacts: [],
    durationMs: 0,
    ...fields,
  };
}

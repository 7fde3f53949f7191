/**
 * Guest runs: one QEMU boot of a kernel with a plan of suite runs, judged
 * into a verdict. The series' kernel, the base kernel and their re-runs all
 * go through here.
 */
import type { SuiteManifest } from '../../services/catalog/suites.ts';
import { PatchbayError } from '../../services/domain/errors.ts';
import { GUEST_MARKERS, type GuestRun, type GuestVerdict, judgeGuestRun } from '../../services/domain/job.ts';
import { QemuCommandPicker } from './environment.ts';
import { type ArtifactsDir, JOB_IN, JOB_OUT, type Sandbox } from './sandbox.ts';

/** One run of a suite; tests, when given, limit it to those (and their subtests). */
export interface PlanLine {
  suite: SuiteManifest;
  tests: readonly string[];
}

export interface GuestBoot {
  /** A name for the run's files: "series", "base", "rerun-series", ... */
  name: string;
  accel: 'kvm' | 'tcg';
  /** The kernel, as a path inside the container. */
  kernel: string;
  plan: readonly PlanLine[];
  /** Container path of what build.tree produced for this kernel's tree, or null. */
  suiteExtra: string | null;
  bootTimeoutSeconds: number;
  onOutput?: (text: string) => void;
  /** Hears the QEMU command line boot.sh runs (its first line of output), as soon as it is printed. */
  onQemuCommand?: (command: string) => void;
  /** Keep the initramfs as an artifact, up to this size (the series' own run). */
  initramfsLimitBytes?: number;
}

export interface GuestOutcome extends GuestVerdict {
  exitCode: number | null;
  timedOut: boolean;
  /** File names, in the artifacts folder, of this run's console and KTAP. */
  files: { console: string; ktap: string };
  /** The run as the guest printed it (what the verdict was read from). */
  raw: GuestRun;
}

/** QEMU's limit: the boot itself plus every suite run's own limit. */
export function guestTimeout(boot: Pick<GuestBoot, 'plan' | 'bootTimeoutSeconds'>): number {
  return boot.bootTimeoutSeconds + boot.plan.reduce((sum, l) => sum + l.suite.timeoutSeconds, 0);
}

/**
 * The first run of the suites: one line each, limited to the tests the
 * job's filter names for it (testsBySuite), whole when it names none.
 */
export function planFor(suites: readonly SuiteManifest[], only: ReadonlyMap<string, readonly string[]>): PlanLine[] {
  return suites.map((suite) => ({ suite, tests: only.get(suite.name) ?? [] }));
}

export function planText(plan: readonly PlanLine[]): string {
  return plan.map((l) => [l.suite.name, ...l.tests].join(' ')).join('\n') + (plan.length > 0 ? '\n' : '');
}

/**
 * boot.sh's exit statuses besides QEMU's own (images/runner/stages/boot.sh
 * documents the contract): QEMU killed by a signal the timeout did not
 * send, QEMU stopped by the timeout, the harness failed.
 */
export const BOOT_EXIT = { killed: 123, timeout: 124, harness: 125 } as const;

/** How long boot.sh may run beyond QEMU's limit (the executor's own timeout on the exec). */
export const BOOT_SCRIPT_SLACK_SECONDS = 60;

/** What the exec of boot.sh returned, and how long it ran. */
export interface BootExec {
  exitCode: number;
  /** The exec wrapper's word: exit 124 or 137 (its own timeout, or a SIGKILL from anyone). */
  timedOut: boolean;
  tail: string;
  seconds: number;
}

function lastMatch(text: string, re: RegExp): RegExpExecArray | null {
  let found: RegExpExecArray | null = null;
  for (const m of text.matchAll(re)) found = m;
  return found;
}

function tailLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

/**
 * What boot.sh's exit says about QEMU: it exited (with its status) or ran
 * out of its time. Throws a retryable PatchbayError (MISS) when nothing about
 * the kernel follows from it: the harness failed, QEMU (or boot.sh itself)
 * was killed by a signal nobody's timeout sent, boot.sh outlived its own
 * limit, or the container went away.
 */
export function bootScriptOutcome(r: BootExec, guestSeconds: number): { exitCode: number; timedOut: boolean } {
  const execLimit = guestSeconds + BOOT_SCRIPT_SLACK_SECONDS;
  const ran = `after ${Math.round(r.seconds)}s`;
  if (r.exitCode === -1) {
    throw new PatchbayError('GUEST_HARNESS', `the boot was cut off ${ran}: its container is gone`, { retryable: true });
  }
  if (r.timedOut && r.seconds >= execLimit) {
    throw new PatchbayError('GUEST_HARNESS', `boot.sh did not end within ${execLimit}s (QEMU's ${guestSeconds}s and ${BOOT_SCRIPT_SLACK_SECONDS}s more) and was stopped: ${tailLines(r.tail, 2)}`, { retryable: true });
  }
  if (r.exitCode === BOOT_EXIT.harness || r.exitCode === 126 || r.exitCode === 127) {
    const said = lastMatch(r.tail, /^patchbay: boot harness failed: (.*)$/gm)?.[1];
    throw new PatchbayError('GUEST_HARNESS', `the boot harness failed before the kernel could be judged (exit ${r.exitCode}): ${said ?? tailLines(r.tail, 3)}`, { retryable: true });
  }
  if (r.exitCode === BOOT_EXIT.killed) {
    const sig = lastMatch(r.tail, /^patchbay: QEMU was killed by signal (\d+)/gm)?.[1] ?? '?';
    throw new PatchbayError('GUEST_KILLED', `QEMU was killed by signal ${sig}, not by the timeout: out of memory?`, { retryable: true, details: { signal: sig === '?' ? null : Number(sig), seconds: Math.round(r.seconds) } });
  }
  if (r.exitCode > 128) {
    // boot.sh itself (not QEMU) died of a signal before any limit: the OOM killer, most likely.
    throw new PatchbayError('GUEST_KILLED', `the boot script was killed by signal ${r.exitCode - 128} ${ran}, before its ${execLimit}s limit: out of memory?`, { retryable: true, details: { signal: r.exitCode - 128, seconds: Math.round(r.seconds) } });
  }
  if (r.exitCode === BOOT_EXIT.timeout) return { exitCode: r.exitCode, timedOut: true };
  return { exitCode: r.exitCode, timedOut: false };
}

/** The kernel's banner, the first thing it prints on the console. */
const BANNER = /^(?:\[[\s\d.]+\]\s*)?Linux version \d/m;
const KTAP_HEADER = /^\s*KTAP version \d/m;

/**
 * Whether the console and the KTAP channel are evidence enough to judge:
 * a retryable PatchbayError (MISS) when they are not, else null.
 * - No kernel banner and no crash: nothing shows that the kernel ran at all.
 * - The guest's init started (its marker on the console) but the KTAP
 *   channel has no `KTAP version` line, and no crash after init explains
 *   it: the channel is broken (the guest mirrors its KTAP on the console),
 *   and judging would give every suite a result it did not earn.
 */
export function guestEvidenceProblem(run: { consoleLog: string; ktap: string; exitCode: number | null; timedOut: boolean; timeoutSeconds: number }, verdict: Pick<GuestVerdict, 'crashes'>): PatchbayError | null {
  const how = run.timedOut ? `ran out of its ${run.timeoutSeconds}s` : `exited ${run.exitCode ?? '?'}`;
  if (!BANNER.test(run.consoleLog) && verdict.crashes.length === 0) {
    return new PatchbayError('GUEST_NO_BANNER', `QEMU ${how} before the kernel printed its banner: nothing shows the kernel ran`, { retryable: true });
  }
  const lines = run.consoleLog.split(/\r?\n/);
  const initLine = lines.findIndex((l) => l.includes(GUEST_MARKERS.init)) + 1;
  if (initLine > 0 && !KTAP_HEADER.test(run.ktap) && !verdict.crashes.some((c) => c.line >= initLine)) {
    const mirrored = lines.slice(initLine).some((l) => KTAP_HEADER.test(l));
    return new PatchbayError('GUEST_NO_KTAP', mirrored
      ? `the guest's init printed KTAP on the console but the KTAP channel (ttyS1) stayed empty (QEMU ${how}): no result can be trusted`
      : `the guest's init started but printed no KTAP (QEMU ${how}), and no crash explains it`, { retryable: true });
  }
  return null;
}

/**
 * Boots and judges, in a sandbox: the plan goes in read-only, boot.sh runs
 * as one stage, and the console and KTAP come out as capped regular files
 * into the artifacts folder. The primary run ("series") keeps the names
 * console.log and ktap.txt; others get a prefix.
 * Throws a retryable PatchbayError (MISS) when the run is no evidence about
 * the kernel (see bootScriptOutcome and guestEvidenceProblem); the files
 * are collected first, so the artifacts show what happened.
 */
export async function runGuest(box: Sandbox, artifacts: ArtifactsDir, boot: GuestBoot, logLimitBytes: number): Promise<GuestOutcome> {
  const prefix = boot.name === 'series' ? '' : `${boot.name}-`;
  const out = `${JOB_OUT}/guest-${boot.name}`;
  const plan = `${JOB_IN}/plan-${boot.name}.txt`;
  await box.put([{ type: 'file', path: plan, mode: 0o444, uid: 0, content: planText(boot.plan) }]);
  const timeout = guestTimeout(boot);
  const picker = boot.onQemuCommand === undefined ? null : new QemuCommandPicker(boot.onQemuCommand);
  const onOutput = picker === null ? boot.onOutput : (t: string): void => { picker.feed(t); boot.onOutput?.(t); };
  const r = await box.stage(async (c): Promise<BootExec> => {
    const started = Date.now();
    const e = await c.exec(
      ['/opt/patchbay/stages/boot.sh', boot.accel, String(timeout), boot.kernel, out, plan],
      {
        timeoutSeconds: timeout + BOOT_SCRIPT_SLACK_SECONDS,
        env: { CONSOLE_LIMIT: String(logLimitBytes), ...(boot.suiteExtra === null ? {} : { SUITE_EXTRA: boot.suiteExtra }) },
        ...(onOutput ? { onOutput } : {}),
      },
    );
    return { ...e, seconds: (Date.now() - started) / 1000 };
  });
  const files = { console: `${prefix}console.log`, ktap: `${prefix}ktap.txt` };
  await box.collect(out, [
    { name: 'console.log', maxBytes: logLimitBytes, truncate: true },
    { name: 'ktap.txt', maxBytes: logLimitBytes, truncate: true },
    // The series' initramfs, for reproducing its boot by hand.
    ...(boot.name === 'series' && boot.initramfsLimitBytes !== undefined ? [{ name: 'initramfs.cpio.gz', maxBytes: boot.initramfsLimitBytes, truncate: false }] : []),
  ], artifacts.path, (n) => `${prefix}${n}`);
  const qemu = bootScriptOutcome(r, timeout);
  const run: GuestRun = {
    consoleLog: artifacts.readText(files.console),
    ktap: artifacts.readText(files.ktap),
    exitCode: qemu.timedOut ? null : qemu.exitCode,
    timedOut: qemu.timedOut,
    timeoutSeconds: timeout,
    suites: boot.plan.map((l) => l.suite.name),
  };
  const verdict = judgeGuestRun(run);
  const problem = guestEvidenceProblem(run, verdict);
  if (problem) throw problem;
  return { ...verdict, exitCode: run.exitCode, timedOut: run.timedOut, files, raw: run };
}

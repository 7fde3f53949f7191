/**
 * Guest runs: one QEMU boot of a kernel with a plan of suite runs, judged
 * into a verdict. The series' kernel, the base kernel and their re-runs all
 * go through here.
 */
import type { SuiteManifest } from '../../services/catalog/suites.ts';
import { type GuestVerdict, judgeGuestRun } from '../../services/domain/job.ts';
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
  /** Keep the initramfs as an artifact, up to this size (the series' own run). */
  initramfsLimitBytes?: number;
}

export interface GuestOutcome extends GuestVerdict {
  exitCode: number | null;
  timedOut: boolean;
  /** File names, in the artifacts folder, of this run's console and KTAP. */
  files: { console: string; ktap: string };
}

/** QEMU's limit: the boot itself plus every suite run's own limit. */
export function guestTimeout(boot: Pick<GuestBoot, 'plan' | 'bootTimeoutSeconds'>): number {
  return boot.bootTimeoutSeconds + boot.plan.reduce((sum, l) => sum + l.suite.timeoutSeconds, 0);
}

export function planText(plan: readonly PlanLine[]): string {
  return plan.map((l) => [l.suite.name, ...l.tests].join(' ')).join('\n') + (plan.length > 0 ? '\n' : '');
}

/**
 * Boots and judges, in a sandbox: the plan goes in read-only, boot.sh runs
 * as one stage, and the console and KTAP come out as capped regular files
 * into the artifacts folder. The primary run ("series") keeps the names
 * console.log and ktap.txt; others get a prefix.
 */
export async function runGuest(box: Sandbox, artifacts: ArtifactsDir, boot: GuestBoot, logLimitBytes: number): Promise<GuestOutcome> {
  const prefix = boot.name === 'series' ? '' : `${boot.name}-`;
  const out = `${JOB_OUT}/guest-${boot.name}`;
  const plan = `${JOB_IN}/plan-${boot.name}.txt`;
  await box.put([{ type: 'file', path: plan, mode: 0o444, uid: 0, content: planText(boot.plan) }]);
  const timeout = guestTimeout(boot);
  const r = await box.stage((c) => c.exec(
    ['/opt/patchbay/stages/boot.sh', boot.accel, String(timeout), boot.kernel, out, plan],
    {
      timeoutSeconds: timeout + 60,
      env: { CONSOLE_LIMIT: String(logLimitBytes), ...(boot.suiteExtra === null ? {} : { SUITE_EXTRA: boot.suiteExtra }) },
      ...(boot.onOutput ? { onOutput: boot.onOutput } : {}),
    },
  ));
  const files = { console: `${prefix}console.log`, ktap: `${prefix}ktap.txt` };
  await box.collect(out, [
    { name: 'console.log', maxBytes: logLimitBytes, truncate: true },
    { name: 'ktap.txt', maxBytes: logLimitBytes, truncate: true },
    // The series' initramfs, for reproducing its boot by hand.
    ...(boot.name === 'series' && boot.initramfsLimitBytes !== undefined ? [{ name: 'initramfs.cpio.gz', maxBytes: boot.initramfsLimitBytes, truncate: false }] : []),
  ], artifacts.path, (n) => `${prefix}${n}`);
  const timedOut = r.timedOut || r.exitCode === 124;
  const verdict = judgeGuestRun({
    consoleLog: artifacts.readText(files.console),
    ktap: artifacts.readText(files.ktap),
    exitCode: r.timedOut ? null : r.exitCode,
    timedOut,
    timeoutSeconds: timeout,
    suites: boot.plan.map((l) => l.suite.name),
  });
  return { ...verdict, exitCode: r.timedOut ? null : r.exitCode, timedOut, files };
}

/**
 * Guest runs: one QEMU boot of a kernel with a plan of suite runs, judged
 * into a verdict. The series' kernel, the base kernel and their re-runs all
 * go through here.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SuiteManifest } from '../../services/catalog/suites.ts';
import { type GuestVerdict, judgeGuestRun } from '../../services/domain/job.ts';
import type { JobContainer } from './docker.ts';

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
}

export interface GuestOutcome extends GuestVerdict {
  exitCode: number | null;
  timedOut: boolean;
  /** File names, under the job's out/, of this run's console and KTAP. */
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
 * Boots and judges. jobIn/jobOut are the host folders mounted at /job/in and
 * /job/out. The primary run ("series") keeps the historical file names
 * console.log and ktap.txt; others get a prefix.
 */
export async function runGuest(container: JobContainer, dirs: { in: string; out: string }, boot: GuestBoot): Promise<GuestOutcome> {
  const prefix = boot.name === 'series' ? '' : `${boot.name}-`;
  const sub = boot.name === 'series' ? '/job/out' : `/job/out/${boot.name}`;
  writeFileSync(join(dirs.in, `plan-${boot.name}.txt`), planText(boot.plan));
  const timeout = guestTimeout(boot);
  const r = await container.exec(
    ['/opt/patchbay/stages/boot.sh', boot.accel, String(timeout), boot.kernel, sub, `/job/in/plan-${boot.name}.txt`],
    {
      timeoutSeconds: timeout + 60,
      env: boot.suiteExtra === null ? {} : { SUITE_EXTRA: boot.suiteExtra },
      ...(boot.onOutput ? { onOutput: boot.onOutput } : {}),
    },
  );
  const hostSub = boot.name === 'series' ? dirs.out : join(dirs.out, boot.name);
  const consoleLog = readText(join(hostSub, 'console.log'));
  const ktap = readText(join(hostSub, 'ktap.txt'));
  // Runs other than the series' own keep their logs as top-level artifacts.
  if (prefix !== '') {
    writeFileSync(join(dirs.out, `${prefix}console.log`), consoleLog);
    writeFileSync(join(dirs.out, `${prefix}ktap.txt`), ktap);
  }
  const timedOut = r.timedOut || r.exitCode === 124;
  const verdict = judgeGuestRun({
    consoleLog,
    ktap,
    exitCode: r.timedOut ? null : r.exitCode,
    timedOut,
    timeoutSeconds: timeout,
    suites: boot.plan.map((l) => l.suite.name),
  });
  return { ...verdict, exitCode: r.timedOut ? null : r.exitCode, timedOut, files: { console: `${prefix}console.log`, ktap: `${prefix}ktap.txt` } };
}

function readText(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

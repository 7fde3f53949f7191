/**
 * The base kernel's results per suite, cached on the host: a second series
 * against the same base (commit, config, toolchain, suite version and
 * accelerator) compares with them without booting the base again.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestResult } from '../../services/domain/job.ts';

export interface BaseRunKeyParts {
  baseCommit: string;
  fragment: string;
  toolchain: string;
  /** What every suite's guest run shares: init, ktap.sh, boot.sh, the third-party builds. */
  guestInputs: string;
  /** A hash of the suite's catalogue folder. */
  suiteVersion: string;
  suite: string;
  accel: 'kvm' | 'tcg';
}

export function baseRunKey(p: BaseRunKeyParts): string {
  return createHash('sha256')
    .update(['base-run-v2', p.baseCommit, p.fragment, p.toolchain, p.guestInputs, p.suiteVersion, p.suite, p.accel].join('\0'))
    .digest('hex')
    .slice(0, 20);
}

export interface BaseRun {
  key: string;
  suite: string;
  baseCommit: string;
  results: TestResult[];
  /** The job whose run produced these results. */
  jobId: string;
  createdAt: string;
  durationMs: number;
}

export class BaseRunCache {
  constructor(private readonly dir: string) {}

  private path(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  get(key: string): BaseRun | null {
    try {
      const run = JSON.parse(readFileSync(this.path(key), 'utf8')) as BaseRun;
      return run.key === key && Array.isArray(run.results) ? run : null;
    } catch {
      return null;
    }
  }

  /** Written whole (a temporary file renamed), so a reader never sees half a run. */
  put(run: BaseRun): void {
    mkdirSync(this.dir, { recursive: true });
    const tmp = `${this.path(run.key)}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(run, null, 2)}\n`);
    renameSync(tmp, this.path(run.key));
  }
}

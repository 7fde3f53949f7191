/**
 * The base kernel's results per suite, cached on the host: a second series
 * against the same base (commit, config, toolchain, guest inputs, suite
 * version and accelerator) compares with them without booting the base
 * again. An entry records what it was computed from.
 *
 * A base run is evidence, not truth: every re-run boot of the base (a job
 * re-runs on both kernels each test its series does not plainly pass) is
 * added to the entry's history, one file per boot, and later comparisons
 * count the history too, so one flaky base failure is outweighed by the
 * passes that follow it. Only the base sandbox's own output is written here;
 * nothing a series wrote.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BootEvidence, BootSplat } from '../../services/domain/compare.ts';
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
    .update(['base-run-v3', p.baseCommit, p.fragment, p.toolchain, p.guestInputs, p.suiteVersion, p.suite, p.accel].join('\0'))
    .digest('hex')
    .slice(0, 20);
}

export interface BaseRun {
  key: string;
  suite: string;
  baseCommit: string;
  /** What the run was computed from (the key is a hash of these). */
  inputs: BaseRunKeyParts;
  /** The first, full run of the suite. */
  results: TestResult[];
  /** The kernel splats of the boot that ran it. */
  splats: BootSplat[];
  /** The job whose run produced these results. */
  jobId: string;
  createdAt: string;
  durationMs: number;
}

/** One re-run boot of the base, as stored: the suite's rows, whether it finished, the tests asked. */
interface StoredBoot {
  jobId: string;
  createdAt: string;
  results: TestResult[];
  completed: boolean;
  only: string[];
  splats: BootSplat[];
}

/** The most recent re-run boots a comparison counts; older ones stay on disk unread. */
export const BASE_HISTORY_BOOTS = 40;
/** Rows kept from one boot of one suite. */
const MAX_ROWS = 5000;
/** Splat fingerprints kept from one boot. */
const MAX_SPLATS = 100;

export class BaseRunCache {
  constructor(private readonly dir: string) {}

  private path(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  private historyDir(key: string): string {
    return join(this.dir, `${key}.boots`);
  }

  get(key: string): BaseRun | null {
    try {
      const run = JSON.parse(readFileSync(this.path(key), 'utf8')) as BaseRun;
      return run.key === key && Array.isArray(run.results) && Array.isArray(run.splats) && typeof run.inputs === 'object' ? run : null;
    } catch {
      return null;
    }
  }

  /** Written whole (a temporary file renamed), so a reader never sees half a run. */
  put(run: BaseRun): void {
    mkdirSync(this.dir, { recursive: true });
    writeWhole(this.path(run.key), run);
  }

  /** Adds one re-run boot of the base to a suite's history (a file of its own: no writer waits for another). */
  addBoot(key: string, suite: string, jobId: string, boot: BootEvidence): void {
    const dir = this.historyDir(key);
    mkdirSync(dir, { recursive: true });
    const createdAt = new Date().toISOString();
    const stored: StoredBoot = {
      jobId,
      createdAt,
      results: boot.results.filter((r) => r.suite === suite).slice(0, MAX_ROWS),
      completed: boot.completed.has(suite),
      only: boot.only === null ? [] : [...boot.only].filter((k) => k.startsWith(`${suite}\0`)).map((k) => k.slice(suite.length + 1)),
      splats: [...(boot.splats ?? [])].slice(0, MAX_SPLATS),
    };
    const name = `${createdAt.replace(/[^0-9]/g, '')}-${createHash('sha256').update(`${jobId}\0${process.pid}\0${Math.random()}`).digest('hex').slice(0, 12)}.json`;
    writeWhole(join(dir, name), stored);
  }

  /** The suite's most recent re-run boots, oldest first, as evidence. */
  history(key: string, suite: string): BootEvidence[] {
    let names: string[];
    try {
      names = readdirSync(this.historyDir(key)).filter((n) => /^\d+-[0-9a-f]{12}\.json$/.test(n)).sort().slice(-BASE_HISTORY_BOOTS);
    } catch {
      return [];
    }
    const boots: BootEvidence[] = [];
    for (const name of names) {
      try {
        const b = JSON.parse(readFileSync(join(this.historyDir(key), name), 'utf8')) as StoredBoot;
        if (!Array.isArray(b.results) || !Array.isArray(b.only)) continue;
        boots.push({
          results: b.results.filter((r) => r.suite === suite).slice(0, MAX_ROWS),
          completed: new Set(b.completed ? [suite] : []),
          only: new Set(b.only.map((t) => `${suite}\0${t}`)),
          splats: Array.isArray(b.splats) ? b.splats.slice(0, MAX_SPLATS) : [],
        });
      } catch {
        // A file being renamed into place, or damaged: not evidence.
      }
    }
    return boots;
  }
}

function writeWhole(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, path);
}

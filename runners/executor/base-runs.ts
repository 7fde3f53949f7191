/**
 * The base kernel's results per suite, cached on the host: a second series
 * against the same base (commit, config, toolchain, guest inputs, suite
 * version and accelerator) compares with them without booting the base
 * again. An entry records what it was computed from.
 *
 * What is kept is the evidence as the guest printed it (console and KTAP of
 * the boot, gzipped), not a reading of it: every read judges it again with
 * today's parser (judgeGuestRun), so a parser fix reaches cached runs, and
 * a run read wrongly once (a lost KTAP line, an older parser) is not read
 * wrongly forever.
 *
 * A base run is evidence, not truth: every re-run boot of the base (a job
 * re-runs on both kernels each test its series does not plainly pass) is
 * added to the entry's history, one file per boot, and later comparisons
 * count the history too, so one flaky base failure is outweighed by the
 * passes that follow it. Only the base sandbox's own output is written here;
 * nothing a series wrote. Files are read under a size cap.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, openSync, readSync, closeSync, fstatSync, readdirSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { BootEvidence, BootSplat } from '../../services/domain/compare.ts';
import { type GuestRun, type TestResult, judgeGuestRun } from '../../services/domain/job.ts';

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
  /**
   * The suite's tests a filtered job runs (JobInput.only); absent or empty:
   * the whole suite. A filtered run's base is a run of the same tests: it
   * is kept under a key of its own, so it never stands for a whole run of
   * the suite, nor a whole run for it.
   */
  only?: readonly string[];
}

export function baseRunKey(p: BaseRunKeyParts): string {
  // v4: entries hold the raw boot (v3 held rows read by the parser of the day).
  const parts = ['base-run-v4', p.baseCommit, p.fragment, p.toolchain, p.guestInputs, p.suiteVersion, p.suite, p.accel];
  // A whole suite's key is what it was before filters existed (no part is added).
  const only = [...new Set(p.only ?? [])].sort();
  if (only.length > 0) parts.push(`only:${JSON.stringify(only)}`);
  return createHash('sha256')
    .update(parts.join('\0'))
    .digest('hex')
    .slice(0, 20);
}

/** A cached first run of a suite on the base, as stored. */
export interface BaseRun {
  key: string;
  suite: string;
  baseCommit: string;
  /** What the run was computed from (the key is a hash of these). */
  inputs: BaseRunKeyParts;
  /** The boot that ran it (maybe with other suites), as the guest printed it. */
  boot: GuestRun;
  /** The job whose run produced it. */
  jobId: string;
  createdAt: string;
  durationMs: number;
}

/** A cached run as read: the stored entry, judged now. */
export interface BaseRunRead {
  run: BaseRun;
  /** The suite's rows of the boot, as today's parser reads them. */
  results: TestResult[];
  /** The kernel splats of the boot. */
  splats: BootSplat[];
}

/** One re-run boot of the base, as stored: the boot, and the suite's tests it was asked for. */
interface StoredBoot {
  jobId: string;
  createdAt: string;
  boot: GuestRun;
  only: string[];
}

/** The most recent re-run boots a comparison counts; older ones stay on disk unread. */
export const BASE_HISTORY_BOOTS = 40;
/** Rows kept from one boot of one suite. */
const MAX_ROWS = 5000;
/** Splat fingerprints kept from one boot. */
const MAX_SPLATS = 100;
/** A stored file larger than this, gzipped or not, is not read (the console and KTAP are capped far below). */
export const BASE_RUN_MAX_FILE_BYTES = 256 * 1024 * 1024;

const isGuestRun = (b: unknown): b is GuestRun => {
  const g = b as Partial<GuestRun> | null;
  return typeof g === 'object' && g !== null && typeof g.consoleLog === 'string' && typeof g.ktap === 'string'
    && (g.exitCode === null || typeof g.exitCode === 'number') && typeof g.timedOut === 'boolean'
    && typeof g.timeoutSeconds === 'number' && Array.isArray(g.suites) && g.suites.every((s) => typeof s === 'string');
};

export class BaseRunCache {
  constructor(private readonly dir: string) {}

  private path(key: string): string {
    return join(this.dir, `${key}.json.gz`);
  }

  private historyDir(key: string): string {
    return join(this.dir, `${key}.boots`);
  }

  /** The suite's cached first run on the base, judged now; null when absent or unreadable. */
  get(key: string): BaseRunRead | null {
    const run = readJson(this.path(key)) as BaseRun | null;
    if (run === null || run.key !== key || typeof run.suite !== 'string' || typeof run.inputs !== 'object' || !isGuestRun(run.boot)) return null;
    // Its last use, for garbage collection (gc.ts): the least recently used go first.
    try {
      const now = new Date();
      utimesSync(this.path(key), now, now);
    } catch {
      // A read-only cache, or removed meanwhile: the run read stands.
    }
    const verdict = judgeGuestRun(run.boot);
    return {
      run,
      results: verdict.results.filter((r) => r.suite === run.suite).slice(0, MAX_ROWS),
      splats: verdict.splats.slice(0, MAX_SPLATS),
    };
  }

  /** Written whole (a temporary file renamed), so a reader never sees half a run. */
  put(run: BaseRun): void {
    mkdirSync(this.dir, { recursive: true });
    writeWhole(this.path(run.key), run);
  }

  /** Adds one re-run boot of the base to a suite's history (a file of its own: no writer waits for another). */
  addBoot(key: string, suite: string, jobId: string, boot: GuestRun, only: ReadonlySet<string>): void {
    const dir = this.historyDir(key);
    mkdirSync(dir, { recursive: true });
    const createdAt = new Date().toISOString();
    const stored: StoredBoot = {
      jobId,
      createdAt,
      boot,
      only: [...only].filter((k) => k.startsWith(`${suite}\0`)).map((k) => k.slice(suite.length + 1)),
    };
    const name = `${createdAt.replace(/[^0-9]/g, '')}-${createHash('sha256').update(`${jobId}\0${process.pid}\0${Math.random()}`).digest('hex').slice(0, 12)}.json.gz`;
    writeWhole(join(dir, name), stored);
  }

  /** The suite's most recent re-run boots, oldest first, judged now, as evidence. */
  history(key: string, suite: string): BootEvidence[] {
    let names: string[];
    try {
      names = readdirSync(this.historyDir(key)).filter((n) => /^\d+-[0-9a-f]{12}\.json\.gz$/.test(n)).sort().slice(-BASE_HISTORY_BOOTS);
    } catch {
      return [];
    }
    const boots: BootEvidence[] = [];
    for (const name of names) {
      const b = readJson(join(this.historyDir(key), name)) as StoredBoot | null;
      // A file being renamed into place, or damaged: not evidence.
      if (b === null || !Array.isArray(b.only) || !isGuestRun(b.boot)) continue;
      const only = new Set(b.only.filter((t) => typeof t === 'string').map((t) => `${suite}\0${t}`));
      const verdict = judgeGuestRun(b.boot);
      boots.push({
        results: verdict.results.filter((r) => r.suite === suite && only.has(`${suite}\0${r.test}`)).slice(0, MAX_ROWS),
        completed: new Set(verdict.completed.includes(suite) ? [suite] : []),
        only,
        splats: verdict.splats.slice(0, MAX_SPLATS),
      });
    }
    return boots;
  }
}

function writeWhole(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, gzipSync(JSON.stringify(value)));
  renameSync(tmp, path);
}

/** A gzipped JSON file, read under BASE_RUN_MAX_FILE_BYTES both ways; null when absent, too large or damaged. */
function readJson(path: string): unknown {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const size = fstatSync(fd).size;
    if (size > BASE_RUN_MAX_FILE_BYTES) return null;
    const buf = Buffer.alloc(size);
    let at = 0;
    while (at < size) {
      const n = readSync(fd, buf, at, size - at, at);
      if (n === 0) break;
      at += n;
    }
    return JSON.parse(gunzipSync(buf.subarray(0, at), { maxOutputLength: BASE_RUN_MAX_FILE_BYTES }).toString('utf8')) as unknown;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

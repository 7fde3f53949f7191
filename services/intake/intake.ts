/**
 * Intake: from a series (an mbox) to queued jobs. Shared by the HTTP API, the
 * CLI and the lore watcher. Everything is validated before anything is
 * written, so bad input leaves nothing half-created; the database is written
 * before Redis, and reconcile() re-enqueues what the database holds as queued,
 * so a Redis outage between the two loses no job.
 */
import type { Logger } from 'pino';
import type { SuiteCatalog, SuiteManifest } from '../catalog/suites.ts';
import type { TreeCatalog } from '../catalog/trees.ts';
import { PatchbayError } from '../domain/errors.ts';
import { parseMbox } from '../domain/mbox.ts';
import { prerequisitesFromMbox } from '../domain/prerequisites.ts';
import { type Series, assembleSeries, seriesPaths } from '../domain/series.ts';
import type { JobQueue } from '../queue/job-queue.ts';
import { REDIS_FULL_MESSAGE, isRedisFull } from '../queue/redis.ts';
import { type Job, type JobPool, type SeriesRecord, type SeriesSource, type Store, jobIdempotencyKey, seriesContentHash } from '../store/db.ts';
import type { JobRequirements } from '../domain/runners.ts';
import { checkWithGit, patchIdsWithGit } from './mailinfo.ts';
import type { MailMessage } from '../domain/mbox.ts';

export interface SubmitRequest {
  /** The series as an mbox, a binary (latin1) string. */
  mbox: string;
  source: SeriesSource;
  inboxUrl: string | null;
  tree: string | null;
  base: string | null;
  /** The rule that picked `base` (services/intake/base.ts), recorded on the job; absent: none. */
  baseRule?: string | null;
  /**
   * Prerequisite patches (an mbox, latin1), applied on the base before the
   * series, in order (b4's prerequisite-patch-id). Checked as the series
   * is; stored as a series of their own. Absent or null: none.
   */
  prerequisites?: string | null;
  suites: readonly string[] | null;
  /** A deliberate rerun: a new job even if this series was tested the same way. */
  force: boolean;
  /**
   * A rerun asked for once, by something with an identity of its own (a
   * reply command: its Message-ID): a new job as with force, but the same
   * rerunKey gives the same job again (asked twice, or again after a crash
   * between queuing it and recording the command). Absent or null: none.
   */
  rerunKey?: string | null;
  submittedBy: string | null;
  /** The most jobs submittedBy may have queued or running (JOB_QUOTA past it); null: no cap. */
  activeJobCap: number | null;
  /** What a lab runner must have to run it; a job with requirements goes to lab runners. Absent: none. */
  requires?: JobRequirements | null;
}

export interface SubmitResult {
  series: SeriesRecord;
  /** false: an existing job (same content, tree, base and suites) was returned. */
  created: boolean;
  jobs: Job[];
}

export interface IntakeDeps {
  store: Store;
  queue: JobQueue;
  trees: TreeCatalog;
  suites: SuiteCatalog;
  /** Suites for a submission that names none: a fixed list, or those the series' changed paths select. */
  defaultSuites: readonly string[] | 'by-paths';
  logger: Logger;
  /** Where a job without requirements goes (configuration `runners.dispatch`); absent: the in-cluster queue. */
  dispatch?: JobPool;
}

/** How long git may take to read a submission's patches (mailinfo.ts), and what it may write: 4x the mbox, at most this. */
export const MAILINFO_TIMEOUT_MS = 30_000;
export const MAILINFO_MAX_BYTES = 64 * 1024 * 1024;

/** git patch-id --stable of mails as git am reads them, under the same limits as a submission's check (the lore watcher's prerequisites). */
export const patchIds = (mails: readonly MailMessage[]): Promise<Array<string | null>> =>
  patchIdsWithGit(mails, { timeoutMs: MAILINFO_TIMEOUT_MS, maxBytes: MAILINFO_MAX_BYTES });

export class Intake {
  constructor(private readonly deps: IntakeDeps) {}

  /** Without a suites list: the configured defaults, or the suites the series' paths select. */
  private defaultSuites(series: Series): SuiteManifest[] {
    if (this.deps.defaultSuites !== 'by-paths') return this.deps.suites.select(this.deps.defaultSuites);
    return this.deps.suites.forPaths(seriesPaths(series));
  }

  /**
   * Parses and validates without writing anything; throws PatchbayError with a code for bad input.
   * With `checked` (the series check() took from git's reading), validates that series instead.
   */
  validate(req: SubmitRequest, checked?: Series): { series: Series; tree: string; suites: string[] } {
    const series = checked ?? assembleSeries(parseMbox(req.mbox));
    const tree = this.deps.trees.get(req.tree ?? this.deps.trees.trees[0]?.name ?? '').name;
    const suites = (req.suites ? this.deps.suites.select(req.suites) : this.defaultSuites(series)).map((s) => s.name);
    if (suites.length === 0) throw new PatchbayError('SUITES_EMPTY', 'no suites to run');
    if (req.base !== null && !/^[\w./~^-]{1,200}$/.test(req.base)) {
      throw new PatchbayError('BASE_INVALID', `base "${req.base.slice(0, 80)}" is not a commit id or ref`);
    }
    return { series, tree, suites };
  }

  /**
   * validate(), then every patch read as git am reads it (checkWithGit): where
   * git reads another diff, its files are the series' (and pick the suites).
   */
  async check(req: SubmitRequest): Promise<{ series: Series; tree: string; suites: string[]; prerequisites: Series | null }> {
    const { series } = this.validate(req);
    const maxBytes = Math.min(4 * req.mbox.length, MAILINFO_MAX_BYTES);
    const checked = this.validate(req, await checkWithGit(series, { timeoutMs: MAILINFO_TIMEOUT_MS, maxBytes }));
    const pre = req.prerequisites ?? null;
    if (pre === null) return { ...checked, prerequisites: null };
    // Prerequisites are mail from the list too: git's reading decides their files and path checks.
    const prerequisites = await checkWithGit(prerequisitesFromMbox(pre), { timeoutMs: MAILINFO_TIMEOUT_MS, maxBytes: Math.min(4 * pre.length, MAILINFO_MAX_BYTES) });
    return { ...checked, prerequisites };
  }

  async submit(req: SubmitRequest): Promise<SubmitResult> {
    const { series, tree, suites, prerequisites } = await this.check(req);
    const contentHash = seriesContentHash(series);
    const { store } = this.deps;
    const existing = await store.series.findByContentHash(contentHash);
    const record = existing ?? (await store.series.create({ series, source: req.source, inboxUrl: req.inboxUrl, submittedBy: req.submittedBy, contentHash }));
    const prerequisitesHash = prerequisites === null ? null : seriesContentHash(prerequisites);
    const preExisting = prerequisitesHash === null ? null : await store.series.findByContentHash(prerequisitesHash);
    const preRecord = prerequisites === null || prerequisitesHash === null ? null
      : preExisting ?? (await store.series.create({ series: prerequisites, source: req.source, inboxUrl: req.inboxUrl, submittedBy: req.submittedBy, contentHash: prerequisitesHash }));
    const requires = req.requires ?? {};
    const pool: JobPool = Object.keys(requires).length > 0 ? 'runners' : this.deps.dispatch ?? 'queue';
    const { job, created } = await store.jobs.createOrGet({
      seriesId: record.id,
      tree,
      base: req.base,
      baseRule: req.baseRule ?? null,
      prerequisitesId: preRecord?.id ?? null,
      suites,
      idempotencyKey: jobIdempotencyKey({ contentHash, tree, base: req.base, suites, prerequisitesHash, force: req.force, rerunKey: req.rerunKey ?? null }),
      // The deadline runs from when a worker starts it (the executor enforces it).
      deadlineAt: null,
      submittedBy: req.submittedBy,
      activeCap: req.activeJobCap,
      pool,
      requires,
    });
    // Lab runners take their jobs from the database (claims over the API); only the queue's go to Redis.
    if (job.pool === 'queue' && (created || job.status === 'queued')) {
      try {
        await this.deps.queue.enqueue(job.id);
      } catch (e) {
        if (isRedisFull(e)) {
          // Redis answers but is full: nothing is kept, and the caller is told now.
          if (created) await store.jobs.deleteQueued(job.id);
          if (existing === null) await store.series.deleteIfUnused(record.id);
          if (preRecord !== null && preExisting === null) await store.series.deleteIfUnused(preRecord.id);
          this.deps.logger.warn({ jobId: job.id, err: String(e) }, 'queue full; submission refused and undone');
          throw new PatchbayError('QUEUE_FULL', `${REDIS_FULL_MESSAGE}; nothing was recorded: submit again in a few minutes`, { retryable: true, cause: e });
        }
        // Redis is away: the job is recorded as queued; reconcile() enqueues it when Redis is back.
        this.deps.logger.warn({ jobId: job.id, err: String(e) }, 'enqueue failed; the reconciler will retry');
      }
    }
    this.deps.logger.info({ seriesId: record.id, jobId: job.id, created }, 'series submitted');
    return { series: record, created, jobs: [job] };
  }

  /** Enqueues every job the database holds as queued (idempotent: BullMQ job id = job id). */
  async reconcile(): Promise<number> {
    let n = 0;
    let cursor: string | undefined;
    do {
      const page = await this.deps.store.jobs.list({ limit: 200, status: 'queued', ...(cursor ? { cursor } : {}) });
      for (const job of page.items) {
        if (job.pool !== 'queue') continue;
        await this.deps.queue.enqueue(job.id);
        n++;
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    return n;
  }
}

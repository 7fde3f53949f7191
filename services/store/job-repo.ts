/**
 * Jobs: one series on one tree (and base) with a set of suites. Created
 * idempotently, moved queued -> running -> a verdict (or cancelled), their
 * results written whole in one transaction.
 */
import { createHash, randomBytes } from 'node:crypto';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { BuildMode } from '../domain/build.ts';
import { PatchbayError } from '../domain/errors.ts';
import type { JobResult, StageName, StageRun, TestResult } from '../domain/job.ts';
import type { ComparedResult, Comparison } from '../domain/compare.ts';
import type { Status, TestStatus } from '../domain/status.ts';
import type { JobRequirements } from '../domain/runners.ts';
import type { Database, JobPool, JobStatus, JobsTable } from './schema.ts';
import { afterCursor, checkLimit, cleanText, decodeCursor, guard, jsonb, newId, sqlState, toPage, type Page } from './util.ts';

export interface Job {
  id: string;
  seriesId: string;
  tree: string;
  /** The base asked for (a commit or ref); null: the tree's default. */
  base: string | null;
  suites: string[];
  idempotencyKey: string;
  status: JobStatus;
  stage: StageName | null;
  summary: string;
  attempts: number;
  worker: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  deadlineAt: Date | null;
  /** The commit the series was applied to, once known. */
  baseCommit: string | null;
  headCommit: string | null;
  accel: 'kvm' | 'tcg' | null;
  buildMode: BuildMode | null;
  errorCode: string | null;
  errorMessage: string | null;
  artifactsDir: string | null;
  /** The token that asked for it; null: the CLI or the watcher. */
  submittedBy: string | null;
  /** The rule that picked the base before the job ran (services/intake/base.ts); null: left to the executor. */
  baseRule: string | null;
  /** The series of prerequisite patches applied on the base before this job's series; null: none. */
  prerequisitesId: string | null;
  /** Who said its failure is not the series' doing (a `patchbay: unrelated` reply, by address); null: nobody. */
  unrelatedBy: string | null;
  /** Who runs it: the in-cluster queue or lab runners. */
  pool: JobPool;
  /** What a lab runner must have to take it. */
  requires: JobRequirements;
  /** When a cancel was asked for while a runner held it; null: not asked. */
  cancelRequestedAt: Date | null;
}

export interface JobWithResult extends Job {
  /** The full JobResult as recorded; null until recordResult. */
  result: JobResult | null;
}

export interface CreateJobInput {
  seriesId: string;
  tree: string;
  base: string | null;
  suites: readonly string[];
  /** jobIdempotencyKey(...). */
  idempotencyKey: string;
  deadlineAt: Date | null;
  submittedBy: string | null;
  /** The rule that picked `base` (services/intake/base.ts); absent: none. */
  baseRule?: string | null;
  /** A stored series of prerequisite patches, applied first; absent: none. */
  prerequisitesId?: string | null;
  /**
   * At most this many jobs of submittedBy queued or running, this one
   * included; past it JOB_QUOTA. null: no cap (admins, the CLI, the watcher).
   */
  activeCap: number | null;
  /** Who runs it; absent: the in-cluster queue. */
  pool?: JobPool;
  /** What a lab runner must have to take it; absent: nothing. */
  requires?: JobRequirements;
}

export interface ListJobsOptions {
  limit: number;
  cursor?: string;
  status?: JobStatus | readonly JobStatus[];
  seriesId?: string;
  tree?: string;
}

/**
 * The key that makes submitting the same series to the same tree, base and
 * suites twice give the same job: sha256 of the content hash, tree, base and
 * the sorted suites, and the prerequisites' content hash when there are
 * any. `force` (a deliberate rerun) appends a random suffix; `rerunKey` (a
 * rerun something asked for once, such as a reply command by its
 * Message-ID) appends its hash instead, so asking again gives the same job.
 */
export function jobIdempotencyKey(input: {
  contentHash: string;
  tree: string;
  base: string | null;
  suites: readonly string[];
  /** The prerequisite patches' content hash; absent or null: none (the key is as it was before prerequisites). */
  prerequisitesHash?: string | null;
  force?: boolean;
  /** A rerun keyed by what asked for it: a new job, the same one for the same rerunKey. Takes the place of force's random suffix. */
  rerunKey?: string | null;
}): string {
  const suites = [...new Set(input.suites)].sort();
  const parts: unknown[] = [input.contentHash, input.tree, input.base, suites];
  if (input.prerequisitesHash != null) parts.push({ prerequisites: input.prerequisitesHash });
  const key = createHash('sha256')
    .update(JSON.stringify(parts))
    .digest('hex');
  if (input.rerunKey != null) return `${key}:rerun:${createHash('sha256').update(input.rerunKey).digest('hex').slice(0, 32)}`;
  return input.force === true ? `${key}:force:${randomBytes(8).toString('hex')}` : key;
}

const CURSOR_TS = sql<string>`to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
const INT_MAX = 2 ** 31 - 1;

function toJob(r: Selectable<JobsTable>): Job {
  return {
    id: r.id,
    seriesId: r.series_id,
    tree: r.tree,
    base: r.base,
    suites: r.suites,
    idempotencyKey: r.idempotency_key,
    status: r.status,
    stage: r.stage as StageName | null,
    summary: r.summary,
    attempts: r.attempts,
    worker: r.worker,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    deadlineAt: r.deadline_at,
    baseCommit: r.base_commit,
    headCommit: r.head_commit,
    accel: r.accel as 'kvm' | 'tcg' | null,
    buildMode: r.build_mode as BuildMode | null,
    errorCode: r.error_code,
    errorMessage: r.error_message,
    artifactsDir: r.artifacts_dir,
    submittedBy: r.submitted_by,
    baseRule: r.base_rule,
    prerequisitesId: r.prerequisites_id,
    unrelatedBy: r.unrelated_by,
    pool: r.pool,
    requires: r.requires,
    cancelRequestedAt: r.cancel_requested_at,
  };
}

function durationMs(ms: number): number {
  return Number.isFinite(ms) ? Math.min(INT_MAX, Math.max(0, Math.round(ms))) : 0;
}

/**
 * test_results is keyed by (suite, test), but a run can report the same name
 * twice (two WARNINGs in one suite, a KTAP file that repeats a name); later
 * ones become "name (2)", "name (3)" so nothing is lost.
 */
export function uniqueTestNames<T extends TestResult>(results: readonly T[]): T[] {
  const seen = new Set<string>();
  return results.map((r) => {
    const suite = cleanText(r.suite);
    const base = cleanText(r.test);
    let test = base;
    for (let n = 2; seen.has(JSON.stringify([suite, test])); n++) test = `${base} (${n})`;
    seen.add(JSON.stringify([suite, test]));
    return { ...r, suite, test, detail: cleanText(r.detail) };
  });
}

export class JobRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /**
   * Inserts a queued job, or returns the one that already has this
   * idempotency key (created: false). Race-safe: INSERT ... ON CONFLICT DO
   * NOTHING, then SELECT.
   */
  async createOrGet(input: CreateJobInput): Promise<{ job: Job; created: boolean }> {
    if (input.idempotencyKey === '') throw new PatchbayError('STORE_BAD_ARGUMENT', 'A job needs an idempotency key.');
    const { submittedBy, activeCap } = input;
    if (submittedBy === null || activeCap === null) return this.#createOrGet(this.#db, input);
    // Counted and inserted under a per-submitter lock, so concurrent
    // submissions cannot both pass the cap.
    return guard('could not create the job', () => this.#db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(hashtext(${`jobs:${submittedBy}`}))`.execute(trx);
      const existing = await trx.selectFrom('jobs').selectAll().where('idempotency_key', '=', input.idempotencyKey).executeTakeFirst();
      if (existing !== undefined) return { job: toJob(existing), created: false };
      const { n } = await trx.selectFrom('jobs').select((eb) => eb.fn.countAll<string>().as('n'))
        .where('submitted_by', '=', submittedBy).where('status', 'in', ['queued', 'running']).executeTakeFirstOrThrow();
      if (Number(n) >= activeCap) {
        throw new PatchbayError('JOB_QUOTA', `this token has ${n} jobs queued or running, and may have ${activeCap}; submit again when one has finished`, {
          details: { submittedBy, active: Number(n), cap: activeCap },
        });
      }
      return this.#createOrGet(trx, input);
    }));
  }

  async #createOrGet(db: Kysely<Database>, input: CreateJobInput): Promise<{ job: Job; created: boolean }> {
    return guard('could not create the job', async () => {
      try {
        const inserted = await db
          .insertInto('jobs')
          .values({
            id: newId('j'),
            series_id: input.seriesId,
            tree: input.tree,
            base: input.base,
            suites: jsonb(input.suites),
            idempotency_key: input.idempotencyKey,
            status: 'queued',
            deadline_at: input.deadlineAt,
            submitted_by: input.submittedBy,
            base_rule: input.baseRule ?? null,
            prerequisites_id: input.prerequisitesId ?? null,
            pool: input.pool ?? 'queue',
            requires: jsonb(input.requires ?? {}),
          })
          .onConflict((oc) => oc.column('idempotency_key').doNothing())
          .returningAll()
          .executeTakeFirst();
        if (inserted !== undefined) return { job: toJob(inserted), created: true };
      } catch (e) {
        if (sqlState(e) === '23503') {
          throw new PatchbayError('SERIES_NOT_FOUND', `There is no series ${input.seriesId}.`, {
            cause: e,
            details: { seriesId: input.seriesId },
          });
        }
        throw e;
      }
      const existing = await db
        .selectFrom('jobs')
        .selectAll()
        .where('idempotency_key', '=', input.idempotencyKey)
        .executeTakeFirstOrThrow();
      return { job: toJob(existing), created: false };
    });
  }

  async get(id: string, db: Kysely<Database> = this.#db): Promise<JobWithResult | null> {
    const row = await guard('could not read the job', () =>
      db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst(),
    );
    return row === undefined ? null : { ...toJob(row), result: row.result as JobResult | null };
  }

  /** Newest first; pass nextCursor back to get the next page. */
  async list(opts: ListJobsOptions): Promise<Page<Job>> {
    const limit = checkLimit(opts.limit);
    const after = opts.cursor === undefined ? null : decodeCursor(opts.cursor, 'j');
    const statuses = opts.status === undefined ? undefined : typeof opts.status === 'string' ? [opts.status] : [...opts.status];
    if (statuses?.length === 0) return { items: [], nextCursor: null };
    const rows = await guard('could not list jobs', () => {
      let q = this.#db.selectFrom('jobs').selectAll().select(CURSOR_TS.as('cursor_ts'));
      if (after !== null) {
        q = q.where(afterCursor(after));
      }
      if (statuses !== undefined) q = q.where('status', 'in', statuses);
      if (opts.seriesId !== undefined) q = q.where('series_id', '=', opts.seriesId);
      if (opts.tree !== undefined) q = q.where('tree', '=', opts.tree);
      return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
    });
    return toPage(rows, limit, toJob);
  }

  /** Every job of a series, newest first. */
  async forSeries(seriesId: string): Promise<Job[]> {
    const rows = await guard('could not list the jobs of the series', () =>
      this.#db
        .selectFrom('jobs')
        .selectAll()
        .where('series_id', '=', seriesId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .execute(),
    );
    return rows.map(toJob);
  }

  /** The newest job of a series with this status (the revision's latest FAIL), or null. */
  async latestWithStatus(seriesId: string, status: JobStatus): Promise<Job | null> {
    const row = await guard('could not read the jobs of the series', () =>
      this.#db.selectFrom('jobs').selectAll().where('series_id', '=', seriesId).where('status', '=', status)
        .orderBy('created_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst(),
    );
    return row === undefined ? null : toJob(row);
  }

  /**
   * Records who said a failed job's failure is not the series' doing (a
   * `patchbay: unrelated` reply). The first to say so is kept: asking
   * again, or someone else, changes nothing. Only a FAIL job; null when
   * the job is not one (or not there).
   */
  async markUnrelated(id: string, by: string): Promise<Job | null> {
    const row = await guard('could not mark the job\'s failure unrelated', () =>
      this.#db.updateTable('jobs')
        .set({ unrelated_by: sql<string>`coalesce(unrelated_by, ${cleanText(by)})` })
        .where('id', '=', id).where('status', '=', 'FAIL')
        .returningAll().executeTakeFirst(),
    );
    return row === undefined ? null : toJob(row);
  }

  /** The recorded stage runs (in order) and test results of a job. */
  async results(jobId: string): Promise<{ stages: StageRun[]; tests: ComparedResult[] }> {
    return guard('could not read the job results', async () => {
      const stages = await this.#db
        .selectFrom('stage_runs')
        .select(['stage', 'status', 'duration_ms', 'summary'])
        .where('job_id', '=', jobId)
        .orderBy('seq', 'asc')
        .execute();
      const tests = await this.#db
        .selectFrom('test_results')
        .select(['suite', 'test', 'status', 'detail', 'base_status', 'comparison', 'series_fails', 'series_runs', 'series_skips', 'series_missing', 'base_fails', 'base_runs', 'base_skips', 'base_missing'])
        .where('job_id', '=', jobId)
        .orderBy('suite', 'asc')
        .orderBy('test', 'asc')
        .execute();
      return {
        stages: stages.map((s) => ({
          stage: s.stage as StageName,
          status: s.status as Status,
          durationMs: s.duration_ms,
          summary: s.summary,
        })),
        tests: tests.map((t) => ({
          suite: t.suite,
          test: t.test,
          status: t.status as TestStatus,
          detail: t.detail,
          baseStatus: t.base_status as TestStatus | null,
          comparison: t.comparison as Comparison,
          seriesRuns: { runs: t.series_runs, fails: t.series_fails, skips: t.series_skips, missing: t.series_missing },
          baseRuns: t.base_fails === null || t.base_runs === null ? null : { runs: t.base_runs, fails: t.base_fails, skips: t.base_skips ?? 0, missing: t.base_missing ?? 0 },
        })),
      };
    });
  }

  /**
   * A worker took the job (first try or a retry): status running, the
   * worker, attempts = attempt, started_at set the first time. Only from
   * queued or running; JOB_NOT_FOUND / JOB_STATE_CONFLICT otherwise.
   */
  /** A run starts: attempts counts runs started (a retry, or a rerun after its worker died). */
  async markRunning(id: string, opts: { worker: string }): Promise<Job> {
    const row = await guard('could not mark the job running', () =>
      this.#db
        .updateTable('jobs')
        .set({
          status: 'running',
          worker: cleanText(opts.worker),
          attempts: sql<number>`attempts + 1`,
          started_at: sql<Date>`coalesce(started_at, now())`,
        })
        .where('id', '=', id)
        .where('status', 'in', ['queued', 'running'])
        .returningAll()
        .executeTakeFirst(),
    );
    if (row === undefined) throw await this.#conflict(id, 'start');
    return toJob(row);
  }

  /**
   * Writes the verdict: the job's columns from the result, the full result
   * as jsonb, and its stage runs and test results (replacing any recorded
   * before), in one transaction; sets finished_at. Recording the same job
   * again replaces everything. `onRecorded` runs inside that transaction
   * (the report a verdict earns is planned there, so a verdict is never
   * recorded without it, nor a report planned for a verdict not recorded). A cancelled job keeps its status:
   * JOB_CANCELLED.
   */
  async recordResult(id: string, result: JobResult, opts: {
    onRecorded?: (trx: Transaction<Database>, job: Job) => Promise<unknown>;
    /** Record inside this transaction (the caller's) instead of one of its own. */
    trx?: Transaction<Database>;
  } = {}): Promise<Job> {
    const tests = uniqueTestNames(result.results);
    const stages = result.stages.map((s, seq) => ({
      job_id: id,
      seq,
      stage: s.stage,
      status: s.status,
      duration_ms: durationMs(s.durationMs),
      summary: cleanText(s.summary),
    }));
    const startedAt = new Date(result.startedAt);
    const record = async (trx: Transaction<Database>): Promise<Job> => {
        const current = await trx.selectFrom('jobs').select('status').where('id', '=', id).forUpdate().executeTakeFirst();
        if (current === undefined) throw notFound(id);
        if (current.status === 'cancelled') {
          throw new PatchbayError('JOB_CANCELLED', `Job ${id} was cancelled; its result is not recorded.`, {
            details: { jobId: id },
          });
        }
        const row = await trx
          .updateTable('jobs')
          .set({
            status: result.status,
            stage: result.stage,
            summary: cleanText(result.summary),
            base_commit: result.baseCommit,
            // The intake's rule (the watcher's) stays; else the executor's.
            ...(result.baseRule !== undefined ? { base_rule: sql<string | null>`coalesce(base_rule, ${result.baseRule})` } : {}),
            head_commit: result.headCommit,
            accel: result.accel,
            build_mode: result.buildMode,
            error_code: result.error === null ? null : cleanText(result.error.code),
            error_message: result.error === null ? null : cleanText(result.error.message),
            artifacts_dir: result.artifactsDir,
            result: jsonb(result),
            started_at: Number.isNaN(startedAt.getTime())
              ? sql<Date>`coalesce(started_at, now())`
              : sql<Date>`coalesce(started_at, ${startedAt.toISOString()}::timestamptz)`,
            finished_at: sql<Date>`now()`,
          })
          .where('id', '=', id)
          .returningAll()
          .executeTakeFirstOrThrow();
        await replaceRows(trx, id, stages, tests);
        const job = toJob(row);
        // What must be written with the verdict or not at all (the outbox's report).
        if (opts.onRecorded !== undefined) await opts.onRecorded(trx, job);
        return job;
    };
    const outer = opts.trx;
    return guard('could not record the job result', () => (outer !== undefined ? record(outer) : this.#db.transaction().execute(record)));
  }

  /** queued or running -> cancelled (finished_at set); cancelling a cancelled job is a no-op. */
  async markCancelled(id: string, db: Kysely<Database> = this.#db): Promise<Job> {
    const row = await guard('could not cancel the job', () =>
      db
        .updateTable('jobs')
        .set({ status: 'cancelled', finished_at: sql<Date>`coalesce(finished_at, now())` })
        .where('id', '=', id)
        .where('status', 'in', ['queued', 'running', 'cancelled'])
        .returningAll()
        .executeTakeFirst(),
    );
    if (row === undefined) throw await this.#conflict(id, 'cancel');
    return toJob(row);
  }

  /**
   * Removes a job that never left the queue (no worker took it): intake's
   * undo when the queue refused it. False if it is gone or has started.
   */
  async deleteQueued(id: string): Promise<boolean> {
    const rows = await guard('could not remove the job', () =>
      this.#db.deleteFrom('jobs').where('id', '=', id).where('status', '=', 'queued').where('started_at', 'is', null).returning('id').execute(),
    );
    return rows.length > 0;
  }

  /** running -> queued (a worker or runner handed the job back); queued stays queued. */
  async requeue(id: string): Promise<Job> {
    const row = await guard('could not requeue the job', () =>
      this.#db
        .updateTable('jobs')
        .set({ status: 'queued', worker: null })
        .where('id', '=', id)
        .where('status', 'in', ['queued', 'running'])
        .returningAll()
        .executeTakeFirst(),
    );
    if (row === undefined) throw await this.#conflict(id, 'requeue');
    return toJob(row);
  }

  async #conflict(id: string, action: string): Promise<PatchbayError> {
    const row = await guard('could not read the job', () =>
      this.#db.selectFrom('jobs').select('status').where('id', '=', id).executeTakeFirst(),
    );
    if (row === undefined) return notFound(id);
    return new PatchbayError('JOB_STATE_CONFLICT', `Cannot ${action} job ${id}: it is ${row.status}.`, {
      details: { jobId: id, status: row.status },
    });
  }
}

function notFound(id: string): PatchbayError {
  return new PatchbayError('JOB_NOT_FOUND', `There is no job ${id}.`, { details: { jobId: id } });
}

async function replaceRows(
  trx: Transaction<Database>,
  jobId: string,
  stages: ReadonlyArray<Database['stage_runs']>,
  tests: readonly ComparedResult[],
): Promise<void> {
  await trx.deleteFrom('stage_runs').where('job_id', '=', jobId).execute();
  await trx.deleteFrom('test_results').where('job_id', '=', jobId).execute();
  if (stages.length > 0) await trx.insertInto('stage_runs').values([...stages]).execute();
  for (let i = 0; i < tests.length; i += 1000) {
    const chunk = tests.slice(i, i + 1000).map((t) => ({
      job_id: jobId,
      suite: t.suite,
      test: t.test,
      status: t.status,
      detail: t.detail,
      base_status: t.baseStatus,
      comparison: t.comparison,
      series_fails: t.seriesRuns.fails,
      series_runs: t.seriesRuns.runs,
      series_skips: t.seriesRuns.skips,
      series_missing: t.seriesRuns.missing,
      base_fails: t.baseRuns?.fails ?? null,
      base_runs: t.baseRuns?.runs ?? null,
      base_skips: t.baseRuns?.skips ?? null,
      base_missing: t.baseRuns?.missing ?? null,
    }));
    await trx.insertInto('test_results').values(chunk).execute();
  }
}

/**
 * The BullMQ processor for series jobs: loads the job's record, runs the
 * executor, streams its events to the job's log stream and records the
 * result. What retrying cannot fix fails at once (UnrecoverableError);
 * infrastructure trouble (MISS) is handed back to the queue to retry with
 * backoff, and recorded as MISS only when the attempts are used up.
 */
import { type Job, UnrecoverableError, WaitingError } from 'bullmq';
import type { Logger } from 'pino';
import type { SuiteManifest } from '../catalog/suites.ts';
import type { Tree } from '../catalog/trees.ts';
import { PatchbayError, errorMessage } from '../domain/errors.ts';
import { attemptOutcome } from '../domain/runners.ts';
import type { JobResult } from '../domain/job.ts';
import { ByteBudget } from '../domain/limits.ts';
import type { Series } from '../domain/series.ts';
import type { JobInput } from '../../runners/executor/pipeline.ts';
import type { JobEvent } from '../domain/job.ts';
import { type RunSeriesJob, isRunSeriesJob } from '../queue/catalogue.ts';
import type { LogEntry } from '../queue/logs.ts';
import { REDIS_FULL_MESSAGE, isRedisFull } from '../queue/redis.ts';

/** What the processor needs to know about a job; the store provides it. */
export interface JobRecord {
  id: string;
  status: string;
  tree: string;
  base: string | null;
  suites: string[];
  series: Series;
  /** Patches applied on the base before the series (b4's prerequisite-patch-id / -message-id), in order; null when none. */
  prerequisites: Series | null;
}

/** The store, as the worker sees it. */
export interface WorkerStore {
  load(jobId: string): Promise<JobRecord | null>;
  markRunning(jobId: string, worker: string): Promise<void>;
  recordResult(jobId: string, result: JobResult): Promise<void>;
  /** Back to queued (handed back for a retry or to another worker). */
  requeue(jobId: string): Promise<void>;
  markCancelled(jobId: string): Promise<void>;
}

export interface ProcessorDeps {
  store: WorkerStore;
  trees: { get(name: string): Tree };
  suites: { select(names: readonly string[]): SuiteManifest[] };
  kernelFragment: string;
  execute: (input: JobInput, onEvent: (e: JobEvent) => void, signal: AbortSignal) => Promise<JobResult>;
  logs: { append(jobId: string, entry: LogEntry): Promise<string> };
  /** What one attempt may put on the job's log stream (its text), cut with a marker past it. */
  logLimitBytes: number;
  logger: Logger;
  workerId: string;
}

/** Abort reasons the worker uses, so the processor knows why it was stopped. */
export const CANCELLED_BY_USER = 'cancelled';
export const SHUTTING_DOWN = 'shutdown';
/** Redis refused a write (maxmemory): the job's log and lock cannot be kept, so it stops. */
export const REDIS_FULL = 'REDIS_FULL';

const FINAL = new Set(['PASS', 'FAIL', 'ERROR', 'MISS', 'SKIP', 'cancelled']);

export function makeProcessor(deps: ProcessorDeps) {
  return async (job: Job<RunSeriesJob>, token?: string, signal?: AbortSignal): Promise<{ status: string }> => {
    if (!isRunSeriesJob(job.data)) {
      throw new UnrecoverableError(`JOB_PAYLOAD_INVALID: payload ${JSON.stringify(job.data).slice(0, 200)} is not a run-series job (v1)`);
    }
    const { jobId } = job.data;
    const log = deps.logger.child({ jobId, attempt: job.attemptsMade + 1, worker: deps.workerId });
    const record = await deps.store.load(jobId);
    if (record === null) throw new UnrecoverableError(`JOB_UNKNOWN: job ${jobId} is not in the database`);
    if (FINAL.has(record.status)) {
      // Redelivered after its result was recorded (e.g. a worker died after
      // writing it): nothing to do, and nothing to run twice.
      log.info({ status: record.status }, 'job already finished');
      return { status: record.status };
    }
    let tree: Tree;
    let suites: SuiteManifest[];
    try {
      tree = deps.trees.get(record.tree);
      suites = deps.suites.select(record.suites);
    } catch (e) {
      throw new UnrecoverableError(`${e instanceof PatchbayError ? e.code : 'CONFIG_INVALID'}: ${errorMessage(e)}`);
    }

    await deps.store.markRunning(jobId, deps.workerId);
    // The queue's signal (cancel, shutdown), or ours when Redis is full.
    const stop = new AbortController();
    const onQueueAbort = (): void => { stop.abort(signal?.reason); };
    if (signal?.aborted) onQueueAbort();
    else signal?.addEventListener('abort', onQueueAbort, { once: true });
    // Events go to the log stream in order. A failed append is logged, never
    // fatal, except when Redis is full: then the job's lock cannot be renewed
    // either, and the job is stopped and recorded as MISS with that reason.
    let chain = Promise.resolve();
    const publish = (entry: LogEntry): void => {
      chain = chain.then(() => deps.logs.append(jobId, entry)).then(() => undefined, (e: unknown) => {
        log.warn({ err: errorMessage(e) }, 'log stream append failed');
        if (isRedisFull(e) && !stop.signal.aborted) stop.abort(REDIS_FULL);
      });
    };
    // The job's own output is bounded on the stream; stage events always go.
    const budget = new ByteBudget(deps.logLimitBytes, 'the log stream of this attempt');
    const onEvent = (e: JobEvent): void => {
      switch (e.type) {
        case 'log': {
          const kept = budget.take(e.text).text;
          if (kept !== '') publish({ kind: 'log', stage: e.stage, text: kept });
          break;
        }
        case 'stage-start':
          publish({ kind: 'stage', stage: e.stage, phase: 'start' });
          break;
        case 'stage-end':
          publish({ kind: 'stage', stage: e.stage, phase: 'end', status: e.status, durationMs: e.durationMs, summary: e.summary });
          break;
      }
    };

    const abort = stop.signal;
    let result: JobResult;
    try {
      result = await deps.execute(
        { jobId, tree, base: record.base, series: record.series, prerequisites: record.prerequisites, suites, kernelFragment: deps.kernelFragment },
        onEvent,
        abort,
      );
    } finally {
      signal?.removeEventListener('abort', onQueueAbort);
    }
    await chain;

    if (abort.aborted && abort.reason === REDIS_FULL) {
      const missed: JobResult = {
        ...result,
        status: 'MISS',
        summary: `stopped: ${REDIS_FULL_MESSAGE}`,
        error: { code: REDIS_FULL, message: `${REDIS_FULL_MESSAGE}, so the job's live log and its lock in the queue could not be written; it was stopped. Resubmit it (force) when the queue has room.` },
      };
      // The database is not Redis: the verdict is kept; the queue learns of it when it can.
      await deps.store.recordResult(jobId, missed);
      log.error({ code: REDIS_FULL }, missed.summary);
      return { status: 'MISS' };
    }
    if (abort.aborted) {
      const reason: unknown = abort.reason;
      if (reason === CANCELLED_BY_USER || (reason instanceof Error && reason.message === CANCELLED_BY_USER)) {
        await deps.store.markCancelled(jobId);
        publish({ kind: 'end', status: 'cancelled' });
        await chain;
        throw new UnrecoverableError(`JOB_CANCELLED: job ${jobId} was cancelled`);
      }
      // Shutting down: hand the job back for another worker, without
      // spending one of its attempts.
      await deps.store.requeue(jobId);
      await deps.logs.append(jobId, { kind: 'log', stage: 'setup', text: `patchbay: worker ${deps.workerId} stopped; the job goes back to the queue\n` });
      await job.moveToWait(token);
      throw new WaitingError();
    }

    const attemptsLeft = (job.opts.attempts ?? 1) - (job.attemptsMade + 1);
    if (attemptOutcome(result, attemptsLeft) === 'retry') {
      await deps.store.requeue(jobId);
      log.warn({ code: result.error?.code, attemptsLeft }, 'infrastructure trouble; retrying');
      throw new Error(`${result.error?.code ?? 'MISS'}: ${result.summary} (will retry)`);
    }
    await deps.store.recordResult(jobId, result);
    // The record is written; the stream's end marker is for live viewers only.
    publish({ kind: 'end', status: result.status });
    await chain;
    log.info({ status: result.status, stage: result.stage }, result.summary);
    return { status: result.status };
  };
}

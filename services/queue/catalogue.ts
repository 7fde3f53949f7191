/**
 * The typed job catalogue: every queue, its job names and their payloads.
 * Payloads carry ids only; the database is the record, Redis the dispatcher.
 */
import type { JobsOptions } from 'bullmq';

export const QUEUE_NAMES = { series: 'series-jobs' } as const;

export interface RunSeriesJob {
  /** Payload version, so a worker can refuse what it does not understand. */
  v: 1;
  /** patchbay's job id (jobs.id); also the BullMQ job id, so enqueueing twice is a no-op. */
  jobId: string;
}

export interface Catalogue {
  [QUEUE_NAMES.series]: { run: RunSeriesJob };
}

/** Attempts a job gets and the first retry's backoff (doubling): the queue's and lab runners' alike. */
export const JOB_RETRY = { attempts: 3, backoffMs: 30_000 } as const;

/** Retries are for infrastructure trouble (MISS); backoff leaves time for a restart. */
export function runJobOptions(jobId: string, retry: { attempts: number; backoffMs: number } = JOB_RETRY): JobsOptions {
  return {
    jobId,
    attempts: retry.attempts,
    backoff: { type: 'exponential', delay: retry.backoffMs },
    removeOnComplete: { age: 7 * 24 * 3600, count: 10_000 },
    removeOnFail: { age: 30 * 24 * 3600 },
  };
}

export function isRunSeriesJob(data: unknown): data is RunSeriesJob {
  if (typeof data !== 'object' || data === null) return false;
  const d = data as Record<string, unknown>;
  return d.v === 1 && typeof d.jobId === 'string';
}

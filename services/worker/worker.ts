/**
 * A worker process's BullMQ side: takes series jobs, renews their locks while
 * kernels build, recovers jobs whose worker died (stalled), cancels jobs on
 * request from any API process, and shuts down in bounded time: stop taking
 * work, let running jobs finish for a grace period, then hand them back.
 */
import { type Processor, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { QUEUE_NAMES, type RunSeriesJob } from '../queue/catalogue.ts';
import { CANCELLED_BY_USER, SHUTTING_DOWN } from './processor.ts';

export interface WorkerOptions {
  prefix: string;
  queueName?: string;
  concurrency: number;
  /** How long a lock lasts without renewal; BullMQ renews it at half that while the process lives. */
  lockDurationMs: number;
  /** How often stalled jobs (lock expired: their worker died) are looked for. */
  stalledIntervalMs: number;
  /** A job that stalls more often than this fails instead of running again. */
  maxStalledCount: number;
  /** At shutdown, how long running jobs may go on before they are handed back. */
  shutdownGraceMs: number;
}

export function cancelChannel(prefix: string): string {
  return `${prefix}:cancel`;
}

/** Asks every worker to cancel a running job (the one running it does). */
export async function requestCancel(redis: Redis, prefix: string, jobId: string): Promise<void> {
  await redis.publish(cancelChannel(prefix), jobId);
}

export class SeriesWorker {
  readonly worker: Worker<RunSeriesJob>;
  private readonly subscriber: Redis;
  private closing: Promise<void> | null = null;

  constructor(
    connection: Redis,
    processor: Processor<RunSeriesJob>,
    private readonly opts: WorkerOptions,
    private readonly log: Logger,
  ) {
    this.worker = new Worker<RunSeriesJob>(opts.queueName ?? QUEUE_NAMES.series, processor, {
      connection,
      prefix: opts.prefix,
      concurrency: opts.concurrency,
      lockDuration: opts.lockDurationMs,
      stalledInterval: opts.stalledIntervalMs,
      maxStalledCount: opts.maxStalledCount,
    });
    this.worker.on('error', (e) => { log.error({ err: e.message }, 'worker error'); });
    this.worker.on('failed', (job, e) => { log.warn({ jobId: job?.id, err: e.message }, 'job attempt failed'); });
    this.worker.on('stalled', (jobId) => { log.warn({ jobId }, 'job stalled (its worker died?); it will run again'); });

    this.subscriber = connection.duplicate();
    // Reconnects by itself; the main connection reports outages.
    this.subscriber.on('error', () => undefined);
    void this.subscriber.subscribe(cancelChannel(opts.prefix)).catch((e: unknown) => {
      log.error({ err: String(e) }, 'cannot subscribe to cancel requests');
    });
    this.subscriber.on('message', (_channel: string, jobId: string) => {
      if (this.worker.cancelJob(jobId, CANCELLED_BY_USER)) log.info({ jobId }, 'cancelling on request');
    });
  }

  /** Idempotent and bounded by shutdownGraceMs plus a short hand-back period. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = this.worker.close();
      const inTime = await Promise.race([
        closed.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => { resolve(false); }, this.opts.shutdownGraceMs).unref()),
      ]);
      if (!inTime) {
        this.log.warn('running jobs did not finish in the grace period; handing them back');
        this.worker.cancelAllJobs(SHUTTING_DOWN);
        const handedBack = await Promise.race([
          closed.then(() => true),
          new Promise<boolean>((resolve) => setTimeout(() => { resolve(false); }, 30_000).unref()),
        ]);
        if (!handedBack) await this.worker.close(true);
      }
      this.subscriber.disconnect();
    })();
    return this.closing;
  }
}

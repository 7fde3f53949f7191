/** The producer side: enqueue, inspect and cancel series jobs. */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { type Catalogue, QUEUE_NAMES, type RunSeriesJob, runJobOptions } from './catalogue.ts';

export interface QueueDepth {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

type SeriesQueue = Queue<RunSeriesJob, unknown, keyof Catalogue[typeof QUEUE_NAMES.series]>;

export class JobQueue {
  readonly queue: SeriesQueue;
  private closing: Promise<void> | null = null;

  private readonly retry: { attempts: number; backoffMs: number } | undefined;

  constructor(connection: Redis, opts: { prefix: string; name?: string; retry?: { attempts: number; backoffMs: number } }) {
    this.queue = new Queue(opts.name ?? QUEUE_NAMES.series, { connection, prefix: opts.prefix });
    // Connection trouble is reported by the connection's owner; calls wait for the reconnect.
    this.queue.on('error', () => undefined);
    this.retry = opts.retry;
  }

  get name(): string {
    return this.queue.name;
  }

  /** Idempotent: the BullMQ job id is patchbay's job id. */
  async enqueue(jobId: string): Promise<void> {
    await this.queue.add('run', { v: 1, jobId }, runJobOptions(jobId, this.retry));
  }

  async depth(): Promise<QueueDepth> {
    const c = await this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized');
    return { waiting: (c.waiting ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0, failed: c.failed ?? 0 };
  }

  /** Removes a job that has not started; false when it is running or gone. */
  async removeIfWaiting(jobId: string): Promise<boolean> {
    const job = await this.queue.getJob(jobId);
    if (!job) return false;
    const state = await job.getState();
    if (state === 'waiting' || state === 'delayed' || state === 'prioritized') {
      await job.remove();
      return true;
    }
    return false;
  }

  /** Idempotent and bounded. */
  close(timeoutMs = 5000): Promise<void> {
    this.closing ??= Promise.race([
      this.queue.close(),
      new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref()),
    ]);
    return this.closing;
  }
}

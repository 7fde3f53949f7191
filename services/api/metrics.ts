/**
 * Prometheus metrics: queue depth and jobs by status (read on each scrape),
 * stage durations and outcomes (observed by an in-process worker).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { JobEvent } from '../domain/job.ts';
import type { JobResult } from '../domain/job.ts';
import type { JobQueue } from '../queue/job-queue.ts';
import type { LoreRepo } from '../store/lore-repo.ts';

export interface Metrics {
  registry: Registry;
  /** Feed a job's events and result (worker side). */
  observe: { event(e: JobEvent): void; result(r: JobResult): void };
}

export function makeMetrics(queue: JobQueue, lore?: Pick<LoreRepo, 'counts'>): Metrics {
  const registry = new Registry();
  if (lore !== undefined) {
    // The watcher may run in another process: its counts are read from the database on each scrape.
    let counts: ReturnType<LoreRepo['counts']> | null = null;
    const read = (): ReturnType<LoreRepo['counts']> => (counts ??= lore.counts().finally(() => { setTimeout(() => { counts = null; }, 1000).unref(); }));
    const gauge = (name: string, help: string, pick: (c: Awaited<ReturnType<LoreRepo['counts']>>) => number): void => {
      new Gauge({ name, help, registers: [registry], async collect() { this.set(pick(await read())); } });
    };
    gauge('patchbay_lore_polls', 'Polls of watched inboxes since the database was created', (c) => c.polls);
    gauge('patchbay_lore_poll_errors', 'Polls that failed', (c) => c.pollErrors);
    gauge('patchbay_lore_messages', 'Messages the watcher stored', (c) => c.messages);
    gauge('patchbay_lore_requests', 'HTTP requests made to inboxes', (c) => c.requests);
    new Gauge({
      name: 'patchbay_lore_series',
      help: 'Series revisions and threads judged by the watcher, by decision (queued, duplicate, not-relevant, incomplete, no-base, invalid, no-patches)',
      labelNames: ['decision'],
      registers: [registry],
      async collect() {
        for (const [decision, n] of Object.entries((await read()).decisions)) this.set({ decision }, n);
      },
    });
  }
  new Gauge({
    name: 'patchbay_queue_jobs',
    help: 'Jobs in the queue by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const d = await queue.depth();
      for (const [state, n] of Object.entries(d) as Array<[string, number]>) this.set({ state }, n);
    },
  });
  const stage = new Histogram({
    name: 'patchbay_stage_duration_seconds',
    help: 'Duration of job stages',
    labelNames: ['stage', 'status'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 2400],
    registers: [registry],
  });
  const outcomes = new Counter({ name: 'patchbay_job_outcomes_total', help: 'Finished jobs by status and stage', labelNames: ['status', 'stage'], registers: [registry] });
  const duration = new Histogram({ name: 'patchbay_job_duration_seconds', help: 'Job durations by status', labelNames: ['status'], buckets: [30, 60, 120, 300, 600, 1200, 2400, 3600], registers: [registry] });
  return {
    registry,
    observe: {
      event(e) {
        if (e.type === 'stage-end') stage.observe({ stage: e.stage, status: e.status }, e.durationMs / 1000);
      },
      result(r) {
        outcomes.inc({ status: r.status, stage: r.stage ?? 'none' });
        duration.observe({ status: r.status }, r.durationMs / 1000);
      },
    },
  };
}

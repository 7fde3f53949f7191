/** The worker's view of the store (WorkerStore) over the repositories. */
import { PatchbayError } from '../domain/errors.ts';
import { type Series, prerequisitesFromStoredMail, seriesFromStoredMail } from '../domain/series.ts';
import { OutboxRepo, type ReportPlanning, type Store } from '../store/db.ts';
import type { JobRecord, WorkerStore } from './processor.ts';

/**
 * With `reports`, each verdict recorded plans the mail report it earns in
 * the same transaction (services/store/outbox-repo.ts); without, no report
 * is ever planned (tests of the worker alone, a deployment with reports off).
 */
export function workerStore(store: Store, reports: ReportPlanning | null = null): WorkerStore {
  return {
    async load(jobId: string): Promise<JobRecord | null> {
      const job = await store.jobs.get(jobId);
      if (!job) return null;
      const record = await store.series.get(job.seriesId);
      if (!record) throw new PatchbayError('SERIES_MISSING', `job ${jobId}: series ${job.seriesId} is not in the database`);
      const [cover, patches] = await Promise.all([store.series.cover(job.seriesId), store.series.patches(job.seriesId)]);
      // The series as it was submitted, reassembled by the same rules (as a lab runner does).
      const series = seriesFromStoredMail((cover ? [cover, ...patches] : patches).map((p) => p.raw.toString('latin1')), record.version, record.baseCommit);
      let prerequisites: Series | null = null;
      if (job.prerequisitesId !== null) {
        const pre = await store.series.patches(job.prerequisitesId);
        if (pre.length === 0) throw new PatchbayError('SERIES_MISSING', `job ${jobId}: its prerequisites ${job.prerequisitesId} are not in the database`);
        prerequisites = prerequisitesFromStoredMail(pre.map((p) => p.raw.toString('latin1')));
      }
      return { id: job.id, status: job.status, tree: job.tree, base: job.base, suites: job.suites, series, prerequisites };
    },
    async markRunning(jobId, worker) {
      await store.jobs.markRunning(jobId, { worker });
    },
    async recordResult(jobId, result) {
      await store.jobs.recordResult(jobId, result, reports === null ? {} : {
        onRecorded: (trx) => OutboxRepo.planResult(trx, jobId, result.status, reports),
      });
    },
    async requeue(jobId) {
      await store.jobs.requeue(jobId);
    },
    async markCancelled(jobId) {
      await store.jobs.markCancelled(jobId);
    },
  };
}

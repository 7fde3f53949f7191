/** How records look on the wire: ISO dates and the URLs people and emails follow. */
import type { Job, SeriesRecord } from '../store/db.ts';

export function jobView(job: Job) {
  return {
    id: job.id,
    seriesId: job.seriesId,
    status: job.status,
    stage: job.stage,
    summary: job.summary,
    tree: job.tree,
    base: job.base,
    suites: job.suites,
    createdAt: job.createdAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
    pool: job.pool,
    requires: { ...job.requires },
    ranOn: job.worker,
    attempts: job.attempts,
    url: `/api/v1/jobs/${job.id}`,
    page: `/jobs/${job.id}`,
  };
}

export function seriesView(s: SeriesRecord) {
  return {
    id: s.id,
    title: s.title,
    version: s.version,
    total: s.total,
    isRfc: s.isRfc,
    rootMessageId: s.rootMessageId,
    baseCommit: s.baseCommit,
    source: s.source,
    createdAt: s.createdAt.toISOString(),
    url: `/api/v1/series/${s.id}`,
    page: `/series/${s.id}`,
  };
}

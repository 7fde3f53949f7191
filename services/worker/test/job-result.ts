/** A JobResult as the executor port returns it, for tests that stand in for the executor. */
import type { JobResult } from '../../domain/job.ts';
import type { Status } from '../../domain/status.ts';

export function jobResult(jobId: string, status: Status, code?: string): JobResult {
  return {
    jobId, status, stage: status === 'PASS' ? null : 'setup', summary: status, tree: { name: 'linux', ref: 'v1' },
    baseCommit: null, headCommit: null, series: null, suites: ['smoke'], accel: null, buildMode: null, stages: [], results: [], base: null,
    crashes: [], applyFailure: null, buildErrors: [], error: code ? { code, message: code } : null, artifactsDir: null,
    artifacts: [], startedAt: new Date().toISOString(), durationMs: 1,
  };
}

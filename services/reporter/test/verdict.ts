import type { JobResult } from '../../domain/job.ts';

/** A recorded verdict: what the executor returns, small. */
export function verdict(jobId: string, status: 'PASS' | 'FAIL' | 'MISS'): JobResult {
  const failing = status === 'FAIL';
  return {
    jobId, status, stage: failing ? 'test' : status === 'MISS' ? 'boot' : null,
    summary: failing ? 'test: 1 new failure' : status === 'MISS' ? 'boot: QEMU was killed' : 'all tests passed',
    tree: { name: 'linux-7.1.y', ref: 'v7.1.8' }, baseCommit: 'a'.repeat(40), baseRule: 'base-commit', headCommit: 'b'.repeat(40),
    series: { title: 'kbuf', version: 1, patches: 2 }, suites: ['kbuf'], accel: 'tcg', buildMode: 'incremental',
    stages: [{ stage: 'apply', status: 'PASS', durationMs: 1000, summary: 'applied 2 patches' }],
    results: [{
      suite: 'kbuf', test: 'pbuf_ring_basic', status: failing ? 'FAIL' : 'PASS', detail: failing ? '# expected 0 got -22' : '',
      baseStatus: 'PASS', comparison: failing ? 'new-failure' : 'unchanged',
      seriesRuns: { runs: 4, fails: failing ? 4 : 0, skips: 0, missing: 0 }, baseRuns: { runs: 4, fails: 0, skips: 0, missing: 0 },
    }],
    base: { commit: 'a'.repeat(40), suites: [{ suite: 'kbuf', source: 'cached', jobId: null, summary: 'cached' }], rerun: null },
    crashes: [], splats: [], applyFailure: null, buildErrors: [], error: status === 'MISS' ? { code: 'GUEST_KILLED', message: 'QEMU was killed' } : null,
    artifactsDir: null, artifacts: [], startedAt: new Date().toISOString(), durationMs: 60_000,
  };
}

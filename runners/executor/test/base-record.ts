/**
 * What the base kernel did, as the host's base-run cache recorded it: the
 * evidence a job's comparison was made on, read apart from the job's own
 * copy of it (its rows' baseStatus), so a test can check one against the other.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../../services/config/config.ts';
import type { JobResult } from '../../../services/domain/job.ts';
import type { BaseRun } from '../base-runs.ts';

/** The recorded base run of SUITE that RESULT was compared with (the cache entry of the job named in result.base). */
export function recordedBaseRun(result: JobResult, suite: string, env: NodeJS.ProcessEnv = process.env): BaseRun {
  const source = result.base?.suites.find((s) => s.suite === suite);
  if (!source || source.source === 'unavailable' || source.jobId === null) {
    throw new Error(`job ${result.jobId} was not compared with a base run of ${suite}: ${JSON.stringify(result.base)}`);
  }
  const dir = join(loadConfig(env).cacheDir, 'base-runs');
  const runs = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as BaseRun)
    .filter((r) => r.suite === suite && r.jobId === source.jobId && r.baseCommit === result.base?.commit);
  const [run, ...more] = runs;
  if (!run || more.length > 0) {
    throw new Error(`${dir}: ${runs.length} recorded base runs of ${suite} by job ${source.jobId} on ${result.base?.commit ?? '?'}, expected 1`);
  }
  return run;
}

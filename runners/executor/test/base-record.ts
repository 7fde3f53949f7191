/**
 * What the base kernel did, as the host's base-run cache recorded it: the
 * evidence a job's comparison was made on, read apart from the job's own
 * copy of it (its rows' baseStatus), so a test can check one against the other.
 * The cache keeps the boot as printed; it is read here as the job read it.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../../services/config/config.ts';
import type { JobResult } from '../../../services/domain/job.ts';
import { BaseRunCache, type BaseRunRead } from '../base-runs.ts';

/** The recorded base run of SUITE that RESULT was compared with (the cache entry of the job named in result.base). */
export function recordedBaseRun(result: JobResult, suite: string, env: NodeJS.ProcessEnv = process.env): BaseRunRead {
  const source = result.base?.suites.find((s) => s.suite === suite);
  if (!source || source.source === 'unavailable' || source.jobId === null) {
    throw new Error(`job ${result.jobId} was not compared with a base run of ${suite}: ${JSON.stringify(result.base)}`);
  }
  const dir = join(loadConfig(env).cacheDir, 'base-runs');
  const cache = new BaseRunCache(dir);
  const runs = readdirSync(dir)
    .filter((f) => f.endsWith('.json.gz'))
    .flatMap((f) => {
      const read = cache.get(f.slice(0, -'.json.gz'.length));
      return read === null ? [] : [read];
    })
    .filter((r) => r.run.suite === suite && r.run.jobId === source.jobId && r.run.baseCommit === result.base?.commit);
  const [run, ...more] = runs;
  if (!run || more.length > 0) {
    throw new Error(`${dir}: ${runs.length} recorded base runs of ${suite} by job ${source.jobId} on ${result.base?.commit ?? '?'}, expected 1`);
  }
  return run;
}

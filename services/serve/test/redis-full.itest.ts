/**
 * Redis at maxmemory (issue 10, part 4): a dedicated redis-server on
 * deploy/redis.conf (noeviction) with a small maxmemory, filled while a job
 * runs and a series is submitted, then emptied. A submission is refused with
 * 503 QUEUE_FULL and leaves nothing in the database; the running job is
 * stopped and recorded as MISS REDIS_FULL; after recovery the queue takes
 * and runs work again, and the stopped job is not run twice. The API, the
 * store (embedded PostgreSQL), BullMQ and the worker are real; the executor
 * is a stand-in at its port that prints a line every 100 ms until stopped.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { loadCatalogs } from '../../catalog/load.ts';
import { loadConfig } from '../../config/config.ts';
import { closeRedis, createRedis, isRedisFull } from '../../queue/redis.ts';
import { type RedisServer, startRedisServer } from '../../queue/test/redis-server.ts';
import { openDatabase, type Store } from '../../store/db.ts';
import { type Harness, apiHarness } from '../../api/test/harness.ts';
import { type ProcessorDeps, makeProcessor } from '../../worker/processor.ts';
import { workerStore } from '../../worker/store-adapter.ts';
import { jobResult } from '../../worker/test/job-result.ts';
import { SeriesWorker } from '../../worker/worker.ts';
import { until } from '../../platform/test/until.ts';

const root = new URL('../../..', import.meta.url).pathname;
const fixture = (name: string): Buffer => readFileSync(join(root, 'fixtures', 'series', name));
const logger = pino({ level: 'silent' });


describe('Redis at maxmemory', { timeout: 180_000 }, () => {
  let server: RedisServer;
  let redis: Redis;
  let store: Store;
  let h: Harness;
  let worker: SeriesWorker;
  let dir = '';
  const executed: string[] = [];

  /** The executor port: the first job prints until it is stopped; later ones pass at once. */
  const execute: ProcessorDeps['execute'] = async (input, onEvent, signal) => {
    executed.push(input.jobId);
    onEvent({ type: 'stage-start', stage: 'build' });
    if (executed.length > 1) return jobResult(input.jobId, 'PASS');
    while (!signal.aborted) {
      onEvent({ type: 'log', stage: 'build', text: `  CC      io_uring/kbuf.o (${Date.now()})\n` });
      await new Promise((r) => setTimeout(r, 100));
    }
    return jobResult(input.jobId, 'MISS', 'JOB_CANCELLED');
  };

  before(async () => {
    server = startRedisServer({ args: ['--maxmemory', '32mb'] });
    redis = createRedis(server.url, 'full-test');
    dir = mkdtempSync(join(tmpdir(), 'patchbay-full-'));
    store = await openDatabase({ databaseUrl: null, dataDir: dir });
    h = await apiHarness(redis, store);
    const catalogs = loadCatalogs(loadConfig(process.env));
    const processor = makeProcessor({
      store: workerStore(store), trees: catalogs.trees, suites: catalogs.suites, kernelFragment: '',
      execute, logs: h.logs, logLimitBytes: 1 << 20, logger, workerId: 'full-test',
    });
    worker = new SeriesWorker(redis, processor, { prefix: h.prefix, concurrency: 1, lockDurationMs: 3000, stalledIntervalMs: 1000, maxStalledCount: 5, shutdownGraceMs: 1000 }, logger);
  });
  after(async () => {
    await worker.close();
    await h.close();
    await store.close();
    await closeRedis(redis);
    server.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  const submit = (name = 'pass-kbuf-pin.mbox') => h.app.inject({ method: 'POST', url: '/api/v1/series?suite=smoke&force=true', payload: fixture(name), headers: { 'content-type': 'application/mbox', authorization: `Bearer ${h.tokens.submit}` } });
  const count = async (table: 'jobs' | 'series' | 'patches'): Promise<number> =>
    Number((await store.db.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);

  test('full: a submission gets 503 and leaves nothing, the running job ends MISS with the reason; emptied: work runs again, nothing twice', async () => {
    const first = await submit();
    assert.equal(first.statusCode, 202, first.body);
    const running = first.json<{ jobs: Array<{ id: string }> }>().jobs[0]?.id ?? '';
    await until('the job running and logging', async () => ((await store.jobs.get(running))?.status === 'running' && (await h.logs.read(running, '0')).length > 1 ? true : undefined));

    // Fill Redis past its maxmemory: big values until one is refused (its
    // own size counted while it arrived), then small ones until a small one is.
    let keys = 0;
    const fill = async (sizes: readonly number[]): Promise<void> => {
      for (const size of sizes) {
        const value = 'x'.repeat(size);
        for (;;) {
          try {
            await redis.set(`filler:${keys}`, value);
            keys++;
          } catch (e) {
            assert.ok(isRedisFull(e), String(e));
            break;
          }
          assert.ok(keys < 10_000, 'Redis took far more than its maxmemory');
        }
      }
    };
    await fill([1 << 20, 1 << 14, 1 << 8]);

    // The running job cannot write its log any more: it is stopped and
    // recorded MISS. Ending it lets the queue free what the job held, so
    // Redis is filled up again before the next submission.
    const stopped = await until('the running job stopped', async () => {
      const j = await store.jobs.get(running);
      return j?.status === 'MISS' ? j : undefined;
    });
    assert.equal(stopped.errorCode, 'REDIS_FULL');
    assert.match(stopped.errorMessage ?? '', /memory limit.*stopped/);
    await until('the queue to let the stopped job go', async () => ((await h.queue.depth()).active === 0 ? true : undefined));
    await fill([1 << 14, 1 << 8]);
    // Full by a margin: the queue's own upkeep (the worker trimming its
    // event stream, a finished job's keys) frees a little now and then,
    // which would let one more write in just under the limit.
    const used = Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))?.[1]);
    assert.ok(used > 0);
    await redis.config('SET', 'maxmemory', String(used - 4 * 1024 * 1024));

    const before = { jobs: await count('jobs'), series: await count('series'), patches: await count('patches') };
    // A series the database has not seen: its series and patches rows are undone too.
    const refused = await submit('fail-boot-panic.mbox');
    assert.equal(refused.statusCode, 503);
    const error = refused.json<{ error: { code: string; message: string } }>().error;
    assert.equal(error.code, 'QUEUE_FULL');
    assert.match(error.message, /full.*nothing was recorded/);
    assert.deepEqual({ jobs: await count('jobs'), series: await count('series'), patches: await count('patches') }, before, 'nothing half-written');

    // Emptied: the queue takes work again, the new job runs, the stopped one is not run again.
    for (let i = 0; i < keys; i++) await redis.del(`filler:${i}`);
    const again = await submit();
    assert.equal(again.statusCode, 202, again.body);
    const next = again.json<{ jobs: Array<{ id: string }> }>().jobs[0]?.id ?? '';
    await until('the new job to pass', async () => ((await store.jobs.get(next))?.status === 'PASS' ? true : undefined));
    await until('the queue to settle', async () => {
      const d = await h.queue.depth();
      return d.active === 0 && d.waiting === 0 ? true : undefined;
    });
    assert.deepEqual(executed, [running, next], 'each job ran once');
    assert.equal((await store.jobs.get(running))?.status, 'MISS');
  });
});

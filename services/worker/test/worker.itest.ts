/**
 * The worker's queue semantics on a real Redis and real BullMQ workers. The
 * store and the executor are fakes at their narrow ports: what is under test
 * is retry, idempotence, cancellation and hand-back, not the kernel pipeline.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import type { JobResult } from '../../domain/job.ts';
import type { Series } from '../../domain/series.ts';
import type { Status } from '../../domain/status.ts';
import { JobQueue } from '../../queue/job-queue.ts';
import { JobLogs } from '../../queue/logs.ts';
import { closeRedis, createRedis } from '../../queue/redis.ts';
import { type JobRecord, type ProcessorDeps, type WorkerStore, makeProcessor } from '../processor.ts';
import { SeriesWorker, requestCancel } from '../worker.ts';
import { jobResult } from './job-result.ts';
import { until } from '../../platform/test/until.ts';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = pino({ level: 'silent' });

class MemoryStore implements WorkerStore {
  readonly jobs = new Map<string, JobRecord & { results: JobResult[]; runs: number; requeues: number }>();
  add(id: string, status = 'queued'): void {
    const series = { title: 't', version: 1, total: 1, patches: [], baseCommit: null } as unknown as Series;
    this.jobs.set(id, { id, status, tree: 'linux', base: null, suites: ['smoke'], series, prerequisites: null, results: [], runs: 0, requeues: 0 });
  }
  private must(id: string) {
    const j = this.jobs.get(id);
    if (!j) throw new Error(`no job ${id}`);
    return j;
  }
  load(id: string): Promise<JobRecord | null> { return Promise.resolve(this.jobs.get(id) ?? null); }
  markRunning(id: string): Promise<void> { const j = this.must(id); j.status = 'running'; j.runs++; return Promise.resolve(); }
  recordResult(id: string, r: JobResult): Promise<void> { const j = this.must(id); j.status = r.status; j.results.push(r); return Promise.resolve(); }
  requeue(id: string): Promise<void> { const j = this.must(id); j.status = 'queued'; j.requeues++; return Promise.resolve(); }
  markCancelled(id: string): Promise<void> { this.must(id).status = 'cancelled'; return Promise.resolve(); }
}

/** The executor port: each call takes the next planned outcome; 'hang' waits for the abort signal. */
type Plan = Status | 'hang' | 'flood' | 'limit';
function fakeExecute(plan: Plan[]): ProcessorDeps['execute'] & { calls: number } {
  const fn = async (input: Parameters<ProcessorDeps['execute']>[0], onEvent: Parameters<ProcessorDeps['execute']>[1], signal: AbortSignal) => {
    fn.calls++;
    const next = plan.shift() ?? 'PASS';
    onEvent({ type: 'stage-start', stage: 'setup' });
    onEvent({ type: 'log', stage: 'setup', text: 'working\n' });
    if (next === 'flood') {
      // A job printing without end: a megabyte of output in 1 KiB pieces.
      for (let i = 0; i < 1024; i++) onEvent({ type: 'log', stage: 'build', text: `${String(i).padStart(4, '0')}${'x'.repeat(1019)}\n` });
      onEvent({ type: 'stage-end', stage: 'setup', status: 'PASS', durationMs: 1, summary: 'done' });
      return jobResult(input.jobId, 'PASS');
    }
    if (next === 'limit') return jobResult(input.jobId, 'MISS', 'JOB_LIMIT');
    if (next === 'hang') {
      await new Promise<void>((resolve) => { signal.addEventListener('abort', () => { resolve(); }, { once: true }); });
      return jobResult(input.jobId, 'MISS', 'JOB_CANCELLED');
    }
    return jobResult(input.jobId, next, next === 'MISS' ? 'DOCKER_FAILED' : undefined);
  };
  fn.calls = 0;
  return fn;
}

describe('series worker on a real Redis', { timeout: 120_000 }, () => {
  let redis: Redis;
  before(() => { redis = createRedis(url, 'worker-test'); });
  after(async () => { await closeRedis(redis); });

  function setup(plan: Plan[], opts: { attempts?: number; grace?: number } = {}) {
    const prefix = `test-${randomBytes(4).toString('hex')}`;
    const store = new MemoryStore();
    const logs = new JobLogs(redis, prefix);
    const execute = fakeExecute(plan);
    const deps = (workerId: string): ProcessorDeps => ({
      store, execute, logs, logger, workerId, kernelFragment: '', logLimitBytes: 64 * 1024,
      trees: { get: (name) => ({ name, ref: 'v1', url: 'file:///dev/null' }) },
      suites: { select: (names) => names.map((name) => ({ name, description: '', timeoutSeconds: 1, kconfig: [], build: {}, run: 'run.sh', paths: [] })) },
    });
    const queue = new JobQueue(redis, { prefix, retry: { attempts: opts.attempts ?? 3, backoffMs: 50 } });
    const workers: SeriesWorker[] = [];
    const startWorker = (id: string): SeriesWorker => {
      const w = new SeriesWorker(redis, makeProcessor(deps(id)), {
        prefix, concurrency: 1, lockDurationMs: 5000, stalledIntervalMs: 1000, maxStalledCount: 2, shutdownGraceMs: opts.grace ?? 200,
      }, logger);
      workers.push(w);
      return w;
    };
    const done = async (): Promise<void> => {
      await Promise.all(workers.map((w) => w.close()));
      await queue.queue.obliterate({ force: true });
      await queue.close();
    };
    return { store, logs, execute, queue, startWorker, done, prefix };
  }


  test('a job runs once, its result is recorded once, its log stream ends with the verdict', async () => {
    const t = setup(['FAIL']);
    try {
      t.store.add('j-1');
      t.startWorker('w1');
      await t.queue.enqueue('j-1');
      await t.queue.enqueue('j-1');
      await until('the result', () => t.store.jobs.get('j-1')?.status === 'FAIL');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(t.execute.calls, 1, 'a FAIL is the series\' verdict: not retried');
      assert.equal(t.store.jobs.get('j-1')?.results.length, 1);
      const entries = (await t.logs.read('j-1', '0')).map((e) => e.entry);
      assert.deepEqual(entries[entries.length - 1], { kind: 'end', status: 'FAIL' });
      assert.ok(entries.some((e) => e.kind === 'log' && e.text === 'working\n'));
    } finally { await t.done(); }
  });

  test('a job that prints without end puts at most its byte limit on the log stream, then a marker; stage events still go', async () => {
    const t = setup(['flood']);
    try {
      t.store.add('j-flood');
      t.startWorker('w1');
      await t.queue.enqueue('j-flood');
      await until('the result', () => t.store.jobs.get('j-flood')?.status === 'PASS');
      const entries = (await t.logs.read('j-flood', '0', { count: 100_000 })).map((e) => e.entry);
      const text = entries.map((e) => (e.kind === 'log' ? e.text : '')).join('');
      assert.ok(Buffer.byteLength(text) <= 64 * 1024 + 200, `${Buffer.byteLength(text)} bytes on the stream`);
      assert.ok(text.startsWith('working\n0000x'), text.slice(0, 20));
      assert.match(text, /patchbay: the log stream of this attempt cut at 64 KiB/);
      assert.ok(!text.includes('0064x'), 'nothing after the limit');
      assert.ok(entries.some((e) => e.kind === 'stage' && e.phase === 'end'), 'stage events after the cut still go');
      assert.deepEqual(entries[entries.length - 1], { kind: 'end', status: 'PASS' });
    } finally { await t.done(); }
  });

  test('a job over its limits (JOB_LIMIT) is MISS at once: retrying would only hit them again', async () => {
    const t = setup(['limit', 'PASS'], { attempts: 3 });
    try {
      t.store.add('j-limit');
      t.startWorker('w1');
      await t.queue.enqueue('j-limit');
      await until('the MISS', () => t.store.jobs.get('j-limit')?.status === 'MISS');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(t.execute.calls, 1);
    } finally { await t.done(); }
  });

  test('infrastructure trouble (MISS) is retried, and recorded only when the attempts are used up', async () => {
    const t = setup(['MISS', 'MISS', 'MISS'], { attempts: 3 });
    try {
      t.store.add('j-2');
      t.startWorker('w1');
      await t.queue.enqueue('j-2');
      await until('the final MISS', () => t.store.jobs.get('j-2')?.status === 'MISS', 30_000);
      assert.equal(t.execute.calls, 3);
      assert.equal(t.store.jobs.get('j-2')?.results.length, 1, 'one recorded result, the last');
      assert.equal(t.store.jobs.get('j-2')?.requeues, 2);
    } finally { await t.done(); }
  });

  test('a MISS followed by a good run records the good run only', async () => {
    const t = setup(['MISS', 'PASS']);
    try {
      t.store.add('j-3');
      t.startWorker('w1');
      await t.queue.enqueue('j-3');
      await until('PASS', () => t.store.jobs.get('j-3')?.status === 'PASS', 30_000);
      assert.deepEqual(t.store.jobs.get('j-3')?.results.map((r) => r.status), ['PASS']);
    } finally { await t.done(); }
  });

  test('a job whose result is already recorded is not run again', async () => {
    const t = setup(['PASS']);
    try {
      t.store.add('j-4', 'FAIL');
      t.startWorker('w1');
      await t.queue.enqueue('j-4');
      // The worker took the job and finished it without running it: its
      // BullMQ job completed with the status already recorded. A wait that
      // expires fails the test (nothing was checked if the job was never taken).
      const job = await t.queue.queue.getJob('j-4');
      assert.ok(job, 'j-4 is in the queue');
      const state = await until('the worker to finish j-4', async () => {
        const s = await job.getState();
        return s === 'completed' || s === 'failed' ? s : undefined;
      }, 10_000);
      const finished = await t.queue.queue.getJob('j-4');
      assert.equal(state, 'completed', finished?.failedReason);
      assert.deepEqual(finished?.returnvalue, { status: 'FAIL' }, 'finished with the status already recorded');
      assert.equal(t.execute.calls, 0);
      assert.equal(t.store.jobs.get('j-4')?.status, 'FAIL');
    } finally { await t.done(); }
  });

  test('a cancel request from another process stops the running job and records it cancelled', async () => {
    const t = setup(['hang']);
    try {
      t.store.add('j-5');
      t.startWorker('w1');
      await t.queue.enqueue('j-5');
      await until('running', () => t.store.jobs.get('j-5')?.status === 'running');
      await requestCancel(redis, t.prefix, 'j-5');
      await until('cancelled', () => t.store.jobs.get('j-5')?.status === 'cancelled');
      assert.equal(t.execute.calls, 1, 'a cancelled job is not retried');
      assert.equal(t.store.jobs.get('j-5')?.results.length, 0);
    } finally { await t.done(); }
  });

  test('at shutdown a running job is handed back and another worker finishes it, with one result', async () => {
    const t = setup(['hang', 'PASS'], { grace: 200 });
    try {
      t.store.add('j-6');
      const first = t.startWorker('w1');
      await t.queue.enqueue('j-6');
      await until('running on w1', () => t.store.jobs.get('j-6')?.status === 'running');
      const t0 = Date.now();
      await first.close();
      assert.ok(Date.now() - t0 < 10_000, 'shutdown is bounded');
      assert.equal(t.store.jobs.get('j-6')?.status, 'queued', 'handed back');
      t.startWorker('w2');
      await until('PASS on w2', () => t.store.jobs.get('j-6')?.status === 'PASS');
      assert.equal(t.execute.calls, 2);
      assert.deepEqual(t.store.jobs.get('j-6')?.results.map((r) => r.status), ['PASS']);
    } finally { await t.done(); }
  });
});

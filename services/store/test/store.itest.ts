/**
 * The store against both backends: the same suite runs on PGlite in a fresh
 * temp dir and on a real PostgreSQL server started for the test.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { MIGRATIONS } from '../migrations/index.ts';
import { PatchbayError } from '../../domain/errors.ts';
import type { ComparedResult } from '../../domain/compare.ts';
import type { JobResult } from '../../domain/job.ts';
import { parseMessage } from '../../domain/mbox.ts';
import { assembleSeries, type Series } from '../../domain/series.ts';
import { jobIdempotencyKey, openDatabase, seriesContentHash, type Store } from '../db.ts';
import { startPostgres } from './postgres-server.ts';

const unchanged: Pick<ComparedResult, 'baseStatus' | 'comparison' | 'seriesRuns' | 'baseRuns'> = {
  baseStatus: 'PASS',
  comparison: 'unchanged',
  seriesRuns: { runs: 1, fails: 0, skips: 0, missing: 0 },
  baseRuns: { runs: 1, fails: 0, skips: 0, missing: 0 },
};

/** Every byte 0x80..0xff, as the latin1 "binary string" MailMessage.raw holds. */
const HIGH_BYTES = Array.from({ length: 128 }, (_, i) => String.fromCharCode(0x80 + i)).join('');

function mail(headers: Record<string, string>, body: string): string {
  return `${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${body}`;
}

/** A v2 series of two patches and a cover letter; `tag` makes its title and content unique. */
function makeSeries(tag: string, opts: { tree?: string } = {}): Series {
  const prefix = opts.tree === undefined ? 'PATCH v2' : `PATCH ${opts.tree} v2`;
  const cover = mail(
    {
      From: 'Ann Author <ann@example.org>',
      Subject: `[${prefix} 0/2] io_uring/kbuf: ${tag}`,
      'Message-ID': `<cover-${tag}@example.org>`,
      Date: 'Thu, 8 Jan 2026 11:18:17 -0800',
    },
    `Cover letter for ${tag}.\n\nbase-commit: 0123456789abcdef0123456789abcdef01234567\n`,
  );
  const patch = (n: number): string =>
    mail(
      {
        From: 'Ann Author <ann@example.org>',
        Subject: `[${prefix} ${n}/2] io_uring/kbuf: step ${n} of ${tag}`,
        'Message-ID': `<p${n}-${tag}@example.org>`,
        'In-Reply-To': `<cover-${tag}@example.org>`,
        Date: 'Thu, 8 Jan 2026 11:18:17 -0800',
        'Content-Type': 'text/plain; charset=iso-8859-1',
        'Content-Transfer-Encoding': '8bit',
      },
      [
        `Step ${n}. Bytes: ${HIGH_BYTES}`,
        '',
        'Signed-off-by: Ann Author <ann@example.org>',
        '---',
        ` io_uring/kbuf.c | 1 +`,
        '',
        'diff --git a/io_uring/kbuf.c b/io_uring/kbuf.c',
        '--- a/io_uring/kbuf.c',
        '+++ b/io_uring/kbuf.c',
        '@@ -1,1 +1,2 @@',
        ' int x;',
        `+int step_${n}_${tag.replace(/\W/g, '_')};`,
        '',
      ].join('\n'),
    );
  return assembleSeries([cover, patch(1), patch(2)].map(parseMessage));
}

function unique(): string {
  return randomBytes(6).toString('hex');
}

function jobResult(jobId: string, overrides: Partial<JobResult> = {}): JobResult {
  return {
    jobId,
    status: 'FAIL',
    stage: 'test',
    summary: '1 PASS, 1 FAIL',
    tree: { name: 'io_uring', ref: 'for-next' },
    baseCommit: 'a'.repeat(40),
    headCommit: 'b'.repeat(40),
    series: { title: 't', version: 2, patches: 2 },
    suites: ['kbuf'],
    accel: 'tcg',
    buildMode: 'incremental',
    stages: [
      { stage: 'setup', status: 'PASS', durationMs: 1200.4, summary: 'warm base' },
      { stage: 'apply', status: 'PASS', durationMs: 300, summary: 'applied 2 patches' },
      { stage: 'test', status: 'FAIL', durationMs: 5000, summary: '1 PASS, 1 FAIL' },
    ],
    results: [
      { suite: 'kbuf', test: 'buf-ring', status: 'PASS', detail: '', ...unchanged },
      {
        suite: 'kbuf',
        test: 'recv-bundle',
        status: 'FAIL',
        detail: 'got -22\u0000 from the console',
        baseStatus: 'PASS',
        comparison: 'new-failure',
        seriesRuns: { runs: 4, fails: 4, skips: 0, missing: 0 },
        baseRuns: { runs: 4, fails: 0, skips: 0, missing: 0 },
      },
      { suite: 'kbuf', test: 'send-zc', status: 'SKIP', detail: 'skipped: -EINVAL', baseStatus: 'PASS', comparison: 'now-skips', seriesRuns: { runs: 4, fails: 0, skips: 3, missing: 1 }, baseRuns: { runs: 4, fails: 0, skips: 0, missing: 0 } },
      { suite: 'kbuf', test: 'kernel-warning', status: 'FAIL', detail: 'first', baseStatus: null, comparison: 'no-base', seriesRuns: { runs: 1, fails: 1, skips: 0, missing: 0 }, baseRuns: null },
      { suite: 'kbuf', test: 'kernel-warning', status: 'FAIL', detail: 'second', baseStatus: null, comparison: 'no-base', seriesRuns: { runs: 1, fails: 1, skips: 0, missing: 0 }, baseRuns: null },
    ],
    base: { commit: 'a'.repeat(40), suites: [{ suite: 'kbuf', source: 'run', jobId: 'x', summary: 'run in this job' }], rerun: { tests: 1, times: 3 } },
    crashes: [],
    applyFailure: null,
    buildErrors: [],
    error: null,
    artifactsDir: '/tmp/artifacts/x',
    artifacts: ['result.json'],
    startedAt: new Date().toISOString(),
    durationMs: 6500,
    ...overrides,
  };
}

async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PatchbayError, `expected a PatchbayError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

interface Backend {
  /** Opens a store on the backend's one database (the same one each time). */
  open(): Promise<Store>;
  cleanup(): Promise<void>;
}

function storeSuite(name: string, setup: () => Promise<Backend>): void {
  describe(name, () => {
    let backend: Backend;
    let store: Store;

    before(async () => {
      backend = await setup();
      store = await backend.open();
    });

    after(async () => {
      await store.close();
      await backend.cleanup();
    });

    test('migrations are idempotent on reopen, and close() is idempotent', async () => {
      const marker = unique();
      const s = await store.series.create({
        series: makeSeries(marker),
        source: 'upload',
        inboxUrl: null,
        submittedBy: null,
        contentHash: seriesContentHash(makeSeries(marker)),
      });
      await store.close();
      await store.close();
      // Reopen twice: the second open finds nothing to migrate. (One PGlite per data dir at a time.)
      store = await backend.open();
      await store.close();
      store = await backend.open();
      const applied = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(store.db);
      assert.deepEqual(applied.rows.map((r) => r.name), Object.keys(MIGRATIONS).sort());
      assert.equal((await store.series.get(s.id))?.title, s.title);
    });

    test('series and patches round-trip, raw bytes 0x80-0xff intact', async () => {
      const marker = unique();
      const series = makeSeries(marker, { tree: 'io_uring-7.1' });
      const hash = seriesContentHash(series);
      const created = await store.series.create({
        series,
        source: 'message-id',
        inboxUrl: 'http://127.0.0.1:1/io-uring/',
        submittedBy: 't-00000000000000000000',
        contentHash: hash,
      });
      assert.match(created.id, /^s-[0-9a-z]{20}$/);
      assert.equal(created.title, series.title);
      assert.equal(created.version, 2);
      assert.equal(created.total, 2);
      assert.equal(created.isRfc, false);
      assert.deepEqual(created.treeTags, ['io_uring-7.1']);
      assert.equal(created.baseCommit, '0123456789abcdef0123456789abcdef01234567');
      assert.equal(created.rootMessageId, `cover-${marker}@example.org`);
      assert.ok(created.createdAt instanceof Date);

      assert.deepEqual(await store.series.get(created.id), created);
      assert.deepEqual(await store.series.findByContentHash(hash), created);
      assert.equal(await store.series.findByContentHash('0'.repeat(64)), null);
      assert.equal(await store.series.get('s-00000000000000000000'), null);

      const patches = await store.series.patches(created.id);
      assert.deepEqual(patches.map((p) => p.counter), [1, 2]);
      for (const [i, p] of patches.entries()) {
        const original = series.patches[i];
        assert.ok(original);
        assert.ok(Buffer.isBuffer(p.raw));
        assert.ok(p.raw.equals(Buffer.from(original.message.raw, 'latin1')));
        assert.equal(p.raw.toString('latin1'), original.message.raw);
        assert.ok(p.raw.includes(Buffer.from(Array.from({ length: 128 }, (_, b) => 0x80 + b))));
        assert.equal(p.subject, original.message.subject);
        assert.equal(p.messageId, original.message.messageId);
        assert.equal(p.authorName, 'Ann Author');
        assert.equal(p.authorEmail, 'ann@example.org');
        assert.deepEqual(p.files, original.files);
        assert.deepEqual(p.trailers, original.trailers);
      }
      const cover = await store.series.cover(created.id);
      assert.equal(cover?.counter, 0);
      assert.equal(cover.raw.toString('latin1'), series.cover?.raw);

      const byTree = await store.series.list({ limit: 50, tree: 'io_uring-7.1', q: marker });
      assert.deepEqual(byTree.items.map((s) => s.id), [created.id]);
      assert.deepEqual((await store.series.list({ limit: 50, tree: 'net-next', q: marker })).items, []);
    });

    test('a transaction that fails half-way leaves no series row', async () => {
      const marker = unique();
      const series = makeSeries(marker);
      const [first] = series.patches;
      assert.ok(first);
      // Two patches with counter 1: the second insert violates the primary key.
      const broken: Series = { ...series, patches: [first, { ...first }] };
      await rejectsWithCode(
        store.series.create({ series: broken, source: 'upload', inboxUrl: null, submittedBy: null, contentHash: seriesContentHash(broken) }),
        'STORE_CONSTRAINT',
      );
      assert.deepEqual((await store.series.list({ limit: 10, q: marker })).items, []);
      const orphans = await store.db
        .selectFrom('patches')
        .select('series_id')
        .where('message_id', '=', first.message.messageId)
        .execute();
      assert.deepEqual(orphans, []);
    });

    test('NUL and lone surrogates in text are stored as U+FFFD', async () => {
      const marker = unique();
      const series = { ...makeSeries(marker), title: `nul\u0000 and \uD800 in ${marker}` };
      const created = await store.series.create({
        series,
        source: 'lore',
        inboxUrl: null,
        submittedBy: null,
        contentHash: seriesContentHash(series),
      });
      assert.equal(created.title, `nul\uFFFD and \uFFFD in ${marker}`);
    });

    test('keyset paging returns every row exactly once, newest first', async () => {
      const marker = unique();
      const ids: string[] = [];
      for (let i = 0; i < 23; i++) {
        const series = makeSeries(`${marker} n${i}`);
        const s = await store.series.create({
          series,
          source: 'upload',
          inboxUrl: null,
          submittedBy: null,
          contentHash: seriesContentHash(series),
        });
        ids.push(s.id);
      }
      // Ties on created_at: the id breaks them.
      await store.db
        .updateTable('series')
        .set({ created_at: sql<Date>`'2030-01-01T00:00:00.123456Z'::timestamptz` })
        .where('id', 'in', ids.slice(5, 12))
        .execute();

      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: Awaited<ReturnType<Store['series']['list']>> = await store.series.list({
          limit: 4,
          q: marker.toUpperCase(),
          ...(cursor === null ? {} : { cursor }),
        });
        assert.ok(page.items.length <= 4);
        seen.push(...page.items.map((s) => s.id));
        cursor = page.nextCursor;
        pages++;
      } while (cursor !== null && pages < 50);
      assert.equal(pages, 6);
      assert.equal(seen.length, 23);
      assert.equal(new Set(seen).size, 23);
      assert.deepEqual([...seen].sort(), [...ids].sort());
      const all = await store.series.list({ limit: 100, q: marker });
      assert.deepEqual(all.items.map((s) => s.id), seen);
      for (let i = 1; i < all.items.length; i++) {
        const a = all.items[i - 1];
        const b = all.items[i];
        assert.ok(a && b && a.createdAt.getTime() >= b.createdAt.getTime());
      }
      // The seven rows moved to 2030 come first.
      assert.deepEqual(new Set(seen.slice(0, 7)), new Set(ids.slice(5, 12)));

      await rejectsWithCode(store.series.list({ limit: 4, cursor: 'not-a-cursor' }), 'STORE_BAD_CURSOR');
      await rejectsWithCode(store.series.list({ limit: 0 }), 'STORE_BAD_ARGUMENT');
      // "%" and "_" in q are literal.
      assert.deepEqual((await store.series.list({ limit: 10, q: `${marker}%` })).items, []);
    });

    test('a job names its prerequisite series; the key differs with the prerequisites; a series a job needs as prerequisites is not removed', async () => {
      const series = makeSeries(unique());
      const pre = makeSeries(unique());
      const [hash, preHash] = [seriesContentHash(series), seriesContentHash(pre)];
      const s = await store.series.create({ series, source: 'lore', inboxUrl: null, submittedBy: null, contentHash: hash });
      const p = await store.series.create({ series: pre, source: 'lore', inboxUrl: null, submittedBy: null, contentHash: preHash });
      const plain = jobIdempotencyKey({ contentHash: hash, tree: 'io_uring', base: 'abc', suites: ['kbuf'] });
      assert.equal(jobIdempotencyKey({ contentHash: hash, tree: 'io_uring', base: 'abc', suites: ['kbuf'], prerequisitesHash: null }), plain, 'no prerequisites: the key of before');
      const withPre = jobIdempotencyKey({ contentHash: hash, tree: 'io_uring', base: 'abc', suites: ['kbuf'], prerequisitesHash: preHash });
      assert.notEqual(withPre, plain);
      const { job } = await store.jobs.createOrGet({ seriesId: s.id, tree: 'io_uring', base: 'abc', suites: ['kbuf'], idempotencyKey: withPre, deadlineAt: null, submittedBy: null, activeCap: null, prerequisitesId: p.id });
      assert.equal(job.prerequisitesId, p.id);
      assert.equal((await store.jobs.get(job.id))?.prerequisitesId, p.id);
      assert.equal(await store.series.deleteIfUnused(p.id), false, 'the job needs it');
      assert.ok(await store.series.get(p.id));
    });

    test('idempotent job creation: concurrent createOrGet with one key makes one row', async () => {
      const series = makeSeries(unique());
      const hash = seriesContentHash(series);
      const s = await store.series.create({ series, source: 'upload', inboxUrl: null, submittedBy: null, contentHash: hash });
      const key = jobIdempotencyKey({ contentHash: hash, tree: 'io_uring', base: null, suites: ['kbuf', 'fuse'] });
      assert.equal(key, jobIdempotencyKey({ contentHash: hash, tree: 'io_uring', base: null, suites: ['fuse', 'kbuf', 'kbuf'] }));
      const forced = jobIdempotencyKey({ contentHash: hash, tree: 'io_uring', base: null, suites: ['kbuf'], force: true });
      assert.notEqual(forced, jobIdempotencyKey({ contentHash: hash, tree: 'io_uring', base: null, suites: ['kbuf'], force: true }));

      const deadlineAt = new Date(Date.now() + 3_600_000);
      const input = { seriesId: s.id, tree: 'io_uring', base: null, suites: ['kbuf', 'fuse'], idempotencyKey: key, deadlineAt, submittedBy: null, activeCap: null };
      const results = await Promise.all([1, 2, 3, 4].map(() => store.jobs.createOrGet(input)));
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.equal(new Set(results.map((r) => r.job.id)).size, 1);
      const [first] = results;
      assert.ok(first);
      assert.match(first.job.id, /^j-[0-9a-z]{20}$/);
      assert.equal(first.job.status, 'queued');
      assert.deepEqual(first.job.suites, ['kbuf', 'fuse']);
      assert.equal(first.job.attempts, 0);
      assert.equal(first.job.deadlineAt?.getTime(), deadlineAt.getTime());
      const rows = await store.db.selectFrom('jobs').select('id').where('idempotency_key', '=', key).execute();
      assert.equal(rows.length, 1);

      const other = await store.jobs.createOrGet({ ...input, idempotencyKey: forced });
      assert.equal(other.created, true);
      assert.deepEqual((await store.jobs.forSeries(s.id)).map((j) => j.id), [other.job.id, first.job.id]);

      await rejectsWithCode(
        store.jobs.createOrGet({ ...input, seriesId: 's-00000000000000000000', idempotencyKey: unique() }),
        'SERIES_NOT_FOUND',
      );
    });

    test('job lifecycle, and recordResult is idempotent and replaces rows', async () => {
      const series = makeSeries(unique());
      const hash = seriesContentHash(series);
      const s = await store.series.create({ series, source: 'upload', inboxUrl: null, submittedBy: null, contentHash: hash });
      const { job } = await store.jobs.createOrGet({
        seriesId: s.id,
        tree: 'io_uring',
        base: 'for-next',
        suites: ['kbuf'],
        idempotencyKey: jobIdempotencyKey({ contentHash: hash, tree: 'io_uring', base: 'for-next', suites: ['kbuf'] }),
        deadlineAt: null,
        submittedBy: null,
        activeCap: null,
      });

      const running = await store.jobs.markRunning(job.id, { worker: 'w1' });
      assert.equal(running.status, 'running');
      assert.equal(running.worker, 'w1');
      assert.equal(running.attempts, 1);
      assert.ok(running.startedAt instanceof Date);
      const requeued = await store.jobs.requeue(job.id);
      assert.equal(requeued.status, 'queued');
      assert.equal(requeued.worker, null);
      const retry = await store.jobs.markRunning(job.id, { worker: 'w2' });
      assert.equal(retry.attempts, 2);
      assert.equal(retry.startedAt?.getTime(), running.startedAt.getTime());

      const result = jobResult(job.id, { baseRule: 'tree-ref' });
      const done = await store.jobs.recordResult(job.id, result);
      await store.jobs.recordResult(job.id, result);
      assert.equal(done.baseRule, 'tree-ref', "the executor's rule, when the intake named none");
      const { job: picked } = await store.jobs.createOrGet({
        seriesId: s.id, tree: 'io_uring', base: 'c'.repeat(40), baseRule: 'blob-guess', suites: ['kbuf'], idempotencyKey: unique(), deadlineAt: null, submittedBy: null, activeCap: null,
      });
      assert.equal(picked.baseRule, 'blob-guess');
      await store.jobs.markRunning(picked.id, { worker: 'w1' });
      assert.equal((await store.jobs.recordResult(picked.id, jobResult(picked.id, { baseRule: 'requested' }))).baseRule, 'blob-guess', "the intake's rule is kept");
      assert.equal(done.status, 'FAIL');
      assert.equal(done.stage, 'test');
      assert.equal(done.summary, '1 PASS, 1 FAIL');
      assert.equal(done.accel, 'tcg');
      assert.equal(done.buildMode, 'incremental');
      assert.equal(done.baseCommit, 'a'.repeat(40));
      assert.equal(done.artifactsDir, '/tmp/artifacts/x');
      assert.ok(done.finishedAt instanceof Date);

      let stored = await store.jobs.results(job.id);
      assert.deepEqual(stored.stages.map((r) => [r.stage, r.status, r.durationMs]), [
        ['setup', 'PASS', 1200],
        ['apply', 'PASS', 300],
        ['test', 'FAIL', 5000],
      ]);
      assert.deepEqual(stored.tests.map((t) => t.test), ['buf-ring', 'kernel-warning', 'kernel-warning (2)', 'recv-bundle', 'send-zc']);
      // The counts of skipped and missing runs, and the comparisons that came with them, round-trip.
      const zc = stored.tests.find((t) => t.test === 'send-zc');
      assert.equal(zc?.comparison, 'now-skips');
      assert.deepEqual([zc.seriesRuns, zc.baseRuns], [{ runs: 4, fails: 0, skips: 3, missing: 1 }, { runs: 4, fails: 0, skips: 0, missing: 0 }]);
      const bundle = stored.tests.find((t) => t.test === 'recv-bundle');
      assert.equal(bundle?.detail, 'got -22\uFFFD from the console');
      assert.equal(bundle.comparison, 'new-failure');
      assert.equal(bundle.baseStatus, 'PASS');
      assert.deepEqual([bundle.seriesRuns, bundle.baseRuns], [{ runs: 4, fails: 4, skips: 0, missing: 0 }, { runs: 4, fails: 0, skips: 0, missing: 0 }]);
      assert.equal(stored.tests.find((t) => t.test === 'kernel-warning')?.baseRuns, null);
      const full = await store.jobs.get(job.id);
      assert.equal(full?.result?.status, 'FAIL');
      assert.equal(full.result.results.length, 5);

      // Recording again replaces: one set of rows, the new one.
      const rerun = jobResult(job.id, {
        status: 'PASS',
        stage: null,
        summary: '1 PASS',
        stages: [{ stage: 'test', status: 'PASS', durationMs: 10, summary: '1 PASS' }],
        results: [{ suite: 'kbuf', test: 'buf-ring', status: 'PASS', detail: '', ...unchanged }],
        error: { code: 'X', message: 'y' },
      });
      const again = await store.jobs.recordResult(job.id, rerun);
      assert.equal(again.status, 'PASS');
      assert.equal(again.stage, null);
      assert.equal(again.errorCode, 'X');
      stored = await store.jobs.results(job.id);
      assert.equal(stored.stages.length, 1);
      assert.deepEqual(stored.tests, [{ suite: 'kbuf', test: 'buf-ring', status: 'PASS', detail: '', ...unchanged }]);
      const counts = await store.db
        .selectFrom('test_results')
        .select((eb) => eb.fn.countAll<string | number>().as('n'))
        .where('job_id', '=', job.id)
        .executeTakeFirstOrThrow();
      assert.equal(Number(counts.n), 1);

      await rejectsWithCode(store.jobs.markRunning(job.id, { worker: 'w3' }), 'JOB_STATE_CONFLICT');
      await rejectsWithCode(store.jobs.markCancelled(job.id), 'JOB_STATE_CONFLICT');
      await rejectsWithCode(store.jobs.requeue(job.id), 'JOB_STATE_CONFLICT');
      await rejectsWithCode(store.jobs.markRunning('j-00000000000000000000', { worker: 'w' }), 'JOB_NOT_FOUND');
      await rejectsWithCode(store.jobs.recordResult('j-00000000000000000000', rerun), 'JOB_NOT_FOUND');
      assert.equal(await store.jobs.get('j-00000000000000000000'), null);
    });

    test('cancelled jobs stay cancelled', async () => {
      const series = makeSeries(unique());
      const hash = seriesContentHash(series);
      const s = await store.series.create({ series, source: 'upload', inboxUrl: null, submittedBy: null, contentHash: hash });
      const { job } = await store.jobs.createOrGet({
        seriesId: s.id, tree: 'fuse', base: null, suites: ['fuse'], idempotencyKey: unique(), deadlineAt: null, submittedBy: null, activeCap: null,
      });
      const cancelled = await store.jobs.markCancelled(job.id);
      assert.equal(cancelled.status, 'cancelled');
      assert.ok(cancelled.finishedAt instanceof Date);
      assert.equal((await store.jobs.markCancelled(job.id)).finishedAt?.getTime(), cancelled.finishedAt.getTime());
      await rejectsWithCode(store.jobs.markRunning(job.id, { worker: 'w' }), 'JOB_STATE_CONFLICT');
      await rejectsWithCode(store.jobs.recordResult(job.id, jobResult(job.id)), 'JOB_CANCELLED');
      assert.equal((await store.jobs.get(job.id))?.status, 'cancelled');
    });

    test('job list: filters and keyset paging', async () => {
      const series = makeSeries(unique());
      const hash = seriesContentHash(series);
      const s = await store.series.create({ series, source: 'upload', inboxUrl: null, submittedBy: null, contentHash: hash });
      const tree = `tree-${unique()}`;
      const ids: string[] = [];
      for (let i = 0; i < 11; i++) {
        const { job } = await store.jobs.createOrGet({
          seriesId: s.id, tree, base: null, suites: ['kbuf'], idempotencyKey: unique(), deadlineAt: null, submittedBy: null, activeCap: null,
        });
        ids.push(job.id);
      }
      for (const id of ids.slice(0, 3)) await store.jobs.markRunning(id, { worker: 'w' });

      const seen: string[] = [];
      let cursor: string | null = null;
      for (let n = 0; n < 20; n++) {
        const page: Awaited<ReturnType<Store['jobs']['list']>> = await store.jobs.list({
          limit: 3,
          tree,
          ...(cursor === null ? {} : { cursor }),
        });
        seen.push(...page.items.map((j) => j.id));
        cursor = page.nextCursor;
        if (cursor === null) break;
      }
      assert.deepEqual(seen, [...ids].reverse());
      const running = await store.jobs.list({ limit: 50, tree, status: 'running' });
      assert.deepEqual(new Set(running.items.map((j) => j.id)), new Set(ids.slice(0, 3)));
      const both = await store.jobs.list({ limit: 50, seriesId: s.id, status: ['queued', 'running'] });
      assert.equal(both.items.length, 11);
      assert.equal((await store.jobs.list({ limit: 50, tree, status: [] })).items.length, 0);
      await rejectsWithCode(
        store.jobs.list({ limit: 3, cursor: Buffer.from(JSON.stringify(['2030-01-01T00:00:00.000000Z', s.id])).toString('base64url') }),
        'STORE_BAD_CURSOR',
      );
    });

    test('tokens: create, verify, revoke; the secret is never stored', async () => {
      const name = `ci-${unique()}`;
      const { token, secret } = await store.tokens.create(name, ['read', 'submit', 'read']);
      assert.match(token.id, /^t-[0-9a-z]{20}$/);
      assert.deepEqual(token.scopes, ['submit', 'read']);
      assert.match(secret, /^pb_[A-Za-z0-9_-]{43}$/);

      const verified = await store.tokens.verify(secret);
      assert.equal(verified?.id, token.id);
      assert.deepEqual(verified.scopes, ['submit', 'read']);
      assert.ok(verified.lastUsedAt instanceof Date);
      const firstUse = verified.lastUsedAt.getTime();
      assert.equal((await store.tokens.verify(secret))?.lastUsedAt?.getTime(), firstUse);

      const wrong = `pb_${randomBytes(32).toString('base64url')}`;
      assert.equal(await store.tokens.verify(wrong), null);
      assert.equal(await store.tokens.verify(''), null);
      assert.equal(await store.tokens.verify(secret.slice(0, -1)), null);

      const rows = await sql<{ row: string }>`select to_jsonb(t)::text as row from tokens t`.execute(store.db);
      assert.ok(rows.rows.length >= 1);
      for (const { row } of rows.rows) {
        assert.ok(!row.includes(secret), 'a tokens row holds the secret');
        assert.ok(!row.includes(secret.slice(3)), 'a tokens row holds the secret without its prefix');
      }

      await rejectsWithCode(store.tokens.create(name, ['read']), 'TOKEN_NAME_TAKEN');
      await rejectsWithCode(store.tokens.create(`x-${unique()}`, []), 'TOKEN_BAD_SCOPES');
      await rejectsWithCode(store.tokens.create(`x-${unique()}`, ['root' as 'admin']), 'TOKEN_BAD_SCOPES');

      const revoked = await store.tokens.revoke(token.id);
      assert.ok(revoked.revokedAt instanceof Date);
      assert.equal((await store.tokens.revoke(token.id)).revokedAt?.getTime(), revoked.revokedAt.getTime());
      assert.equal(await store.tokens.verify(secret), null);
      await rejectsWithCode(store.tokens.revoke('t-00000000000000000000'), 'TOKEN_NOT_FOUND');
      const listed = (await store.tokens.list()).find((t) => t.id === token.id);
      assert.ok(listed?.revokedAt instanceof Date);
    });

    test('close() is time-bounded: a transaction that never ends does not hold it', async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => {
        entered = resolve;
      });
      const stuck = store.db.transaction().execute(async (trx) => {
        await sql`select 1`.execute(trx);
        entered();
        await gate;
      });
      await inside;
      const t0 = Date.now();
      await rejectsWithCode(store.close(300), 'STORE_CLOSE_TIMEOUT');
      assert.ok(Date.now() - t0 < 3000);
      await rejectsWithCode(store.close(), 'STORE_CLOSE_TIMEOUT');
      release();
      await stuck.catch(() => undefined);
      store = await backend.open();
      assert.deepEqual((await store.series.list({ limit: 1, q: unique() })).items, []);
    });
  });
}

storeSuite('store on PGlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pb-store-'));
  return {
    open: () => openDatabase({ databaseUrl: null, dataDir: dir }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

storeSuite('store on PostgreSQL', async () => {
  const server = await startPostgres();
  return {
    open: async () => {
      // dataDir is PGlite's; with a databaseUrl nothing is written there.
      const store = await openDatabase({ databaseUrl: server.url, dataDir: join(tmpdir(), 'pb-unused') });
      assert.equal(store.backend, 'postgres');
      return store;
    },
    cleanup: () => server.stop(),
  };
});

/**
 * The HTTP API through app.inject(), on a real Redis (unique queue prefix per
 * run) and both database backends: embedded PGlite and a real PostgreSQL
 * server that the test starts. Every bad input gets a 4xx with a stable code
 * and leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { loadConfig } from '../../config/config.ts';
import { closeRedis, createRedis } from '../../queue/redis.ts';
import { openDatabase, type Store } from '../../store/db.ts';
import { startPostgres, type PostgresServer } from '../../store/test/postgres-server.ts';
import { fetchThreadMbox } from '../../lore/inbox.ts';
import { splitMbox } from '../../domain/mbox.ts';
import { type PublicInbox, startPublicInbox } from '../../lore/test/public-inbox-server.ts';
import { type Harness, apiHarness } from './harness.ts';

const root = new URL('../../..', import.meta.url).pathname;
const fixture = (name: string): Buffer => readFileSync(join(root, 'fixtures', 'series', name));
const golden = (name: string): Buffer => readFileSync(join(root, 'services', 'domain', 'test', 'golden', 'mbox', name));

async function counts(store: Store): Promise<{ series: number; jobs: number }> {
  const s = await store.db.selectFrom('series').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  const j = await store.db.selectFrom('jobs').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  return { series: Number(s.n), jobs: Number(j.n) };
}

function apiSuite(backend: 'pglite' | 'postgres') {
  describe(`API on ${backend}`, { timeout: 180_000 }, () => {
    let redis: Redis;
    let store: Store;
    let h: Harness;
    let pg: PostgresServer | null = null;
    let dir = '';

    before(async () => {
      redis = createRedis(loadConfig(process.env).redisUrl, 'api-test');
      dir = mkdtempSync(join(tmpdir(), 'patchbay-api-'));
      if (backend === 'postgres') pg = await startPostgres();
      store = await openDatabase({ databaseUrl: pg?.url ?? null, dataDir: dir });
      h = await apiHarness(redis, store);
    });
    after(async () => {
      await h.close();
      await store.close();
      await pg?.stop();
      await closeRedis(redis);
      rmSync(dir, { recursive: true, force: true });
    });

    const submit = (body: Buffer | string, query = '', token: string | null = h.tokens.submit, type = 'application/mbox') =>
      h.app.inject({ method: 'POST', url: `/api/v1/series${query}`, payload: body, headers: { 'content-type': type, ...(token ? { authorization: `Bearer ${token}` } : {}) } });

    test('a series submitted as an mbox is stored and queued: 202 with its series, job and URLs', async () => {
      const res = await submit(fixture('pass-kbuf-pin.mbox'), '?tree=linux-7.1.y&suite=smoke');
      assert.equal(res.statusCode, 202, res.body);
      const body = res.json<{ created: boolean; series: { id: string; title: string; version: number; total: number; page: string }; jobs: Array<{ id: string; status: string; url: string; page: string }> }>();
      assert.equal(body.created, true);
      assert.equal(body.series.title, 'io_uring/kbuf: buffer ring pinning');
      assert.equal(body.series.version, 2);
      assert.equal(body.series.total, 3);
      const job = body.jobs[0];
      assert.ok(job);
      assert.equal(job.status, 'queued');
      assert.equal(job.url, `/api/v1/jobs/${job.id}`);
      assert.equal(job.page, `/jobs/${job.id}`);
      assert.equal((await h.queue.depth()).waiting, 1);

      const got = await h.app.inject({ url: job.url });
      assert.equal(got.statusCode, 200);
      assert.equal(got.json<{ status: string; suites: string[] }>().status, 'queued');
      const series = await h.app.inject({ url: `/api/v1/series/${body.series.id}` });
      const s = series.json<{ cover: { subject: string } | null; patches: Array<{ counter: number; subject: string }>; jobs: unknown[] }>();
      assert.equal(s.cover?.subject, '[PATCH v2 0/3] io_uring/kbuf: buffer ring pinning');
      assert.deepEqual(s.patches.map((p) => p.counter), [1, 2, 3]);
      assert.equal(s.jobs.length, 1);

      // The same series, tree, base and suites: the same job. force: a new one.
      const again = (await submit(fixture('pass-kbuf-pin.mbox'), '?tree=linux-7.1.y&suite=smoke')).json<{ created: boolean; jobs: Array<{ id: string }> }>();
      assert.equal(again.created, false);
      assert.equal(again.jobs[0]?.id, job.id);
      const forced = (await submit(fixture('pass-kbuf-pin.mbox'), '?tree=linux-7.1.y&suite=smoke&force=true')).json<{ created: boolean; jobs: Array<{ id: string }> }>();
      assert.equal(forced.created, true);
      assert.notEqual(forced.jobs[0]?.id, job.id);
      assert.equal((await h.queue.depth()).waiting, 2);
    });

    const bad: Array<[string, () => ReturnType<typeof submit>, number, string]> = [
      ['a malformed mbox', () => submit(golden('malformed-random-text.mbox')), 400, 'MBOX_MALFORMED'],
      ['an mbox with no patches', () => submit(golden('no-diff.mbox')), 400, 'SERIES_NO_DIFF'],
      ['an incomplete series', () => submit(golden('incomplete-series.mbox')), 400, 'SERIES_INCOMPLETE'],
      ['a binary patch', () => submit(golden('binary-patch.mbox')), 400, 'PATCH_BINARY'],
      ['a patch touching paths outside the tree', () => submit(golden('path-escape.mbox')), 400, 'PATCH_PATH_ESCAPES'],
      ['an unknown tree', () => submit(fixture('fail-build-undeclared.mbox'), '?tree=linux-9.9'), 400, 'TREE_UNKNOWN'],
      ['an unknown suite', () => submit(fixture('fail-build-undeclared.mbox'), '?suite=nope'), 400, 'SUITE_UNKNOWN'],
      ['no token', () => submit(fixture('fail-build-undeclared.mbox'), '', null), 401, 'AUTH_REQUIRED'],
      ['a wrong token', () => submit(fixture('fail-build-undeclared.mbox'), '', 'pb_wrong'), 401, 'AUTH_INVALID'],
      ['a read-only token', () => submit(fixture('fail-build-undeclared.mbox'), '', h.tokens.read), 403, 'AUTH_FORBIDDEN'],
      ['an oversized upload', () => submit(Buffer.alloc(2 * 1024 * 1024, 'a')), 413, 'BODY_TOO_LARGE'],
      ['an unsupported content type', () => submit('x', '', h.tokens.submit, 'image/png'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['JSON without a messageId', () => submit(JSON.stringify({ inbox: 'http://127.0.0.1:1/x' }), '', h.tokens.submit, 'application/json'), 400, 'VALIDATION'],
    ];
    for (const [what, send, status, code] of bad) {
      test(`${what}: ${status} ${code}, nothing created`, async () => {
        const before = await counts(store);
        const depth = (await h.queue.depth()).waiting;
        const res = await send();
        assert.equal(res.statusCode, status);
        const body = res.json<{ error: { code: string; message: string } }>();
        assert.equal(body.error.code, code);
        assert.ok(body.error.message.length > 10, 'a message a person can act on');
        assert.doesNotMatch(JSON.stringify(body), /at .*\.ts:\d+/, 'no stack trace');
        assert.deepEqual(await counts(store), before);
        assert.equal((await h.queue.depth()).waiting, depth);
      });
    }

    test('a series named by Message-ID is fetched from its public-inbox (on the allowlist) and queued; another inbox is refused', async () => {
      const inbox: PublicInbox = await startPublicInbox();
      const allowed = await apiHarness(redis, store, {
        fetchThread: (url, messageId) => fetchThreadMbox(url, messageId, { allow: [new URL(inbox.url).origin], timeoutMs: 10_000, maxBytes: 1 << 20 }),
      });
      const byId = (body: unknown) => allowed.app.inject({ method: 'POST', url: '/api/v1/series', payload: JSON.stringify(body), headers: { 'content-type': 'application/json', authorization: `Bearer ${allowed.tokens.submit}` } });
      try {
        for (const raw of splitMbox(fixture('fail-boot-panic.mbox').toString('latin1'))) inbox.deliver(Buffer.from(raw, 'latin1'));
        const res = await byId({ messageId: '<20261122-kbuf-selftest-v1-2@patchbay.invalid>', inbox: inbox.url, suites: ['smoke'] });
        assert.equal(res.statusCode, 202, res.body);
        const body = res.json<{ series: { id: string; title: string; source: string; rootMessageId: string }; jobs: Array<{ status: string }> }>();
        assert.equal(body.series.title, 'io_uring/kbuf: pinning helpers with a boot self test');
        assert.equal(body.series.source, 'message-id');
        assert.equal(body.series.rootMessageId, '20261122-kbuf-selftest-v1-0@patchbay.invalid');
        assert.equal(body.jobs[0]?.status, 'queued');
        const missing = await byId({ messageId: 'nobody@nowhere.invalid', inbox: inbox.url });
        assert.equal(missing.statusCode, 404);
        assert.equal(missing.json<{ error: { code: string } }>().error.code, 'INBOX_NOT_FOUND');

        // The same server under another loopback name is not on the allowlist: nothing is fetched or created.
        const before = await counts(store);
        const other = await byId({ messageId: '<20261122-kbuf-selftest-v1-2@patchbay.invalid>', inbox: inbox.url.replace('127.0.0.1', '127.0.0.2'), suites: ['smoke'] });
        assert.equal(other.statusCode, 400);
        assert.equal(other.json<{ error: { code: string } }>().error.code, 'INBOX_NOT_ALLOWED');
        assert.deepEqual(await counts(store), before);
      } finally {
        await allowed.close();
        inbox.stop();
      }
    });

    test('a queued job can be cancelled: it leaves the queue and says cancelled', async () => {
      const res = await submit(fixture('fail-apply-needs-kmbuf.mbox'));
      const jobId = res.json<{ jobs: Array<{ id: string }> }>().jobs[0]?.id ?? '';
      const c = await h.app.inject({ method: 'POST', url: `/api/v1/jobs/${jobId}/cancel`, headers: { authorization: `Bearer ${h.tokens.submit}` } });
      assert.equal(c.statusCode, 202);
      assert.equal(c.json<{ status: string }>().status, 'cancelled');
      assert.equal((await h.app.inject({ url: `/api/v1/jobs/${jobId}` })).json<{ status: string }>().status, 'cancelled');
      const again = await h.app.inject({ method: 'POST', url: `/api/v1/jobs/${jobId}/cancel`, headers: { authorization: `Bearer ${h.tokens.submit}` } });
      assert.equal(again.statusCode, 409);
      assert.equal(again.json<{ error: { code: string } }>().error.code, 'JOB_FINISHED');
    });

    test('lists page through every job once, newest first, and filter by status', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const url: string = `/api/v1/jobs?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const page: { items: Array<{ id: string }>; nextCursor: string | null } = (await h.app.inject({ url })).json();
        seen.push(...page.items.map((j) => j.id));
        cursor = page.nextCursor;
      } while (cursor);
      assert.equal(seen.length, (await counts(store)).jobs);
      assert.equal(new Set(seen).size, seen.length);
      const cancelled = (await h.app.inject({ url: '/api/v1/jobs?status=cancelled' })).json<{ items: Array<{ status: string }> }>();
      assert.ok(cancelled.items.length >= 1 && cancelled.items.every((j) => j.status === 'cancelled'));
      assert.equal((await h.app.inject({ url: '/api/v1/jobs/j-nope' })).json<{ error: { code: string } }>().error.code, 'JOB_UNKNOWN');
    });

    test('the log streams over Server-Sent Events until the job ends, and reads whole as text', async () => {
      const res = await submit(fixture('fail-boot-panic.mbox'));
      const jobId = res.json<{ jobs: Array<{ id: string }> }>().jobs[0]?.id ?? '';
      await h.logs.append(jobId, { kind: 'stage', stage: 'build', phase: 'start' });
      await h.logs.append(jobId, { kind: 'log', stage: 'build', text: '  CC      io_uring/kbuf.o\n' });
      setTimeout(() => { void h.logs.append(jobId, { kind: 'end', status: 'FAIL' }); }, 200);
      const sse = await h.app.inject({ url: `/api/v1/jobs/${jobId}/log`, headers: { accept: 'text/event-stream' } });
      assert.equal(sse.headers['content-type'], 'text/event-stream');
      const events = sse.body.split('\n\n').filter((b) => b.startsWith('id:')).map((b) => /event: (\w+)/.exec(b)?.[1]);
      assert.deepEqual(events, ['stage', 'log', 'end']);
      const text = await h.app.inject({ url: `/api/v1/jobs/${jobId}/log` });
      assert.equal(text.body, '  CC      io_uring/kbuf.o\n');
    });

    test('health, readiness (each dependency named), metrics and OpenAPI', async () => {
      assert.equal((await h.app.inject({ url: '/healthz' })).statusCode, 200);
      const notReady = await h.app.inject({ url: '/readyz' });
      assert.equal(notReady.statusCode, 503);
      assert.deepEqual(notReady.json<{ checks: Record<string, string> }>().checks, { database: 'ok', redis: 'ok', docker: 'failed' });
      await redis.set(`${h.prefix}:docker`, 'ok', 'EX', 60);
      assert.equal((await h.app.inject({ url: '/readyz' })).statusCode, 200);
      const metrics = (await h.app.inject({ url: '/metrics' })).body;
      assert.match(metrics, /patchbay_queue_jobs\{state="waiting"\} \d+/);
      const spec = (await h.app.inject({ url: '/docs/json' })).json<{ paths: Record<string, unknown> }>();
      for (const p of ['/api/v1/series', '/api/v1/jobs/{id}', '/api/v1/jobs/{id}/cancel', '/api/v1/jobs/{id}/log']) assert.ok(p in spec.paths, p);
    });

    test('with anonymous reading off, reads need a token with the read scope', async () => {
      const closed = await apiHarness(redis, store, { anonymousRead: false });
      try {
        assert.equal((await closed.app.inject({ url: '/api/v1/jobs' })).statusCode, 401);
        assert.equal((await closed.app.inject({ url: '/api/v1/jobs', headers: { authorization: `Bearer ${closed.tokens.read}` } })).statusCode, 200);
        assert.equal((await closed.app.inject({ url: '/api/v1/jobs', headers: { authorization: `Bearer ${closed.tokens.submit}` } })).statusCode, 403);
        assert.equal((await closed.app.inject({ url: '/api/v1/jobs', headers: { authorization: `Bearer ${closed.tokens.admin}` } })).statusCode, 200);
      } finally {
        await closed.close();
      }
    });
  });
}

apiSuite('pglite');
apiSuite('postgres');

/**
 * The API's edges tried as an attacker would (issue 10, part 3): rate-limit
 * buckets that a header cannot reset, bad tokens counted, live-log streams
 * capped and always closed, cancelling and queueing limited per token,
 * security headers on every response, and public health endpoints that say
 * nothing about the internals. A real Redis, the embedded database, the
 * fastify options serve uses; listening on loopback where a socket matters.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type IncomingMessage, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { Gauge, Registry } from 'prom-client';
import { loadConfig } from '../../config/config.ts';
import { closeRedis, createRedis } from '../../queue/redis.ts';
import { openDatabase, type Store } from '../../store/db.ts';
import { type Harness, apiHarness } from './harness.ts';
import { until } from '../../platform/test/until.ts';

const root = new URL('../../..', import.meta.url).pathname;
const mbox = readFileSync(join(root, 'fixtures', 'series', 'pass-kbuf-pin.mbox'));
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const INTERNAL = '10.9.8.7';

interface Opened {
  res: IncomingMessage;
  body: () => string;
  ended: Promise<void>;
  close: () => void;
}

/** A GET on the listening server that resolves at the response's head; the body keeps coming. */
function open(base: string, path: string, headers: Record<string, string>): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      const ended = new Promise<void>((done) => { res.on('end', done); res.on('close', done); });
      resolve({ res, body: () => text, ended, close: () => { req.destroy(); } });
    });
    req.on('error', reject);
    req.end();
  });
}


describe('API edges under hostile use', { timeout: 120_000 }, () => {
  let redis: Redis;
  let store: Store;
  let dir = '';
  const harnesses: Harness[] = [];
  const harness = async (opts: Parameters<typeof apiHarness>[2]) => {
    const h = await apiHarness(redis, store, opts);
    harnesses.push(h);
    return h;
  };

  before(async () => {
    redis = createRedis(loadConfig(process.env).redisUrl, 'edges-test');
    dir = mkdtempSync(join(tmpdir(), 'patchbay-edges-'));
    store = await openDatabase({ databaseUrl: null, dataDir: dir });
  });
  after(async () => {
    for (const h of harnesses) await h.close();
    await store.close();
    await closeRedis(redis);
    rmSync(dir, { recursive: true, force: true });
  });

  const submit = (h: Harness, token: string, query = '?suite=smoke&force=true') =>
    h.app.inject({ method: 'POST', url: `/api/v1/series${query}`, payload: mbox, headers: { 'content-type': 'application/mbox', ...bearer(token) } });
  const jobOf = (res: { json: () => unknown }): string => (res.json() as { jobs: Array<{ id: string }> }).jobs[0]?.id ?? '';
  const jobCount = async (): Promise<number> => Number((await store.db.selectFrom('jobs').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);

  test('a spoofed X-Forwarded-For does not reset the rate limit; a proxy the configuration names is believed', async () => {
    const h = await harness({ rateLimitPerMinute: 3 });
    const codes: number[] = [];
    for (let i = 1; i <= 5; i++) {
      codes.push((await h.app.inject({ url: '/api/v1/jobs', headers: { 'x-forwarded-for': `198.51.100.${i}` } })).statusCode);
    }
    assert.deepEqual(codes, [200, 200, 200, 429, 429]);

    const proxied = await harness({ rateLimitPerMinute: 3, env: { PATCHBAY_TRUST_PROXY: '127.0.0.1' } });
    const each: number[] = [];
    for (let i = 1; i <= 5; i++) each.push((await proxied.app.inject({ url: '/api/v1/jobs', headers: { 'x-forwarded-for': `198.51.100.${i}` } })).statusCode);
    assert.deepEqual(each, [200, 200, 200, 200, 200], 'behind a named proxy, each client has its own bucket');
    const one: number[] = [];
    for (let i = 1; i <= 4; i++) one.push((await proxied.app.inject({ url: '/api/v1/jobs', headers: { 'x-forwarded-for': '198.51.100.77' } })).statusCode);
    assert.deepEqual(one, [200, 200, 200, 429]);
  });

  test('failed authentication counts against the address; a good token keeps its own bucket', async () => {
    const h = await harness({ rateLimitPerMinute: 3 });
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await h.app.inject({ url: '/api/v1/jobs', headers: bearer(`pb_${randomBytes(16).toString('hex')}`) })).statusCode);
    assert.deepEqual(codes, [401, 401, 401, 429, 429], 'every new bad token is not a new bucket');
    assert.equal((await h.app.inject({ url: '/api/v1/jobs' })).statusCode, 429, 'nor is leaving the header off');
    assert.equal((await h.app.inject({ url: '/api/v1/jobs', headers: bearer(h.tokens.read) })).statusCode, 200);
  });

  test('only the submitter or an admin may cancel a job', async () => {
    const h = await harness({});
    const other = (await store.tokens.create('other-submitter', ['submit'])).secret;
    const first = jobOf(await submit(h, h.tokens.submit));
    const refused = await h.app.inject({ method: 'POST', url: `/api/v1/jobs/${first}/cancel`, headers: bearer(other) });
    assert.equal(refused.statusCode, 403);
    assert.equal(refused.json<{ error: { code: string } }>().error.code, 'AUTH_FORBIDDEN');
    assert.equal((await store.jobs.get(first))?.status, 'queued');
    const byAdmin = await h.app.inject({ method: 'POST', url: `/api/v1/jobs/${first}/cancel`, headers: bearer(h.tokens.admin) });
    assert.equal(byAdmin.statusCode, 202);
    const second = jobOf(await submit(h, h.tokens.submit));
    const byOwner = await h.app.inject({ method: 'POST', url: `/api/v1/jobs/${second}/cancel`, headers: bearer(h.tokens.submit) });
    assert.equal(byOwner.statusCode, 202);
    assert.equal((await store.jobs.get(second))?.status, 'cancelled');
  });

  test('a token may have only so many jobs queued or running, even submitted at once; admins are not capped', async () => {
    const h = await harness({ activeJobsPerToken: 2 });
    const token = (await store.tokens.create('capped', ['submit'])).secret;
    const before = await jobCount();
    const first = await submit(h, token, '?suite=smoke');
    assert.equal(first.statusCode, 202);
    const burst = await Promise.all([1, 2, 3, 4].map(() => submit(h, token)));
    assert.deepEqual(burst.map((r) => r.statusCode).sort(), [202, 429, 429, 429]);
    const refused = burst.find((r) => r.statusCode === 429);
    assert.equal(refused?.json<{ error: { code: string } }>().error.code, 'JOB_QUOTA');
    assert.equal(await jobCount(), before + 2, 'nothing written for a refused submission');
    assert.equal((await h.queue.depth()).waiting, 2);

    // The first series again without force is the job it already has, not a new one: not refused.
    const same = await submit(h, token, '?suite=smoke');
    assert.equal(same.statusCode, 202);
    assert.equal(jobOf(same), jobOf(first));
    assert.equal((await submit(h, h.tokens.admin)).statusCode, 202, 'admins are not capped');

    assert.equal((await h.app.inject({ method: 'POST', url: `/api/v1/jobs/${jobOf(first)}/cancel`, headers: bearer(token) })).statusCode, 202);
    assert.equal((await submit(h, token)).statusCode, 202, 'a finished job frees its place');
  });

  test('live logs: capped per client and in all, a bad Last-Event-ID is a 400 on a closed socket, a closed stream frees its slot', async () => {
    const h = await harness({ sse: { maxTotal: 3, maxPerClient: 2 } });
    const base = await h.app.listen({ host: '127.0.0.1', port: 0 });
    const jobId = jobOf(await submit(h, h.tokens.submit));
    const sse = (headers: Record<string, string> = {}) => open(base, `/api/v1/jobs/${jobId}/log`, { accept: 'text/event-stream', ...headers });
    const streams: Opened[] = [];
    try {
      const a = await sse(bearer(h.tokens.read));
      const b = await sse(bearer(h.tokens.read));
      streams.push(a, b);
      assert.deepEqual([a.res.statusCode, b.res.statusCode], [200, 200]);
      const third = await sse(bearer(h.tokens.read));
      assert.equal(third.res.statusCode, 429);
      await third.ended;
      assert.equal((JSON.parse(third.body()) as { error: { code: string } }).error.code, 'TOO_MANY_STREAMS');

      const anonymous = await sse();
      streams.push(anonymous);
      assert.equal(anonymous.res.statusCode, 200, 'another client has its own share');
      const full = await sse(bearer(h.tokens.admin));
      assert.equal(full.res.statusCode, 503);
      await full.ended;
      assert.equal((JSON.parse(full.body()) as { error: { code: string } }).error.code, 'STREAMS_FULL');

      a.close();
      const again = await until('a freed slot', async () => {
        const s = await sse(bearer(h.tokens.read));
        if (s.res.statusCode === 200) return s;
        await s.ended;
        return undefined;
      });
      streams.push(again);

      const bad = await sse({ 'last-event-id': '$; FLUSHALL' });
      assert.equal(bad.res.statusCode, 400);
      await bad.ended;
      assert.equal((JSON.parse(bad.body()) as { error: { code: string } }).error.code, 'LOG_CURSOR_INVALID');

      // The job ends: every open stream gets its end event and is closed by the server.
      await h.logs.append(jobId, { kind: 'end', status: 'cancelled' });
      await Promise.all([b, anonymous, again].map((s) => s.ended));
      for (const s of [b, anonymous, again]) assert.match(s.body(), /event: end/);
    } finally {
      for (const s of streams) s.close();
    }
  });

  test('the text log is streamed in batches, and whole', async () => {
    const h = await harness({});
    const base = await h.app.listen({ host: '127.0.0.1', port: 0 });
    const jobId = jobOf(await submit(h, h.tokens.submit));
    const lines = Array.from({ length: 2500 }, (_, i) => `line ${i}\n`);
    for (const text of lines) await h.logs.append(jobId, { kind: 'log', stage: 'build', text });
    const got = await open(base, `/api/v1/jobs/${jobId}/log`, {});
    await got.ended;
    assert.equal(got.res.statusCode, 200);
    assert.equal(got.res.headers['transfer-encoding'], 'chunked', 'sent as it is read, not buffered whole');
    assert.equal(got.body(), lines.join(''));
  });

  test('every response carries the security headers; the page\'s inline script and style are allowed by hash only', async () => {
    const h = await harness({});
    const jobId = jobOf(await submit(h, h.tokens.submit));
    for (const url of ['/series', `/jobs/${jobId}`, '/api/v1/jobs', '/healthz', '/no/such/page']) {
      const res = await h.app.inject({ url });
      const csp = res.headers['content-security-policy'] ?? '';
      assert.match(csp, /default-src 'none'/, url);
      assert.match(csp, /frame-ancestors 'none'/, url);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, url);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', url);
      assert.ok(res.headers['x-frame-options'], url);
    }
    const page = await h.app.inject({ url: `/jobs/${jobId}` });
    const csp = String(page.headers['content-security-policy']);
    const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
    const script = /<script>([\s\S]*?)<\/script>/.exec(page.body)?.[1] ?? '';
    const style = /<style>([\s\S]*?)<\/style>/.exec(page.body)?.[1] ?? '';
    assert.ok(script.length > 100 && style.length > 100);
    assert.match(csp, new RegExp(`script-src ${hash(script).replace(/[+/]/g, '\\$&')}`));
    assert.match(csp, new RegExp(`style-src ${hash(style).replace(/[+/]/g, '\\$&')}`));
    // Swagger UI loads its own scripts from this origin: its pages have a policy of their own.
    for (const url of ['/docs/static/index.html', '/docs/json']) {
      const docs = await h.app.inject({ url });
      const policy = String(docs.headers['content-security-policy']);
      assert.match(policy, /default-src 'self'/, url);
      assert.match(policy, /frame-ancestors 'none'/, url);
      assert.doesNotMatch(policy, /script-src[^;]*unsafe/, url);
      assert.equal(docs.headers['x-content-type-options'], 'nosniff', url);
    }
  });

  test('readiness and metrics say what failed, never why: the detail stays in the log', async () => {
    const registry = new Registry();
    new Gauge({ name: 'patchbay_test_broken', help: 'a collector whose source is gone', registers: [registry], collect() { throw new Error(`connect ECONNREFUSED ${INTERNAL}:6379`); } });
    const h = await harness({
      registry,
      readiness: [
        { name: 'database', check: async () => { await store.jobs.list({ limit: 1 }); } },
        { name: 'redis', check: () => Promise.reject(new Error(`connect ECONNREFUSED ${INTERNAL}:6379`)) },
        { name: 'docker', check: () => new Promise<void>(() => undefined) },
      ],
    });
    const ready = await h.app.inject({ url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    assert.deepEqual(ready.json<{ checks: Record<string, string> }>().checks, { database: 'ok', redis: 'failed', docker: 'timeout' });
    assert.doesNotMatch(ready.body, new RegExp(INTERNAL.replace(/\./g, '\\.')));
    const metrics = await h.app.inject({ url: '/metrics' });
    assert.equal(metrics.statusCode, 503);
    assert.equal(metrics.json<{ error: { code: string } }>().error.code, 'METRICS_UNAVAILABLE');
    assert.doesNotMatch(metrics.body, /ECONNREFUSED|10\.9\.8\.7/);
  });
});

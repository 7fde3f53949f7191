/**
 * The outbox on the API and the dashboard, on real parts: the API harness
 * (a real Redis, PGlite), reports planned as in production (a verdict
 * recorded through the worker's store on a series the watcher found), the
 * reporter's own store calls to compose, fail and hold them, and the pages
 * in headless Chromium. Subjects and names come from mail anyone can send:
 * the hostile ones here must show as text.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import type { Browser } from 'playwright-core';
import { CHROMIUM, launchChromium, watchedTab } from './browser.ts';
import { loadConfig } from '../../config/config.ts';
import { parseMbox } from '../../domain/mbox.ts';
import type { ReportPolicy } from '../../domain/report/policy.ts';
import { assembleSeries } from '../../domain/series.ts';
import { closeRedis, createRedis } from '../../queue/redis.ts';
import { type Store, openDatabase, seriesContentHash } from '../../store/db.ts';
import { workerStore } from '../../worker/store-adapter.ts';
import { type Harness, apiHarness } from './harness.ts';
import { verdict } from '../../reporter/test/verdict.ts';

const root = new URL('../../..', import.meta.url).pathname;
const INBOX = 'http://127.0.0.1:9/list/';
const ROBOT = 'patchbay@robot.patchbay.invalid';
const HOSTILE_SUBJECT = '<script>alert(1)</script> & "kbuf"';
const HOSTILE_NAME = '<img src=x onerror=alert(1)>';
const policy: ReportPolicy = {
  default: { mode: 'author+list', results: 'all', maintainers: [], optOut: [] },
  inboxes: {},
  optOut: ['optout@patchbay.invalid'],
};

interface Entry {
  id: string; kind: string; revision: string; seriesId: string; jobId: string | null; verdict: string | null; inbox: string | null; mode: string;
  messageId: string; inReplyTo: string; references: string[]; subject: string;
  recipients: { to: Array<{ name: string; email: string }>; cc: Array<{ name: string; email: string }>; optedOut: string[] };
  status: string; reason: string; attempts: number; nextAttemptAt: string; lastError: string | null; sentAt: string | null; sentVia: string | null;
  smtpResponse: string | null; createdAt: string; composed: boolean; url: string; raw: string | null;
}
interface ListBody { items: Entry[]; nextCursor: string | null; counts: Record<string, number> }
interface ErrorReply { error: { code: string; message: string } }

describe('outbox on the API and the pages', { timeout: 180_000 }, () => {
  let redis: Redis;
  let store: Store;
  let h: Harness;
  let dir = '';
  let seq = 0;

  before(async () => {
    redis = createRedis(loadConfig(process.env).redisUrl, 'outbox-test');
    dir = mkdtempSync(join(tmpdir(), 'patchbay-outbox-api-'));
    store = await openDatabase({ databaseUrl: null, dataDir: dir });
    h = await apiHarness(redis, store);
  });
  after(async () => {
    await h.close();
    await store.close();
    await closeRedis(redis);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A fixture series with Message-IDs of its own (a new revision), as the watcher stores one it found on the list. */
  async function series(opts: { subject?: string; fromName?: string; email?: string; ccName?: string; source?: 'lore' | 'upload' } = {}): Promise<string> {
    const tag = `r${++seq}-${Date.now()}`;
    let text = readFileSync(join(root, 'fixtures/series/pass-kbuf-pin.mbox'), 'latin1').replaceAll('20261120-kbuf-pin-v2-', `20261120-kbuf-pin-v2-${tag}-`);
    if (opts.subject !== undefined) text = text.replace('Subject: [PATCH v2 0/3] io_uring/kbuf: buffer ring pinning', `Subject: [PATCH v2 0/3] ${opts.subject}`);
    if (opts.fromName !== undefined || opts.email !== undefined) {
      text = text.replaceAll('From: Ada Lovelace <ada@patchbay.invalid>', `From: ${opts.fromName ?? 'Ada Lovelace'} <${opts.email ?? 'ada@patchbay.invalid'}>`);
    }
    if (opts.ccName !== undefined) text = text.replaceAll('Cc: Jens Axboe <axboe@kernel.dk>', `Cc: ${opts.ccName} <axboe@kernel.dk>`);
    const s = assembleSeries(parseMbox(text));
    const source = opts.source ?? 'lore';
    const record = await store.series.create({ series: s, source, inboxUrl: source === 'lore' ? INBOX : null, submittedBy: null, contentHash: seriesContentHash(s) });
    return record.id;
  }

  async function job(seriesId: string): Promise<string> {
    const { job: j } = await store.jobs.createOrGet({
      seriesId, tree: 'linux-7.1.y', base: null, suites: ['kbuf'], idempotencyKey: `outbox-test-${++seq}-${Date.now()}`, deadlineAt: null, submittedBy: null, activeCap: null,
    });
    return j.id;
  }

  /** The worker's path: running, then the verdict recorded, which plans the report in the same transaction. */
  async function record(jobId: string, status: 'PASS' | 'FAIL' | 'MISS'): Promise<void> {
    const adapter = workerStore(store, { policy, robot: ROBOT, messageIdDomain: 'patchbay.invalid' });
    await adapter.markRunning(jobId, 'w1');
    await adapter.recordResult(jobId, verdict(jobId, status));
  }

  const get = (url: string) => h.app.inject({ url });
  const post = (url: string, token: string | null) => h.app.inject({ method: 'POST', url, headers: token === null ? {} : { authorization: `Bearer ${token}` } });

  // The seeded reports, by what each is for.
  const seeded = { hostile: { seriesId: '', jobId: '' }, plain: { seriesId: '', jobId: '' }, optedOut: { seriesId: '', jobId: '' }, upload: { jobId: '' }, missed: { jobId: '' } };

  test('a verdict on a series from the list plans one report; uploads and MISS none', async () => {
    seeded.hostile.seriesId = await series({ subject: HOSTILE_SUBJECT, fromName: '=?UTF-8?Q?=3Cimg_src=3Dx_onerror=3Dalert=281=29=3E?=', ccName: '"Jens </td><b>"' });
    seeded.hostile.jobId = await job(seeded.hostile.seriesId);
    await record(seeded.hostile.jobId, 'FAIL');
    seeded.plain.seriesId = await series();
    seeded.plain.jobId = await job(seeded.plain.seriesId);
    await record(seeded.plain.jobId, 'PASS');
    seeded.optedOut.seriesId = await series({ email: 'optout@patchbay.invalid' });
    seeded.optedOut.jobId = await job(seeded.optedOut.seriesId);
    await record(seeded.optedOut.jobId, 'FAIL');
    seeded.upload.jobId = await job(await series({ source: 'upload' }));
    await record(seeded.upload.jobId, 'FAIL');
    seeded.missed.jobId = await job(await series());
    await record(seeded.missed.jobId, 'MISS');

    const res = await get('/api/v1/outbox');
    assert.equal(res.statusCode, 200);
    const body = res.json<ListBody>();
    assert.equal(body.items.length, 3);
    assert.deepEqual(body.items.map((e) => e.jobId), [seeded.optedOut.jobId, seeded.plain.jobId, seeded.hostile.jobId], 'newest first');
    assert.deepEqual(body.counts, { pending: 2, sending: 0, sent: 0, failed: 0, held: 0, skipped: 1 });
    assert.equal(body.nextCursor, null);
    const hostile = body.items[2];
    assert.ok(hostile);
    assert.equal(hostile.kind, 'result');
    assert.equal(hostile.status, 'pending');
    assert.equal(hostile.verdict, 'FAIL');
    assert.equal(hostile.mode, 'author+list');
    assert.equal(hostile.inbox, INBOX);
    assert.equal(hostile.seriesId, seeded.hostile.seriesId);
    assert.equal(hostile.subject, `Re: [PATCH v2 0/3] ${HOSTILE_SUBJECT}`);
    assert.match(hostile.messageId, /^patchbay-m-[0-9a-z]{20}@patchbay\.invalid$/);
    assert.match(hostile.inReplyTo, /^20261120-kbuf-pin-v2-r\d+-\d+-0@patchbay\.invalid$/);
    assert.equal(hostile.revision, hostile.inReplyTo);
    assert.deepEqual(hostile.references, [hostile.inReplyTo]);
    assert.deepEqual(hostile.recipients.to, [{ name: HOSTILE_NAME, email: 'ada@patchbay.invalid' }]);
    assert.deepEqual(hostile.recipients.cc.map((c) => c.email).sort(), ['axboe@kernel.dk', 'io-uring@vger.kernel.org', 'linux-fsdevel@vger.kernel.org']);
    assert.equal(hostile.reason, 'first FAIL of this revision');
    assert.equal(hostile.attempts, 0);
    assert.equal(hostile.composed, false);
    assert.equal(hostile.raw, null);
    assert.equal(hostile.url, `/api/v1/outbox/${hostile.id}`);
    assert.ok(!Number.isNaN(Date.parse(hostile.createdAt)) && !Number.isNaN(Date.parse(hostile.nextAttemptAt)));
    assert.equal(hostile.sentAt, null);
    const skipped = body.items[0];
    assert.equal(skipped?.status, 'skipped');
    assert.deepEqual(skipped.recipients.optedOut, ['optout@patchbay.invalid']);
    assert.match(skipped.reason, /opted out/);
  });

  test('the list is filtered by status, job and series, and paged with a cursor', async () => {
    const byStatus = (await get('/api/v1/outbox?status=skipped')).json<ListBody>();
    assert.deepEqual(byStatus.items.map((e) => e.jobId), [seeded.optedOut.jobId]);
    assert.equal(byStatus.counts.pending, 2, 'the counts are of the whole outbox');
    assert.deepEqual((await get(`/api/v1/outbox?jobId=${seeded.plain.jobId}`)).json<ListBody>().items.map((e) => e.verdict), ['PASS']);
    assert.deepEqual((await get(`/api/v1/outbox?seriesId=${seeded.hostile.seriesId}`)).json<ListBody>().items.map((e) => e.jobId), [seeded.hostile.jobId]);
    assert.deepEqual((await get(`/api/v1/outbox?jobId=${seeded.upload.jobId}`)).json<ListBody>().items, []);
    assert.deepEqual((await get('/api/v1/outbox?status=pending&seriesId=' + seeded.optedOut.seriesId)).json<ListBody>().items, []);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: ListBody = (await get(`/api/v1/outbox?limit=1${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`)).json<ListBody>();
      assert.ok(page.items.length <= 1);
      seen.push(...page.items.map((e) => e.id));
      cursor = page.nextCursor;
    } while (cursor !== null && seen.length < 10);
    const all = (await get('/api/v1/outbox')).json<ListBody>().items.map((e) => e.id);
    assert.deepEqual(seen, all, 'page by page: each report once, in the same order');

    const bad = await get('/api/v1/outbox?cursor=not-a-cursor');
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json<ErrorReply>().error.code, 'STORE_BAD_CURSOR');
    const badStatus = await get('/api/v1/outbox?status=lost');
    assert.equal(badStatus.statusCode, 400);
    assert.equal(badStatus.json<ErrorReply>().error.code, 'VALIDATION');
  });

  test('one report by id; an unknown id is 404 OUTBOX_NOT_FOUND', async () => {
    const [first] = (await get(`/api/v1/outbox?jobId=${seeded.plain.jobId}`)).json<ListBody>().items;
    assert.ok(first);
    const one = await get(first.url);
    assert.equal(one.statusCode, 200);
    assert.deepEqual(one.json<Entry>(), first);
    const missing = await get('/api/v1/outbox/m-00000000000000000000');
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json<ErrorReply>().error.code, 'OUTBOX_NOT_FOUND');
    assert.equal((await get('/api/v1/outbox/m-00000000000000000000/raw')).json<ErrorReply>().error.code, 'OUTBOX_NOT_FOUND');
  });

  test('the composed message: 404 OUTBOX_NOT_COMPOSED before its first try, then its bytes as message/rfc822', async () => {
    const [entry] = (await get(`/api/v1/outbox?jobId=${seeded.hostile.jobId}`)).json<ListBody>().items;
    assert.ok(entry);
    const before = await get(`/api/v1/outbox/${entry.id}/raw`);
    assert.equal(before.statusCode, 404);
    assert.equal(before.json<ErrorReply>().error.code, 'OUTBOX_NOT_COMPOSED');
    assert.match(before.json<ErrorReply>().error.message, /not composed yet/);

    // The reporter's steps: claim the oldest due report (this one), keep the composed bytes.
    const claimed = await store.outbox.claim('outbox-test', 60);
    assert.equal(claimed?.id, entry.id);
    const raw = Buffer.from(`Message-ID: <${entry.messageId}>\r\nSubject: ${entry.subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nFAIL \u00e9\r\n`, 'utf8');
    await store.outbox.setRaw(entry.id, 'outbox-test', raw);

    const res = await get(`/api/v1/outbox/${entry.id}/raw`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'message/rfc822');
    assert.equal(res.headers['content-disposition'], `attachment; filename="${entry.id}.eml"; filename*=UTF-8''${entry.id}.eml`);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.deepEqual(res.rawPayload, raw);
    const after = (await get(`/api/v1/outbox/${entry.id}`)).json<Entry>();
    assert.equal(after.status, 'sending');
    assert.equal(after.composed, true);
    assert.equal(after.raw, `/api/v1/outbox/${entry.id}/raw`);
    assert.equal(after.attempts, 1);
  });

  test('resend and mark-sent: an admin\'s only, on held or failed reports; 409 otherwise', async () => {
    // The hostile report (claimed above) fails for good; the plain one is claimed by a sender that dies: held.
    const [failed] = (await get(`/api/v1/outbox?jobId=${seeded.hostile.jobId}`)).json<ListBody>().items;
    assert.ok(failed);
    await store.outbox.tryFailed(failed.id, 'outbox-test', '550 5.1.1 <ada@patchbay.invalid>: mailbox unavailable', null);
    const held = await store.outbox.claim('outbox-test-dies', 0);
    assert.equal(held?.jobId, seeded.plain.jobId);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(await store.outbox.settle(held.id, { status: 'held', detail: 'no archive to ask whether it went out' }), true);
    const counts = (await get('/api/v1/outbox')).json<ListBody>().counts;
    assert.deepEqual(counts, { pending: 0, sending: 0, sent: 0, failed: 1, held: 1, skipped: 1 });

    for (const action of ['resend', 'mark-sent']) {
      const anonymous = await post(`/api/v1/outbox/${failed.id}/${action}`, null);
      assert.equal(anonymous.statusCode, 401, action);
      assert.equal(anonymous.json<ErrorReply>().error.code, 'AUTH_REQUIRED');
      for (const token of [h.tokens.read, h.tokens.submit]) {
        const refused = await post(`/api/v1/outbox/${failed.id}/${action}`, token);
        assert.equal(refused.statusCode, 403, action);
        assert.equal(refused.json<ErrorReply>().error.code, 'AUTH_FORBIDDEN');
      }
      const bad = await post(`/api/v1/outbox/${failed.id}/${action}`, 'pb_' + 'x'.repeat(43));
      assert.equal(bad.statusCode, 401);
    }
    assert.equal((await get(`/api/v1/outbox/${failed.id}`)).json<Entry>().status, 'failed', 'nothing changed');

    const who = `admin-${h.prefix}`;
    const resent = await post(`/api/v1/outbox/${failed.id}/resend`, h.tokens.admin);
    assert.equal(resent.statusCode, 200, resent.body);
    const r = resent.json<Entry>();
    assert.equal(r.status, 'pending');
    assert.equal(r.attempts, 0);
    assert.equal(r.lastError, `resend asked by ${who}`);
    assert.equal(r.composed, true, 'the same bytes go out again');

    const marked = await post(`/api/v1/outbox/${held.id}/mark-sent`, h.tokens.admin);
    assert.equal(marked.statusCode, 200, marked.body);
    const m = marked.json<Entry>();
    assert.equal(m.status, 'sent');
    assert.equal(m.sentVia, 'by-hand');
    assert.equal(m.smtpResponse, `marked sent by ${who}`);
    assert.ok(m.sentAt !== null);

    // A sent, a pending and a skipped report are no operator's to resolve; an unknown one is not there.
    for (const [id, action, status] of [[held.id, 'resend', 'sent'], [held.id, 'mark-sent', 'sent'], [failed.id, 'mark-sent', 'pending']] as const) {
      const conflict = await post(`/api/v1/outbox/${id}/${action}`, h.tokens.admin);
      assert.equal(conflict.statusCode, 409, `${action} on ${status}`);
      const e = conflict.json<ErrorReply>().error;
      assert.equal(e.code, 'OUTBOX_STATE_CONFLICT');
      assert.match(e.message, new RegExp(`is ${status}: only a held or failed report`));
    }
    const [skipped] = (await get('/api/v1/outbox?status=skipped')).json<ListBody>().items;
    assert.equal((await post(`/api/v1/outbox/${skipped?.id ?? ''}/resend`, h.tokens.admin)).statusCode, 409);
    const unknown = await post('/api/v1/outbox/m-00000000000000000000/resend', h.tokens.admin);
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json<ErrorReply>().error.code, 'OUTBOX_NOT_FOUND');
  });

  test('a job\'s detail lists its reports; a job without one an empty list', async () => {
    const detail = await get(`/api/v1/jobs/${seeded.plain.jobId}`);
    assert.equal(detail.statusCode, 200);
    const [entry] = (await get(`/api/v1/outbox?jobId=${seeded.plain.jobId}`)).json<ListBody>().items;
    assert.ok(entry);
    assert.deepEqual(detail.json<{ reports: unknown[] }>().reports, [{
      id: entry.id, kind: 'result', status: 'sent', verdict: 'PASS', messageId: entry.messageId, sentAt: entry.sentAt, sentVia: 'by-hand', mode: 'author+list', url: entry.url,
    }]);
    for (const id of [seeded.upload.jobId, seeded.missed.jobId]) {
      assert.deepEqual((await get(`/api/v1/jobs/${id}`)).json<{ reports: unknown[] }>().reports, []);
    }
  });

  test('the OpenAPI document lists the outbox routes under their tag', async () => {
    const doc = (await get('/docs/json')).json<{ paths: Record<string, Record<string, { tags?: string[] }>> }>();
    for (const [path, method] of [['/api/v1/outbox', 'get'], ['/api/v1/outbox/{id}', 'get'], ['/api/v1/outbox/{id}/raw', 'get'], ['/api/v1/outbox/{id}/resend', 'post'], ['/api/v1/outbox/{id}/mark-sent', 'post']] as const) {
      assert.deepEqual(doc.paths[path]?.[method]?.tags, ['outbox'], `${method} ${path}`);
    }
  });

  test('the /outbox page and the job page, in a browser: hostile subjects and names as text, counts, links, paging', async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: deploy/host/prepare.sh installs Debian's chromium`);
    const page = await get('/outbox');
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
    assert.match(page.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt; &amp; &quot;kbuf&quot;/);
    assert.doesNotMatch(page.body, /<script>alert|<img src=x|<\/td><b>/);
    assert.match(page.body, /&lt;img src=x onerror=alert\(1\)&gt; &lt;ada@patchbay\.invalid&gt;/);
    assert.match(page.body, /<a href="\/outbox">mail reports<\/a>/, 'the nav links to it');

    const base = await h.app.listen({ host: '127.0.0.1', port: 0 });
    const browser: Browser = await launchChromium();
    try {
      const { tab, refused, dialogs } = await watchedTab(browser);
      await tab.goto(new URL('/series', base).href);
      await tab.locator('header a[href="/outbox"]').click();
      await tab.waitForURL(/\/outbox$/);

      const [hostile] = (await get(`/api/v1/outbox?jobId=${seeded.hostile.jobId}`)).json<ListBody>().items;
      assert.ok(hostile);
      const row = tab.locator(`#outbox tr[data-report="${hostile.id}"]`);
      assert.equal(await row.locator('[data-status]').first().getAttribute('data-status'), 'pending');
      assert.match(await row.locator(`a[href="/series/${seeded.hostile.seriesId}"]`).innerText(), /<script>alert\(1\)<\/script> & "kbuf"/);
      assert.match(await row.innerText(), /To: <img src=x onerror=alert\(1\)> <ada@patchbay\.invalid>/);
      assert.match(await row.innerText(), /Cc: .*Jens <\/td><b> <axboe@kernel\.dk>/);
      assert.match(await row.innerText(), /550 5\.1\.1|resend asked by/);
      assert.equal(await row.locator(`a[href="/jobs/${seeded.hostile.jobId}"]`).count(), 1);
      assert.equal(await row.locator(`a[href="/api/v1/outbox/${hostile.id}/raw"]`).count(), 1);
      assert.equal(await tab.locator('#outbox img, #outbox b, main script').count(), 0, 'no element came from the mail');
      assert.deepEqual(await tab.locator('#outbox tbody tr').evaluateAll(reportIds),
        (await get('/api/v1/outbox')).json<ListBody>().items.map((e) => e.id), 'newest first');
      assert.equal(await tab.locator('[data-count="sent"]').innerText(), '1');
      assert.equal(await tab.locator('[data-count="skipped"]').innerText(), '1');
      assert.equal(await tab.locator('main a', { hasText: 'older' }).count(), 0, 'one page holds them all');
      await tab.screenshot({ path: join(tmpdir(), 'patchbay-outbox-page.png'), fullPage: true });

      await tab.locator('a[href="/outbox?status=skipped"]').click();
      await tab.waitForURL(/status=skipped/);
      assert.equal(await tab.locator('#outbox tbody tr').count(), 1);
      assert.match(await tab.locator('#outbox tbody').innerText(), /no one[\s\S]*opted out: optout@patchbay\.invalid/);

      // The job page: its report, with status and Message-ID; a job with none says why there is none.
      await tab.goto(new URL(`/jobs/${seeded.plain.jobId}`, base).href);
      const [plain] = (await get(`/api/v1/outbox?jobId=${seeded.plain.jobId}`)).json<ListBody>().items;
      assert.ok(plain);
      const report = tab.locator(`#reports tr[data-report="${plain.id}"]`);
      assert.equal(await report.locator('[data-status]').first().getAttribute('data-status'), 'sent');
      assert.match(await report.innerText(), new RegExp(`<${plain.messageId.replace(/[.]/g, '\\.')}>`));
      assert.match(await report.innerText(), /via by-hand[\s\S]*marked sent by admin-/);
      await tab.goto(new URL(`/jobs/${seeded.hostile.jobId}`, base).href);
      await tab.screenshot({ path: join(tmpdir(), 'patchbay-job-reports.png'), fullPage: true });
      assert.match(await tab.locator(`#reports tr[data-report="${hostile.id}"]`).innerText(), /resend asked by/);
      assert.equal(await tab.locator('main img').count(), 0);
      await tab.goto(new URL(`/jobs/${seeded.upload.jobId}`, base).href);
      assert.equal(await tab.locator('#reports').count(), 0);
      assert.equal(await tab.locator('#no-reports').innerText(), 'No report planned for this job: uploads, MISS and repeated verdicts are never mailed.');

      // More reports than a page holds (one revision, its verdict changing each time): `older` leads on, each report once.
      const flip = await series();
      for (let i = 0; i < 100; i++) await record(await job(flip), i % 2 === 0 ? 'FAIL' : 'PASS');
      const total = (await get('/api/v1/outbox?limit=200')).json<ListBody>().items.map((e) => e.id);
      assert.equal(total.length, 103);
      await tab.goto(new URL('/outbox', base).href);
      const first = await tab.locator('#outbox tbody tr').evaluateAll(reportIds);
      assert.equal(first.length, 100);
      await tab.locator('main a', { hasText: 'older' }).click();
      await tab.waitForURL(/cursor=/);
      const second = await tab.locator('#outbox tbody tr').evaluateAll(reportIds);
      assert.deepEqual([...first, ...second], total);
      assert.equal(await tab.locator('main a', { hasText: 'older' }).count(), 0);

      assert.deepEqual(dialogs, [], 'nothing from the mail ran');
      assert.deepEqual(refused, [], 'nothing on the pages was refused by the CSP');
    } finally {
      await browser.close();
    }
  });
});

/** In the page: each row's report id, top to bottom. */
function reportIds(rows: ReadonlyArray<{ getAttribute(name: string): string | null }>): Array<string | null> {
  return rows.map((tr) => tr.getAttribute('data-report'));
}

/**
 * The pages in headless Chromium (Debian's package, driven by playwright-core)
 * against a listening server on a real Redis and the embedded database. The
 * worker's side is played by appending to the job's log stream and recording
 * a result: what is under test is the page, its live log over SSE and what a
 * person sees.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Browser } from 'playwright-core';
import { CHROMIUM, launchChromium } from './browser.ts';
import { loadConfig } from '../../config/config.ts';
import type { JobResult } from '../../domain/job.ts';
import type { JobLogs } from '../../queue/logs.ts';
import { closeRedis, createRedis } from '../../queue/redis.ts';
import { openDatabase, type Store } from '../../store/db.ts';
import { type Harness, apiHarness } from './harness.ts';

const root = new URL('../../..', import.meta.url).pathname;

describe('job page in a browser', { timeout: 120_000 }, () => {
  let redis: Redis;
  let store: Store;
  let h: Harness;
  let logs: JobLogs;
  let app: FastifyInstance;
  let browser: Browser;
  let base = '';
  let dir = '';

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: deploy/host/prepare.sh installs Debian's chromium`);
    redis = createRedis(loadConfig(process.env).redisUrl, 'pages-test');
    dir = mkdtempSync(join(tmpdir(), 'patchbay-pages-'));
    store = await openDatabase({ databaseUrl: null, dataDir: dir });
    h = await apiHarness(redis, store);
    ({ app, logs } = h);
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await launchChromium();
  });

  after(async () => {
    await browser.close();
    await h.close();
    await store.close();
    await closeRedis(redis);
    rmSync(dir, { recursive: true, force: true });
  });

  test('a running job\'s page shows its log live, then its results when it ends', async () => {
    const token = (await store.tokens.create('pages', ['submit'])).secret;
    const submitted = await app.inject({
      method: 'POST', url: '/api/v1/series?suite=smoke', payload: readFileSync(join(root, 'fixtures/series/pass-kbuf-pin.mbox')),
      headers: { 'content-type': 'application/mbox', authorization: `Bearer ${token}` },
    });
    const job = submitted.json<{ jobs: Array<{ id: string; page: string }> }>().jobs[0];
    assert.ok(job);
    await store.jobs.markRunning(job.id, { worker: 'test' });
    await logs.append(job.id, { kind: 'stage', stage: 'build', phase: 'start' });
    await logs.append(job.id, { kind: 'log', stage: 'build', text: '  CC      io_uring/kbuf.o\n' });

    const tab = await browser.newPage();
    // The page's script and style run under the CSP (allowed by hash): the browser reports nothing it refused.
    const refused: string[] = [];
    tab.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) refused.push(m.text()); });
    const response = await tab.goto(new URL(job.page, base).href);
    const headers = response?.headers() ?? {};
    assert.match(headers['content-security-policy'] ?? '', /default-src 'none'.*script-src 'sha256-/);
    assert.equal(headers['x-content-type-options'], 'nosniff');
    assert.equal(await tab.locator('#job-status [data-status]').getAttribute('data-status'), 'running');
    await tab.locator('#log', { hasText: 'io_uring/kbuf.o' }).waitFor({ timeout: 10_000 });

    // New output after the page loaded arrives live.
    await logs.append(job.id, { kind: 'log', stage: 'test', text: '    ok 4 pbuf_ring_read_select\n' });
    await tab.locator('#log', { hasText: 'ok 4 pbuf_ring_read_select' }).waitFor({ timeout: 10_000 });
    await tab.locator('[data-stage="build"]').waitFor({ timeout: 5000 });

    // The job ends: the page reloads with the results table.
    const result = JSON.parse(readFileSync(join(root, 'services/api/test/golden/pass-result.json'), 'utf8')) as JobResult;
    await store.jobs.recordResult(job.id, { ...result, jobId: job.id });
    await logs.append(job.id, { kind: 'end', status: 'PASS' });
    await tab.locator('#results tbody tr').first().waitFor({ timeout: 10_000 });
    assert.equal(await tab.locator('#results tbody tr').count(), 6);
    assert.equal(await tab.locator('#job-status [data-status]').getAttribute('data-status'), 'PASS');
    const rows = await tab.locator('#results tbody tr td:nth-child(2)').allTextContents();
    assert.ok(rows.includes('pbuf_ring_read_select'), rows.join(', '));
    const against = await tab.locator('#results tbody tr td:nth-child(5)').allTextContents();
    assert.deepEqual([...new Set(against)], ['unchanged'], 'each test compared with the base');
    assert.match(await tab.locator('#base-comparison').innerText(), /Compared with the base 0dfbac4f4be0: smoke \(cached from 20261123-000000-base00\)/);
    assert.equal(await tab.locator('[data-stage]').count(), 5, 'the stage timeline');
    await tab.locator('#log', { hasText: 'ok 4 pbuf_ring_read_select' }).waitFor({ timeout: 10_000 });
    assert.match(await tab.locator('[data-stage="build"]').innerText(), /build\s+PASS/, 'the recorded stage, not the replayed stream');
    await tab.screenshot({ path: join(tmpdir(), 'patchbay-job-page.png'), fullPage: true });

    // The series list links to it.
    await tab.goto(new URL('/series', base).href);
    await tab.locator(`a[href="/jobs/${job.id}"]`).waitFor({ timeout: 5000 });
    assert.deepEqual(refused, [], 'nothing on the pages was refused by the CSP');
  });
});

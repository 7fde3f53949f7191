/**
 * The /runners page and the job page's "where it ran", on real parts: the
 * API harness (a real Redis, PGlite), runners registered, claiming and
 * finishing jobs through the store as the runner routes do, and the pages
 * in headless Chromium. The routes validate names and labels; the store
 * does not, so a runner with a hostile name, version and label value is
 * stored here directly: the pages must show them as text.
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
import type { JobRequirements, RunnerLabels } from '../../domain/runners.ts';
import { parseMbox } from '../../domain/mbox.ts';
import { assembleSeries } from '../../domain/series.ts';
import { closeRedis, createRedis } from '../../queue/redis.ts';
import { type Store, openDatabase, seriesContentHash } from '../../store/db.ts';
import type { LeasePolicy } from '../../store/runner-repo.ts';
import { verdict } from '../../reporter/test/verdict.ts';
import { type Harness, apiHarness } from './harness.ts';

const root = new URL('../../..', import.meta.url).pathname;
const TREE = 'linux-7.1.y';
const POLICY: LeasePolicy = { leaseSeconds: 30, maxLeaseSeconds: 3600, maxAttempts: 3, retryBackoffMs: 60_000, affinityWaitSeconds: 600 };
const HOSTILE_NAME = '<img src=x onerror=alert(1)>';
const HOSTILE_VERSION = '<script>alert(2)</script>';
const HOSTILE_LABEL = '"</td><b>bold';
const WARM = 'c0ffee'.padEnd(40, '0');

describe('the /runners page and where a job ran', { timeout: 120_000 }, () => {
  let redis: Redis;
  let store: Store;
  let h: Harness;
  let dir = '';
  let seq = 0;
  let seriesId = '';
  const names = { kvm: `lab-kvm-${Date.now()}`, hostile: HOSTILE_NAME };
  const jobs = { done: '', held: '', hostile: '', queue: '' };

  before(async () => {
    redis = createRedis(loadConfig(process.env).redisUrl, 'runners-page-test');
    dir = mkdtempSync(join(tmpdir(), 'patchbay-runners-page-'));
    store = await openDatabase({ databaseUrl: null, dataDir: dir });
    h = await apiHarness(redis, store);
    const s = assembleSeries(parseMbox(readFileSync(join(root, 'fixtures/series/pass-kbuf-pin.mbox'), 'latin1')));
    seriesId = (await store.series.create({ series: s, source: 'upload', inboxUrl: null, submittedBy: null, contentHash: seriesContentHash(s) })).id;
  });
  after(async () => {
    await h.close();
    await store.close();
    await closeRedis(redis);
    rmSync(dir, { recursive: true, force: true });
  });

  async function job(pool: 'queue' | 'runners', requires: JobRequirements = {}): Promise<string> {
    const { job: j } = await store.jobs.createOrGet({
      seriesId, tree: TREE, base: null, suites: ['kbuf'], idempotencyKey: `runners-page-${++seq}-${Date.now()}`, deadlineAt: null, submittedBy: null, activeCap: null, pool, requires,
    });
    return j.id;
  }

  async function register(name: string, labels: RunnerLabels, capacity: number, version: string): Promise<string> {
    const token = await store.runners.createToken('runners page test', 600);
    return (await store.runners.register({ token: token.secret, name, labels, capacity, version })).runner.id;
  }

  async function claim(runnerId: string, expected: string): Promise<string> {
    const got = await store.runners.claim(runnerId, POLICY);
    assert.equal(got?.job.id, expected);
    return got.lease.id;
  }

  test('seed: two runners, one job finished and one held on each path, one on an in-cluster worker', async () => {
    const kvm = await register(names.kvm, { arch: 'x86_64', kvm: true, cores: 16, memoryMb: 65536, trees: [TREE], extra: { lab: 'fsdevel' } }, 2, '1.4.0');
    await store.runners.declare(kvm, { warmBases: [{ tree: TREE, commit: WARM }] });
    const hostile = await register(names.hostile, { arch: 'aarch64', kvm: false, cores: 4, memoryMb: 8192, trees: [TREE], extra: { note: HOSTILE_LABEL } }, 1, HOSTILE_VERSION);

    jobs.done = await job('runners', { kvm: true });
    await store.runners.finishWithResult(kvm, await claim(kvm, jobs.done), verdict(jobs.done, 'PASS'));
    jobs.held = await job('runners', { kvm: true, minCores: 8, labels: { lab: 'fsdevel' } });
    await claim(kvm, jobs.held);
    const retried = await job('runners');
    await store.runners.finishWithout(kvm, await claim(kvm, retried), 'retry', POLICY);
    jobs.hostile = await job('runners');
    await claim(hostile, jobs.hostile);
    await store.runners.setState(hostile, 'draining');
    jobs.queue = await job('queue');
    await store.jobs.markRunning(jobs.queue, { worker: 'ci-host-4242' });
  });

  test('in a browser: each runner\'s fields, its jobs linked, hostile text as text; the job page says where it ran', async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: deploy/host/prepare.sh installs Debian's chromium`);
    const res = await h.app.inject({ url: '/runners' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
    assert.doesNotMatch(res.body, /<img src=x|<script>alert|<\/td><b>/);
    assert.match(res.body, /&lt;img src=x onerror=alert\(1\)&gt;/);

    const base = await h.app.listen({ host: '127.0.0.1', port: 0 });
    const browser: Browser = await launchChromium();
    try {
      const { tab, refused, dialogs } = await watchedTab(browser);
      await tab.goto(new URL('/series', base).href);
      await tab.locator('header a[href="/runners"]').click();
      await tab.waitForURL(/\/runners$/);

      const kvm = tab.locator(`#runners tr[data-runner="${names.kvm}"]`);
      const field = (row: typeof kvm, f: string) => row.locator(`[data-field="${f}"]`).innerText();
      assert.equal(await kvm.locator('[data-state]').getAttribute('data-state'), 'active');
      assert.match(await kvm.innerText(), /1\.4\.0/);
      assert.match(await field(kvm, 'last-seen'), /^\d+ s ago$/);
      assert.deepEqual(await kvm.locator('[data-field="jobs"] a').evaluateAll(hrefs), [`/jobs/${jobs.held}`]);
      assert.equal(await field(kvm, 'capacity'), '1 / 2');
      const labels = await field(kvm, 'labels');
      assert.match(labels, /x86_64 · KVM · 16 cores · 64 GB/);
      assert.match(labels, new RegExp(`trees: ${TREE.replaceAll('.', '\\.')}`));
      assert.match(labels, /lab=fsdevel/);
      assert.equal(await field(kvm, 'warm-bases'), `${TREE}@${WARM.slice(0, 12)}`);
      assert.equal(await field(kvm, 'jobs-done'), '1');
      assert.equal(await field(kvm, 'failures'), '1');

      const hostile = tab.locator('#runners tbody tr').filter({ hasText: HOSTILE_NAME });
      assert.equal(await hostile.count(), 1);
      assert.equal(await hostile.getAttribute('data-runner'), HOSTILE_NAME);
      assert.equal(await hostile.locator('[data-state]').getAttribute('data-state'), 'draining');
      assert.match(await hostile.innerText(), /<script>alert\(2\)<\/script>/);
      assert.match(await field(hostile, 'labels'), /aarch64 · TCG · 4 cores · 8 GB[\s\S]*note="<\/td><b>bold/);
      assert.equal(await field(hostile, 'warm-bases'), 'none');
      assert.equal(await field(hostile, 'capacity'), '1 / 1');
      assert.equal(await tab.locator('main img, main script, [data-field="labels"] b').count(), 0, 'no element came from a runner');
      await tab.screenshot({ path: join(tmpdir(), 'patchbay-runners-page.png'), fullPage: true });

      // From the runner's current job to its page: where it ran, the pool, what it requires.
      await kvm.locator(`a[href="/jobs/${jobs.held}"]`).click();
      await tab.waitForURL(new RegExp(`/jobs/${jobs.held}$`));
      assert.equal(await tab.locator('#where-it-ran').innerText(), `ran on runner ${names.kvm} · pool runners · requires KVM, ≥ 8 cores, lab=fsdevel`);
      await tab.goto(new URL(`/jobs/${jobs.done}`, base).href);
      assert.equal(await tab.locator('#where-it-ran').innerText(), `ran on runner ${names.kvm} · pool runners · requires KVM`);
      await tab.goto(new URL(`/jobs/${jobs.hostile}`, base).href);
      assert.equal(await tab.locator('#where-it-ran').innerText(), `ran on runner ${HOSTILE_NAME} · pool runners`);
      assert.equal(await tab.locator('main img').count(), 0);
      await tab.goto(new URL(`/jobs/${jobs.queue}`, base).href);
      assert.equal(await tab.locator('#where-it-ran').innerText(), 'ran on worker ci-host-4242 · pool queue');

      assert.deepEqual(dialogs, [], 'nothing from a runner ran');
      assert.deepEqual(refused, [], 'nothing on the pages was refused by the CSP');
    } finally {
      await browser.close();
    }
  });
});

/** In the page: each link's href, in order. */
function hrefs(links: ReadonlyArray<{ getAttribute(name: string): string | null }>): Array<string | null> {
  return links.map((a) => a.getAttribute('href'));
}

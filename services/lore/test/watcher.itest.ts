/**
 * The lore watcher against a real public-inbox on loopback (two inboxes,
 * like io-uring@ and linux-fsdevel@), a real database (PGlite), Redis and
 * intake, and a tree mirror made with git: series made with git
 * format-patch are delivered, the watcher polls and judges, and each test
 * checks the decisions and the jobs in the database.
 *
 * public-inbox's search lags delivery by up to ~30 s (its httpd reopens the
 * index on a timer), as lore's does: the watcher's overlap margin covers it,
 * and `settle()` polls until the expected state or a deadline.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { loadCatalogs } from '../../catalog/load.ts';
import { loadConfig } from '../../config/config.ts';
import { mirrorGit, resolveBase } from '../../intake/base.ts';
import { Intake, patchIds } from '../../intake/intake.ts';
import { JobQueue } from '../../queue/job-queue.ts';
import { closeRedis, createRedis } from '../../queue/redis.ts';
import { openDatabase, type LoreDecision, type Store } from '../../store/db.ts';
import { LoreWatcher, type LoreConfig } from '../watcher.ts';
import { workerStore } from '../../worker/store-adapter.ts';
import { apiHarness } from '../../api/test/harness.ts';
import { type PublicInbox, startPublicInbox } from './public-inbox-server.ts';
import { type Mail, type TestTree, makeDiscussion, makeReply, makeSeries, makeTestTree, reencode } from './traffic.ts';

const SEED_REVIEW_QUOTE = `diff --git a/io_uring/kbuf.c b/io_uring/kbuf.c
index 1111111..2222222 100644
--- a/io_uring/kbuf.c
+++ b/io_uring/kbuf.c
@@ -1,3 +1,4 @@
+#include <linux/io_uring/buf.h>`;

const root = fileURLToPath(new URL('../../..', import.meta.url));
const execFileAsync = promisify(execFile);

describe('lore watcher', { timeout: 20 * 60_000 }, () => {
  let dir: string;
  let pi: PublicInbox;
  let redis: Redis;
  let store: Store;
  let queue: JobQueue;
  let tree: TestTree;
  let intake: Intake;
  let io: string;
  let fsdevel: string;
  const config = loadConfig(process.env);

  function watcherConfig(over: Partial<LoreConfig> = {}): LoreConfig {
    return {
      ...config.lore, inboxes: [io, fsdevel], requestSpacingMs: 0, overlapSeconds: 3600, lookbackSeconds: 3600,
      settleSeconds: 30, backoffBaseMs: 50, backoffMaxMs: 200, userAgent: 'patchbay-test (contact: test@patchbay.invalid)', ...over,
    };
  }

  function newWatcher(over: Partial<LoreConfig> = {}, now?: () => number): LoreWatcher {
    const git = mirrorGit(tree.mirrorsDir);
    return new LoreWatcher({
      ...(now !== undefined ? { now } : {}),
      store, intake, trees: tree.trees, config: watcherConfig(over), logger: pino({ level: process.env.PATCHBAY_TEST_LOG ?? 'silent' }),
      allow: [pi.origin], timeoutMs: 30_000, maxBytes: 32 * 1024 * 1024,
      resolveBase: (series, prerequisites) => resolveBase(series, { trees: tree.trees, git, requestedTree: null, requestedBase: null, historyDepth: 100, prerequisites }),
      patchIds,
    });
  }

  /** Polls and judges until check() holds (the inbox's search lags delivery), at most timeoutMs. */
  async function settle<T>(w: LoreWatcher, check: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
    const signal = new AbortController().signal;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await w.pollAll(signal);
      await w.judge(signal);
      const got = await check();
      if (got !== undefined) return got;
      if (Date.now() > deadline) assert.fail('the watcher did not reach the expected state in time');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async function decisionsFor(rootMessageId: string): Promise<LoreDecision[]> {
    const page = await store.lore.decisions({ limit: 500 });
    return page.items.filter((d) => d.rootMessageId === rootMessageId);
  }

  async function oneDecision(w: LoreWatcher, rootMessageId: string): Promise<LoreDecision> {
    return settle(w, async () => {
      const ds = await decisionsFor(rootMessageId);
      assert.ok(ds.length <= 1, `more than one decision for <${rootMessageId}>: ${ds.map((d) => d.decision).join(', ')}`);
      return ds[0];
    });
  }

  async function jobsOfSeries(seriesId: string | null): Promise<number> {
    if (seriesId === null) return 0;
    return (await store.jobs.forSeries(seriesId)).length;
  }

  function deliver(mails: readonly Mail[], inbox?: string, refresh = true): void {
    pi.deliverMany(mails.map((m) => m.raw), { ...(inbox !== undefined ? { inbox } : {}), received: true, refresh });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patchbay-lore-'));
    pi = await startPublicInbox(['io-uring', 'linux-fsdevel']);
    io = pi.urls['io-uring'] ?? '';
    fsdevel = pi.urls['linux-fsdevel'] ?? '';
    redis = createRedis(config.redisUrl, 'lore-test');
    store = await openDatabase({ databaseUrl: null, dataDir: join(dir, 'data') });
    queue = new JobQueue(redis, { prefix: `test-lore-${randomBytes(4).toString('hex')}` });
    tree = makeTestTree(join(dir, 'tree'));
    const { suites } = loadCatalogs(config);
    intake = new Intake({ store, queue, trees: tree.trees, suites, defaultSuites: 'by-paths', logger: pino({ level: 'silent' }) });
  });

  after(async () => {
    await queue.close();
    await store.close();
    await closeRedis(redis);
    pi.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('queues a 25-patch series with a cover letter and review replies once, on its base-commit', async () => {
    const files = Array.from({ length: 25 }, (_, i) => (i % 2 === 0 ? 'io_uring/kbuf.c' : 'fs/fuse/dev.c'));
    const mails = makeSeries(tree, { id: 'kmbuf-v3', title: 'fuse/io-uring: add kernel-managed buffer rings', files, version: 3, cover: true, baseTrailer: true });
    const [cover, , , , , , p6] = mails;
    assert.ok(cover !== undefined && p6 !== undefined);
    const replies = [
      makeReply(p6, { id: 'review-06', from: 'reviewer@example.org', body: 'This needs a comment.\n\nReviewed-by: Reviewer <reviewer@example.org>', quote: SEED_REVIEW_QUOTE }),
      makeReply(cover, { id: 'review-00', from: 'maint@example.org', body: 'Looks good overall.' }),
    ];
    deliver([...mails, ...replies]);
    const w = newWatcher();
    const d = await oneDecision(w, cover.messageId);
    assert.equal(d.decision, 'queued', d.reason);
    assert.equal(d.version, 3);
    assert.equal(d.baseRule, 'base-commit');
    assert.equal(d.base, tree.tip);
    assert.equal(d.tree, tree.name);
    const patches = await store.series.patches(d.seriesId ?? '');
    assert.equal(patches.length, 25);
    // Judged again: nothing new.
    await w.pollAll(new AbortController().signal);
    await w.judge(new AbortController().signal);
    assert.equal((await decisionsFor(cover.messageId)).length, 1);
    assert.equal(await jobsOfSeries(d.seriesId), 1);
    const job = (await store.jobs.forSeries(d.seriesId ?? ''))[0];
    assert.equal(job?.baseRule, 'base-commit');
  });

  it('links v1, v2 and v3 of a series by its identity, each queued once', async () => {
    const author = { name: 'Rev Author', email: 'rev@example.org' };
    const revs = [1, 2, 3].map((v) => makeSeries(tree, { id: `revs-v${v}`, title: 'io_uring: ring resize', files: ['io_uring/rsrc.c', 'io_uring/kbuf.c'], version: v, cover: true, seed: v, author }));
    const w = newWatcher();
    const seen: LoreDecision[] = [];
    for (const mails of revs) {
      deliver(mails);
      const root = mails[0]?.messageId ?? '';
      seen.push(await oneDecision(w, root));
    }
    assert.deepEqual(seen.map((d) => [d.decision, d.version]), [['queued', 1], ['queued', 2], ['queued', 3]]);
    const identity = seen[0]?.identity ?? '';
    assert.ok(identity !== '');
    assert.ok(seen.every((d) => d.identity === identity), 'one identity across revisions');
    assert.deepEqual((await store.lore.revisions(identity)).map((d) => d.version), [1, 2, 3]);
  });

  it('queues a series without a cover letter, guessing its base from the pre-image blobs', async () => {
    // kbuf.c changed between first and tip: only first has every pre-image.
    const mails = makeSeries(tree, { id: 'coverless', title: 'fuse: fix a leak', files: ['io_uring/kbuf.c', 'fs/fuse/file.c'], on: 'first' });
    deliver(mails);
    const d = await oneDecision(newWatcher(), mails[0]?.messageId ?? '');
    assert.equal(d.decision, 'queued', d.reason);
    assert.equal(d.baseRule, 'blob-guess');
    assert.equal(d.base, tree.first, 'the newest commit where every pre-image blob matches');
  });

  it('records a series on an unpublished base as no-base and queues nothing', async () => {
    const mails = makeSeries(tree, { id: 'nobase', title: 'io_uring: on my own tree', files: ['io_uring/kbuf.c'], on: 'unpublished', baseTrailer: true });
    deliver(mails);
    const d = await oneDecision(newWatcher(), mails[0]?.messageId ?? '');
    assert.equal(d.decision, 'no-base', d.reason);
    assert.equal(d.jobId, null);
  });

  it('fetches the prerequisites a series names (by patch id from another inbox, or by Message-ID) and queues the series with them; one no inbox has is no-base', async () => {
    // A is on the list; B, C and D are written on top of it and name it as b4 does.
    const a = makeSeries(tree, { id: 'pre-a', title: 'io_uring/rsrc: groundwork', files: ['io_uring/rsrc.c', 'fs/fuse/file.c'], cover: true, baseTrailer: true });
    const b = makeSeries(tree, { id: 'pre-b', title: 'io_uring/rsrc: build on the groundwork', files: ['io_uring/rsrc.c'], seed: 1, after: { id: 'pre-a', by: 'patch-id' } });
    const c = makeSeries(tree, { id: 'pre-c', title: 'fuse: build on the groundwork too', files: ['fs/fuse/file.c'], seed: 3, after: { id: 'pre-a', by: 'message-id' } });
    const d = makeSeries(tree, { id: 'pre-d', title: 'io_uring/rsrc: on something never posted', files: ['io_uring/rsrc.c'], seed: 4, after: { id: 'pre-a', by: 'unknown-patch-id' } });
    assert.match(b[0]?.raw.toString() ?? '', /^prerequisite-patch-id: [0-9a-f]{40}$/m, 'git format-patch --base wrote the patch ids');
    deliver(a);
    deliver([...b, ...d], 'linux-fsdevel');
    deliver(c);
    const w = newWatcher();
    const patchesOf = async (jobId: string | null): Promise<string[]> => {
      assert.ok(jobId !== null);
      const job = await store.jobs.get(jobId);
      assert.ok(job?.prerequisitesId, `job ${jobId} names its prerequisites`);
      return (await store.series.patches(job.prerequisitesId)).map((p) => p.subject);
    };
    const aPatches = a.slice(1).map((m) => m.subject);

    const onB = await oneDecision(w, b[0]?.messageId ?? '');
    assert.equal(onB.decision, 'queued', onB.reason);
    assert.equal(onB.baseRule, 'base-commit');
    assert.equal(onB.base, tree.tip);
    assert.match(onB.reason, /2 prerequisite patches found by patch-id/);
    assert.deepEqual(await patchesOf(onB.jobId), aPatches, 'A\'s patches, in order, found in the other inbox');
    // What a worker hands the executor: the series, and A's patches to apply first.
    const input = await workerStore(store).load(onB.jobId ?? '');
    assert.deepEqual(input?.prerequisites?.patches.map((p) => p.message.subject), aPatches);
    assert.deepEqual(input.series.patches.map((p) => p.message.messageId), b.map((m) => m.messageId));

    const onC = await oneDecision(w, c[0]?.messageId ?? '');
    assert.equal(onC.decision, 'queued', onC.reason);
    assert.match(onC.reason, /prerequisite series by Message-ID: "io_uring\/rsrc: groundwork" v1 \(2 patches\)/);
    assert.deepEqual(await patchesOf(onC.jobId), aPatches);

    const onD = await oneDecision(w, d[0]?.messageId ?? '');
    assert.equal(onD.decision, 'no-base', onD.reason);
    assert.match(onD.reason, new RegExp(`^prerequisites: prerequisite patch not found: no mail in .* has git patch-id ${'e'.repeat(40)}`));
    assert.equal(onD.jobId, null);

    // A itself is an ordinary series, queued without prerequisites.
    const onA = await oneDecision(w, a[0]?.messageId ?? '');
    assert.equal(onA.decision, 'queued', onA.reason);
    assert.equal((await store.jobs.get(onA.jobId ?? ''))?.prerequisitesId, null);
  });

  it('records patches that touch nothing watched as not relevant, and a discussion as no patches', async () => {
    const net = makeSeries(tree, { id: 'net', title: 'net: speed up', files: ['net/core/dev.c'] });
    const talk = makeDiscussion('talk-1', 'io_uring and the page cache', 'What do people think about this?');
    deliver([...net, talk]);
    const w = newWatcher();
    const d = await oneDecision(w, net[0]?.messageId ?? '');
    assert.equal(d.decision, 'not-relevant');
    assert.match(d.reason, /net\/core\/dev\.c/);
    const t = await oneDecision(w, talk.messageId);
    assert.equal(t.decision, 'no-patches');
  });

  it('waits for a series that arrives patch by patch, and queues it once when complete', async () => {
    const mails = makeSeries(tree, { id: 'trickle', title: 'io_uring: trickle', files: ['io_uring/kbuf.c', 'io_uring/rsrc.c', 'fs/fuse/dev.c'], cover: true });
    const w = newWatcher({ settleSeconds: 3600 });
    const root = mails[0]?.messageId ?? '';
    for (const [from, to] of [[0, 2], [2, 3]] as const) {
      deliver(mails.slice(from, to));
      // Polled until the new mail is stored, then judged: still waiting.
      await settle(w, async () => ((await store.lore.seen(mails.slice(0, to).map((m) => m.messageId))).size === to ? true : undefined));
      await w.judge(new AbortController().signal);
      assert.deepEqual(await decisionsFor(root), [], `nothing decided with ${to - 1} of 3 patches`);
    }
    deliver(mails.slice(3));
    const d = await oneDecision(w, root);
    assert.equal(d.decision, 'queued', d.reason);
    assert.equal(await jobsOfSeries(d.seriesId), 1);
  });

  it('gives up on an incomplete series after the settle time and records what is missing', async () => {
    const mails = makeSeries(tree, { id: 'partial', title: 'io_uring: never finished', files: ['io_uring/kbuf.c', 'io_uring/rsrc.c', 'fs/fuse/file.c'], cover: true });
    deliver(mails.slice(0, 3));
    const d = await oneDecision(newWatcher({ settleSeconds: 2 }), mails[0]?.messageId ?? '');
    assert.equal(d.decision, 'incomplete');
    assert.match(d.reason, /3\/3/);
  });

  it('counts a series cross-posted to both inboxes once', async () => {
    const mails = makeSeries(tree, { id: 'xpost', title: 'fuse: io-uring transport', files: ['fs/fuse/dev.c', 'io_uring/kbuf.c'], cover: true });
    deliver(mails, 'io-uring');
    deliver(mails, 'linux-fsdevel');
    const w = newWatcher();
    const d = await oneDecision(w, mails[0]?.messageId ?? '');
    assert.equal(d.decision, 'queued', d.reason);
    await settle(w, async () => {
      const rows = await store.db.selectFrom('lore_messages').select('inboxes').where('message_id', '=', mails[0]?.messageId ?? '').executeTakeFirst();
      return rows !== undefined && rows.inboxes.length === 2 ? true : undefined;
    });
    assert.equal((await decisionsFor(mails[0]?.messageId ?? '')).length, 1);
  });

  it('records a RESEND of the same patches as a duplicate of the job already queued', async () => {
    const first = makeSeries(tree, { id: 'orig', title: 'io_uring: resend me', files: ['io_uring/rsrc.c'], seed: 42 });
    deliver(first);
    const w = newWatcher();
    const d1 = await oneDecision(w, first[0]?.messageId ?? '');
    assert.equal(d1.decision, 'queued', d1.reason);
    const again = makeSeries(tree, { id: 'resend', title: 'io_uring: resend me', files: ['io_uring/rsrc.c'], seed: 42, prefix: 'RESEND' });
    deliver(again);
    const d2 = await oneDecision(w, again[0]?.messageId ?? '');
    assert.equal(d2.decision, 'duplicate', d2.reason);
    assert.equal(d2.jobId, d1.jobId);
  });

  it('queues a v2 sent as a partial reroll in reply to v1, with v1 filling in the rest', async () => {
    const author = { name: 'Partial Author', email: 'partial@example.org' };
    const v1 = makeSeries(tree, { id: 'reroll-v1', title: 'fuse: reroll', files: ['fs/fuse/dev.c', 'fs/fuse/file.c', 'io_uring/rsrc.c'], cover: true, author });
    deliver(v1);
    const w = newWatcher();
    assert.equal((await oneDecision(w, v1[0]?.messageId ?? '')).decision, 'queued');
    // v2 of patch 3 only, in reply to v1's 3/3 (git send-email --in-reply-to).
    const [v2p3] = makeSeries(tree, { id: 'reroll-v2', title: 'fuse: reroll', files: ['io_uring/rsrc.c'], version: 2, author, seed: 9, inReplyTo: v1[3]?.messageId ?? '' })
      .map((m) => ({ ...m, raw: Buffer.from(m.raw.toString('utf8').replace(/^Subject: \[PATCH v2\]/m, 'Subject: [PATCH v2 3/3]'), 'utf8') }));
    assert.ok(v2p3 !== undefined);
    deliver([v2p3]);
    const d = await settle(w, async () => (await store.lore.decisions({ limit: 500 })).items.find((x) => x.version === 2 && x.threadRoot === v1[0]?.messageId));
    assert.equal(d.decision, 'queued', d.reason);
    assert.equal((await store.series.patches(d.seriesId ?? '')).length, 3);
  });

  for (const [n, how] of (['qp', 'base64', 'flowed', 'latin1'] as const).entries()) {
    it(`reads a patch sent ${how === 'latin1' ? 'in ISO-8859-1' : how === 'flowed' ? 'format=flowed' : `in ${how}`}`, async () => {
      const author = { name: 'Jörg Rödel', email: `joerg-${how}@example.org` };
      const mails = makeSeries(tree, { id: `enc-${how}`, title: `fuse: encoded ${how}`, files: ['fs/fuse/file.c'], author, seed: 50 + n }).map((m) => reencode(m, how));
      deliver(mails);
      const d = await oneDecision(newWatcher(), mails[0]?.messageId ?? '');
      assert.equal(d.decision, 'queued', d.reason);
      assert.match(d.author, /Jörg Rödel/);
      const patches = await store.series.patches(d.seriesId ?? '');
      assert.deepEqual(patches[0]?.files.map((f) => f.newPath), ['fs/fuse/file.c']);
    });
  }

  it('mail with Message-IDs the search syntax cannot carry (spaces, quotes, parentheses, a leading dash, search words, 232 bytes) is fetched one by one and its series queued', async () => {
    const mails = makeSeries(tree, { id: 'odd-ids', title: 'io_uring: odd message ids', files: ['io_uring/kbuf.c', 'io_uring/rsrc.c', 'fs/fuse/dev.c'], cover: true, seed: 60 });
    const odd = ['"quoted cover"@example.org', 'a(b)OR m:c@example.org', '-leading.dash@example.org', `${'x'.repeat(220)}@example.org`];
    let text = mails.map((m) => m.raw.toString('utf8'));
    mails.forEach((m, i) => {
      const to = odd[i];
      if (to !== undefined) text = text.map((t) => t.split(`<${m.messageId}>`).join(`<${to}>`));
    });
    const hostile = mails.map((m, i) => ({ ...m, messageId: odd[i] ?? m.messageId, raw: Buffer.from(text[i] ?? '', 'utf8') }));
    deliver(hostile);
    const d = await oneDecision(newWatcher(), odd[0] ?? '');
    assert.equal(d.decision, 'queued', d.reason);
    assert.deepEqual((await store.series.patches(d.seriesId ?? '')).map((p) => p.messageId), odd.slice(1));
  });

  it('loses none of a burst of 500 messages between two polls, and a poll cut short resumes where it stopped', async () => {
    const burst = Array.from({ length: 500 }, (_, i) => makeDiscussion(`burst-${i}`, `burst message ${i}`, `message ${i} of a burst`));
    deliver(burst);
    const count = async (): Promise<number> => (await store.lore.seen(burst.map((m) => m.messageId))).size;
    // A budget smaller than the burst needs: each poll stops part way, and the next resumes a page before where it stopped.
    const small = newWatcher({ requestBudget: 7, inboxes: [io] });
    const progress: number[] = [];
    for (let i = 0; i < 6 && (progress.at(-1) ?? 0) < 500; i++) {
      const [r] = await small.pollAll(new AbortController().signal);
      assert.ok(r !== undefined && r.requests <= 7, `poll ${i} kept to its budget`);
      progress.push(await count());
    }
    assert.equal(progress.at(-1), 500, `every message stored over polls (${progress.join(' -> ')})`);
    assert.ok(progress.length >= 2 && progress.every((n, i) => i === 0 || n > (progress[i - 1] ?? 0)), `each poll made progress (${progress.join(' -> ')})`);
    // Another burst: a poll stopped part way (shutdown) and another watcher taking over.
    const burst2 = Array.from({ length: 500 }, (_, i) => makeDiscussion(`burst2-${i}`, `second burst ${i}`, `message ${i} of another burst`));
    deliver(burst2);
    // A first watcher is stopped during its poll (after its first requests); a second one takes over.
    const w1 = newWatcher({ requestSpacingMs: 50 });
    const stop = new AbortController();
    setTimeout(() => { stop.abort(); }, 300).unref();
    await w1.pollAll(stop.signal).catch(() => undefined);
    const w2 = newWatcher({ requestBudget: 1000 });
    await settle(w2, async () => ((await store.lore.seen(burst2.map((m) => m.messageId))).size === 500 ? true : undefined), 120_000);
    const jobsBefore = (await store.jobs.list({ limit: 500 })).items.length;
    await w2.pollAll(new AbortController().signal);
    await w2.judge(new AbortController().signal);
    assert.equal((await store.jobs.list({ limit: 500 })).items.length, jobsBefore, 'no job from discussion mail, none twice');
    const status = await store.lore.inbox(io);
    assert.ok(status.cursorAt !== null && status.lastOkAt !== null);
  });

  it('finds mail the inbox indexed late: the next poll lists again from the cursor less the overlap', async () => {
    const w = newWatcher({ overlapSeconds: 600 });
    await w.pollAll(new AbortController().signal);
    const late = makeSeries(tree, { id: 'late', title: 'io_uring: indexed late', files: ['io_uring/rsrc.c'], seed: 77 });
    // Delivered, but the server's search does not see it yet (as lore's lags its archive).
    deliver(late, undefined, false);
    await w.pollAll(new AbortController().signal);
    assert.equal((await store.lore.seen(late.map((m) => m.messageId))).size, 0, 'not listed yet');
    const cursor = (await store.lore.inbox(io)).cursorAt;
    assert.ok(cursor !== null);
    pi.refresh();
    const d = await oneDecision(w, late[0]?.messageId ?? '');
    assert.equal(d.decision, 'queued', d.reason);
  });

  it('shows each inbox and every decision with its reason on the API and the /lore page', async () => {
    const h = await apiHarness(redis, store);
    try {
      const res = await h.app.inject({ method: 'GET', url: '/api/v1/lore?limit=500' });
      assert.equal(res.statusCode, 200);
      const body = res.json<{ inboxes: Array<{ url: string; polls: number; cursorAt: string | null }>; decisions: Array<{ decision: string; reason: string; baseRule: string | null }> }>();
      assert.deepEqual(body.inboxes.map((i) => i.url).sort(), [io, fsdevel].sort());
      assert.ok(body.inboxes.every((i) => i.polls > 0 && i.cursorAt !== null));
      assert.ok(body.decisions.every((d) => d.reason !== ''));
      for (const k of ['queued', 'duplicate', 'not-relevant', 'incomplete', 'no-base', 'no-patches']) {
        const only = await h.app.inject({ method: 'GET', url: `/api/v1/lore?decision=${k}` });
        const ds = only.json<{ decisions: Array<{ decision: string }> }>().decisions;
        assert.ok(ds.length > 0 && ds.every((d) => d.decision === k), `${k} decisions are listed`);
      }
      const page = await h.app.inject({ method: 'GET', url: '/lore' });
      assert.equal(page.statusCode, 200);
      assert.match(page.body, new RegExp(`data-inbox="${io.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`));
      assert.match(page.body, /data-decision="no-base"/);
      assert.match(page.body, /pre-image blobs match no commit|is in none of the trees/);
      assert.doesNotMatch(page.body, /data-decision="no-patches"/, 'discussions are not listed among the series by default');
      const talk = await h.app.inject({ method: 'GET', url: '/lore?decision=no-patches' });
      assert.match(talk.body, /data-decision="no-patches"/);
      assert.doesNotMatch(talk.body, /data-decision="queued"/);
      // The CLI, as a client of the listening API.
      const url = await h.app.listen({ host: '127.0.0.1', port: 0 });
      // Not spawnSync: the API answers from this process's event loop.
      const cli = await execFileAsync(process.execPath, [join(root, 'bin/patchbay.mjs'), 'lore', 'status', '--server', url, '--limit', '500'], {
        env: { ...process.env, PATCHBAY_TOKEN: h.tokens.read }, encoding: 'utf8', timeout: 60_000,
      });
      assert.match(cli.stdout, new RegExp(`^${io.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n  cursor \\d{4}-`, 'm'));
      assert.match(cli.stdout, /^ {2}\S+ \S+ {2}queued {7}.* on testtree@[0-9a-f]{12} \(base-commit\) job j-/m);
      const metrics = await h.app.inject({ method: 'GET', url: '/metrics' });
      assert.match(metrics.body, /patchbay_lore_series\{decision="queued"\} [1-9]/);
    } finally {
      await h.close();
    }
  });

  it('forgets old mail and discussion decisions, keeps the series decisions, and never queues a forgotten series again', async () => {
    const count = async (table: 'lore_messages' | 'lore_threads'): Promise<number> => Number((await store.db.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);
    const queuedBefore = (await store.lore.decisions({ limit: 500, decision: 'queued' })).items.length;
    const jobsBefore = (await store.jobs.list({ limit: 500 })).items.length;
    assert.ok((await count('lore_messages')) > 1000);
    // 31 days on: everything judged so far is past the retention (30 days).
    const later = newWatcher({}, () => Date.now() + 31 * 86_400_000);
    await later.prune();
    const dirty = await store.lore.dirtyThreads(500);
    assert.equal(await count('lore_messages'), Number((await store.db.selectFrom('lore_messages').select((eb) => eb.fn.countAll<string>().as('n')).where('thread_root', 'in', dirty.length === 0 ? [''] : dirty.map((t) => t.root)).executeTakeFirstOrThrow()).n), 'only the mail of threads still waiting stays');
    assert.equal((await store.lore.decisions({ limit: 10, decision: 'no-patches' })).items.length, 0);
    assert.equal((await store.lore.decisions({ limit: 500, decision: 'queued' })).items.length, queuedBefore);
    // A late review of a forgotten series: its thread is fetched again, judged, and nothing is queued twice.
    const cover = (await store.lore.decisions({ limit: 500, decision: 'queued' })).items.find((d) => d.version === 3 && d.baseRule === 'base-commit');
    assert.ok(cover !== undefined);
    deliver([makeReply({ messageId: cover.rootMessageId, subject: `[PATCH v3 00/25] ${cover.title}`, raw: Buffer.alloc(0) }, { id: 'late-review', from: 'late@example.org', body: 'Reviewed-by: Late <late@example.org>' })]);
    const w = newWatcher();
    await settle(w, async () => ((await store.lore.seen([cover.rootMessageId])).size === 1 ? true : undefined));
    await w.judge(new AbortController().signal);
    assert.equal((await store.jobs.list({ limit: 500 })).items.length, jobsBefore);
    assert.equal((await store.lore.decisions({ limit: 500, decision: 'queued' })).items.length, queuedBefore);
  });

  it('lets one watcher poll at a time', async () => {
    assert.equal(await store.lore.lease('lore-watcher', 'a', 60_000), true);
    assert.equal(await store.lore.lease('lore-watcher', 'b', 60_000), false);
    assert.equal(await store.lore.lease('lore-watcher', 'a', 60_000), true, 'the holder renews');
    await store.lore.releaseLease('lore-watcher', 'a');
    assert.equal(await store.lore.lease('lore-watcher', 'b', 60_000), true);
    await store.lore.releaseLease('lore-watcher', 'b');
  });
});

/**
 * Reply commands (`patchbay: retest`, `base <commit>`, `unrelated`) read by
 * the real watcher from a real public-inbox on loopback, with a PGlite
 * store, Redis and the intake, and a tree mirror made with git: a series is
 * posted and queued, then replies in its thread ask for things, and each
 * test checks the jobs, the recorded commands and the acknowledgements in
 * the outbox. No job runs (no Docker engine): they sit queued.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { loadCatalogs } from '../../catalog/load.ts';
import { loadConfig } from '../../config/config.ts';
import { mirrorGit, resolveBase } from '../../intake/base.ts';
import { Intake, patchIds } from '../../intake/intake.ts';
import { JobQueue } from '../../queue/job-queue.ts';
import { closeRedis, createRedis } from '../../queue/redis.ts';
import { ACK_KEY, openDatabase, type Job, type LoreDecision, type OutboxEntry, type ReportCommand, type ReportPlanning, type Store } from '../../store/db.ts';
import { jobResult } from '../../worker/test/job-result.ts';
import { type CommandSettings, LoreWatcher } from '../watcher.ts';
import { type PublicInbox, startPublicInbox } from './public-inbox-server.ts';
import { type Mail, type TestTree, makeReply, makeSeries, makeTestTree } from './traffic.ts';

const AUTHOR = { name: 'Cmd Author', email: 'cmd-author@example.org' };
const MAINTAINER = 'maint@example.org';
const ROBOT = 'ci@ci.patchbay.invalid';
const PUBLIC_URL = 'https://ci.patchbay.invalid';

describe('reply commands', { timeout: 5 * 60_000 }, () => {
  let dir: string;
  let pi: PublicInbox;
  let redis: Redis;
  let store: Store;
  let queue: JobQueue;
  let tree: TestTree;
  let intake: Intake;
  let io: string;
  let series: Mail[];
  let queued: LoreDecision;
  let firstJob: Job;
  const config = loadConfig(process.env);
  const planning: ReportPlanning = {
    policy: { default: { mode: 'author+list', results: 'all', maintainers: [MAINTAINER], optOut: [] }, inboxes: {}, optOut: [] },
    robot: ROBOT,
    messageIdDomain: 'ci.patchbay.invalid',
  };

  function newWatcher(commands: Partial<CommandSettings> = {}): LoreWatcher {
    const git = mirrorGit(tree.mirrorsDir);
    return new LoreWatcher({
      store, intake, trees: tree.trees, logger: pino({ level: process.env.PATCHBAY_TEST_LOG ?? 'silent' }),
      config: {
        ...config.lore, inboxes: [io], requestSpacingMs: 0, overlapSeconds: 3600, lookbackSeconds: 3600, settleSeconds: 30,
        backoffBaseMs: 50, backoffMaxMs: 200, userAgent: 'patchbay-test (contact: test@patchbay.invalid)',
      },
      allow: [pi.origin], timeoutMs: 30_000, maxBytes: 32 * 1024 * 1024,
      resolveBase: (s, prerequisites) => resolveBase(s, { trees: tree.trees, git, requestedTree: null, requestedBase: null, historyDepth: 100, prerequisites }),
      patchIds,
      commands: { planning, publicUrl: PUBLIC_URL, git, ...commands },
    });
  }

  /** Polls and judges until check() holds (the inbox's search lags delivery). */
  async function settle<T>(w: LoreWatcher, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
    const signal = new AbortController().signal;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await w.pollAll(signal);
      await w.judge(signal);
      const got = await check();
      if (got !== undefined) return got;
      if (Date.now() > deadline) assert.fail('the watcher did not reach the expected state in time');
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** A reply in the thread, as a mail client writes it: In-Reply-To the answered mail, References the thread down to it. */
  function reply(to: Mail, opts: { id: string; from: string; body: string; quote?: string; references?: string[] }): Mail {
    const m = makeReply(to, opts);
    if (opts.references === undefined) return m;
    const raw = m.raw.toString('utf8').replace(/^References: .*$/m, `References: ${[...opts.references, to.messageId].map((r) => `<${r}>`).join(' ')}`);
    return { ...m, raw: Buffer.from(raw, 'utf8') };
  }

  function deliver(mails: readonly Mail[]): void {
    pi.deliverMany(mails.map((m) => m.raw), { received: true });
  }

  /** Delivers a reply and judges until it is stored (and so judged). */
  async function sent(w: LoreWatcher, m: Mail): Promise<void> {
    deliver([m]);
    await settle(w, async () => ((await store.lore.seen([m.messageId])).size === 1 ? true : undefined));
  }

  /** Delivers a command and judges until it is recorded. */
  async function handled(w: LoreWatcher, m: Mail): Promise<ReportCommand> {
    deliver([m]);
    return settle(w, () => store.commands.get(m.messageId).then((c) => c ?? undefined));
  }

  const jobs = async (): Promise<Job[]> => store.jobs.forSeries(queued.seriesId ?? '');
  const acks = async (): Promise<OutboxEntry[]> => (await store.outbox.list({ limit: 500, seriesId: queued.seriesId ?? '' })).items.filter((e) => e.kind === 'ack');
  const ackOf = async (commandId: string): Promise<OutboxEntry | undefined> => (await acks()).find((e) => e.key === ACK_KEY(commandId));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patchbay-commands-'));
    pi = await startPublicInbox(['io-uring']);
    io = pi.urls['io-uring'] ?? '';
    redis = createRedis(config.redisUrl, 'commands-test');
    store = await openDatabase({ databaseUrl: null, dataDir: join(dir, 'data') });
    queue = new JobQueue(redis, { prefix: `test-commands-${randomBytes(4).toString('hex')}` });
    tree = makeTestTree(join(dir, 'tree'));
    const { suites } = loadCatalogs(config);
    intake = new Intake({ store, queue, trees: tree.trees, suites, defaultSuites: 'by-paths', logger: pino({ level: 'silent' }) });
    // On the tree's first commit (the blob guess finds it), so that `base <tip>` is another base.
    series = makeSeries(tree, { id: 'cmd', title: 'io_uring: commands', files: ['io_uring/kbuf.c', 'fs/fuse/file.c'], cover: true, on: 'first', author: AUTHOR });
    deliver(series);
    const w = newWatcher();
    queued = await settle(w, async () => (await store.lore.decisions({ limit: 10 })).items.find((d) => d.rootMessageId === series[0]?.messageId));
    assert.equal(queued.decision, 'queued', queued.reason);
    assert.equal(queued.base, tree.first);
    const all = await jobs();
    assert.equal(all.length, 1);
    firstJob = all[0] as Job;
  });

  after(async () => {
    await queue.close();
    await store.close();
    await closeRedis(redis);
    pi.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the author\'s retest queues one job like the last, acknowledged in the thread; judged again or restarted, nothing more', async () => {
    const cover = series[0] as Mail;
    const m = reply(cover, { id: 'cmd-retest', from: AUTHOR.email, body: 'The failure looked odd.\n\npatchbay: retest\n\nThanks,\nCmd' });
    const w = newWatcher();
    const cmd = await handled(w, m);
    assert.equal(cmd.outcome, 'done', cmd.detail);
    assert.equal(cmd.command, 'retest');
    assert.equal(cmd.seriesId, queued.seriesId);
    assert.equal(cmd.threadRoot, queued.threadRoot);
    const all = await jobs();
    assert.equal(all.length, 2);
    const job = all[0] as Job;
    assert.equal(cmd.jobId, job.id);
    assert.notEqual(job.id, firstJob.id);
    assert.deepEqual([job.tree, job.base, job.suites, job.status], [firstJob.tree, firstJob.base, firstJob.suites, 'queued']);
    assert.equal(job.seriesId, firstJob.seriesId, 'the same stored series');

    const ack = await ackOf(m.messageId);
    assert.ok(ack !== undefined, 'an acknowledgement is planned');
    assert.equal(ack.status, 'pending');
    assert.equal(ack.inReplyTo, m.messageId);
    assert.deepEqual(ack.references, [cover.messageId, m.messageId]);
    assert.equal(ack.subject, m.subject);
    assert.deepEqual(ack.recipients.to.map((r) => r.email), [AUTHOR.email]);
    assert.deepEqual(ack.recipients.cc.map((r) => r.email), ['io-uring@patchbay.invalid']);
    assert.equal(ack.jobId, job.id);
    assert.match(ack.messageId, /^patchbay-m-[0-9a-z]{20}@ci\.patchbay\.invalid$/);
    assert.equal(ack.body, `patchbay: retest of v1 queued as job ${job.id} (${PUBLIC_URL}/jobs/${job.id}); the result will be reported in this thread if it differs from the last one.`);

    // Another poll; the thread judged again (as after a restart, by another watcher): nothing more.
    await w.pollAll(new AbortController().signal);
    await w.judge(new AbortController().signal);
    await store.lore.markThread(queued.threadRoot, { dirty: true });
    await newWatcher().judge(new AbortController().signal);
    assert.equal((await jobs()).length, 2);
    assert.equal((await acks()).length, 1);

    // A crash after the job was queued and before the command was recorded: judged again, the same job comes back.
    await store.db.deleteFrom('outbox').where('key', '=', ACK_KEY(m.messageId)).execute();
    await store.db.deleteFrom('report_commands').where('message_id', '=', m.messageId).execute();
    await store.lore.markThread(queued.threadRoot, { dirty: true });
    await newWatcher().judge(new AbortController().signal);
    assert.equal((await jobs()).length, 2, 'no second job');
    assert.equal((await store.commands.get(m.messageId))?.jobId, job.id);
    assert.equal((await acks()).length, 1);
  });

  it('a stranger\'s retest is recorded as ignored: no job, no acknowledgement', async () => {
    const m = reply(series[2] as Mail, { id: 'cmd-stranger', from: 'stranger@example.org', body: 'patchbay: retest' });
    const before = (await jobs()).length;
    const cmd = await handled(newWatcher(), m);
    assert.equal(cmd.outcome, 'ignored');
    assert.match(cmd.detail, /stranger@example\.org is neither the series' author \(cmd-author@example\.org\) nor a maintainer/);
    assert.equal(cmd.jobId, null);
    assert.equal((await jobs()).length, before);
    assert.equal(await ackOf(m.messageId), undefined);
  });

  it('a maintainer\'s base <commit> queues a job on that commit (a short id, resolved in the tree)', async () => {
    const m = reply(series[1] as Mail, { id: 'cmd-base', from: MAINTAINER, body: `Try it on the tip:\npatchbay: base ${tree.tip.slice(0, 12).toUpperCase()}` });
    const before = (await jobs()).length;
    const cmd = await handled(newWatcher(), m);
    assert.equal(cmd.outcome, 'done', cmd.detail);
    assert.equal(cmd.command, 'base');
    assert.equal(cmd.argument, tree.tip.slice(0, 12));
    const all = await jobs();
    assert.equal(all.length, before + 1);
    const job = all[0] as Job;
    assert.equal(cmd.jobId, job.id);
    assert.equal(job.base, tree.tip);
    assert.equal(job.baseRule, 'requested');
    assert.deepEqual(job.suites, firstJob.suites);
    const ack = await ackOf(m.messageId);
    assert.ok(ack !== undefined);
    assert.deepEqual(ack.recipients.to.map((r) => r.email), [MAINTAINER]);
    assert.match(ack.body ?? '', new RegExp(`^patchbay: v1 queued on testtree at ${tree.tip.slice(0, 12)} as job ${job.id} \\(`));
  });

  it('base <commit> the tree does not have is refused, with an acknowledgement saying so', async () => {
    const missing = '0123456789abcdef0123456789abcdef01234567';
    const m = reply(series[0] as Mail, { id: 'cmd-base-missing', from: AUTHOR.email, body: `patchbay: base ${missing}` });
    const before = (await jobs()).length;
    const cmd = await handled(newWatcher(), m);
    assert.equal(cmd.outcome, 'refused');
    assert.equal(cmd.jobId, null);
    assert.equal((await jobs()).length, before);
    const ack = await ackOf(m.messageId);
    assert.equal(ack?.body, `patchbay: cannot test v1 on ${missing}: the testtree tree has no such commit. Nothing was queued.`);
  });

  it('unrelated: refused while there is no failure; after a FAIL, the latest failed job is marked by whoever said so', async () => {
    const cover = series[0] as Mail;
    const early = reply(cover, { id: 'cmd-unrelated-early', from: AUTHOR.email, body: 'patchbay: unrelated' });
    const w = newWatcher();
    const refused = await handled(w, early);
    assert.equal(refused.outcome, 'refused');
    assert.match((await ackOf(early.messageId))?.body ?? '', /^patchbay: nothing to mark: v1 of this series has no failed job\./);

    await store.jobs.recordResult(firstJob.id, jobResult(firstJob.id, 'FAIL'));
    // In reply to an acknowledgement of ours: its Message-ID alone names the series (nothing else it answers is a patch).
    const ack = await ackOf(early.messageId);
    assert.ok(ack !== undefined);
    const onAck = reply({ messageId: ack.messageId, subject: ack.subject, raw: Buffer.alloc(0) }, {
      id: 'cmd-unrelated', from: MAINTAINER, body: 'That is the known flake.\npatchbay: unrelated\n-- \nM', references: [early.messageId],
    });
    const cmd = await handled(w, onAck);
    assert.equal(cmd.outcome, 'done', cmd.detail);
    assert.equal(cmd.jobId, firstJob.id);
    assert.equal((await store.jobs.get(firstJob.id))?.unrelatedBy, MAINTAINER);
    assert.match((await ackOf(onAck.messageId))?.body ?? '', new RegExp(`^patchbay: the failure of v1 in job ${firstJob.id} \\(.*\\) is recorded as not caused by the series, as ${MAINTAINER} said\\.$`));
  });

  it('a quoted command, a command below the signature, and a reply with no command do nothing', async () => {
    const w = newWatcher();
    const before = { jobs: (await jobs()).length, acks: (await acks()).length };
    for (const m of [
      reply(series[0] as Mail, { id: 'cmd-quoted', from: AUTHOR.email, quote: 'patchbay: retest', body: 'Yes, that is what I asked for.' }),
      reply(series[0] as Mail, { id: 'cmd-signature', from: AUTHOR.email, body: 'Thanks.\n-- \npatchbay: retest' }),
    ]) {
      await sent(w, m);
      assert.equal(await store.commands.get(m.messageId), null, m.messageId);
    }
    assert.deepEqual({ jobs: (await jobs()).length, acks: (await acks()).length }, before);
  });

  it('with reports off, commands are not read', async () => {
    const m = reply(series[0] as Mail, { id: 'cmd-reports-off', from: AUTHOR.email, body: 'patchbay: retest' });
    const before = (await jobs()).length;
    await sent(newWatcher({ planning: null }), m);
    assert.equal(await store.commands.get(m.messageId), null);
    assert.equal((await jobs()).length, before);
    assert.deepEqual((await store.commands.forThread(queued.threadRoot)).map((c) => [c.messageId, c.outcome]), [
      ['cmd-retest@example.org', 'done'], ['cmd-stranger@example.org', 'ignored'], ['cmd-base@example.org', 'done'],
      ['cmd-base-missing@example.org', 'refused'], ['cmd-unrelated-early@example.org', 'refused'], ['cmd-unrelated@example.org', 'done'],
    ]);
  });
});

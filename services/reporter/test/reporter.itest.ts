/**
 * The reporter end to end on real parts: a PGlite store, a real SMTP
 * server on loopback (STARTTLS checked against the test's own CA, AUTH),
 * and a real public-inbox that the SMTP server delivers list mail into,
 * as a list's mail server would. Series are made with git format-patch
 * (services/lore/test/traffic.ts) and posted to the inbox; their verdicts
 * are recorded through the worker's store, which plans the reports.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadCatalogs } from '../../catalog/load.ts';
import { loadConfig } from '../../config/config.ts';
import { parseMbox, parseMessage } from '../../domain/mbox.ts';
import { assembleSeries } from '../../domain/series.ts';
import type { InboxPolicy, ReportPolicy } from '../../domain/report/policy.ts';
import { type Store, openDatabase, seriesContentHash } from '../../store/db.ts';
import { workerStore } from '../../worker/store-adapter.ts';
import { type PublicInbox, startPublicInbox } from '../../lore/test/public-inbox-server.ts';
import { type Mail, type TestTree, makeSeries, makeTestTree } from '../../lore/test/traffic.ts';
import { archiveCheck } from '../archive.ts';
import { makeRenderer } from '../compose.ts';
import { Reporter, type ReporterSettings } from '../reporter.ts';
import { loadReportTemplates } from '../templates.ts';
import { folderTransport, smtpTransport } from '../transport.ts';
import { type SmtpSink, startSmtpSink } from './smtp-sink.ts';
import { verdict } from './verdict.ts';

const ROBOT = { name: 'patchbay', address: 'patchbay@robot.patchbay.invalid' };
const LIST = 'io-uring@patchbay.invalid';

describe('reporter', { timeout: 10 * 60_000 }, () => {
  let dir: string;
  let store: Store;
  let pi: PublicInbox;
  let smtp: SmtpSink;
  let tree: TestTree;
  let outboxDir: string;
  const config = loadConfig(process.env);
  const catalogs = loadCatalogs(config);
  const policies: Record<string, InboxPolicy> = {};
  const policy = (): ReportPolicy => ({ default: { mode: 'dry-run', results: 'all', maintainers: [], optOut: [] }, inboxes: policies, optOut: [] });
  const settings: ReporterSettings = { pollIntervalMs: 100, claimSeconds: 2, archiveWaitSeconds: 30, maxAttempts: 3, backoffBaseMs: 50, backoffMaxMs: 200 };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patchbay-reporter-'));
    outboxDir = join(dir, 'outbox');
    store = await openDatabase({ databaseUrl: null, dataDir: join(dir, 'data') });
    pi = await startPublicInbox('io-uring');
    smtp = await startSmtpSink();
    // The list's mail server: what is addressed to the list lands in its archive.
    smtp.onMessage = (m) => { if (m.to.includes(LIST)) pi.deliver(m.raw, { received: true }); };
    tree = makeTestTree(join(dir, 'tree'));
    policies[pi.url] = { mode: 'author+list', results: 'all', maintainers: [], optOut: [] };
  });
  after(async () => {
    await store.close();
    await smtp.stop();
    pi.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function reporter(over: Partial<ReporterSettings> = {}, holder = 'test-reporter'): Reporter {
    return new Reporter({
      outbox: store.outbox,
      render: makeRenderer({
        store, trees: catalogs.trees, templates: loadReportTemplates(join(config.repoRoot, 'services', 'reporter', 'templates')),
        robot: { name: ROBOT.name, email: ROBOT.address }, publicUrl: 'http://127.0.0.1:8080',
      }),
      robot: ROBOT,
      smtp: smtpTransport({ url: smtp.url, requireTls: true, caFile: smtp.caFile, timeoutMs: 10_000 }),
      folder: folderTransport(outboxDir),
      outboxDir,
      inArchive: archiveCheck({ ...config, api: { ...config.api, inboxAllowlist: [pi.origin] }, lore: { ...config.lore, requestSpacingMs: 0 } }),
      settings: { ...settings, ...over },
      holder,
      logger: pino({ level: 'silent' }),
    });
  }

  /** Posts a series to the list, stores it as the watcher would, and makes a job for it. */
  async function post(id: string, opts: { version?: number; inbox?: string; cc?: string } = {}): Promise<{ mails: Mail[]; seriesId: string; jobId: string }> {
    const mails = makeSeries(tree, { id, title: `kbuf ${id}`, files: ['io_uring/kbuf.c', 'io_uring/rsrc.c'], cover: true, version: opts.version ?? 1, seed: opts.version ?? 1 })
      .map((m) => opts.cc === undefined ? m : { ...m, raw: Buffer.from(m.raw.toString('latin1').replace(/^To: /m, `Cc: ${opts.cc}\nTo: `), 'latin1') });
    pi.deliverMany(mails.map((m) => m.raw));
    const series = assembleSeries(mails.map((m) => parseMessage(m.raw.toString('latin1'))));
    const record = await store.series.create({ series, source: 'lore', inboxUrl: opts.inbox ?? pi.url, submittedBy: null, contentHash: seriesContentHash(series) });
    return { mails, seriesId: record.id, jobId: await newJob(record.id) };
  }

  async function newJob(seriesId: string): Promise<string> {
    const { job } = await store.jobs.createOrGet({
      seriesId, tree: 'linux-7.1.y', base: null, suites: ['kbuf'], idempotencyKey: `test-${randomUUID()}`,
      deadlineAt: null, submittedBy: null, activeCap: null,
    });
    return job.id;
  }

  /** The worker's recording of a verdict; `again`: the same job's verdict recorded a second time (its worker died after recording). */
  async function record(jobId: string, status: 'PASS' | 'FAIL' | 'MISS', again = false): Promise<void> {
    const adapter = workerStore(store, { policy: policy(), robot: ROBOT.address, messageIdDomain: 'patchbay.invalid' });
    if (!again) await adapter.markRunning(jobId, 'w1');
    await adapter.recordResult(jobId, verdict(jobId, status));
  }

  it('a FAIL reaches the thread once: threaded, from the thread\'s own people, over STARTTLS with AUTH', async () => {
    const { mails, seriesId, jobId } = await post('one', { cc: 'Jens <axboe@example.net>' });
    await record(jobId, 'FAIL');
    const rows = (await store.outbox.list({ limit: 10, seriesId })).items;
    assert.equal(rows.length, 1);
    assert.equal(await reporter().tick(), 1);
    const sent = smtp.accepted.filter((m) => m.messageId === rows[0]?.messageId);
    assert.equal(sent.length, 1);
    const mail = parseMessage((sent[0]?.raw ?? Buffer.alloc(0)).toString('latin1'));
    const cover = mails[0];
    assert.ok(cover);
    assert.equal(mail.inReplyTo, cover.messageId);
    assert.deepEqual(mail.references, [cover.messageId]);
    assert.equal(mail.subject, `Re: ${parseMessage(cover.raw.toString('latin1')).subject}`);
    assert.equal(mail.header('Auto-Submitted'), 'auto-generated');
    assert.equal(mail.header('X-Patchbay-Job'), jobId);
    assert.deepEqual(sent[0]?.to.sort(), ['axboe@example.net', LIST, 'pat@example.org'].sort());
    assert.equal(sent[0].from, ROBOT.address);
    assert.match(mail.body, /FAIL/);
    const row = await store.outbox.get(rows[0]?.id ?? '');
    assert.equal(row?.status, 'sent');
    assert.equal(row.sentVia, 'smtp');

    // In the list's archive, in the series' thread; and b4 still finds the series there.
    const thread = gunzipSync(Buffer.from(await (await fetch(`${pi.url}${encodeURIComponent(cover.messageId)}/t.mbox.gz`)).arrayBuffer())).toString('latin1');
    const inThread = parseMbox(thread);
    const reply = inThread.find((m) => m.messageId === row.messageId);
    assert.ok(reply, 'the report is in the thread');
    assert.equal(reply.inReplyTo, cover.messageId);
    const b4dir = join(dir, 'b4-one');
    execFileSync('mkdir', ['-p', b4dir]);
    const mbox = join(b4dir, 'thread.mbox');
    execFileSync('sh', ['-c', `cat > '${mbox}'`], { input: thread });
    writeFileSync(join(b4dir, '.gitconfig'), '[user]\n\tname = b4 check\n\temail = b4@patchbay.invalid\n[b4]\n\tattestation-policy = off\n');
    const closed = 'http://127.0.0.1:9';
    const b4 = spawnSync('b4', ['--offline-mode', 'am', '-m', mbox, '-o', b4dir, cover.messageId], {
      cwd: b4dir, encoding: 'utf8', timeout: 60_000,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: b4dir, XDG_CONFIG_HOME: join(b4dir, '.config'), XDG_CACHE_HOME: join(b4dir, '.cache'), GIT_CONFIG_NOSYSTEM: '1', LANG: 'C.UTF-8', http_proxy: closed, https_proxy: closed, HTTP_PROXY: closed, HTTPS_PROXY: closed },
    });
    assert.equal(b4.status, 0, `b4 am: ${b4.stderr}`);
    const am = readdirSync(b4dir).find((f) => f.endsWith('.mbx'));
    assert.ok(am, 'b4 wrote the series');
    assert.equal(parseMbox(readFileSync(join(b4dir, am), 'latin1')).length, 2, 'b4 found both patches, and not the report');
  });

  it('a retried job and a re-run of the same revision with the same verdict mail nothing more; MISS never', async () => {
    const { seriesId, jobId } = await post('two');
    await record(jobId, 'FAIL');
    await record(jobId, 'FAIL', true);
    const rerun = await newJob(seriesId);
    await record(rerun, 'FAIL');
    const missed = await newJob(seriesId);
    await record(missed, 'MISS');
    assert.equal((await store.outbox.list({ limit: 10, seriesId })).items.length, 1);
    const before = smtp.accepted.length;
    await reporter().tick();
    await reporter().tick();
    assert.equal(smtp.accepted.length, before + 1);
    // The verdict changes: one more report.
    const fixed = await newJob(seriesId);
    await record(fixed, 'PASS');
    assert.equal((await store.outbox.list({ limit: 10, seriesId })).items.length, 2);
  });

  it('a relay that says "try later" is tried again with backoff, and the report goes out once', async () => {
    const r = reporter();
    await r.tick(); // nothing else due
    const { seriesId, jobId } = await post('three');
    await record(jobId, 'FAIL');
    smtp.refuseNext(2);
    const before = smtp.accepted.length;
    for (let i = 0; i < 40 && smtp.accepted.length === before; i++) {
      await r.tick();
      await new Promise((res) => setTimeout(res, 60));
    }
    const row = (await store.outbox.list({ limit: 1, seriesId })).items[0];
    assert.equal(row?.status, 'sent');
    assert.equal(row.attempts, 3);
    assert.equal(smtp.accepted.length, before + 1);
  });

  it('dry run writes the same mail to the outbox folder and sends nothing', async () => {
    const dry = 'http://127.0.0.1:9/dry-list/';
    policies[dry] = { mode: 'dry-run', results: 'all', maintainers: [], optOut: [] };
    const { seriesId, jobId } = await post('four', { inbox: dry });
    await record(jobId, 'PASS');
    const before = smtp.accepted.length;
    await reporter().tick();
    assert.equal(smtp.accepted.length, before);
    const row = (await store.outbox.list({ limit: 1, seriesId })).items[0];
    assert.equal(row?.sentVia, 'outbox-folder');
    const file = readFileSync(join(outboxDir, `${row.id}.eml`));
    assert.deepEqual(file, await store.outbox.raw(row.id));
    const mail = parseMessage(file.toString('latin1'));
    assert.equal(mail.messageId, row.messageId);
    assert.match(mail.header('To') ?? '', /pat@example\.org/);
  });

  it('opt-out is honoured: an opted-out author gets nothing, an opted-out list is left off', async () => {
    const quiet = 'http://127.0.0.1:9/quiet-list/';
    policies[quiet] = { mode: 'author+list', results: 'all', maintainers: [], optOut: ['pat@example.org'] };
    const { seriesId, jobId } = await post('five', { inbox: quiet });
    await record(jobId, 'FAIL');
    const row = (await store.outbox.list({ limit: 1, seriesId })).items[0];
    assert.equal(row?.status, 'skipped');
    const before = smtp.accepted.length;
    await reporter().tick();
    assert.equal(smtp.accepted.length, before);
    const listless = 'http://127.0.0.1:9/listless/';
    policies[listless] = { mode: 'author+list', results: 'all', maintainers: [], optOut: [LIST] };
    const second = await post('six', { inbox: listless });
    await record(second.jobId, 'FAIL');
    await reporter().tick();
    assert.deepEqual(smtp.accepted.at(-1)?.to, ['pat@example.org']);
  });

  it('a report whose sender died after the relay took it is found in the archive and not sent again', async () => {
    const { seriesId, jobId } = await post('seven');
    await record(jobId, 'FAIL');
    // What a reporter killed between sending and recording leaves: claimed, composed, delivered, not marked.
    const dead = reporter({}, 'dead-reporter');
    const claimed = await store.outbox.claim('dead-reporter', 1);
    assert.ok(claimed);
    smtp.onMessage = (m) => { if (m.to.includes(LIST)) pi.deliver(m.raw, { received: true }); };
    await dead.close();
    const raw = await store.outbox.setRaw(claimed.id, 'dead-reporter', Buffer.from(`Message-ID: <${claimed.messageId}>\nIn-Reply-To: <${claimed.inReplyTo}>\nReferences: <${claimed.inReplyTo}>\nFrom: ${ROBOT.address}\nTo: ${LIST}\nSubject: ${claimed.subject}\n\nreport\n`));
    await smtpTransport({ url: smtp.url, requireTls: true, caFile: smtp.caFile }).deliver({ id: claimed.id, from: ROBOT.address, to: [LIST], raw });
    const before = smtp.accepted.length;
    await new Promise((res) => setTimeout(res, 1500)); // the claim expires
    await reporter().tick();
    const row = (await store.outbox.list({ limit: 1, seriesId })).items[0];
    assert.equal(row?.status, 'sent');
    assert.equal(row.sentVia, 'archive');
    assert.equal(smtp.accepted.length, before);
  });

  it('to the author alone, a report in doubt is held for an operator, never sent twice by itself', async () => {
    const solo = 'http://127.0.0.1:9/solo/';
    policies[solo] = { mode: 'author', results: 'all', maintainers: [], optOut: [] };
    const { seriesId, jobId } = await post('eight', { inbox: solo });
    await record(jobId, 'FAIL');
    const claimed = await store.outbox.claim('dead-reporter', 1);
    assert.ok(claimed);
    await store.outbox.setRaw(claimed.id, 'dead-reporter', Buffer.from('x'));
    await new Promise((res) => setTimeout(res, 1500));
    const before = smtp.accepted.length;
    await reporter().tick();
    const row = (await store.outbox.list({ limit: 1, seriesId })).items[0];
    assert.equal(row?.status, 'held');
    assert.equal(smtp.accepted.length, before);
    const resent = await store.outbox.resolveByHand(row.id, 'resend', 'admin');
    assert.equal(resent.status, 'pending');
  });
});

/**
 * `patchbay serve --role reporter` killed with SIGKILL between sending and
 * recording: the relay has the report (and has handed it to the list's
 * archive) but the reporter never heard its "250". The next reporter finds
 * the row in doubt, finds the Message-ID in the archive, and records it
 * sent without sending it again: one mail in the thread.
 *
 * Real parts: two reporter processes of the project's own command, a real
 * PostgreSQL server (shared by the test and the processes), Redis, a real
 * SMTP server on loopback with STARTTLS and AUTH, and a real public-inbox.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { parseMbox, parseMessage } from '../../domain/mbox.ts';
import { assembleSeries } from '../../domain/series.ts';
import { type Store, openDatabase, seriesContentHash } from '../../store/db.ts';
import { type PostgresServer, startPostgres } from '../../store/test/postgres-server.ts';
import { workerStore } from '../../worker/store-adapter.ts';
import { type PublicInbox, startPublicInbox } from '../../lore/test/public-inbox-server.ts';
import { makeSeries, makeTestTree } from '../../lore/test/traffic.ts';
import { until } from '../../platform/test/until.ts';
import { type SmtpSink, startSmtpSink } from './smtp-sink.ts';
import { verdict } from './verdict.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const LIST = 'io-uring@patchbay.invalid';
const ROBOT = 'patchbay@robot.patchbay.invalid';

describe('a reporter killed between sending and recording', { timeout: 5 * 60_000 }, () => {
  let dir: string;
  let pg: PostgresServer;
  let store: Store;
  let pi: PublicInbox;
  let smtp: SmtpSink;
  const children: ChildProcess[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patchbay-crash-'));
    pg = await startPostgres();
    store = await openDatabase({ databaseUrl: pg.url, dataDir: join(dir, 'data') });
    pi = await startPublicInbox('io-uring');
    smtp = await startSmtpSink();
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await store.close();
    await pg.stop();
    await smtp.stop();
    pi.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function startReporter(name: string): ChildProcess {
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir,
      DATABASE_URL: pg.url, REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', PATCHBAY_QUEUE_PREFIX: `crash${randomBytes(3).toString('hex')}`,
      PATCHBAY_DATA: join(dir, 'data'), PATCHBAY_CACHE: join(dir, 'cache'), PATCHBAY_LOG_FILE: '-', PATCHBAY_LOG_LEVEL: 'info',
      PATCHBAY_SMTP_URL: smtp.url, PATCHBAY_SMTP_CA: smtp.caFile, PATCHBAY_SMTP_REQUIRE_TLS: 'true',
      PATCHBAY_REPORT_FROM: ROBOT, PATCHBAY_REPORT_CLAIM_SECONDS: '3', PATCHBAY_REPORT_POLL_MS: '200',
      PATCHBAY_INBOX_ALLOW: pi.origin, PATCHBAY_LORE_SPACING_MS: '0', PATCHBAY_LORE_INBOXES: pi.url,
    };
    const child = spawn(process.execPath, [join(root, 'bin/patchbay.mjs'), 'serve', '--role', 'reporter'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
    child.on('exit', (code, signal) => { if (code !== 0 && signal !== 'SIGKILL') process.stderr.write(`  [${name}] exited ${code ?? signal}:\n${out.slice(-4000)}\n`); });
    children.push(child);
    return child;
  }

  it('the second reporter finds the report in the archive and sends nothing', async () => {
    const tree = makeTestTree(join(dir, 'tree'));
    const mails = makeSeries(tree, { id: 'crash', title: 'kbuf crash', files: ['io_uring/kbuf.c'], cover: true });
    pi.deliverMany(mails.map((m) => m.raw));
    const series = assembleSeries(mails.map((m) => parseMessage(m.raw.toString('latin1'))));
    const record = await store.series.create({ series, source: 'lore', inboxUrl: pi.url, submittedBy: null, contentHash: seriesContentHash(series) });
    const { job } = await store.jobs.createOrGet({ seriesId: record.id, tree: 'linux-7.1.y', base: null, suites: ['kbuf'], idempotencyKey: `crash-${record.id}`, deadlineAt: null, submittedBy: null, activeCap: null });
    const worker = workerStore(store, {
      policy: { default: { mode: 'author+list', results: 'all', maintainers: [], optOut: [] }, inboxes: {}, optOut: [] }, robot: ROBOT, messageIdDomain: 'patchbay.invalid',
    });
    await worker.markRunning(job.id, 'w1');
    await worker.recordResult(job.id, verdict(job.id, 'FAIL'));
    const row = (await store.outbox.list({ limit: 1, jobId: job.id })).items[0];
    assert.ok(row);

    // The relay takes the message, hands it to the list, and the reporter dies before it hears "250".
    const first = startReporter('reporter-1');
    const killed = new Promise<void>((resolve) => { first.once('exit', () => { resolve(); }); });
    smtp.onMessage = (m) => {
      if (m.to.includes(LIST)) pi.deliver(m.raw, { received: true });
      first.kill('SIGKILL');
    };
    await until('the first reporter sent and was killed', async () => {
      await killed;
      return smtp.accepted.length === 1;
    }, 120_000);
    assert.equal((await store.outbox.get(row.id))?.status, 'sending', 'the kill left the row unrecorded');
    smtp.onMessage = (m) => { if (m.to.includes(LIST)) pi.deliver(m.raw, { received: true }); };

    startReporter('reporter-2');
    const settled = await until('the second reporter settled the row', async () => {
      const r = await store.outbox.get(row.id);
      return r?.status === 'sent' ? r : undefined;
    }, 120_000, 200);
    assert.equal(settled.sentVia, 'archive');
    assert.equal(smtp.accepted.length, 1, 'no second mail went to the relay');
    const cover = mails[0];
    assert.ok(cover);
    const thread = parseMbox(gunzipSync(Buffer.from(await (await fetch(`${pi.url}${encodeURIComponent(cover.messageId)}/t.mbox.gz`)).arrayBuffer())).toString('latin1'));
    assert.equal(thread.filter((m) => m.messageId === row.messageId).length, 1, 'one report in the thread');
  });
});

/**
 * Posting to a list -> a report in the thread, end to end on real parts:
 * a series delivered into a real public-inbox, the lore watcher (polling
 * it over HTTP), a worker with the real executor (smoke suite, on the warm
 * base the fixture tests made), the reporter sending through a real SMTP
 * server on loopback (STARTTLS, AUTH) whose list mail is delivered back
 * into the same public-inbox. v1 does not apply (FAIL: git names patch
 * 2/3); v2, posted as a new thread, passes and its report compares it with
 * v1. Each thread gets exactly one reply.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadConfig } from '../../config/config.ts';
import { type MailMessage, parseMbox, splitMbox } from '../../domain/mbox.ts';
import { type PublicInbox, startPublicInbox } from '../../lore/test/public-inbox-server.ts';
import { until } from '../../platform/test/until.ts';
import { type SmtpSink, startSmtpSink } from '../../reporter/test/smtp-sink.ts';
import { type Service, startService } from '../service.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const LIST = 'io-uring@patchbay.invalid';
const ROBOT = 'patchbay@robot.patchbay.invalid';

/** The passing fixture as posted to our test list (no address outside patchbay.invalid), as revision `version`. */
function revision(version: 1 | 2, tag: string): Buffer[] {
  let text = readFileSync(join(root, 'fixtures/series/pass-kbuf-pin.mbox'), 'latin1')
    .replaceAll('io-uring@vger.kernel.org', LIST)
    .replaceAll('linux-fsdevel@vger.kernel.org', 'linux-fsdevel@patchbay.invalid')
    .replaceAll('<axboe@kernel.dk>', '<axboe@patchbay.invalid>')
    .replaceAll('-kbuf-pin-v2-', `-kbuf-pin-${tag}-v${version}-`);
  if (version === 1) {
    text = text.replaceAll('[PATCH v2 ', '[PATCH ');
    // Patch 2's context no longer matches the tree: git am stops there, and names it.
    const p2 = text.indexOf('Subject: [PATCH 2/3]');
    const hunk = text.indexOf('\n@@ ', p2);
    const context = text.indexOf('\n ', hunk + 1);
    text = `${text.slice(0, context + 2)}XX-not-in-the-tree${text.slice(context + 2)}`;
  }
  return splitMbox(text).map((m) => Buffer.from(m, 'latin1'));
}

describe('a series posted to a list gets one threaded report', { timeout: 30 * 60_000 }, () => {
  let dir: string;
  let pi: PublicInbox;
  let smtp: SmtpSink;
  let service: Service | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patchbay-report-e2e-'));
    pi = await startPublicInbox('io-uring');
    smtp = await startSmtpSink();
    smtp.onMessage = (m) => { if (m.to.includes(LIST)) pi.deliver(m.raw, { received: true }); };
    const policy = join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ default: { mode: 'dry-run', results: 'all' }, inboxes: [{ inbox: pi.url, mode: 'author+list', results: 'all' }] }));
    const config = loadConfig({
      ...process.env,
      PATCHBAY_DATA: join(dir, 'data'), PATCHBAY_QUEUE_PREFIX: `report-${randomBytes(3).toString('hex')}`, PORT: '0',
      PATCHBAY_LORE_INBOXES: pi.url, PATCHBAY_INBOX_ALLOW: pi.origin, PATCHBAY_LORE_POLL_SECONDS: '2', PATCHBAY_LORE_SPACING_MS: '0',
      PATCHBAY_LORE_OVERLAP_SECONDS: '3600', PATCHBAY_LORE_LOOKBACK_SECONDS: '3600', PATCHBAY_LORE_SETTLE_SECONDS: '5', PATCHBAY_LORE_SUITES: 'smoke',
      PATCHBAY_REPORT_POLICY: policy, PATCHBAY_REPORT_FROM: ROBOT, PATCHBAY_REPORT_POLL_MS: '500',
      PATCHBAY_SMTP_URL: smtp.url, PATCHBAY_SMTP_CA: smtp.caFile, PATCHBAY_SMTP_REQUIRE_TLS: 'true',
    });
    service = await startService(config, { roles: ['worker', 'lore', 'reporter'], hostEnv: process.env, logger: pino({ level: 'silent' }) });
  });
  after(async () => {
    // Whatever before() got to is stopped, so that a failed start does not keep the process alive.
    await service?.close();
    await smtp.stop();
    pi.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function thread(messageId: string): Promise<MailMessage[]> {
    const res = await fetch(`${pi.url}${encodeURIComponent(messageId)}/t.mbox.gz`);
    return res.ok ? parseMbox(gunzipSync(Buffer.from(await res.arrayBuffer())).toString('latin1')) : [];
  }

  const reportsIn = (mail: readonly MailMessage[]): MailMessage[] => mail.filter((m) => m.header('Auto-Submitted') === 'auto-generated');

  it('v1 (does not apply) and v2 (passes, compared with v1) each get exactly one reply in their thread', async () => {
    const tag = randomBytes(3).toString('hex');
    const v1 = revision(1, tag);
    const v1Cover = `20261120-kbuf-pin-${tag}-v1-0@patchbay.invalid`;
    pi.deliverMany(v1);
    const first = await until('v1\'s report in its thread', async () => {
      const r = reportsIn(await thread(v1Cover));
      return r.length > 0 ? r : undefined;
    }, 15 * 60_000, 1000);
    assert.equal(first.length, 1);
    const r1 = first[0];
    assert.ok(r1);
    assert.equal(r1.inReplyTo, v1Cover);
    assert.deepEqual(r1.references, [v1Cover]);
    assert.equal(r1.subject, 'Re: [PATCH 0/3] io_uring/kbuf: buffer ring pinning');
    assert.equal(r1.header('X-Patchbay-Verdict'), 'FAIL');
    assert.match(r1.body, /patch 2\/3/i);
    assert.match(r1.body, /^\| Reported-by: patchbay <patchbay@robot\.patchbay\.invalid>$/m);

    const v2Cover = `20261120-kbuf-pin-${tag}-v2-0@patchbay.invalid`;
    pi.deliverMany(revision(2, tag));
    const second = await until('v2\'s report in its thread', async () => {
      const r = reportsIn(await thread(v2Cover));
      return r.length > 0 ? r : undefined;
    }, 15 * 60_000, 1000);
    const r2 = second[0];
    assert.ok(r2);
    assert.equal(r2.inReplyTo, v2Cover);
    assert.equal(r2.header('X-Patchbay-Verdict'), 'PASS');
    assert.match(r2.body, /Compared with v1/);
    assert.doesNotMatch(r2.body, /Reported-by:/);

    // Polls and ticks go on: nothing more is sent.
    await new Promise((res) => setTimeout(res, 8000));
    assert.equal(reportsIn(await thread(v1Cover)).length, 1);
    assert.equal(reportsIn(await thread(v2Cover)).length, 1);
    assert.equal(smtp.accepted.length, 2);
    assert.ok(service);
    const outbox = (await service.store.outbox.list({ limit: 10 })).items;
    assert.deepEqual(outbox.map((o) => `${o.verdict ?? ''}:${o.status}:${o.sentVia ?? ''}`).sort(), ['FAIL:sent:smtp', 'PASS:sent:smtp']);
  });
});

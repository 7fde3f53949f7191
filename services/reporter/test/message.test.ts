import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMessage } from '../../domain/mbox.ts';
import { addressList, rawHeaders } from '../../domain/report/thread.ts';
import type { OutboxEntry } from '../../store/db.ts';
import { composeMessage, envelopeOf } from '../message.ts';

const entry: OutboxEntry = {
  id: 'm-01m8y8vv5dgxdnm5j4y2', key: 'result:cover@example.org:1', kind: 'result', revision: 'cover@example.org', seriesId: 's-x', jobId: 'j-01m8y8vr52twzn74yzts',
  verdict: 'FAIL', inbox: 'http://127.0.0.1:1/io-uring/', mode: 'author+list', messageId: 'patchbay-m-01m8y8vv5dgxdnm5j4y2@patchbay.invalid',
  inReplyTo: 'cover@example.org', references: ['v1@example.org', 'cover@example.org'], subject: 'Re: [PATCH 0/3] io_uring/kbuf: pinning',
  recipients: { to: [{ name: 'Ada Lovelace', email: 'ada@example.org' }], cc: [{ name: '', email: 'io-uring@lists.example' }, { name: 'Müller, Jens', email: 'jens@example.org' }], optedOut: [] },
  body: null, status: 'sending', reason: 'first FAIL', attempts: 1, nextAttemptAt: new Date(0), claimedBy: 'me', claimedUntil: null, lastError: null,
  composed: false, sentAt: null, sentVia: null, smtpResponse: null, createdAt: new Date(0),
};
const robot = { name: 'patchbay', address: 'patchbay@robot.example' };
const when = new Date('2026-12-03T15:37:43Z');

describe('composeMessage', () => {
  it('threads, marks itself automated, and reads back as sent', async () => {
    const body = `patchbay tested v1 of this series: FAIL\n\n    ${'x'.repeat(300)}\n`;
    const raw = await composeMessage(entry, body, robot, when);
    const text = raw.toString('utf8');
    const mail = parseMessage(raw.toString('latin1'));
    assert.equal(mail.messageId, entry.messageId);
    assert.equal(mail.inReplyTo, 'cover@example.org');
    assert.deepEqual(mail.references, ['v1@example.org', 'cover@example.org']);
    assert.equal(mail.subject, entry.subject);
    assert.equal(mail.header('Auto-Submitted'), 'auto-generated');
    assert.equal(mail.header('X-Patchbay-Job'), entry.jobId);
    assert.equal(mail.header('X-Patchbay-Verdict'), 'FAIL');
    assert.match(text, /^Date: Thu, 03 Dec 2026 15:37:43 \+0000$/m);
    // A 300-column log line is carried quoted-printable (soft breaks) and reads back whole, never wrapped.
    assert.match(text, /^Content-Transfer-Encoding: quoted-printable$/m);
    assert.ok(text.split('\n').every((l) => l.length <= 78));
    assert.equal(mail.body, body);
    assert.deepEqual(envelopeOf(entry), ['ada@example.org', 'io-uring@lists.example', 'jens@example.org']);
    // A name with a comma is encoded so that the list still reads as two addresses.
    assert.deepEqual(addressList(rawHeaders(mail.raw, 'cc')), [{ name: '', email: 'io-uring@lists.example' }, { name: 'Müller, Jens', email: 'jens@example.org' }]);
  });

  it('short ASCII lines go as they are (7bit)', async () => {
    const body = 'patchbay tested v2 of this series: PASS\n';
    const raw = await composeMessage(entry, body, robot, when);
    assert.match(raw.toString('latin1'), /^Content-Transfer-Encoding: 7bit$/m);
    assert.ok(raw.toString('latin1').endsWith(`\n\n${body}`));
  });

  it('the same entry, body and date give the same bytes', async () => {
    const a = await composeMessage(entry, 'same\n', robot, when);
    const b = await composeMessage(entry, 'same\n', robot, when);
    assert.deepEqual(a, b);
  });
});

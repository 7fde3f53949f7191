import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMessage } from '../mbox.ts';
import { type InboxPolicy, MAX_RECIPIENTS, decideReport, inboxPolicy, reportRecipients } from '../report/policy.ts';
import { MAX_REFERENCES, addressList, replyReferences, replySubject, threadTarget } from '../report/thread.ts';

const every: InboxPolicy = { mode: 'author+list', results: 'all', maintainers: [], optOut: [] };
const failures: InboxPolicy = { ...every, results: 'failures' };

describe('decideReport', () => {
  it('mails PASS and FAIL, never MISS, ERROR, SKIP or a cancellation', () => {
    for (const status of ['PASS', 'FAIL'] as const) assert.equal(decideReport({ status, hasThread: true, policy: every, lastReported: null }).mail, true);
    for (const status of ['MISS', 'ERROR', 'SKIP', 'cancelled'] as const) {
      const d = decideReport({ status, hasThread: true, policy: every, lastReported: null });
      assert.equal(d.mail, false, status);
      assert.match(d.reason, /not mailed/);
    }
  });
  it('a series with no thread (an upload) is never mailed', () => {
    assert.equal(decideReport({ status: 'FAIL', hasThread: false, policy: every, lastReported: null }).mail, false);
  });
  it('a later run of the same revision mails only when the verdict changes', () => {
    assert.equal(decideReport({ status: 'FAIL', hasThread: true, policy: every, lastReported: 'FAIL' }).mail, false);
    const changed = decideReport({ status: 'PASS', hasThread: true, policy: every, lastReported: 'FAIL' });
    assert.equal(changed.mail, true);
    assert.match(changed.reason, /changed from FAIL to PASS/);
  });
  it('failures only: a PASS is mailed only when it overturns a mailed FAIL', () => {
    assert.equal(decideReport({ status: 'PASS', hasThread: true, policy: failures, lastReported: null }).mail, false);
    assert.equal(decideReport({ status: 'FAIL', hasThread: true, policy: failures, lastReported: null }).mail, true);
    assert.equal(decideReport({ status: 'PASS', hasThread: true, policy: failures, lastReported: 'FAIL' }).mail, true);
  });
  it('an inbox named with or without its trailing slash finds its policy; others get the default', () => {
    const policy = { default: every, inboxes: { 'https://lore.example/io-uring/': failures }, optOut: [] };
    assert.equal(inboxPolicy(policy, 'https://lore.example/io-uring'), failures);
    assert.equal(inboxPolicy(policy, 'https://lore.example/io-uring/'), failures);
    assert.equal(inboxPolicy(policy, 'https://lore.example/netdev/'), every);
  });
});

describe('reportRecipients', () => {
  const from = { name: 'Ann Author', email: 'Ann@Example.org' };
  const to = [{ name: '', email: 'io-uring@lists.example' }, { name: 'Jens', email: 'axboe@example.net' }];
  const cc = [{ name: 'Bot', email: 'patchbay@robot.example' }, { name: 'Ann again', email: 'ann@example.org' }, { name: 'x', email: 'not an address' }];
  it('author: the From alone', () => {
    const r = reportRecipients({ mode: 'author', from, to, cc, robot: 'patchbay@robot.example', optOut: [] });
    assert.deepEqual(r.to, [{ name: 'Ann Author', email: 'ann@example.org' }]);
    assert.deepEqual(r.cc, []);
  });
  it('author+list: To and Cc of the posted mail as Cc, without the robot, duplicates or junk', () => {
    const r = reportRecipients({ mode: 'author+list', from, to, cc, robot: 'PATCHBAY@robot.example', optOut: [] });
    assert.deepEqual(r.cc.map((m) => m.email), ['io-uring@lists.example', 'axboe@example.net']);
  });
  it('opt-out removes addresses and lists, and says so', () => {
    const r = reportRecipients({ mode: 'author+list', from, to, cc, robot: 'patchbay@robot.example', optOut: ['IO-URING@lists.example', 'ann@example.org'] });
    assert.deepEqual(r.to, []);
    assert.deepEqual(r.cc.map((m) => m.email), ['axboe@example.net']);
    assert.deepEqual(r.optedOut.sort(), ['ann@example.org', 'io-uring@lists.example']);
  });
  it(`at most ${MAX_RECIPIENTS} addresses`, () => {
    const many = Array.from({ length: 80 }, (_, i) => ({ name: '', email: `p${i}@example.org` }));
    const r = reportRecipients({ mode: 'author+list', from, to: many, cc: [], robot: 'x@y.z', optOut: [] });
    assert.equal(r.to.length + r.cc.length, MAX_RECIPIENTS);
  });
});

describe('thread headers', () => {
  it('Re: once', () => {
    assert.equal(replySubject('[PATCH v2 0/3] io_uring/kbuf: x'), 'Re: [PATCH v2 0/3] io_uring/kbuf: x');
    assert.equal(replySubject('RE: [PATCH] x'), 'RE: [PATCH] x');
  });
  it('References: the answered mail\'s, then its Message-ID; long chains keep the root and the newest', () => {
    assert.deepEqual(replyReferences({ references: ['a@x', 'b@x'], messageId: 'c@x' }), ['a@x', 'b@x', 'c@x']);
    const long = Array.from({ length: 40 }, (_, i) => `r${i}@x`);
    const refs = replyReferences({ references: long, messageId: 'me@x' });
    assert.equal(refs.length, MAX_REFERENCES);
    assert.equal(refs[0], 'r0@x');
    assert.equal(refs.at(-1), 'me@x');
  });
  it('address lists split outside quotes and angle brackets; encoded names cannot hide a comma', () => {
    const list = addressList('"Doe, John" <john@example.org>, =?utf-8?q?M=C3=BCller=2C_A?= <a@example.org>, plain@example.org, c@example.org (Comment, Here)');
    assert.deepEqual(list.map((a) => a.email), ['john@example.org', 'a@example.org', 'plain@example.org', 'c@example.org']);
    assert.equal(list[1]?.name, 'Müller, A');
  });
  it('threadTarget reads To and Cc from the raw header, every copy of it, folded or not', () => {
    const raw = [
      'From: Ann <ann@example.org>',
      'To: io-uring@lists.example,',
      ' Jens <axboe@example.net>',
      'Cc: fsdevel@lists.example',
      'Cc: "Doe, John" <john@example.org>',
      'Subject: [PATCH 0/2] fuse: things',
      'Message-ID: <cover@example.org>',
      'References: <v1@example.org>',
      '',
      'body',
      '',
    ].join('\n');
    const t = threadTarget(parseMessage(raw));
    assert.equal(t.subject, 'Re: [PATCH 0/2] fuse: things');
    assert.deepEqual(t.references, ['v1@example.org', 'cover@example.org']);
    assert.deepEqual(t.to.map((a) => a.email), ['io-uring@lists.example', 'axboe@example.net']);
    assert.deepEqual(t.cc.map((a) => a.email), ['fsdevel@lists.example', 'john@example.org']);
  });
});

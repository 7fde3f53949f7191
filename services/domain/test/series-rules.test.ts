/**
 * b4's rules, one at a time, on small piles built here: classification
 * (LoreMessage), partial rerolls (LoreMailbox.partial_reroll), RESEND,
 * threads of several series (get_strict_thread), and the linear-time
 * bounds of the grouping.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PatchbayError } from '../errors.ts';
import { parseMbox, parseMessage, type MailMessage } from '../mbox.ts';
import { assembleSeries, checkCompleteness, classifyMessages, groupRevisions, listRevisions, pickRevision } from '../series.ts';
import { errorCodeOf } from './error-code.ts';
import { withinTime } from './time-bound.ts';

let clock = Date.parse('2026-01-05T10:00:00Z');

/** A mail; Date one minute after the last one unless given. */
function mail(subject: string, body: string, headers: Record<string, string> = {}): MailMessage {
  clock += 60_000;
  const all: Record<string, string> = {
    From: 'Joan Kestrel <joan@example.com>',
    Subject: subject,
    Date: new Date(clock).toUTCString(),
    'Message-ID': `<m${clock}@example.com>`,
    ...headers,
  };
  return parseMessage(`${Object.entries(all).map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${body}`);
}

const diff = (path: string, line = 'x'): string =>
  `Signed-off-by: Joan Kestrel <joan@example.com>\n---\ndiff --git a/${path} b/${path}\n--- a/${path}\n+++ b/${path}\n@@ -1 +1 @@\n-old\n+${line}\n-- \n2.47.3\n`;

const replyTo = (m: MailMessage, root: MailMessage = m): Record<string, string> => ({
  'In-Reply-To': `<${m.messageId}>`,
  References: root === m ? `<${m.messageId}>` : `<${root.messageId}> <${m.messageId}>`,
});

/** v1 0/N and 1..N, each patch in reply to the cover letter. */
function series(n: number, opts: { version?: number; title?: string; from?: string; prefix?: string } = {}): MailMessage[] {
  const v = opts.version === undefined || opts.version === 1 ? '' : ` v${opts.version}`;
  const from = opts.from ?? 'Joan Kestrel <joan@example.com>';
  const prefix = opts.prefix ?? 'PATCH';
  const title = opts.title ?? 'io_uring/kbuf: pinning';
  const cover = mail(`[${prefix}${v} 0/${n}] ${title}`, `Why.\n\n a.c | 1 +\n 1 file changed, 1 insertion(+)\n`, { From: from });
  const patches = Array.from({ length: n }, (_, i) => mail(`[${prefix}${v} ${i + 1}/${n}] ${title}, step ${i + 1}`, diff(`f${i + 1}.c`, `v${opts.version ?? 1}`), { From: from, ...replyTo(cover) }));
  return [cover, ...patches];
}

function fail(fn: () => unknown): PatchbayError {
  try {
    fn();
  } catch (e) {
    if (e instanceof PatchbayError) return e;
    throw e;
  }
  assert.fail('expected a PatchbayError');
}

// ---------------------------------------------------------------------------
// Classification

test('classify: a review that quotes the whole patch is a reply (the seed thread\'s message)', () => {
  const [seed] = parseMbox(readFileSync(join(import.meta.dirname, 'golden', 'series', 'seed-review-quotes-diff.mbox'), 'latin1'));
  assert.ok(seed);
  assert.equal(classifyMessages([seed])[0]?.kind, 'reply');
  // Its client dropped the "Re:": a [PATCH ...] subject, threaded, no diff of its own, a quoted one: still a reply.
  const noRe = parseMessage(seed.raw.replace(/^Subject: Re: /m, 'Subject: '));
  assert.equal(noRe.subject, '[PATCH v3 06/25] io_uring/kbuf: add buffer ring pinning/unpinning');
  assert.equal(classifyMessages([noRe])[0]?.kind, 'reply');
  // A patch whose diff got lost (no quoted one either) stays a patch, refused as such.
  const lost = mail('[PATCH v4 2/2] x', 'Signed-off-by: A <a@example.com>\n', { 'In-Reply-To': '<p1@x>' });
  assert.equal(classifyMessages([lost])[0]?.kind, 'patch');
});

test('classify: a patch that names no revision takes its cover letter\'s, and patch 1\'s down a chain (b4 add_message)', () => {
  const cover = mail('[PATCH v3 0/3] x', 'Why.\n');
  const p1 = mail('[PATCH 1/3] x', diff('a.c'), replyTo(cover));
  const p2 = mail('[PATCH 2/3] x', diff('b.c'), replyTo(p1, cover));
  const p3 = mail('[PATCH 3/3] x', diff('c.c'), replyTo(p2, cover));
  assert.deepEqual(classifyMessages([p3, p2, p1, cover]).map((n) => n.version), [1, 3, 3, 3]);
  // 3/3 replies to 2/3, which is neither the cover letter nor patch 1 (b4 leaves it too).
  assert.equal(errorCodeOf(() => assembleSeries([cover, p1, p2, p3])), 'SERIES_INCOMPLETE');
});

// ---------------------------------------------------------------------------
// Partial rerolls (b4 partial_reroll)

test('partial reroll: a lone [PATCH v2 3/5] in reply to v1\'s 3/5 takes the rest from v1', () => {
  const v1 = series(5);
  const v2p3 = mail('[PATCH v2 3/5] io_uring/kbuf: pinning, step 3', diff('f3.c', 'v2'), replyTo(v1[3] as MailMessage, v1[0]));
  const s = assembleSeries([...v1, v2p3]);
  assert.equal(s.version, 2);
  assert.deepEqual(s.patches.map((p) => p.message.messageId), [v1[1], v1[2], v2p3, v1[4], v1[5]].map((m) => m?.messageId));
  assert.equal(s.cover?.messageId, v1[0]?.messageId);
  assert.equal(s.title, 'io_uring/kbuf: pinning');
  assert.ok(s.problems.includes('v2 is a partial reroll of v1 (b4): patch 3/5 from v2; patches 1/5, 2/5, 4/5, 5/5 from v1; the cover letter from v1'));
});

test('partial reroll: only from the revision just before (b4: revision - 1)', () => {
  const v1 = series(3);
  const v3p2 = mail('[PATCH v3 2/3] x', diff('f2.c', 'v3'), replyTo(v1[2] as MailMessage, v1[0]));
  const e = fail(() => assembleSeries([...v1, v3p2]));
  assert.equal(e.code, 'SERIES_INCOMPLETE');
  assert.deepEqual(e.details.missing, [1, 3]);
});

test('partial reroll: every patch must reply to the older one with its counter and N', () => {
  const v1 = series(3);
  const good = mail('[PATCH v2 2/3] x', diff('f2.c', 'v2'), replyTo(v1[2] as MailMessage, v1[0]));
  // 3/3 sent in reply to v1's 1/3: not a reroll of it.
  const wrong = mail('[PATCH v2 3/3] x', diff('f3.c', 'v2'), replyTo(v1[1] as MailMessage, v1[0]));
  assert.deepEqual(fail(() => assembleSeries([...v1, good, wrong])).details.missing, [1]);
  // Another N: "[PATCH v2 2/4]" in reply to v1's 2/3.
  const longer = mail('[PATCH v2 2/4] x', diff('f2.c', 'v2'), replyTo(v1[2] as MailMessage, v1[0]));
  assert.deepEqual(fail(() => assembleSeries([...v1, longer])).details.missing, [1, 3, 4]);
  // In reply to nothing (not threaded): b4 "Patch not sent as a reply-to".
  const loose = mail('[PATCH v2 2/3] x', diff('f2.c', 'v2'));
  assert.deepEqual(fail(() => assembleSeries([...v1, loose])).details.missing, [1, 3]);
});

test('partial reroll: what the older revision lacks stays missing, and its own cover letter wins', () => {
  const v1 = series(3);
  const holed = v1.filter((_, i) => i !== 1); // v1's 1/3 never arrived
  const v2p2 = mail('[PATCH v2 2/3] x', diff('f2.c', 'v2'), replyTo(v1[2] as MailMessage, v1[0]));
  const e = fail(() => assembleSeries([...holed, v2p2]));
  assert.deepEqual([e.details.missing, e.details.present], [[1], [2, 3]]);
  const [r] = listRevisions([...holed, v2p2]).filter((x) => x.version === 2);
  assert.deepEqual([r?.present, r?.missing, r?.complete], [[2, 3], [1], false]);
  // A v2 cover letter of its own: the reroll is named after it.
  const v2cover = mail('[PATCH v2 0/3] io_uring/kbuf: pinning, v2', 'Only 2/3 changed.\n', replyTo(v1[0] as MailMessage));
  const s = assembleSeries([...v1, v2cover, v2p2]);
  assert.equal(s.cover?.messageId, v2cover.messageId);
  assert.equal(s.title, 'io_uring/kbuf: pinning, v2');
  assert.equal(s.patches[1]?.message.messageId, v2p2.messageId);
});

test('partial reroll: trailers given to the older patches carry over; those on the one replaced do not', () => {
  const v1 = series(2);
  const on1 = mail('Re: [PATCH 1/2] x', 'Reviewed-by: Cal Sander <cal@example.net>\n', { From: 'Cal Sander <cal@example.net>', ...replyTo(v1[1] as MailMessage, v1[0]) });
  const on2 = mail('Re: [PATCH 2/2] x', 'Reviewed-by: Cal Sander <cal@example.net>\n', { From: 'Cal Sander <cal@example.net>', ...replyTo(v1[2] as MailMessage, v1[0]) });
  const v2p2 = mail('[PATCH v2 2/2] x', diff('f2.c', 'v2'), replyTo(on2, v1[0]));
  const s = assembleSeries([...v1, on1, on2, v2p2]);
  assert.deepEqual(s.patches.map((p) => p.trailers.length), [2, 1]);
});

test('a review of another revision counts for the patch that makes the same change (b4: trailer_map, by patch id)', () => {
  const v1 = series(2);
  const cal = { From: 'Cal Sander <cal@example.net>' };
  const on1 = mail('Re: [PATCH 1/2] x', 'Reviewed-by: Cal Sander <cal@example.net>\n', { ...cal, ...replyTo(v1[1] as MailMessage, v1[0]) });
  const on2 = mail('Re: [PATCH 2/2] x', 'Reviewed-by: Cal Sander <cal@example.net>\n', { ...cal, ...replyTo(v1[2] as MailMessage, v1[0]) });
  const stranger = mail('Re: [PATCH 1/2] x', 'Acked-by: Jens Axle <axle@example.org>\n', { ...cal, ...replyTo(v1[1] as MailMessage, v1[0]) });
  // v2, a thread of its own: 1/2 reworded and at other line numbers (the same change), 2/2 changed.
  const cover = mail('[PATCH v2 0/2] io_uring/kbuf: pinning', 'v2: 2/2 reworked.\n\n a.c | 1 +\n 1 file changed, 1 insertion(+)\n');
  const same = diff('f1.c', 'v1').replace('Signed-off-by', 'Reworded.\n\nSigned-off-by').replace('@@ -1 +1 @@', '@@ -7 +7 @@');
  const p1 = mail('[PATCH v2 1/2] io_uring/kbuf: pinning, step 1', same, replyTo(cover));
  const p2 = mail('[PATCH v2 2/2] io_uring/kbuf: pinning, step 2', diff('f2.c', 'v2'), replyTo(cover));
  const s = assembleSeries([...v1, on1, on2, stranger, cover, p1, p2]);
  assert.equal(s.version, 2);
  assert.deepEqual(s.patches.map((p) => p.trailers.map((t) => `${t.name}: ${t.value}`)), [
    ['Signed-off-by: Joan Kestrel <joan@example.com>', 'Reviewed-by: Cal Sander <cal@example.net>'],
    ['Signed-off-by: Joan Kestrel <joan@example.com>'],
  ]);
  // A trailer naming someone else is refused there as anywhere; the review of the old 2/2 reviewed another change.
  assert.deepEqual(s.problems.filter((p) => p.startsWith('ignored')), [
    'ignored "Acked-by: Jens Axle <axle@example.org>" in a reply from cal@example.net: it names someone else',
    'ignored 2 replies',
  ]);
});

test('partial reroll: checkCompleteness says where each patch came from', () => {
  const v1 = series(2);
  const v2p1 = mail('[PATCH v2 1/2] x', diff('f1.c', 'v2'), replyTo(v1[1] as MailMessage, v1[0]));
  const revisions = groupRevisions(classifyMessages([...v1, v2p1]));
  const view = checkCompleteness(pickRevision(revisions).revision);
  assert.deepEqual(view.patches.map((p) => [p.counter, p.fromVersion]), [[1, 2], [2, 1]]);
  assert.equal(view.rerollFrom?.version, 1);
  assert.equal(view.complete, true);
});

// ---------------------------------------------------------------------------
// RESEND, and which revision is the newest

test('RESEND: the same revision; the resent mails win; isResend', () => {
  const first = series(2, { version: 2 });
  const again = series(2, { version: 2, prefix: 'PATCH RESEND' });
  const s = assembleSeries([...first, ...again]);
  assert.equal(s.version, 2);
  assert.equal(s.isResend, true);
  assert.deepEqual(s.patches.map((p) => p.message.messageId), [again[1]?.messageId, again[2]?.messageId]);
  assert.equal(assembleSeries(first).isResend, false);
  assert.equal(listRevisions([...first, ...again]).length, 1);
});

test('the newest revision is the highest version, not the latest mail (a RESEND of v1 after v2)', () => {
  const v1 = series(1);
  const v2 = series(1, { version: 2 });
  const v1again = series(1, { prefix: 'RESEND PATCH' });
  const s = assembleSeries([...v1, ...v2, ...v1again]);
  assert.equal(s.version, 2);
  assert.deepEqual(s.problems, ['v1 also present; took v2']);
});

// ---------------------------------------------------------------------------
// Several series in one pile

test('a standalone [PATCH] posted in a series\' thread is its own series (b4 get_strict_thread)', () => {
  const a = series(2);
  const fix = mail('[PATCH] io_uring/kbuf: a follow-up fix', diff('g.c'), { From: 'Pavel Bergov <pbergov@example.com>', ...replyTo(a[1] as MailMessage, a[0]) });
  const s = assembleSeries([...a, fix]);
  assert.deepEqual(s.patches.map((p) => p.message.messageId), [a[1]?.messageId, a[2]?.messageId]);
  assert.match(s.problems[0] ?? '', /^1 other v1 series also present \("\[PATCH\] io_uring\/kbuf: a follow-up fix"/);
  assert.deepEqual(listRevisions([...a, fix]).map((r) => [r.title, r.complete]), [
    ['io_uring/kbuf: pinning', true],
    ['io_uring/kbuf: a follow-up fix', true],
  ]);
});

test('two series of one author and version do not merge; opts.version and the thread decide', () => {
  const a = series(2, { title: 'io_uring/kbuf: one thing' });
  const b = series(3, { title: 'io_uring/kbuf: another thing' });
  const revisions = listRevisions([...a, ...b]);
  assert.deepEqual(revisions.map((r) => [r.title, r.total, r.complete]), [
    ['io_uring/kbuf: another thing', 3, true],
    ['io_uring/kbuf: one thing', 2, true],
  ]);
  // assembleSeries: the one with more patches.
  assert.equal(assembleSeries([...a, ...b]).title, 'io_uring/kbuf: another thing');
});

test('patches whose cover letter is not in the pile: one revision by their thread; another thread\'s stays apart', () => {
  const a = series(3).slice(1); // no cover letter
  const b = series(2, { title: 'net: x', from: 'Pavel Bergov <pbergov@example.com>' }).slice(2); // 2/2 alone
  const revisions = listRevisions([...a, ...b]);
  assert.deepEqual(revisions.map((r) => [r.author.email, r.present, r.complete]), [
    ['joan@example.com', [1, 2, 3], true],
    ['pbergov@example.com', [2], false],
  ]);
  assert.equal(assembleSeries([...a, ...b]).total, 3);
});

test('git send-email --no-thread with a cover letter: one series', () => {
  const cover = mail('[PATCH v2 0/2] fuse: x', 'Why.\n\n a | 1 +\n 1 file changed, 1 insertion(+)\n');
  const p1 = mail('[PATCH v2 1/2] fuse: a', diff('a.c'));
  const p2 = mail('[PATCH v2 2/2] fuse: b', diff('b.c'));
  const s = assembleSeries([p2, cover, p1]);
  assert.equal(s.cover?.messageId, cover.messageId);
  assert.equal(s.title, 'fuse: x');
  assert.deepEqual(listRevisions([p2, cover, p1]).map((r) => r.complete), [true]);
});

test('a naked cover letter (no 0/N) with a diffstat is the cover letter of the patches under it (b4 get_series)', () => {
  const naked = mail('[PATCH v2] fuse: naked', 'Two.\n\n a.c | 2 +-\n 2 files changed, 2 insertions(+), 2 deletions(-)\n');
  const p1 = mail('[PATCH v2 1/2] fuse: a', diff('a.c'), replyTo(naked));
  const p2 = mail('[PATCH 2/2] fuse: b', diff('b.c'), replyTo(naked));
  const s = assembleSeries([naked, p1, p2]);
  assert.equal(s.version, 2);
  assert.equal(s.cover?.messageId, naked.messageId);
  assert.deepEqual(s.problems, []);
});

// ---------------------------------------------------------------------------
// Bounds

function timed<T>(what: string, fn: () => T): T {
  return withinTime(what, 2000, fn);
}

test('linear time: 2,000 patch mails, each a reroll of the one before (v1 2/2 <- v2 2/2 <- ...)', () => {
  const first = mail('[PATCH 1/2] x', diff('a.c'));
  const msgs: MailMessage[] = [first, mail('[PATCH 2/2] x', diff('b.c'), replyTo(first))];
  for (let v = 2; v <= 2000; v++) {
    const prev = msgs[msgs.length - 1] as MailMessage;
    msgs.push(mail(`[PATCH v${v} 2/2] x`, diff('b.c', `v${v}`), { 'In-Reply-To': `<${prev.messageId}>` }));
  }
  const revisions = timed('listRevisions', () => listRevisions(msgs));
  assert.equal(revisions.length, 2000);
  // Followed back SERIES_MAX_REROLL_CHAIN revisions at most: the newest is not rebuilt from v1.
  assert.equal(revisions.find((r) => r.version === 2000)?.complete, false);
  assert.equal(revisions.find((r) => r.version === 2)?.complete, true);
  assert.equal(timed('assembleSeries', () => errorCodeOf(() => assembleSeries(msgs))), 'SERIES_INCOMPLETE');
});

test('linear time: 300 series of 10 patches, in one pile, listed', () => {
  const msgs: MailMessage[] = [];
  for (let i = 0; i < 300; i++) msgs.push(...series(10, { title: `series ${i}`, from: `A${i % 7} <a${i % 7}@example.com>` }));
  const revisions = timed('listRevisions', () => listRevisions(msgs));
  assert.equal(revisions.length, 300);
  assert.ok(revisions.every((r) => r.complete && r.messageIds.length === 11));
});

test('linear time: References that loop, and 2,000 threads hanging from each other', () => {
  const msgs: MailMessage[] = [];
  for (let i = 0; i < 2000; i++) {
    // "[PATCH 2/2]" alone, each in reply to the next one: a ring.
    msgs.push(mail('[PATCH 2/2] x', diff('a.c'), { 'Message-ID': `<ring${i}@x>`, 'In-Reply-To': `<ring${(i + 1) % 2000}@x>` }));
  }
  const revisions = timed('listRevisions', () => listRevisions(msgs));
  assert.deepEqual(revisions.map((r) => [r.complete, r.problem]), [[false, 'The v1 series comes in 2000 patch mails; patchbay takes at most 1000 patches in a series; missing patch 1/2']]);
  assert.equal(timed('assembleSeries', () => errorCodeOf(() => assembleSeries(msgs))), 'SERIES_TOO_LARGE');
  assert.equal(timed('assembleSeries', () => errorCodeOf(() => assembleSeries(msgs.slice(0, 900)))), 'SERIES_INCOMPLETE');
});

/**
 * listRevisions and seriesIdentity: a watcher's pile of several series,
 * revisions and partial ones; listRevisions agrees with assembleSeries (a
 * revision it calls complete assembles from its messageIds), never throws,
 * and does not depend on the order of the pile.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { isPatchbayError } from '../errors.ts';
import { parseMbox, parseMessage, type MailMessage } from '../mbox.ts';
import {
  assembleSeries,
  listRevisions,
  seriesIdentity,
  SERIES_MAX_MESSAGES,
  SERIES_MAX_PATCHES,
  type RevisionSummary,
} from '../series.ts';
import { errorCodeOf } from './error-code.ts';

const GOLDEN = join(import.meta.dirname, 'golden', 'series');
const CASES = [
  'arriving', 'b4-am-output', 'coverless', 'discussion', 'kmbuf-v3-25', 'partial-reroll', 'partial-reroll-chain',
  'partial-reroll-not-threaded', 'partial-reroll-via-review', 'resend', 'resend-unversioned', 'revisions-v1-v2-v3',
  'seed-review-quotes-diff', 'two-series', 'versionless-under-v2-cover',
];

function loadCase(name: string): MailMessage[] {
  return parseMbox(readFileSync(join(GOLDEN, `${name}.mbox`), 'latin1'));
}

/** Every revision listRevisions calls complete assembles, alone, from its messages, into the same series. */
function assertAgrees(pile: readonly MailMessage[], summaries: readonly RevisionSummary[]): void {
  const byId = new Map(pile.map((m) => [m.messageId, m]));
  for (const r of summaries) {
    if (!r.complete) continue;
    assert.ok(r.missing.length === 0 && r.present.length === r.total, `${r.title}: complete with missing patches`);
    const subset = r.messageIds.map((id) => byId.get(id));
    assert.ok(subset.every((m) => m !== undefined), `${r.title} v${r.version}: a messageId not in the pile`);
    let s;
    try {
      s = assembleSeries(subset, { version: r.version });
    } catch (e) {
      if (isPatchbayError(e) && e.code !== 'SERIES_INCOMPLETE' && e.code !== 'SERIES_NO_PATCHES' && r.problem !== null) continue; // a refused patch, said in problem
      throw new Error(`v${r.version} "${r.title}" is complete in listRevisions, but alone: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    assert.equal(s.version, r.version);
    assert.equal(s.identity, r.identity, `${r.title}: identity`);
    assert.equal(s.rootMessageId, r.rootMessageId, `${r.title}: root`);
    assert.equal(s.total, r.total);
    assert.equal(s.title, r.title);
    assert.equal(s.isResend, r.isResend);
  }
}

for (const name of CASES) {
  test(`listRevisions agrees with assembleSeries, whatever the order: ${name}`, () => {
    const pile = loadCase(name);
    const summaries = listRevisions(pile);
    assertAgrees(pile, summaries);
    assert.deepEqual(listRevisions([...pile].reverse()), summaries, 'reversed pile');
  });
}

test('listRevisions: the newest revision of a series, as assembleSeries picks it', () => {
  const pile = loadCase('revisions-v1-v2-v3');
  const summaries = listRevisions(pile);
  assert.deepEqual(summaries.map((r) => [r.version, r.complete, r.identity]), [
    [1, true, 'change-id:20251201-kbuf-pin-5e2d1a'],
    [2, true, 'change-id:20251201-kbuf-pin-5e2d1a'],
    [3, true, 'change-id:20251201-kbuf-pin-5e2d1a'],
  ]);
  const s = assembleSeries(pile);
  assert.equal(s.version, 3);
  assert.equal(s.identity, summaries[2]?.identity);
  // v2 has no cover letter: rooted at its patch 1, named after it, same identity (change-id).
  const v2 = assembleSeries(pile, { version: 2 });
  assert.equal(v2.cover, null);
  assert.equal(v2.rootMessageId, '20251208090000.2-1-joan.kestrel@example.com');
  assert.equal(v2.identity, s.identity);
  // v2's 1/2 makes the change v1's 1/2 made: Cal's review of that carries over (b4's trailer_map).
  assert.deepEqual(v2.patches.map((p) => p.trailers.map((t) => `${t.name}: ${t.value}`)), [
    ['Signed-off-by: Joan Kestrel <joan.kestrel@example.com>', 'Reviewed-by: Cal Sander <cal.sander@example.net>'],
    ['Signed-off-by: Joan Kestrel <joan.kestrel@example.com>', 'Reviewed-by: Gabriel Krisp <gabriel.krisp@example.org>'],
  ]);
});

test('listRevisions: two unrelated series and a standalone patch stay apart; a half-arrived one is incomplete', () => {
  const summaries = listRevisions(loadCase('two-series'));
  assert.deepEqual(
    summaries.map((r) => [r.author.email, r.title, r.present, r.missing, r.complete]),
    [
      ['joan.kestrel@example.com', 'fuse: fix a typo in a comment', [1], [], true],
      ['joan.kestrel@example.com', 'io_uring/kbuf: tidy the buffer ring flags', [1, 2], [], true],
      ['pbergov@example.com', 'net: tls: count the records it drops', [2], [1], false],
    ],
  );
  assert.equal(summaries[2]?.problem, 'missing patch 1/2');
  assert.deepEqual(summaries[2].messageIds, ['20260210103000.700-2-pbergov@example.com', 'two-series-r2@example.net']);
});

test('listRevisions: a cover letter and some patches so far', () => {
  const [r] = listRevisions(loadCase('arriving'));
  assert.ok(r);
  assert.deepEqual([r.version, r.total, r.present, r.missing, r.complete, r.treeTags, r.changeId], [4, 4, [1, 3], [2, 4], false, ['io_uring-7.2'], '20260201-four-steps-77aa']);
  assert.equal(r.rootMessageId, '20260302100000.44-0-joan.kestrel@example.com');
  // Only the cover letter: a revision with no patch yet.
  const [cover] = listRevisions(loadCase('arriving').slice(0, 1));
  assert.deepEqual([cover?.present, cover?.missing, cover?.complete, cover?.problem], [[], [1, 2, 3, 4], false, 'no patches yet: the cover letter says 4']);
});

test('listRevisions: a discussion without patches lists nothing; nothing at all lists nothing', () => {
  assert.deepEqual(listRevisions(loadCase('discussion')), []);
  assert.deepEqual(listRevisions([]), []);
});

test('listRevisions: a partial reroll is complete, its messages include the older patches', () => {
  const pile = loadCase('partial-reroll');
  const v2 = listRevisions(pile).find((r) => r.version === 2);
  assert.ok(v2);
  assert.equal(v2.complete, true);
  assert.deepEqual(v2.present, [1, 2, 3, 4, 5]);
  assert.ok(v2.messageIds.includes('20260202090000.400-1-bschubel@example.com'));
  assert.ok(v2.messageIds.includes('20260203100000.401-3-bschubel@example.com'));
  assert.equal(v2.newestDate?.toISOString(), '2026-02-03T11:40:00.000Z');
  const notThreaded = listRevisions(loadCase('partial-reroll-not-threaded')).find((r) => r.version === 2);
  assert.deepEqual([notThreaded?.complete, notThreaded?.missing], [false, [1, 2, 4, 5]]);
});

test('listRevisions: RESEND, versioned and not, is the same revision, marked', () => {
  const [resend] = listRevisions(loadCase('resend'));
  assert.deepEqual([resend?.version, resend?.isResend, resend?.complete, resend?.messageIds.length], [2, true, true, 7]);
  const [unversioned] = listRevisions(loadCase('resend-unversioned'));
  assert.deepEqual([unversioned?.version, unversioned?.isResend, unversioned?.rootMessageId], [1, true, '20260215071500.1-ada.tester@example.org']);
});

test('listRevisions never throws: a revision past the limits is returned incomplete, with the reason', () => {
  const diff = 'x\n---\ndiff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-a\n+b\n';
  const one = (subject: string, id: string): MailMessage => parseMessage(`From: A <a@example.com>\nSubject: ${subject}\nMessage-ID: <${id}>\n\n${diff}`);
  const [huge] = listRevisions([one('[PATCH 1/5000] x', 'p1@x')]);
  assert.equal(huge?.complete, false);
  assert.match(huge.problem ?? '', /has 5000 patches; patchbay takes at most 1000/);
  const n = SERIES_MAX_PATCHES + 1;
  const many = Array.from({ length: n }, (_, i) => one(`[PATCH ${i + 1}/${n}] x`, `p${i + 1}@x`));
  const [big] = listRevisions(many);
  assert.deepEqual([big?.complete, big?.present.length], [false, n]);
  assert.match(big?.problem ?? '', /comes in 1001 patch mails/);
  // Past SERIES_MAX_MESSAGES, the rest is not read, and every revision says so.
  const flood = [one('[PATCH] x', 'p1@x'), ...Array.from({ length: SERIES_MAX_MESSAGES }, (_, i) => parseMessage(`Subject: Re: x\nMessage-ID: <r${i}@x>\nIn-Reply-To: <p1@x>\n\nhm\n`))];
  const [cut] = listRevisions(flood);
  assert.equal(cut?.complete, true);
  assert.equal(cut.problem, `the pile holds ${SERIES_MAX_MESSAGES + 1} messages; only the first ${SERIES_MAX_MESSAGES} were read`);
  // A refused patch: complete (nothing missing), and the refusal said.
  const [binary] = listRevisions([parseMessage('From: A <a@example.com>\nSubject: [PATCH] x\nMessage-ID: <b@x>\n\ndiff --git a/i.png b/i.png\nGIT binary patch\nliteral 1\nA\n')]);
  assert.deepEqual([binary?.complete, binary?.problem], [true, 'Patch 1/1 "[PATCH] x" holds a binary patch for i.png; binary patches are not applied']);
});

// ---------------------------------------------------------------------------
// seriesIdentity

test('seriesIdentity: change-id first, else the author and the title, normalized', () => {
  const base = { cover: null, patches: [] };
  assert.equal(seriesIdentity({ ...base, changeId: '20251201-kbuf-pin-5e2d1a', title: 'whatever' }), 'change-id:20251201-kbuf-pin-5e2d1a');
  const author = parseMessage('From: Joan Kestrel <Joan.Kestrel@Example.COM>\nSubject: x\n\n');
  const a = seriesIdentity({ changeId: null, title: 'io_uring/kbuf:  Buffer\tRing  pinning ', cover: author, patches: [] });
  assert.equal(a, 'subject:joan.kestrel@example.com:io_uring/kbuf: buffer ring pinning');
  // No author known: the title alone.
  assert.equal(seriesIdentity({ ...base, changeId: null, title: 'X' }), 'subject::x');
});

test('seriesIdentity: v1, v2, v3 of a one-patch series without change-id share it; another series does not', () => {
  const diff = 'Signed-off-by: A <a@example.com>\n---\ndiff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-a\n+b\n';
  const at = (subject: string, from = 'Ann Author <ann@example.org>'): string =>
    assembleSeries([parseMessage(`From: ${from}\nSubject: ${subject}\nMessage-ID: <${subject.length}-${from.length}@x>\n\n${diff}`)]).identity;
  const v1 = at('[PATCH] fuse: fix the  teardown');
  assert.equal(at('[PATCH v2] fuse: fix the teardown'), v1);
  assert.equal(at('[PATCH RESEND v3 net-next] Fuse: Fix the teardown'), v1);
  assert.notEqual(at('[PATCH v2] fuse: fix the teardown', 'Other <other@example.org>'), v1);
  assert.notEqual(at('[PATCH v2] fuse: fix the teardown path'), v1);
});

// ---------------------------------------------------------------------------
// Generated piles: several series, revisions (full, partial rerolls, resends,
// sent in reply to the last one or not), replies; in any order.

interface RevisionPlan {
  cover: boolean;
  threading: 'shallow' | 'chain' | 'underPrevious' | 'none';
  /** Counters sent (a reroll: only these, each in reply to the older one). */
  present: boolean[];
  partial: boolean;
  resend: boolean;
  versionless: boolean;
}

interface SeriesPlan {
  author: number;
  title: number;
  changeId: boolean;
  /** Mails carry References (the thread's root, then the parent), not only In-Reply-To. */
  references: boolean;
  total: number;
  revisions: RevisionPlan[];
}

interface PilePlan {
  series: SeriesPlan[];
  replies: Array<[number, boolean]>;
  order: number[];
}

const revisionPlan: fc.Arbitrary<RevisionPlan> = fc.record({
  cover: fc.boolean(),
  threading: fc.constantFrom('shallow', 'chain', 'underPrevious', 'none'),
  present: fc.array(fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }), { minLength: 4, maxLength: 4 }),
  partial: fc.boolean(),
  resend: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  versionless: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});
const seriesPlan: fc.Arbitrary<SeriesPlan> = fc.record({
  author: fc.integer({ min: 0, max: 2 }),
  title: fc.integer({ min: 0, max: 2 }),
  changeId: fc.boolean(),
  references: fc.boolean(),
  total: fc.integer({ min: 1, max: 4 }),
  revisions: fc.array(revisionPlan, { minLength: 1, maxLength: 3 }),
});
const pilePlan: fc.Arbitrary<PilePlan> = fc.record({
  series: fc.array(seriesPlan, { minLength: 1, maxLength: 3 }),
  replies: fc.array(fc.tuple(fc.nat(), fc.boolean()), { maxLength: 6 }),
  order: fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
});

const AUTHORS = ['Joan Kestrel <joan@example.com>', 'Pavel Bergov <pbergov@example.com>', 'Ada Tester <ada@example.org>'];
const TITLES = ['io_uring/kbuf: pinning', 'fuse: teardown fixes', 'net: tls counters'];

function buildPile(plan: PilePlan): MailMessage[] {
  const out: MailMessage[] = [];
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const mail = (headers: Record<string, string | null>, body: string): MailMessage => {
    clock += 60_000;
    const lines = [`Date: ${new Date(clock).toUTCString()}`];
    for (const [k, v] of Object.entries(headers)) if (v !== null) lines.push(`${k}: ${v}`);
    const m = parseMessage(`${lines.join('\n')}\n\n${body}`);
    out.push(m);
    return m;
  };
  /** The thread each message (sent or not) is in, by its root's Message-ID. */
  const rootOf = new Map<string, string>();
  const threaded = (id: string, parent: string | null, references: boolean): Record<string, string | null> => {
    if (parent === null) return { 'In-Reply-To': null };
    const root = rootOf.get(parent) ?? parent;
    rootOf.set(id, root);
    return { 'In-Reply-To': `<${parent}>`, References: references ? (root === parent ? `<${root}>` : `<${root}> <${parent}>`) : null };
  };
  plan.series.forEach((s, si) => {
    // Series not threaded at all cannot be told apart when one author sends
    // two of the same version and length: such a series has an author of its own.
    const from = s.revisions.some((r) => r.threading === 'none') ? `Solo ${si} <solo${si}@example.org>` : (AUTHORS[s.author] ?? '');
    const title = `${TITLES[s.title] ?? ''} (${si % 2})`;
    // Messages are named for what they are, sent or not: a patch lost from
    // the pile is still what the others reply to.
    let previous: { tag: string; cover: boolean } | null = null;
    s.revisions.forEach((r, ri) => {
      const v = ri + 1;
      const copies = r.resend ? 2 : 1;
      let tag = '';
      for (let copy = 0; copy < copies; copy++) {
        tag = `s${si}v${v}c${copy}`;
        const subject = (counter: string | null, named: boolean, text: string): string =>
          `[${['PATCH', copy === 1 ? 'RESEND' : null, named && v > 1 ? `v${v}` : null, counter].filter((w) => w !== null).join(' ')}] ${text}`;
        const partial = r.partial && previous !== null;
        const threadRoot = r.threading === 'underPrevious' && previous !== null ? `${previous.tag}-${previous.cover ? 0 : 1}@x` : null;
        const cover = r.cover && !partial;
        const coverId = `${tag}-0@x`;
        if (cover) {
          mail({ From: from, Subject: subject(`0/${s.total}`, true, title), 'Message-ID': `<${coverId}>`, ...threaded(coverId, threadRoot, s.references) },
            `Why.\n\n a | 1 +\n 1 file changed, 1 insertion(+)\n${s.changeId ? `\nchange-id: ${si}-series-id\n` : ''}`);
        }
        for (let k = 1; k <= s.total; k++) {
          if (r.present[k - 1] === false) continue;
          let parent: string | null;
          if (partial) parent = `${previous?.tag ?? ''}-${k}@x`;
          else if (r.threading === 'none') parent = null;
          else if (r.threading === 'chain' && k > 1) parent = `${tag}-${k - 1}@x`;
          else if (cover) parent = coverId;
          else parent = k === 1 ? threadRoot : `${tag}-1@x`;
          const counter = s.total === 1 && !r.cover ? null : `${k}/${s.total}`;
          const named = !(r.versionless && cover);
          const cid = s.changeId && !cover && k === 1 ? `\nchange-id: ${si}-series-id\n` : '';
          mail({ From: from, Subject: subject(counter, named, k === 1 ? title : `${title}, part ${k}`), 'Message-ID': `<${tag}-${k}@x>`, ...threaded(`${tag}-${k}@x`, parent, s.references) },
            `Change ${k}.\n\nSigned-off-by: ${from}\n---${cid}\ndiff --git a/f${k} b/f${k}\n--- a/f${k}\n+++ b/f${k}\n@@ -1 +1 @@\n-a\n+${tag}\n`);
        }
      }
      previous = { tag, cover: r.cover && !(r.partial && previous !== null) };
    });
  });
  const ids = out.map((m) => m.messageId);
  plan.replies.forEach(([pick, tagged], i) => {
    const target = ids[pick % Math.max(ids.length, 1)];
    if (target === undefined) return;
    mail({ From: 'Cal Sander <cal@example.net>', Subject: 'Re: x', 'Message-ID': `<reply${i}@x>`, 'In-Reply-To': `<${target}>` }, tagged ? 'Reviewed-by: Cal Sander <cal@example.net>\n' : 'hm\n');
  });
  // Any order: sorted by the generated keys.
  const keyed = out.map((m, i) => ({ m, key: plan.order[i % plan.order.length] ?? 0, i }));
  keyed.sort((a, b) => a.key - b.key || a.i - b.i);
  return keyed.map((x) => x.m);
}

test('generated piles: listRevisions never throws, what it calls complete assembles alone, in any order', () => {
  fc.assert(
    fc.property(pilePlan, (plan) => {
      const pile = buildPile(plan);
      const summaries = listRevisions(pile);
      assertAgrees(pile, summaries);
      assert.deepEqual(listRevisions([...pile].reverse()), summaries, 'reversed pile');
      try {
        assembleSeries(pile);
      } catch (e) {
        if (!isPatchbayError(e)) throw e;
      }
    }),
    { numRuns: 1500, seed: 20261203 },
  );
});

test('listRevisions on hostile input: bad messages, loops, self-replies', () => {
  const msgs = [
    parseMessage('Subject: [PATCH 2/2] x\nMessage-ID: <a@x>\nIn-Reply-To: <b@x>\n\ndiff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-a\n+b\n'),
    parseMessage('Subject: [PATCH v2 2/2] x\nMessage-ID: <b@x>\nIn-Reply-To: <a@x>\n\ndiff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-a\n+b\n'),
    parseMessage('Subject: [PATCH v3 2/2] x\nMessage-ID: <c@x>\nIn-Reply-To: <c@x>\n\ndiff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-a\n+b\n'),
    parseMessage('Subject: [PATCH 0/0] x\nMessage-ID: <d@x>\n\n'),
    parseMessage('Subject: \nMessage-ID: <e@x>\n\n'),
  ];
  const summaries = listRevisions(msgs);
  assert.ok(summaries.every((s) => !s.complete));
  assert.equal(errorCodeOf(() => assembleSeries(msgs)), 'SERIES_INCOMPLETE');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PatchbayError } from '../errors.ts';
import { MESSAGE_ID_MAX, parseMailDate, parseMbox, parseMessage, splitMbox, toMboxrd } from '../mbox.ts';
import { errorCodeOf } from './error-code.ts';
import { GOLDEN_CASES, goldenInputs } from './golden-cases.ts';

const GOLDEN = join(import.meta.dirname, 'golden', 'mbox');
const SEP = 'From mboxrd@z Thu Jan  1 00:00:00 1970\n';

/** A string of bytes as the binary string the parser takes. */
function bin(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

const code = errorCodeOf;

const simple = (id: string, subject: string, body = 'hello\n'): string =>
  `From: A U Thor <author@example.com>\nSubject: ${subject}\nMessage-ID: <${id}>\nDate: Mon, 22 Dec 2025 16:35:01 -0800\n\n${body}`;

// ---------------------------------------------------------------------------
// splitMbox

test('splitMbox: a bare message without a From line is one message', () => {
  const msgs = splitMbox(simple('a@x', '[PATCH] a'));
  assert.equal(msgs.length, 1);
  assert.equal(msgs[0], simple('a@x', '[PATCH] a'));
});

test('splitMbox: mboxrd with several messages; the separating blank line is not content', () => {
  const data = `${SEP}${simple('a@x', 'a')}\n${SEP}${simple('b@x', 'b', 'two\n\n')}\n`;
  const msgs = splitMbox(data);
  assert.deepEqual(msgs, [simple('a@x', 'a'), simple('b@x', 'b', 'two\n\n')]);
  assert.equal(toMboxrd(parseMbox(data)), data);
});

test('splitMbox: git format-patch output and other dated From lines separate messages', () => {
  const data =
    `From 4c1d2e3f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d Mon Sep 17 00:00:00 2001\n${simple('a@x', 'a')}\n` +
    `From MAILER-DAEMON Fri Jan  9 01:04:00 2026\n${simple('b@x', 'b')}`;
  assert.equal(splitMbox(data).length, 2);
});

test('splitMbox: an unquoted "From " body line without a date does not split (mboxo)', () => {
  const data = `${SEP}${simple('a@x', 'a', 'text\n\nFrom here on, the ring is pinned.\n')}`;
  const msgs = splitMbox(data);
  assert.equal(msgs.length, 1);
  assert.match(msgs[0] ?? '', /\nFrom here on, the ring is pinned\.\n$/);
});

test('splitMbox: mboxrd unquoting takes one ">" off />+From / lines only', () => {
  const body = '>From a\n>>From b\n> From c\n>Fromage\nFrom: d\n';
  const msgs = splitMbox(`${SEP}${simple('a@x', 'a', body)}`);
  assert.match(msgs[0] ?? '', /\n\nFrom a\n>From b\n> From c\n>Fromage\nFrom: d\n$/);
});

test('splitMbox: a bare message is not unquoted (it is not an mbox)', () => {
  const msgs = splitMbox(simple('a@x', 'a', '>From a\n'));
  assert.match(msgs[0] ?? '', /\n>From a\n$/);
});

test('splitMbox: CRLF, a byte-order mark and leading blank lines', () => {
  const data = `\xEF\xBB\xBF\n\n${SEP}${simple('a@x', 'a', 'x\ny\n')}\n${SEP}${simple('b@x', 'b')}`.replace(/\n/g, '\r\n');
  const msgs = splitMbox(data);
  assert.deepEqual(msgs, [simple('a@x', 'a', 'x\ny\n'), simple('b@x', 'b')]);
});

test('splitMbox: a message with LF endings keeps a CR that is content', () => {
  const msgs = splitMbox(`${SEP}${simple('a@x', 'a', '+dos line\r\n+unix line\n')}`);
  assert.match(msgs[0] ?? '', /\+dos line\r\n\+unix line\n$/);
});

test('splitMbox: a final message without a trailing newline gets one', () => {
  assert.deepEqual(splitMbox(`${SEP}${simple('a@x', 'a', 'no newline')}`), [simple('a@x', 'a', 'no newline\n')]);
});

test('splitMbox: inputs that are not mail are MBOX_MALFORMED, with the reason', () => {
  assert.equal(code(() => splitMbox('')), 'MBOX_MALFORMED');
  assert.equal(code(() => splitMbox('\n\n  \n')), 'MBOX_MALFORMED');
  assert.equal(code(() => splitMbox('just some words\nand more\n')), 'MBOX_MALFORMED');
  assert.equal(code(() => splitMbox(`${SEP}\n\n`)), 'MBOX_MALFORMED');
  assert.equal(code(() => splitMbox(`${SEP}no headers here\n`)), 'MBOX_MALFORMED');
  try {
    splitMbox('diff --git a/x b/x\n--- a/x\n+++ b/x\n');
    assert.fail('expected an error');
  } catch (e) {
    assert.ok(e instanceof PatchbayError);
    assert.match(e.message, /bare diff/);
  }
});

test('splitMbox: a "From " first line without a date but followed by headers starts an mbox', () => {
  const msgs = splitMbox(`From someone@example.com\n${simple('a@x', 'a')}`);
  assert.deepEqual(msgs, [simple('a@x', 'a')]);
});

// ---------------------------------------------------------------------------
// toMboxrd

test('toMboxrd: quotes /^>*From / lines, separates with blank lines, re-reads identically', () => {
  const raw = simple('a@x', 'a', 'From x\n>From y\n>>From z\nFrom: header-like\n FromX\n');
  const out = toMboxrd([parseMessage(raw), parseMessage(simple('b@x', 'b', 'end'))]);
  assert.equal(
    out,
    `${SEP}${simple('a@x', 'a', '>From x\n>>From y\n>>>From z\nFrom: header-like\n FromX\n')}\n${SEP}${simple('b@x', 'b', 'end')}\n\n`,
  );
  const back = parseMbox(out);
  assert.equal(back[0]?.raw, raw);
  assert.equal(back[1]?.raw, simple('b@x', 'b', 'end\n'));
});

test('toMboxrd: a "From " after a lone CR is not a line start', () => {
  const raw = simple('a@x', 'a', 'x\rFrom y\n');
  assert.equal(toMboxrd([parseMessage(raw)]), `${SEP}${raw}\n`);
});

test('binary safety: bytes that are not UTF-8 survive a round trip unchanged', () => {
  const body = 'Signed-off-by: J\xF6rg <j@example.de>\n---\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-\xFF\xFE\x80\n+\x00\x01\xC3\n';
  const raw = simple('a@x', '[PATCH] latin-1 bytes', body);
  const [m] = parseMbox(`${SEP}${raw}`);
  assert.ok(m !== undefined);
  assert.equal(m.raw, raw);
  assert.equal(Buffer.from(toMboxrd([m]), 'latin1').equals(Buffer.from(`${SEP}${raw}\n`, 'latin1')), true);
  // Not valid UTF-8 and no charset: the text is read as Latin-1.
  assert.match(m.body, /J\u00f6rg/);
});

// ---------------------------------------------------------------------------
// parseMessage

test('parseMessage: headers unfolded, decoded, in order; header() is case-insensitive', () => {
  const raw =
    'Received: from a\n\tby b\nFrom: "Sander, Cal" <cal@example.net>\nTo: x@example.org,\n y@example.org\n' +
    'Subject: [PATCH] a long\n  folded   subject\nmessage-id: <m1@example.net>\n' +
    'References: <r1@x>\n <r2@x> <m1@example.net>\nIn-Reply-To: <r3@x> (comment)\n\nbody\n';
  const m = parseMessage(raw);
  assert.deepEqual(
    m.headers.map(([n]) => n),
    ['Received', 'From', 'To', 'Subject', 'message-id', 'References', 'In-Reply-To'],
  );
  assert.equal(m.header('received'), 'from a\tby b');
  assert.equal(m.header('TO'), 'x@example.org, y@example.org');
  assert.equal(m.header('X-Nope'), undefined);
  assert.equal(m.subject, '[PATCH] a long folded subject');
  assert.equal(m.messageId, 'm1@example.net');
  assert.equal(m.inReplyTo, 'r3@x');
  assert.deepEqual(m.references, ['r1@x', 'r2@x', 'r3@x']);
  assert.deepEqual(m.from, { name: 'Sander, Cal', email: 'cal@example.net' });
  assert.equal(m.body, 'body\n');
  assert.equal(m.date, null);
});

test('parseMessage: a missing Message-ID is synthesized from the raw bytes, stably', () => {
  const raw = 'From: a@example.com\nSubject: [PATCH] x\n\nbody\n';
  const a = parseMessage(raw);
  assert.match(a.messageId, /^patchbay-[0-9a-f]{16}@local$/);
  assert.equal(parseMessage(raw).messageId, a.messageId);
  assert.notEqual(parseMessage(`${raw}more\n`).messageId, a.messageId);
  assert.deepEqual(a.from, { name: '', email: 'a@example.com' });
});

test('parseMessage: a Message-ID without angle brackets', () => {
  assert.equal(parseMessage('Subject: x\nMessage-Id: bare@example.com\n\n').messageId, 'bare@example.com');
});

test('parseMessage: MBOX_MALFORMED without a header block or a Subject', () => {
  assert.equal(code(() => parseMessage('hello world\n')), 'MBOX_MALFORMED');
  assert.equal(code(() => parseMessage('From: a@example.com\n\nbody\n')), 'MBOX_MALFORMED');
  assert.equal(code(() => parseMessage('Subject: x\nthis is not a header\n\nbody\n')), 'MBOX_MALFORMED');
  assert.equal(code(() => parseMbox(`${SEP}From: a@example.com\n\nno subject\n`)), 'MBOX_MALFORMED');
});

test('parseMessage: a message with headers only has an empty body', () => {
  const m = parseMessage('Subject: x\n');
  assert.equal(m.body, '');
  assert.equal(m.subject, 'x');
});

test('From: forms', () => {
  const from = (v: string): { name: string; email: string } => parseMessage(`From: ${v}\nSubject: x\n\n`).from;
  assert.deepEqual(from('Joan Kestrel <joan@example.com>'), { name: 'Joan Kestrel', email: 'joan@example.com' });
  assert.deepEqual(from('"Kestrel, Joan (IO)" <joan@example.com>'), { name: 'Kestrel, Joan (IO)', email: 'joan@example.com' });
  assert.deepEqual(from('joan@example.com (Joan Kestrel)'), { name: 'Joan Kestrel', email: 'joan@example.com' });
  assert.deepEqual(from('<joan@example.com>'), { name: '', email: 'joan@example.com' });
  assert.deepEqual(from('=?UTF-8?q?J=C3=B6rg_R=C3=B6del?= <j@example.de>'), { name: 'J\u00f6rg R\u00f6del', email: 'j@example.de' });
  assert.deepEqual(from('"=?UTF-8?B?5p2O5piO?=" <li@example.cn>'), { name: '\u674e\u660e', email: 'li@example.cn' });
  // Raw UTF-8 in a header (common, though not RFC 5322).
  assert.deepEqual(from(bin('Jörg Rödel <j@example.de>')), { name: 'J\u00f6rg R\u00f6del', email: 'j@example.de' });
});

test('RFC 2047: Q and B words, charsets, adjacent words, words split inside a character', () => {
  const subj = (v: string): string => parseMessage(`Subject: ${v}\n\n`).subject;
  assert.equal(subj('=?UTF-8?q?J=C3=B6rg?='), 'J\u00f6rg');
  assert.equal(subj('=?utf-8?Q?a_b?= =?utf-8?Q?_c?='), 'a b c');
  assert.equal(subj('[PATCH] =?UTF-8?q?caf=C3=A9?= and =?UTF-8?q?th=C3=A9?='), '[PATCH] caf\u00e9 and th\u00e9');
  assert.equal(subj('=?iso-8859-1?q?Fran=E7ois?='), 'Fran\u00e7ois');
  assert.equal(subj('=?ISO-8859-1?B?RnJhbudvaXM=?='), 'Fran\u00e7ois');
  // Folded between two words: the folding whitespace goes too.
  assert.equal(subj('=?UTF-8?B?Sg==?=\n =?UTF-8?B?w7Zy?='), 'J\u00f6r');
  // One character's bytes (c3 b6) split over two B words.
  assert.equal(subj('=?UTF-8?B?SsM=?= =?UTF-8?B?tnJn?='), 'J\u00f6rg');
  assert.equal(subj('=?UTF-8*en?q?lang?='), 'lang');
  assert.equal(subj('=?x-unknown?q?plain?='), 'plain');
  assert.equal(subj('not =?encoded'), 'not =?encoded');
  assert.equal(subj('=?windows-1252?q?=93quoted=94?='), '\u201cquoted\u201d');
});

test('dates', () => {
  const iso = (v: string | undefined): string | null => parseMailDate(v)?.toISOString() ?? null;
  assert.equal(iso('Thu, 8 Jan 2026 11:18:17 -0800'), '2026-01-08T19:18:17.000Z');
  assert.equal(iso('Thu, 8 Jan 2026 11:18:17 -0800 (PST)'), '2026-01-08T19:18:17.000Z');
  assert.equal(iso('8 Jan 2026 11:18 +0530'), '2026-01-08T05:48:00.000Z');
  assert.equal(iso('Mon, 22 Dec 25 16:35:01 GMT'), '2025-12-22T16:35:01.000Z');
  assert.equal(iso('Mon, 22 Dec 2025 16:35:01 EST'), '2025-12-22T21:35:01.000Z');
  assert.equal(iso('Mon, 22 Dec 2025 16:35:01 -9900'), '2025-12-22T16:35:01.000Z');
  assert.equal(iso('2025-12-22T16:35:01Z'), '2025-12-22T16:35:01.000Z');
  assert.equal(iso('yesterday'), null);
  assert.equal(iso(undefined), null);
});

// ---------------------------------------------------------------------------
// Bodies

test('body: quoted-printable with soft line breaks, decoded as UTF-8', () => {
  const m = parseMessage(
    'Subject: x\nContent-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: Quoted-Printable\n\n' +
      'ret =3D 0; caf=C3=A9 a long li=\nne=20\n=09tab\n',
  );
  assert.equal(m.body, 'ret = 0; caf\u00e9 a long line \n\ttab\n');
});

test('body: base64 and charsets', () => {
  const b64 = Buffer.from('Acked-by: \u674e\u660e <li@example.cn>\r\n', 'utf8').toString('base64');
  const m = parseMessage(`Subject: x\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n${b64}\n`);
  assert.equal(m.body, 'Acked-by: \u674e\u660e <li@example.cn>\n');
  const latin = parseMessage('Subject: x\nContent-Type: text/plain; charset=iso-8859-1\n\nFran\xE7ois\n');
  assert.equal(latin.body, 'Fran\u00e7ois\n');
  const utf8 = parseMessage(bin('Subject: x\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\nJörg\n'));
  assert.equal(utf8.body, 'J\u00f6rg\n');
});

test('body: multipart takes the first text part, and a later text part holding the diff after it', () => {
  const mp = (parts: string): string =>
    `Subject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="BND"\n\npreamble\n${parts}--BND--\nepilogue\n`;
  const text = '--BND\nContent-Type: text/plain; charset=us-ascii\n\nfirst part\n';
  const html = '--BND\nContent-Type: text/html\n\n<p>html</p>\n';
  const other = '--BND\nContent-Type: text/plain\n\nsecond part\n';
  // Each line of a part ends in LF, its last one too (git mailinfo and postal-mime read it so).
  assert.equal(parseMessage(mp(html + text + other)).body, 'first part\n');
  const patch = Buffer.from('diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n').toString('base64');
  const attach = `--BND\nContent-Type: text/x-patch; name="0001.patch"\nContent-Transfer-Encoding: base64\n\n${patch}\n`;
  // The message, then the attachment: what git mailinfo reads as message and patch.
  assert.equal(parseMessage(mp(text + attach)).body, 'first part\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n');
  // A first part with the diff is the body alone.
  const inline = '--BND\nContent-Type: text/plain\n\ndiff --git a/g b/g\n';
  assert.equal(parseMessage(mp(inline + attach)).body, 'diff --git a/g b/g\n');
  const nested =
    '--BND\nContent-Type: multipart/alternative; boundary=INNER\n\n--INNER\nContent-Type: text/plain\n\ninner text\n--INNER\nContent-Type: text/html\n\n<b>x</b>\n--INNER--\n';
  assert.equal(parseMessage(mp(nested + other)).body, 'inner text\n');
  assert.equal(parseMessage(mp(html)).body, '');
  // raw stays as it came
  assert.equal(parseMessage(mp(text)).raw, mp(text));
});

test('body: a non-text single part has no body text', () => {
  assert.equal(parseMessage('Subject: x\nContent-Type: application/octet-stream\n\n\x00\x01\n').body, '');
});

// ---------------------------------------------------------------------------
// Golden mbox files (exactly the cases listed in golden-cases.ts): every
// one that parses re-reads byte-identically; every malformed-* one is
// refused as MBOX_MALFORMED.

for (const file of goldenInputs(GOLDEN, '.mbox', GOLDEN_CASES.mbox)) {
  const data = readFileSync(join(GOLDEN, file), 'latin1');
  if (file.startsWith('malformed-')) {
    test(`malformed: ${file}`, () => {
      assert.equal(code(() => parseMbox(data)), 'MBOX_MALFORMED');
    });
    continue;
  }
  test(`round trip: ${file}`, () => {
    const messages = parseMbox(data);
    const again = parseMbox(toMboxrd(messages));
    assert.deepEqual(again.map((m) => m.raw), messages.map((m) => m.raw));
    assert.deepEqual(again.map((m) => m.body), messages.map((m) => m.body));
    // An mboxrd file with LF endings as lore serves it comes back byte for byte.
    if (data.startsWith(SEP) && !data.includes('\r')) assert.equal(toMboxrd(messages), data);
  });
}

test('golden mboxrd-from-quoting: the quoted lines come out unquoted once, and back', () => {
  const data = readFileSync(join(GOLDEN, 'mboxrd-from-quoting.mbox'), 'latin1');
  const [patch, reply] = parseMbox(data);
  assert.ok(patch !== undefined && reply !== undefined);
  assert.match(patch.body, /\nFrom the point of view of the kernel, a ring is owned by userspace\.\n/);
  assert.match(patch.body, /\n>From userspace, the ring is just memory\.\n/);
  assert.match(patch.body, /\n>>From nowhere, three levels\.\n/);
  assert.match(patch.body, /\n>From-with-a-dash is not a From line/);
  assert.match(patch.body, /\n- \* From the point of view/);
  assert.match(reply.body, /^> >From the point of view/);
  assert.match(reply.body, /\n>From a quoted quote\.\n/);
  assert.equal(Buffer.from(toMboxrd([patch, reply]), 'latin1').equals(readFileSync(join(GOLDEN, 'mboxrd-from-quoting.mbox'))), true);
});

test('golden crlf: CRLF input reads like LF input', () => {
  const data = readFileSync(join(GOLDEN, 'crlf.mbox'), 'latin1');
  assert.ok(data.includes('\r\n'));
  const msgs = parseMbox(data);
  assert.equal(msgs.length, 2);
  for (const m of msgs) assert.ok(!m.raw.includes('\r'));
  assert.equal(toMboxrd(msgs), data.replace(/\r\n/g, '\n'));
  assert.equal(msgs[0]?.subject, '[PATCH fuse-next 1/2] fuse: add enable_uring to the module parameter documentation');
});

test('golden qp-body: the decoded body is the patch as written', () => {
  const [m] = parseMbox(readFileSync(join(GOLDEN, 'qp-body.mbox'), 'latin1'));
  assert.ok(m !== undefined);
  assert.match(m.raw, /ret =3D write/);
  assert.match(m.body, /\n\+\tret = write\(self->abort_fd, "1", 1\); \/\* any value aborts; the kernel ignores the written data \*\/\n/);
  assert.match(m.body, /Tested on a caf\u00e9's wifi/);
  assert.match(m.body, /\n-- \n2\.47\.3\n$/);
});

test('Message-IDs are read as public-inbox files them: spaces, quotes and parentheses kept, line breaks dropped, cut at 244', () => {
  const long = `${'y'.repeat(300)}@example.org`;
  const m = parseMessage([
    'From: A <a@example.org>',
    'Subject: [PATCH] odd ids',
    'Message-ID: <"quoted cover"@example.org>',
    'In-Reply-To: <a(b)OR m:c@example.org> (a comment)',
    'References: <first@example.org>',
    ` <${long}>`,
    '',
    'body',
    '',
  ].join('\n'));
  assert.equal(m.messageId, '"quoted cover"@example.org');
  assert.equal(m.inReplyTo, 'a(b)OR m:c@example.org');
  assert.deepEqual(m.references, ['first@example.org', long.slice(0, MESSAGE_ID_MAX), 'a(b)OR m:c@example.org']);
  assert.equal(MESSAGE_ID_MAX, 244);
});

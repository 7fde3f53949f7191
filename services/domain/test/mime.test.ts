/**
 * MIME decoding in mbox.ts: postal-mime's pieces driven synchronously.
 * Golden mails (test/golden/mbox, one per encoding as lore serves them):
 * subject, From and body as decoded, the body the same as postal-mime's own
 * (async) parse reads, and the raw message byte for byte what came in. Then
 * charsets, transfer encodings, format=flowed, multipart and attachments
 * case by case. What git reads in the same mails: services/intake/test/mailinfo.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import PostalMime from 'postal-mime';
import { MIME_MAX_DEPTH, parseMbox, parseMessage, toMboxrd } from '../mbox.ts';
import { diffFiles } from '../patch.ts';
import { errorCodeOf } from './error-code.ts';
import { withinTime } from './time-bound.ts';

const GOLDEN = join(import.meta.dirname, 'golden', 'mbox');

/** A string of bytes (hex) as the binary string the parser takes. */
function hex(h: string): string {
  return Buffer.from(h, 'hex').toString('latin1');
}

function b64(bytes: string): string {
  return Buffer.from(bytes, 'latin1').toString('base64');
}

/**
 * The body postal-mime's own PostalMime.parse() reads: its text, then (as
 * mbox.ts appends a patch attachment to the message) each text/x-* attachment.
 */
async function libraryBody(raw: string): Promise<string> {
  const email = await PostalMime.parse(Buffer.from(raw, 'latin1'));
  let body = email.text ?? '';
  for (const a of email.attachments) {
    if (!/^text\/x-(?:patch|diff)$/.test(a.mimeType) || typeof a.content === 'string') continue;
    const text = Buffer.from(a.content instanceof ArrayBuffer ? new Uint8Array(a.content) : a.content).toString('utf8');
    body += body === '' || body.endsWith('\n') ? text : `\n${text}`;
  }
  return body.replace(/\r\n/g, '\n');
}

// ---------------------------------------------------------------------------
// Golden mails

interface GoldenCase {
  subject: string;
  from: { name: string; email: string };
  /** Lines the body holds, in this order (each a whole line). */
  lines: string[];
  /** Lines it must not hold (what decoding took off). */
  notLines?: string[];
}

const CASES: Record<string, GoldenCase> = {
  'qp-body': {
    subject: '[PATCH] selftests/fuse: check the abort write in fusectl_test',
    from: { name: 'Ren\u00e9 Lavall\u00e9e', email: 'rene.lavallee@example.com' },
    lines: ['Signed-off-by: Ren\u00e9 Lavall\u00e9e <rene.lavallee@example.com>', '+\tret = write(self->abort_fd, "1", 1); /* any value aborts; the kernel ignores the written data */'],
  },
  'base64-body': {
    subject: '[PATCH] io_uring/kbuf: describe IOBL_PINNED in the io_kbuf_pin() comment',
    from: { name: 'Zo\u00eb Marchetti', email: 'zoe.marchetti@example.it' },
    // CRLF inside the base64 comes out as LF.
    lines: ['Reported-by: Luk\u00e1\u0161 Dvo\u0159\u00e1k <lukas.dvorak@example.cz>', 'Signed-off-by: Zo\u00eb Marchetti <zoe.marchetti@example.it>', '@@ -812,7 +812,6 @@ static int io_kbuf_pin(struct io_ring_ctx *ctx, struct io_buffer_list *bl)', '-\t * see io_pin_pages().', '-- ', '2.47.3'],
  },
  flowed: {
    subject: '[PATCH] fuse: take the queue lock when an io_uring request ends',
    from: { name: 'Ada Tester', email: 'ada.tester@example.org' },
    // Soft breaks joined (their space kept: no DelSp); space-stuffed lines (the diffstat, context) unstuffed; "-- " kept.
    lines: [
      'When a FUSE server aborts a connection while an io_uring request is in flight, the request is ended twice: once by the abort and once by the completion. Take the queue lock around the state change.',
      ' fs/fuse/dev_uring.c | 2 ++',
      ' {',
      ' \tstruct fuse_ring_queue *queue = ent->queue;',
      '+\tspin_lock(&queue->lock);',
      ' \tfuse_request_end(req);',
      '-- ',
    ],
    notLines: ['  {', 'flight, the request is ended twice: once by the abort and once by the '],
  },
  'flowed-delsp': {
    subject: '[PATCH] io_uring/kbuf: clear IOBL_PINNED after the region is freed',
    from: { name: 'Ada Tester', email: 'ada.tester@example.org' },
    // DelSp=yes: the space before each soft break goes ("fr" + "eed"; "the  " keeps the one it had).
    lines: [
      'io_kbuf_unpin() clears IOBL_PINNED before the region is freed, so a racing unregister can free it twice. Clear the flag after the region is gone.',
      ' \tio_free_region(ctx, &bl->region);',
      '+\tbl->flags &= ~IOBL_PINNED;',
    ],
  },
  'latin1-body': {
    subject: '[PATCH] fuse: d\u00e9crire le d\u00e9lai par d\u00e9faut',
    from: { name: 'Fran\u00e7ois P\u00e9rez', email: 'francois.perez@example.fr' },
    lines: ['Le d\u00e9lai par d\u00e9faut n\'\u00e9tait pas document\u00e9.', 'Signed-off-by: Fran\u00e7ois P\u00e9rez <francois.perez@example.fr>', '+  (Relu par Fran\u00e7ois P\u00e9rez : \u00ab d\u00e9faut \u00bb.)'],
  },
  'koi8r-body': {
    subject: '[PATCH] io_uring/kbuf: \u0438\u0441\u043f\u0440\u0430\u0432\u0438\u0442\u044c \u043a\u043e\u043c\u043c\u0435\u043d\u0442\u0430\u0440\u0438\u0439',
    from: { name: '\u0421\u0435\u0440\u0433\u0435\u0439 \u0418\u0432\u0430\u043d\u043e\u0432', email: 'sergey.ivanov@example.ru' },
    lines: [
      '\u0418\u0441\u043f\u0440\u0430\u0432\u0438\u0442\u044c \u043f\u0443\u043d\u043a\u0442\u0443\u0430\u0446\u0438\u044e \u0432 \u043a\u043e\u043c\u043c\u0435\u043d\u0442\u0430\u0440\u0438\u0438 \u043a io_kbuf_recycle_legacy().',
      'Signed-off-by: \u0421\u0435\u0440\u0433\u0435\u0439 \u0418\u0432\u0430\u043d\u043e\u0432 <sergey.ivanov@example.ru>',
      '+\t * We don\'t need to recycle for REQ_F_BUFFER_RING; we can just clear',
    ],
  },
  'sjis-body': {
    subject: '[PATCH] fuse: \u30b3\u30e1\u30f3\u30c8\u306e\u8aa4\u5b57\u3092\u4fee\u6b63',
    from: { name: '\u5c71\u7530 \u592a\u90ce', email: 'taro.yamada@example.jp' },
    // "表" is 0x95 0x5c in Shift_JIS: the second byte is "\" in ASCII.
    lines: ['fuse_dev_do_read() \u306e\u30b3\u30e1\u30f3\u30c8\u306e\u8aa4\u5b57\u3092\u4fee\u6b63\u3057\u307e\u3059\u3002\u8868\u793a\u306b\u306f\u5f71\u97ff\u3057\u307e\u305b\u3093\u3002', '+\t * If we were woken up by a signal, return -ERESTARTSYS.'],
  },
  'multipart-no-close': {
    subject: '[PATCH] io_uring/register: take no count for IORING_UNREGISTER_PBUF_RING',
    from: { name: 'Joan Kestrel', email: 'joan.kestrel@example.com' },
    // The part still open at the end of the mail is read.
    lines: ['Signed-off-by: Joan Kestrel <joan.kestrel@example.com>', '+\t\tif (!arg || nr_args)', '2.47.3'],
    notLines: ['This is a multi-part message in MIME format.', 'Content-Type: text/plain; charset="us-ascii"'],
  },
  'attachment-x-diff': {
    subject: '[PATCH] fuse: assert the queue lock in fuse_uring_flush_bg()',
    from: { name: 'Ada Tester', email: 'ada.tester@example.org' },
    // The message, then the text/x-diff attachment.
    lines: ['Signed-off-by: Ada Tester <ada.tester@example.org>', '', 'diff --git a/fs/fuse/dev_uring.c b/fs/fuse/dev_uring.c', '+\tlockdep_assert_held(&queue->lock);'],
    notLines: ['Content-Disposition: attachment; filename="flush-bg-lockdep.diff"'],
  },
  'multipart-attachment': {
    subject: '[PATCH] fuse: mention io_uring in the FUSE_IO_URING help text',
    from: { name: 'Ada Tester', email: 'ada.tester@example.org' },
    // A format=flowed message, then a base64 text/x-patch attachment holding a whole git format-patch mail.
    lines: ['Hi, the patch is attached; my mail client mangles inline patches.', 'Subject: [PATCH] fuse: mention io_uring in the FUSE_IO_URING help text', 'diff --git a/fs/fuse/Kconfig b/fs/fuse/Kconfig'],
  },
};

/** Whether `lines` occur in the body as whole lines, in order. */
function assertLinesInOrder(body: string, lines: readonly string[]): void {
  const all = body.split('\n');
  let at = 0;
  for (const line of lines) {
    const found = all.indexOf(line, at);
    assert.ok(found >= 0, `body lacks the line ${JSON.stringify(line)} (after line ${at})`);
    at = found + 1;
  }
}

for (const [name, c] of Object.entries(CASES)) {
  test(`golden ${name}: subject, From, body as decoded; raw byte for byte`, async () => {
    const file = join(GOLDEN, `${name}.mbox`);
    const data = readFileSync(file, 'latin1');
    const messages = parseMbox(data);
    assert.equal(messages.length, 1);
    const [m] = messages;
    assert.ok(m !== undefined);
    assert.equal(m.subject, c.subject);
    assert.deepEqual(m.from, c.from);
    assertLinesInOrder(m.body, c.lines);
    const all = m.body.split('\n');
    for (const line of c.notLines ?? []) assert.ok(!all.includes(line), `body still holds ${JSON.stringify(line)}`);
    // The body is the text postal-mime's own parse reads.
    assert.equal(m.body, await libraryBody(m.raw));
    // raw: the message as it came (no "From " line, no mbox blank line), and the mbox back byte for byte.
    assert.equal(m.raw, data.slice(data.indexOf('\n') + 1, -1));
    assert.ok(Buffer.from(toMboxrd(messages), 'latin1').equals(readFileSync(file)));
    assert.equal(diffFiles(m.body).length, 1);
  });
}

// ---------------------------------------------------------------------------
// Charsets

/** Charset, the bytes of a text in it (hex), the text. */
const CHARSETS: Array<[string, string, string]> = [
  ['iso-8859-1', '4672616ee76f697320abe9bb', 'Fran\u00e7ois \u00ab\u00e9\u00bb'],
  // 0x80-0x9f are windows-1252's characters, not C1 controls (Node 20's TextDecoder gets this wrong; mbox.ts puts it right).
  ['windows-1252', '9371756f746564942080352096206f6b', '\u201cquoted\u201d \u20ac5 \u2013 ok'],
  ['ISO-8859-1', '93', '\u201c'],
  ['iso-8859-2', '44766ff8e16b20a3f364bc', 'Dvo\u0159\u00e1k \u0141\u00f3d\u017a'],
  ['koi8-r', 'f0d2c9d7c5d4', '\u041f\u0440\u0438\u0432\u0435\u0442'],
  ['shift_jis', '93fa967b8cea955c', '\u65e5\u672c\u8a9e\u8868'],
  ['euc-jp', 'c6fccbdcb8ec', '\u65e5\u672c\u8a9e'],
  ['iso-2022-jp', '1b2442467c4b5c386c1b2842', '\u65e5\u672c\u8a9e'],
  ['gb2312', 'd6d0cec4b2b9b6a1', '\u4e2d\u6587\u8865\u4e01'],
  ['gbk', 'd6d0cec4', '\u4e2d\u6587'],
  ['big5', 'a4a4a4e5', '\u4e2d\u6587'],
  ['euc-kr', 'c7d1b1b9beee', '\ud55c\uad6d\uc5b4'],
  // Labels outside WHATWG's list, by postal-mime's aliases.
  ['cp932', '955c8ea6', '\u8868\u793a'],
  ['x-sjis', '955c8ea6', '\u8868\u793a'],
  ['ks_c_5601-1987', 'c7d1b1b9', '\ud55c\uad6d'],
  ['utf-8', 'c3b6e4b8ade69687', '\u00f6\u4e2d\u6587'],
];

test('charsets: 8bit, base64 and quoted-printable bodies, B and Q subjects, From names', () => {
  for (const [charset, bytesHex, text] of CHARSETS) {
    const bytes = hex(bytesHex);
    const qp = [...Buffer.from(bytes, 'latin1')].map((b) => `=${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
    const head = (cte: string): string =>
      `From: =?${charset}?Q?${qp}?= <a@example.org>\nSubject: [PATCH] =?${charset}?B?${b64(bytes)}?=\n` +
      `Content-Type: text/plain; charset="${charset}"\nContent-Transfer-Encoding: ${cte}\n\n`;
    for (const [cte, body] of [['8bit', `${bytes}\n`], ['base64', `${b64(`${bytes}\n`)}\n`], ['quoted-printable', `${qp}\n`]] as const) {
      const m = parseMessage(head(cte) + body);
      assert.equal(m.body, `${text}\n`, `${charset} ${cte} body`);
      assert.equal(m.subject, `[PATCH] ${text}`, `${charset} subject`);
      assert.equal(m.from.name, text, `${charset} From name`);
    }
  }
});

test('charsets: 8-bit text without a charset, or under ASCII, is UTF-8 when it is, else windows-1252', () => {
  const utf8 = Buffer.from('J\u00f6rg \u4e2d', 'utf8').toString('latin1');
  assert.equal(parseMessage(`Subject: x\n\n${utf8}\n`).body, 'J\u00f6rg \u4e2d\n');
  assert.equal(parseMessage(`Subject: x\nContent-Type: text/plain; charset=us-ascii\n\n${utf8}\n`).body, 'J\u00f6rg \u4e2d\n');
  assert.equal(parseMessage('Subject: x\n\nJ\xF6rg \x93q\x94\n').body, 'J\u00f6rg \u201cq\u201d\n');
  // Raw 8-bit headers, the same way.
  assert.equal(parseMessage(`Subject: ${utf8}\n\n`).subject, 'J\u00f6rg \u4e2d');
  assert.equal(parseMessage('Subject: J\xF6rg\n\n').subject, 'J\u00f6rg');
  // An unknown label reads as windows-1252 (as postal-mime and browsers read it).
  assert.equal(parseMessage('Subject: x\nContent-Type: text/plain; charset=x-unknown\n\nJ\xF6rg\n').body, 'J\u00f6rg\n');
});

test('RFC 2047: words in one charset joined before decoding, even a padded B word (a character split across words)', () => {
  const subj = (v: string): string => parseMessage(`Subject: ${v}\n\n`).subject;
  // J, then the two bytes of "ö" split over two B words, the first padded.
  assert.equal(subj('=?UTF-8?B?SsM=?= =?UTF-8?B?tnJn?='), 'J\u00f6rg');
  // Split on a base64 group, and in Q words.
  assert.equal(subj('=?UTF-8?B?SkrD?= =?UTF-8?B?tnJn?='), 'JJ\u00f6rg');
  assert.equal(subj('=?UTF-8?Q?J=C3?= =?UTF-8?Q?=B6rg?='), 'J\u00f6rg');
  // Words in other charsets are not joined; text between words stays.
  assert.equal(subj('=?UTF-8?B?SsM=?= =?ISO-8859-1?Q?=F6?='), 'J\ufffd\u00f6');
  assert.equal(subj('=?UTF-8?Q?a?= and =?UTF-8?Q?b?='), 'a and b');
  assert.equal(subj('[PATCH] =?koi8-r?B?8NLJ18XU?= =?koi8-r?Q?_=F0=D2=C9?='), '[PATCH] \u041f\u0440\u0438\u0432\u0435\u0442 \u041f\u0440\u0438');
});

// ---------------------------------------------------------------------------
// Transfer encodings

const plain = (cte: string, body: string, ct = 'text/plain; charset=utf-8'): string =>
  `Subject: x\nContent-Type: ${ct}\nContent-Transfer-Encoding: ${cte}\n\n${body}`;

test('quoted-printable: soft breaks, escapes, a bad escape kept, trailing blanks kept (as git mailinfo keeps them)', () => {
  assert.equal(parseMessage(plain('quoted-printable', 'a long li=\nne =3D 1=\n\n')).body, 'a long line = 1\n');
  assert.equal(parseMessage(plain('Quoted-Printable', '=E2=82=AC =ZZ =4\n')).body, '\u20ac =ZZ =4\n');
  assert.equal(parseMessage(plain('quoted-printable', '+int x;  \n=\n')).body, '+int x;  \n');
  // CRLF line ends are LF.
  assert.equal(parseMessage(plain('quoted-printable', 'a=\r\nb\r\nc\r\n')).body, 'ab\nc\n');
});

test('base64: any line length, CRLF in the text, padding, junk characters ignored', () => {
  const text = 'diff --git a/f b/f\r\n--- a/f\r\n+++ b/f\r\n';
  const enc = Buffer.from(text).toString('base64');
  assert.equal(parseMessage(plain('base64', `${enc.slice(0, 10)}\n${enc.slice(10)}\n`)).body, text.replace(/\r\n/g, '\n'));
  assert.equal(parseMessage(plain('BASE64', `${enc.slice(0, 8)} !*\n${enc.slice(8)}\n`)).body, text.replace(/\r\n/g, '\n'));
  assert.equal(parseMessage(plain('base64', 'YQ==\n')).body, 'a');
});

// ---------------------------------------------------------------------------
// format=flowed (RFC 3676), as git mailinfo unflows it

test('format=flowed: soft breaks joined, stuffing off, "-- " kept, DelSp', () => {
  const flowed = (params: string, body: string): string => parseMessage(plain('7bit', body, `text/plain; charset=utf-8; format=flowed${params}`)).body;
  assert.equal(flowed('', 'one \ntwo\n  {\n>x\n-- \nsig\n'), 'one two\n {\n>x\n-- \nsig\n');
  assert.equal(flowed('; delsp=yes', 'con \ntinued  \nword\n'), 'continued word\n');
  assert.equal(flowed('; DelSp="Yes"', 'a \nb\n'), 'ab\n');
  // Not flowed: trailing spaces and leading spaces stay.
  assert.equal(parseMessage(plain('7bit', 'one \n  two\n')).body, 'one \n  two\n');
  // A diff line that ends in a blank (an empty context line " " stuffed to "  ") is a soft break: flowed
  // cannot carry it, and git mailinfo joins it the same way (git am warns "space at the end of lines might be lost").
  assert.equal(flowed('', '  \n+added\n'), ' +added\n');
});

// ---------------------------------------------------------------------------
// Multipart, attachments

const mixed = (parts: string, close = true): string =>
  `Subject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="BND"\n\npreamble\n${parts}${close ? '--BND--\nepilogue\n' : ''}`;
const part = (headers: string, body: string): string => `--BND\n${headers}\n\n${body}`;
const diff = 'diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n';

test('multipart: the first text part; a part left open at the end is read', () => {
  const text = part('Content-Type: text/plain', 'message\n');
  const html = part('Content-Type: text/html', '<p>html</p>\n');
  assert.equal(parseMessage(mixed(html + text)).body, 'message\n');
  assert.equal(parseMessage(mixed(text + html, false)).body, 'message\n');
  assert.equal(parseMessage(mixed(part('Content-Type: text/plain', diff), false)).body, diff);
  // Blank lines before a delimiter are the part's, but the LF right before it is the delimiter's.
  assert.equal(parseMessage(mixed(part('Content-Type: text/plain', 'm\n\n'))).body, 'm\n\n');
  // A delimiter may end in blanks; "--BNDx" is not one.
  assert.equal(parseMessage(mixed(`${part('Content-Type: text/plain', 'a\n--BNDx\nb\n')}--BND-- \t\n`)).body, 'a\n--BNDx\nb\n');
  // A part without headers is text/plain; one without a blank line after its "headers" is all body.
  assert.equal(parseMessage(mixed('--BND\n\nno headers\n')).body, 'no headers\n');
  assert.equal(parseMessage(mixed('--BND\nno blank line\n')).body, 'no blank line\n');
  // Nested multipart: depth first.
  const nested = part('Content-Type: multipart/alternative; boundary="IN"', '--IN\nContent-Type: text/plain\n\ninner\n--IN\nContent-Type: text/html\n\n<b>x</b>\n--IN--\n');
  assert.equal(parseMessage(mixed(nested + text)).body, 'inner\n');
  // A non-text message has no body text.
  assert.equal(parseMessage('Subject: x\nContent-Type: application/octet-stream\n\n\x00\x01\n').body, '');
});

test('attachments: a later text part holding the diff follows the message (text/x-patch, text/x-diff, text/plain)', () => {
  const msg = part('Content-Type: text/plain; charset=utf-8', 'Why.\n\nSigned-off-by: A <a@example.org>\n');
  for (const type of ['text/x-patch', 'text/x-diff', 'text/plain']) {
    const attach = part(`Content-Type: ${type}; name="0001.patch"\nContent-Disposition: attachment; filename="0001.patch"\nContent-Transfer-Encoding: base64`, `${Buffer.from(diff).toString('base64')}\n`);
    const m = parseMessage(mixed(msg + attach));
    assert.equal(m.body, `Why.\n\nSigned-off-by: A <a@example.org>\n${diff}`, type);
  }
  // A message that holds the diff is the body alone; an application/* attachment is never read.
  const inline = part('Content-Type: text/plain', `inline\n${diff}`);
  const other = part('Content-Type: text/x-diff', 'diff --git a/g b/g\n');
  assert.equal(parseMessage(mixed(inline + other)).body, `inline\n${diff}`);
  const octet = part('Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64', `${Buffer.from(diff).toString('base64')}\n`);
  assert.equal(parseMessage(mixed(msg + octet)).body, 'Why.\n\nSigned-off-by: A <a@example.org>\n');
});

// ---------------------------------------------------------------------------
// Hostile MIME: MBOX_MALFORMED or a result, never another throw; linear time

test('hostile MIME: deep nesting, many parts, odd headers are read in linear time without a throw', () => {
  const timed = (what: string, fn: () => unknown): void => {
    const code = withinTime(what, 1000, () => errorCodeOf(fn));
    assert.ok(code === 'no error' || code === 'MBOX_MALFORMED', `${what}: ${code}`);
  };
  /** A text part inside `depth` multipart levels. */
  const nested = (depth: number): string => {
    let body = '--B' + String(depth) + '\nContent-Type: text/plain\n\ninnermost\n--B' + String(depth) + '--\n';
    for (let d = depth - 1; d > 0; d--) body = `--B${d}\nContent-Type: multipart/mixed; boundary="B${d + 1}"\n\n${body}--B${d}--\n`;
    return `Subject: x\nContent-Type: multipart/mixed; boundary="B1"\n\n${body}`;
  };
  assert.equal(parseMessage(nested(3)).body, 'innermost\n');
  assert.equal(parseMessage(nested(MIME_MAX_DEPTH)).body, 'innermost\n');
  // Deeper than MIME_MAX_DEPTH, the parts are not read.
  assert.equal(parseMessage(nested(MIME_MAX_DEPTH + 1)).body, '');
  timed('nesting 5,000 deep', () => parseMessage(nested(5000)));
  const many = '--b\nContent-Transfer-Encoding: quoted-printable\n\nx=3D\n'.repeat(20_000);
  timed('20,000 quoted-printable parts', () => parseMessage(`Subject: x\nContent-Type: multipart/mixed; boundary=b\n\n${many}`));
  timed('a QP line of 200,000 "="', () => parseMessage(plain('quoted-printable', `${'='.repeat(200_000)}\n`)));
  timed('a Content-Type of 100,000 "("', () => parseMessage(`Subject: x\nContent-Type: text/plain; charset=${'('.repeat(100_000)}\n\nx\n`));
  timed('50,000 encoded words', () => parseMessage(`Subject: ${'=?UTF-8?B?SsM=?= '.repeat(50_000)}\n\n`));
  timed('a boundary of 100,000 blanks', () => parseMessage(`Subject: x\nContent-Type: multipart/mixed; boundary="${' '.repeat(100_000)}"\n\n--${' '.repeat(100_000)}\n\nx\n`));
  timed('a charset no decoder knows', () => parseMessage(plain('8bit', '\xff\n', 'text/plain; charset="replacement"')));
});

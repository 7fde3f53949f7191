import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PatchbayError } from '../errors.ts';
import { parseMbox, parseMessage, type MailMessage } from '../mbox.ts';
import { diffFiles, parseFollowupTrailers, parseTrailers, patchId, patchProblems, type FileChange } from '../patch.ts';
import { assembleSeries, prerequisiteSeries, seriesMbox, type Series } from '../series.ts';
import { errorCodeOf } from './error-code.ts';
import { assertGolden, GOLDEN_CASES, goldenInputs } from './golden-cases.ts';

const GOLDEN = join(import.meta.dirname, 'golden', 'mbox');

// ---------------------------------------------------------------------------
// Golden files: NAME.mbox in, NAME.json (a plain summary) out.

function errorSummary(e: unknown): Record<string, unknown> {
  if (!(e instanceof PatchbayError)) throw e;
  return { code: e.code, message: e.message, details: e.details };
}

function messageSummary(m: MailMessage): Record<string, unknown> {
  return {
    messageId: m.messageId,
    subject: m.subject,
    from: m.from.name === '' ? m.from.email : `${m.from.name} <${m.from.email}>`,
    date: m.date?.toISOString() ?? null,
    inReplyTo: m.inReplyTo,
  };
}

function seriesSummary(s: Series): Record<string, unknown> {
  return {
    title: s.title,
    version: s.version,
    total: s.total,
    isRfc: s.isRfc,
    cover: s.cover === null ? null : { messageId: s.cover.messageId, subject: s.cover.subject },
    baseCommit: s.baseCommit,
    changeId: s.changeId,
    prerequisitePatchIds: s.prerequisitePatchIds,
    treeTags: s.treeTags,
    rootMessageId: s.rootMessageId,
    patches: s.patches.map((p) => ({
      counter: p.counter,
      messageId: p.message.messageId,
      subject: p.message.subject,
      files: p.files,
      trailers: p.trailers.map((t) => `${t.name}: ${t.value}`),
    })),
    problems: s.problems,
  };
}

function summarize(data: string): Record<string, unknown> {
  let messages: MailMessage[];
  try {
    messages = parseMbox(data);
  } catch (e) {
    return { error: errorSummary(e) };
  }
  const out: Record<string, unknown> = { messages: messages.map(messageSummary) };
  try {
    out.series = seriesSummary(assembleSeries(messages));
  } catch (e) {
    out.error = errorSummary(e);
  }
  return out;
}

for (const file of goldenInputs(GOLDEN, '.mbox', GOLDEN_CASES.mbox)) {
  test(`golden: ${file}`, () => {
    // Compared as it reads back from JSON (an error's details may be undefined).
    const actual: unknown = JSON.parse(JSON.stringify(summarize(readFileSync(join(GOLDEN, file), 'latin1'))));
    assertGolden(join(GOLDEN, file.replace(/\.mbox$/, '.json')), actual);
  });
}

// ---------------------------------------------------------------------------
// The golden thread, through the API

function loadGolden(name: string): MailMessage[] {
  return parseMbox(readFileSync(join(GOLDEN, name), 'latin1'));
}

test('assembleSeries: opts.version picks an older revision', () => {
  const s = assembleSeries(loadGolden('kmbuf-v3-thread.mbox'), { version: 2 });
  assert.equal(s.version, 2);
  assert.equal(s.total, 2);
  assert.equal(s.cover?.messageId, '20251211000213.1200001-1-joan.kestrel@example.com');
  assert.equal(s.baseCommit, '2c4e8a1f0b9d7e6c5a4b3f2e1d0c9b8a7f6e5d4c');
  assert.equal(s.changeId, null);
  assert.deepEqual(s.problems[0], 'v3 also present; took v2 as asked');
  // Cal's Reviewed-by on v2 1/2 lands on v2 1/2.
  assert.deepEqual(
    s.patches[0]?.trailers.map((t) => `${t.name}: ${t.value}`),
    ['Signed-off-by: Joan Kestrel <joan.kestrel@example.com>', 'Reviewed-by: Cal Sander <cal.sander@example.net>'],
  );
});

test('assembleSeries: a RESEND mail taken marks the series; its identity is its change-id, else its title and author', () => {
  const s = assembleSeries(loadGolden('rfc-resend-duplicate.mbox'));
  assert.equal(s.isResend, true);
  assert.equal(s.version, 1);
  assert.equal(s.identity, 'subject:pbergov@example.com:io_uring/kbuf: add a tracepoint for ring pinning');
  const v3 = assembleSeries(loadGolden('kmbuf-v3-thread.mbox'));
  assert.equal(v3.isResend, false);
  assert.equal(v3.identity, 'change-id:20251201-kmbuf-pin-5f3a1c2d9e7b');
});

test('assembleSeries: asking for a revision that is not there', () => {
  try {
    assembleSeries(loadGolden('kmbuf-v3-thread.mbox'), { version: 4 });
    assert.fail('expected an error');
  } catch (e) {
    assert.ok(e instanceof PatchbayError);
    assert.equal(e.code, 'SERIES_NO_PATCHES');
    assert.match(e.message, /v2, v3/);
  }
});

test('seriesMbox: the patches only, in order, as git am gets them', () => {
  const msgs = loadGolden('kmbuf-v3-thread.mbox');
  const s = assembleSeries(msgs);
  const mbox = seriesMbox(s);
  const back = parseMbox(mbox);
  assert.deepEqual(
    back.map((m) => m.subject),
    [
      '[PATCH v3 1/3] io_uring/kbuf: add IOBL_PINNED buffer list flag',
      '[PATCH v3 2/3] io_uring/kbuf: add buffer ring pinning/unpinning',
      '[PATCH v3 3/3] io_uring/kbuf: refuse to unregister a pinned buffer ring',
    ],
  );
  assert.deepEqual(back.map((m) => m.raw), s.patches.map((p) => p.message.raw));
  assert.ok(mbox.startsWith('From mboxrd@z Thu Jan  1 00:00:00 1970\n'));
  assert.ok(mbox.endsWith('\n2.47.3\n\n'));
});

test('assembleSeries: message order in the mbox does not matter', () => {
  const msgs = loadGolden('kmbuf-v3-thread.mbox');
  const a = assembleSeries(msgs);
  const b = assembleSeries([...msgs].reverse());
  assert.deepEqual(seriesSummary(a).patches, seriesSummary(b).patches);
  assert.equal(a.baseCommit, b.baseCommit);
  assert.equal(a.rootMessageId, b.rootMessageId);
});

test('assembleSeries: the same message twice counts once', () => {
  const msgs = loadGolden('mboxrd-from-quoting.mbox');
  const s = assembleSeries([...msgs, ...msgs]);
  assert.equal(s.patches.length, 1);
  assert.deepEqual(s.problems, []);
  assert.equal(s.patches[0]?.trailers.length, 2);
});

// ---------------------------------------------------------------------------
// Small series built in the test

let n = 0;
function mail(subject: string, body: string, extra: Record<string, string> = {}): MailMessage {
  n++;
  const headers: Record<string, string> = {
    From: 'Joan Kestrel <joan@example.com>',
    Subject: subject,
    Date: `Mon, 22 Dec 2025 16:${String(n % 60).padStart(2, '0')}:00 +0000`,
    'Message-ID': `<m${n}@example.com>`,
    ...extra,
  };
  return parseMessage(`${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${body}`);
}

const diff = (path: string, line = 'x'): string =>
  `Signed-off-by: Joan Kestrel <joan@example.com>\n---\ndiff --git a/${path} b/${path}\n--- a/${path}\n+++ b/${path}\n@@ -1 +1 @@\n-old\n+${line}\n-- \n2.47.3\n`;

const codeOf = errorCodeOf;

test('assembleSeries: a single [PATCH] is a one-patch series, rooted at itself', () => {
  const p = mail('[PATCH] io_uring: one', diff('io_uring/a.c'));
  const s = assembleSeries([p]);
  assert.equal(s.total, 1);
  assert.equal(s.patches[0]?.counter, 1);
  assert.equal(s.rootMessageId, p.messageId);
  assert.equal(s.cover, null);
  assert.equal(s.title, 'io_uring: one');
});

test('assembleSeries: no patches at all', () => {
  assert.equal(codeOf(() => assembleSeries([])), 'SERIES_NO_PATCHES');
  assert.equal(codeOf(() => assembleSeries([mail('Re: [PATCH] x', 'Reviewed-by: A <a@example.com>\n')])), 'SERIES_NO_PATCHES');
  assert.equal(codeOf(() => assembleSeries([mail('[PATCH 0/2] cover only', 'hello\n')])), 'SERIES_NO_PATCHES');
  assert.equal(codeOf(() => assembleSeries([mail('[ANNOUNCE] not a patch', 'hello\n')])), 'SERIES_NO_PATCHES');
  // A lone "[PATCH] x" whose diff got lost says so.
  assert.equal(codeOf(() => assembleSeries([mail('[PATCH] lost diff', 'Signed-off-by: A <a@example.com>\n')])), 'SERIES_NO_DIFF');
});

test('assembleSeries: patches that name no revision take the cover letter\'s (b4)', () => {
  const cover = mail('[PATCH v5 0/2] series', 'cover\n\nbase-commit: abcdef0123456\n');
  const p1 = mail('[PATCH 1/2] one', diff('a.c'), { 'In-Reply-To': `<${cover.messageId}>` });
  const p2 = mail('[PATCH 2/2] two', diff('b.c'), { 'In-Reply-To': `<${cover.messageId}>` });
  const s = assembleSeries([cover, p1, p2]);
  assert.equal(s.version, 5);
  assert.equal(s.cover?.messageId, cover.messageId);
  assert.equal(s.baseCommit, 'abcdef0123456');
});

test('assembleSeries: a naked cover letter (no 0/N) is found through patch 1 (b4)', () => {
  const cover = mail('[PATCH v2] io_uring: series', 'Two patches.\n\n a.c | 2 +-\n 2 files changed, 2 insertions(+), 2 deletions(-)\n');
  const p1 = mail('[PATCH v2 1/2] one', diff('a.c'), { 'In-Reply-To': `<${cover.messageId}>` });
  const p2 = mail('[PATCH v2 2/2] two', diff('b.c'), { 'In-Reply-To': `<${cover.messageId}>` });
  const s = assembleSeries([cover, p1, p2]);
  assert.equal(s.cover?.messageId, cover.messageId);
  assert.equal(s.rootMessageId, cover.messageId);
  assert.deepEqual(s.problems, []);
  assert.equal(s.title, 'io_uring: series');
});

test('assembleSeries: [PATCH 3/2] grows the series, missing counters are reported', () => {
  const p1 = mail('[PATCH 1/2] one', diff('a.c'));
  const p3 = mail('[PATCH 3/2] three', diff('c.c'));
  try {
    assembleSeries([p1, p3]);
    assert.fail('expected an error');
  } catch (e) {
    assert.ok(e instanceof PatchbayError);
    assert.equal(e.code, 'SERIES_INCOMPLETE');
    assert.deepEqual(e.details.missing, [2]);
    assert.match(e.message, /missing patch 2\/3/);
  }
});

test('assembleSeries: a duplicate counter keeps the one with a diff, then the later one', () => {
  const noDiff = mail('[PATCH 1/1] one', 'oops, no diff\n');
  const withDiff = mail('[PATCH 1/1] one', diff('a.c'));
  const s = assembleSeries([withDiff, noDiff]);
  assert.equal(s.patches[0]?.message.messageId, withDiff.messageId);
  assert.match(s.problems[0] ?? '', /sent more than once/);
});

test('assembleSeries: replies carry trailers; quoted ones, header lines and strangers do not', () => {
  const p = mail('[PATCH] one', diff('a.c'));
  const re = (body: string, from = 'Cal Sander <cal@example.net>'): MailMessage =>
    mail('Re: [PATCH] one', body, { From: from, 'In-Reply-To': `<${p.messageId}>` });
  const s = assembleSeries([
    p,
    re('> Reviewed-by: Quoted Person <quoted@example.com>\nFrom: Cal Sander <cal@example.net>\nCc: x@example.org\n\nReviewed-by: Cal Sander <cal@example.net>\n'),
    re('Tested-by: Cal Sander <cal@example.net> # on x86_64\n'),
    re('Reviewed-by: Cal Sander <cal@example.net>\n'),
    re('Acked-by: Someone Else <else@example.com>\n'),
    re('Acked-by: Cal Sander <cal.sander@work.example>\n', 'Cal Sander <cal@example.net>'),
    // A reply without "Re:" that only gives a trailer (b4).
    mail('io_uring: one', 'Reviewed-by: Gabriel Krisp <gk@example.com>\n', {
      From: 'Gabriel Krisp <gk@example.com>',
      References: `<${p.messageId}>`,
    }),
  ]);
  assert.deepEqual(
    s.patches[0]?.trailers.map((t) => `${t.name}: ${t.value}`),
    [
      'Signed-off-by: Joan Kestrel <joan@example.com>',
      'Reviewed-by: Cal Sander <cal@example.net>',
      'Tested-by: Cal Sander <cal@example.net> # on x86_64',
      'Acked-by: Cal Sander <cal.sander@work.example>',
      'Reviewed-by: Gabriel Krisp <gk@example.com>',
    ],
  );
  assert.deepEqual(s.problems, [
    'ignored "Acked-by: Someone Else <else@example.com>" in a reply from cal@example.net: it names someone else',
    'ignored 2 replies',
  ]);
});

test('assembleSeries: a reply loop does not hang', () => {
  const p = mail('[PATCH] one', diff('a.c'));
  const a = mail('Re: [PATCH] one', 'Acked-by: A <a@example.com>\n', { From: 'A <a@example.com>', 'Message-ID': '<loop-a@x>', 'In-Reply-To': '<loop-b@x>' });
  const b = mail('Re: [PATCH] one', 'hm\n', { 'Message-ID': '<loop-b@x>', 'In-Reply-To': '<loop-a@x>' });
  const s = assembleSeries([p, a, b]);
  assert.equal(s.patches[0]?.trailers.length, 1);
});

test('assembleSeries: binary and escaping patches name the patch and the path', () => {
  const bin = mail('[PATCH 1/2] ok', diff('a.c'));
  const bad = mail(
    '[PATCH 2/2] bad',
    'x\n---\ndiff --git a/.git/hooks/post-checkout b/.git/hooks/post-checkout\nnew file mode 100755\n--- /dev/null\n+++ b/.git/hooks/post-checkout\n@@ -0,0 +1 @@\n+rm -rf /\n',
  );
  try {
    assembleSeries([bin, bad]);
    assert.fail('expected an error');
  } catch (e) {
    assert.ok(e instanceof PatchbayError);
    assert.equal(e.code, 'PATCH_PATH_ESCAPES');
    assert.equal(e.details.counter, 2);
    assert.equal(e.details.path, '.git/hooks/post-checkout');
    assert.match(e.message, /^Patch 2\/2 "\[PATCH 2\/2\] bad"/);
  }
});

// ---------------------------------------------------------------------------
// diffFiles / patchProblems

const file = (oldPath: string | null, newPath: string | null, added: number, removed: number, binary = false): FileChange => ({
  oldPath,
  newPath,
  binary,
  added,
  removed,
});

test('diffFiles: new, deleted, renamed, mode-only, copied', () => {
  const body = [
    'diff --git a/new.c b/new.c',
    'new file mode 100644',
    'index 0000000..1111111',
    '--- /dev/null',
    '+++ b/new.c',
    '@@ -0,0 +1,2 @@',
    '+a',
    '+b',
    'diff --git a/gone.c b/gone.c',
    'deleted file mode 100644',
    'index 1111111..0000000',
    '--- a/gone.c',
    '+++ /dev/null',
    '@@ -1 +0,0 @@',
    '-a',
    'diff --git a/old name.c b/new name.c',
    'similarity index 100%',
    'rename from old name.c',
    'rename to new name.c',
    'diff --git a/script.sh b/script.sh',
    'old mode 100644',
    'new mode 100755',
    'diff --git a/x.c b/y.c',
    'similarity index 90%',
    'copy from x.c',
    'copy to y.c',
    'index 1111111..2222222 100644',
    '--- a/x.c',
    '+++ b/y.c',
    '@@ -1,2 +1,2 @@',
    ' same',
    '-was',
    '+is',
    '-- ',
    '2.47.3',
    '',
  ].join('\n');
  assert.deepEqual(diffFiles(body), [
    file(null, 'new.c', 2, 0),
    file('gone.c', null, 0, 1),
    file('old name.c', 'new name.c', 0, 0),
    file('script.sh', 'script.sh', 0, 0),
    file('x.c', 'y.c', 1, 1),
  ]);
});

test('diffFiles: quoted paths and paths with spaces', () => {
  const body =
    'diff --git "a/f\\303\\266o\\tbar" "b/f\\303\\266o\\tbar"\n--- "a/f\\303\\266o\\tbar"\n+++ "b/f\\303\\266o\\tbar"\n@@ -1 +1 @@\n-a\n+b\n' +
    'diff --git a/with space.txt b/with space.txt\nold mode 100644\nnew mode 100755\n';
  assert.deepEqual(diffFiles(body), [file('f\u00f6o\tbar', 'f\u00f6o\tbar', 1, 1), file('with space.txt', 'with space.txt', 0, 0)]);
});

test('diffFiles: plain unified diffs (diff -u) with timestamps and other prefixes, -p1', () => {
  const body =
    'Index: x\n--- linux.orig/fs/fuse/file.c\t2026-01-01 00:00:00.000000000 +0000\n+++ linux/fs/fuse/file.c\t2026-01-02 00:00:00.000000000 +0000\n' +
    '@@ -1,3 +1,3 @@\n a\n-b\n+c\n\n';
  assert.deepEqual(diffFiles(body), [file('fs/fuse/file.c', 'fs/fuse/file.c', 1, 1)]);
});

test('diffFiles: hunk counts decide where a hunk ends ("-- " signature, "--- " content lines)', () => {
  const body = 'diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,2 +1,2 @@\n--- removed line that looks like a header\n+++ added line that looks like a header\n \n-- \n2.47.3\n';
  assert.deepEqual(diffFiles(body), [file('a', 'a', 1, 1)]);
});

test('diffFiles: binary patches, both forms', () => {
  const body =
    'diff --git a/img.png b/img.png\nnew file mode 100644\nindex 0000000..1111111\nGIT binary patch\nliteral 3\nKcmZ>9\n\nliteral 0\nHcmV?d00001\n\n' +
    'diff --git a/b.bin b/b.bin\nindex 1111111..2222222 100644\nBinary files a/b.bin and b/b.bin differ\n' +
    'Binary files /dev/null and b/plain.bin differ\n';
  assert.deepEqual(diffFiles(body), [file(null, 'img.png', 0, 0, true), file('b.bin', 'b.bin', 0, 0, true), file(null, 'plain.bin', 0, 0, true)]);
});

test('diffFiles: a commit message without a diff, and a diffstat only', () => {
  assert.deepEqual(diffFiles('Just words.\n\n---\n a.c | 2 +-\n 1 file changed\n'), []);
});

test('patchProblems', () => {
  assert.deepEqual(patchProblems([]), [{ code: 'PATCH_NO_DIFF', message: 'the message holds no diff' }]);
  assert.deepEqual(patchProblems([file('a.c', 'a.c', 1, 1)]), []);
  assert.deepEqual(
    patchProblems([
      file('img.png', 'img.png', 0, 0, true),
      file('../../etc/passwd', '../../etc/passwd', 1, 0),
      file(null, '/etc/shadow', 1, 0),
      file('x/.GIT/config', 'x/.GIT/config', 1, 0),
      file('fs/fuse/..inode.c', 'fs/fuse/..inode.c', 1, 0),
    ]).map((p) => [p.code, p.path]),
    [
      ['PATCH_BINARY', 'img.png'],
      ['PATCH_PATH_ESCAPES', '../../etc/passwd'],
      ['PATCH_PATH_ESCAPES', '/etc/shadow'],
      ['PATCH_PATH_ESCAPES', 'x/.GIT/config'],
    ],
  );
  // Absolute paths as written are kept (git would read /etc/x with -p1 as etc/x; we refuse it).
  assert.deepEqual(diffFiles('--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n'), [file('/etc/passwd', '/etc/passwd', 1, 1)]);
});

// ---------------------------------------------------------------------------
// Trailers

const tr = (body: string): string[] => parseTrailers(body).map((t) => `${t.name}: ${t.value}`);

test('parseTrailers: the last paragraph above "---"', () => {
  const body =
    'Subject-ish first line: not a trailer\n\nFixes: the thing\n\nMore prose.\n\n' +
    'Fixes: 24fe962c86f5 ("fuse: {io-uring} Handle SQEs -\n  register commands")\nCc: stable@vger.kernel.org # 6.14.x\n' +
    'Signed-off-by: A <a@example.com>\n[b: fixed the typo]\nCo-developed-by: B <b@example.com>\nSigned-off-by: B <b@example.com>\n' +
    '---\nv2: Reviewed-by: Not A Trailer <x@example.com>\n\ndiff --git a/a b/a\n';
  assert.deepEqual(tr(body), [
    'Fixes: 24fe962c86f5 ("fuse: {io-uring} Handle SQEs - register commands")',
    'Cc: stable@vger.kernel.org # 6.14.x',
    'Signed-off-by: A <a@example.com>',
    'Co-developed-by: B <b@example.com>',
    'Signed-off-by: B <b@example.com>',
  ]);
});

test('parseTrailers: b4\'s wrapped Fixes: line is joined', () => {
  assert.deepEqual(tr('x\n\nFixes: 0123456789ab ("io_uring: a long\nsubject")\nSigned-off-by: A <a@example.com>\n'), [
    'Fixes: 0123456789ab ("io_uring: a long subject")',
    'Signed-off-by: A <a@example.com>',
  ]);
});

test('parseTrailers: prose with colons is not a trailer block', () => {
  assert.deepEqual(tr('Intro.\n\nNote: this changes the ABI.\nWhy: because.\nAnd more words here.\n---\n'), []);
  assert.deepEqual(tr('Only: trailers\nLooking-Like: these\n'), ['Only: trailers', 'Looking-Like: these']);
  assert.deepEqual(tr('Intro.\n\nFixes: not-a-hash\nSigned-off-by: A <a@example.com>\n'), ['Signed-off-by: A <a@example.com>']);
  assert.deepEqual(tr(''), []);
});

test('parseTrailers: a diff without "---" ends the message too', () => {
  assert.deepEqual(tr('x\n\nSigned-off-by: A <a@example.com>\ndiff --git a/a b/a\n--- a/a\n+++ b/a\n'), ['Signed-off-by: A <a@example.com>']);
});

test('patchId: the change, as git patch-id --stable sees it: not the message, diffstat, line numbers, whitespace or file order', () => {
  const file = (path: string, at: number, line: string): string =>
    `diff --git a/${path} b/${path}\nindex 1a2b3c4..5d6e7f8 100644\n--- a/${path}\n+++ b/${path}\n@@ -${at},2 +${at},2 @@\n ctx\n-old\n+${line}\n`;
  const mail = (message: string, files: string[], stat = ''): string => `${message}\n\nSigned-off-by: A <a@example.com>\n---\n${stat}\n${files.join('')}-- \n2.47.3\n`;
  const base = patchId(mail('Add x.', [file('a.c', 10, 'new'), file('b.c', 3, 'b')]));
  assert.match(base ?? '', /^[0-9a-f]{64}$/);
  assert.equal(patchId(mail('Add x, reworded.\n\nv2: rebased', [file('a.c', 40, 'new'), file('b.c', 9, 'b')], ' a.c | 2 +-\n b.c | 2 +-\n')), base);
  assert.equal(patchId(mail('Add x.', [file('b.c', 3, 'b'), file('a.c', 10, 'new')])), base, 'files in another order');
  assert.equal(patchId(mail('Add x.', [file('a.c', 10, 'new ').replace('+new ', '+ new'), file('b.c', 3, 'b')])), base, 'whitespace');
  assert.equal(patchId(mail('Add x.', [file('a.c', 10, 'new').replace('\nindex 1a2b3c4..5d6e7f8 100644', '\nindex 0000000..1111111 100644'), file('b.c', 3, 'b')])), base, 'index lines');
  assert.notEqual(patchId(mail('Add x.', [file('a.c', 10, 'newer'), file('b.c', 3, 'b')])), base, 'another change');
  assert.notEqual(patchId(mail('Add x.', [file('c.c', 10, 'new'), file('b.c', 3, 'b')])), base, 'another file');
  assert.notEqual(patchId(mail('Add x.', [file('a.c', 10, 'new')])), base, 'a file less');
  // The signature after the last hunk is not part of it.
  assert.equal(patchId(mail('Add x.', [file('a.c', 10, 'new'), file('b.c', 3, 'b')]).replace('2.47.3', '2.51.0')), base);
  assert.equal(patchId('No diff here.\n\nSigned-off-by: A <a@example.com>\n'), null);
});

test('parseFollowupTrailers: b4\'s follow-up rules', () => {
  const body = [
    'On Mon, Dec 22, 2025 at 4:36 PM Joan Kestrel <joan@example.com> wrote:',
    '> Signed-off-by: Joan Kestrel <joan@example.com>',
    'From: Cal Sander <cal@example.net>',
    'Reviewed-by: Cal Sander <cal@example.net>',
    'Link: https://lore.kernel.org/r/x@y',
    'See: https://example.com/not-a-trailer',
    'Fixes: nothex',
    'Note: no address here',
    '  Tested-by: Indented Person <ip@example.com>',
    '',
    '-- ',
    'Acked-by: In The Signature <sig@example.com>',
  ].join('\n');
  assert.deepEqual(
    parseFollowupTrailers(body).map((t) => `${t.name}: ${t.value}`),
    ['Reviewed-by: Cal Sander <cal@example.net>', 'Link: https://lore.kernel.org/r/x@y', 'Tested-by: Indented Person <ip@example.com>'],
  );
});

// ---------------------------------------------------------------------------
// Uploads are untrusted: long crafted lines must not make a regex backtrack
// quadratically (each of these took 5-30 s at this size before it was fixed).

test('hostile inputs are parsed in linear time', () => {
  const big = 50_000;
  const inputs: Array<[string, () => unknown]> = [
    ['QP blanks', () => parseMessage(`Subject: x\nContent-Transfer-Encoding: quoted-printable\n\n${' '.repeat(big)}x\n`)],
    ['From: of @s', () => parseMessage(`Subject: x\nFrom: ${'@'.repeat(big)}(\n\n`)],
    ['From: of <s', () => parseMessage(`Subject: x\nFrom: ${'<a'.repeat(big)}\n\n`)],
    ['Date: blanks', () => parseMessage(`Subject: x\nDate: 1${' '.repeat(big)}x\n\n`)],
    ['subject of [s', () => parseMessage(`Subject: ${'['.repeat(big)}x\n\n`)],
    ['"From " line', () => parseMbox(`From a b c d e:f:${' '.repeat(big)}x\nSubject: x\n\n`)],
    ['Binary files', () => diffFiles(`Binary files ${'x and '.repeat(big)}\n`)],
    ['diff --git', () => diffFiles(`diff --git ${'a '.repeat(big)}\n`)],
    ['blank lines', () => assembleSeries([parseMessage(`Subject: [PATCH] x\n\n${'\n'.repeat(big)}x\n`)])],
    ['trailer', () => parseFollowupTrailers(`Reviewed-by: ${'@.'.repeat(big)}\n`)],
  ];
  for (const [name, fn] of inputs) {
    const start = performance.now();
    try {
      fn();
    } catch (e) {
      if (!(e instanceof PatchbayError)) throw e;
    }
    const ms = performance.now() - start;
    assert.ok(ms < 1000, `${name}: ${Math.round(ms)} ms`);
  }
});

// ---------------------------------------------------------------------------
// prerequisiteSeries: patches from anywhere, applied in the order given

test('prerequisiteSeries: mails of two series, in the order given, numbered 1..N whatever their counters; the cover letter is no patch; the refusals hold', () => {
  const pin = parseMbox(readFileSync(join(import.meta.dirname, '..', '..', '..', 'fixtures', 'series', 'pass-kbuf-pin.mbox'), 'latin1'));
  const kmbuf = parseMbox(readFileSync(join(import.meta.dirname, '..', '..', '..', 'fixtures', 'series', 'pass-kmbuf-ring.mbox'), 'latin1'));
  const [, pin1, pin2] = pin;
  const kmbufPatches = kmbuf.filter((m) => /\[PATCH[^\]]* [1-9]\d*\/\d+\]/.test(m.subject));
  const [km1] = kmbufPatches;
  assert.ok(pin1 && pin2 && km1);
  // Patch 2/3 of one series, then 1/N of another, then 1/3: the order of the lines that named them.
  const s = prerequisiteSeries([pin2, km1, pin1]);
  assert.deepEqual(s.patches.map((p) => [p.counter, p.message.messageId]), [[1, pin2.messageId], [2, km1.messageId], [3, pin1.messageId]]);
  assert.equal(s.total, 3);
  assert.equal(s.cover, null);
  assert.equal(s.rootMessageId, pin2.messageId);
  assert.equal(seriesMbox(s).split(/^From /m).filter((x) => x !== '').length, 3, 'git am gets the three, in that order');
  // A mail without a diff (the cover letter) is refused as a patch without one.
  assert.equal(errorCodeOf(() => prerequisiteSeries([pin[0] as MailMessage])), 'SERIES_NO_DIFF');
  assert.equal(errorCodeOf(() => prerequisiteSeries([])), 'SERIES_NO_PATCHES');
  const escaping = parseMessage(pin1.raw.replace(/a\/io_uring\/kbuf\.h/g, 'a/../../etc/passwd').replace(/b\/io_uring\/kbuf\.h/g, 'b/../../etc/passwd'));
  assert.equal(errorCodeOf(() => prerequisiteSeries([escaping])), 'PATCH_PATH_ESCAPES');
});

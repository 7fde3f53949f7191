/**
 * checkWithGit against the real git (git mailsplit and git mailinfo, as
 * git am runs them): the golden mails of every encoding read the same by
 * git and by patchbay; where they differ, git's reading wins, and what only
 * git sees is refused like assembleSeries refuses it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { PatchbayError } from '../../domain/errors.ts';
import { parseMbox } from '../../domain/mbox.ts';
import type { FileChange } from '../../domain/patch.ts';
import { assembleSeries, type Series } from '../../domain/series.ts';
import { checkWithGit, patchIdsWithGit } from '../mailinfo.ts';

const GOLDEN = join(import.meta.dirname, '..', '..', 'domain', 'test', 'golden', 'mbox');
// git's temporary folders go to a folder of this file's own (os.tmpdir()
// reads TMPDIR on each call), so that "none is left" counts only these
// tests' folders, whatever else runs on the machine meanwhile.
const ownTmp = mkdtempSync(join(tmpdir(), 'patchbay-mailinfo-test-'));
process.env.TMPDIR = ownTmp;
after(() => { rmSync(ownTmp, { recursive: true, force: true }); });
const OPTS = { timeoutMs: 30_000, maxBytes: 64 * 1024 * 1024 };

function golden(name: string): Series {
  return assembleSeries(parseMbox(readFileSync(join(GOLDEN, `${name}.mbox`), 'latin1')));
}

function seriesOf(text: string): Series {
  return assembleSeries(parseMbox(text));
}

function paths(files: readonly FileChange[]): string[] {
  return files.map((f) => `${f.newPath ?? f.oldPath ?? '?'} +${f.added}/-${f.removed}${f.binary ? ' binary' : ''}`);
}

/** The code (and message) a promise is rejected with. */
async function refusal(p: Promise<unknown>): Promise<PatchbayError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof PatchbayError) return e;
    throw e;
  }
  assert.fail('expected a refusal');
}

function leftovers(): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith('patchbay-mailinfo-'));
}

// ---------------------------------------------------------------------------
// The golden mails: git reads what patchbay reads

const GOLDEN_FILES: Record<string, string[][]> = {
  'qp-body': [['tools/testing/selftests/filesystems/fuse/fusectl_test.c +2/-1']],
  'base64-body': [['io_uring/kbuf.c +1/-2']],
  flowed: [['fs/fuse/dev_uring.c +2/-0']],
  'flowed-delsp': [['io_uring/kbuf.c +1/-1']],
  'latin1-body': [['Documentation/filesystems/fuse/fuse.rst +1/-0']],
  'koi8r-body': [['io_uring/kbuf.c +1/-1']],
  'sjis-body': [['fs/fuse/dev.c +1/-1']],
  'multipart-no-close': [['io_uring/register.c +1/-1']],
  'attachment-x-diff': [['fs/fuse/dev_uring.c +1/-0']],
  'multipart-attachment': [['fs/fuse/Kconfig +1/-1']],
  crlf: [['Documentation/filesystems/fuse/fuse-io-uring.rst +3/-0'], ['fs/fuse/dev_uring.c +0/-2']],
  'mboxrd-from-quoting': [['io_uring/kbuf.c +1/-1']],
  'rfc2047-author': [['fs/fuse/inode.c +1/-1']],
  'kmbuf-v3-thread': [['io_uring/kbuf.h +5/-0'], ['io_uring/kbuf.c +39/-0', 'io_uring/kbuf.h +5/-0'], ['io_uring/kbuf.c +2/-0', 'io_uring/kbuf.h +2/-2']],
};

for (const [name, expected] of Object.entries(GOLDEN_FILES)) {
  test(`golden ${name}: git reads the files patchbay reads`, async () => {
    const series = golden(name);
    assert.deepEqual(series.patches.map((p) => paths(p.files)), expected, 'patchbay');
    const checked = await checkWithGit(series, OPTS);
    assert.notEqual(checked, series);
    assert.deepEqual(checked.patches.map((p) => paths(p.files)), expected, 'git');
    assert.deepEqual(checked.problems, series.problems);
    for (const [i, p] of checked.patches.entries()) assert.equal(p, series.patches[i]);
  });
}

// ---------------------------------------------------------------------------
// Where git reads differently, git's reading wins

const diff = (path: string): string => `diff --git a/${path} b/${path}\n--- a/${path}\n+++ b/${path}\n@@ -1 +1 @@\n-a\n+b\n`;
const base64 = (text: string): string => `${Buffer.from(text, 'latin1').toString('base64').replace(/.{76}/g, '$&\n')}\n`;

/** A patch mail: a text part with the message (and diff), then an application/octet-stream part patchbay does not read. */
function twoParts(text: string, hidden: string): string {
  return [
    'From mboxrd@z Thu Jan  1 00:00:00 1970',
    'From: A U Thor <author@example.org>',
    'Subject: [PATCH] io_uring: change things',
    'Message-ID: <two-parts@example.org>',
    'Date: Mon, 2 Mar 2026 10:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="BND"',
    '',
    '--BND',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `${text}--BND`,
    'Content-Type: application/octet-stream; name="more.bin"',
    'Content-Disposition: attachment; filename="more.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    `${base64(hidden)}--BND--`,
    '',
  ].join('\n');
}

const message = 'Change things.\n\nSigned-off-by: A U Thor <author@example.org>\n---\n';

test('a diff in a MIME part patchbay does not read: git reads it, and its files are taken, with a note', async () => {
  const series = seriesOf(twoParts(message + diff('io_uring/kbuf.c'), diff('io_uring/kbuf.h')));
  assert.deepEqual(paths(series.patches[0]?.files ?? []), ['io_uring/kbuf.c +1/-1']);
  const before = structuredClone(series.patches.map((p) => p.files));
  const checked = await checkWithGit(series, OPTS);
  assert.deepEqual(paths(checked.patches[0]?.files ?? []), ['io_uring/kbuf.c +1/-1', 'io_uring/kbuf.h +1/-1']);
  assert.equal(checked.problems.length, series.problems.length + 1);
  assert.match(checked.problems.at(-1) ?? '', /^patch 1\/1: git reads io_uring\/kbuf\.c \(\+1\/-1\), io_uring\/kbuf\.h \(\+1\/-1\) where patchbay read io_uring\/kbuf\.c \(\+1\/-1\); git's reading is taken/);
  // The input is left as it was.
  assert.deepEqual(series.patches.map((p) => p.files), before);
  assert.equal(checked.patches[0]?.message, series.patches[0]?.message);
});

test('a binary patch only git sees is refused: PATCH_BINARY', async () => {
  const binary = 'diff --git a/tools/x.img b/tools/x.img\nnew file mode 100644\nindex 0000000..0a1b2c3\nGIT binary patch\nliteral 3\nKcmZo&D$^1\n\nliteral 0\nHcmV?d00001\n\n';
  const series = seriesOf(twoParts(message + diff('io_uring/kbuf.c'), binary));
  const e = await refusal(checkWithGit(series, OPTS));
  assert.equal(e.code, 'PATCH_BINARY');
  assert.match(e.message, /^Patch 1\/1 "\[PATCH\] io_uring: change things" holds a binary patch for tools\/x\.img/);
  assert.equal(e.details.counter, 1);
});

test('a path outside the tree only git sees is refused: PATCH_PATH_ESCAPES', async () => {
  const series = seriesOf(twoParts(message + diff('io_uring/kbuf.c'), diff('../../etc/passwd')));
  const e = await refusal(checkWithGit(series, OPTS));
  assert.equal(e.code, 'PATCH_PATH_ESCAPES');
  assert.match(e.message, /climbs out of the tree/);
});

test('git reads no diff where patchbay reads one: SERIES_NO_DIFF, naming the patch', async () => {
  // git takes any line that starts with "--BND" for a delimiter, "--BND--junk" for the closing one,
  // and reads nothing after it; a delimiter is "--BND" or "--BND--" and blanks only (RFC 2046, postal-mime).
  const mail = [
    'From mboxrd@z Thu Jan  1 00:00:00 1970',
    'From: A U Thor <author@example.org>',
    'Subject: [PATCH 1/1] io_uring: change things',
    'Message-ID: <no-diff-for-git@example.org>',
    'Content-Type: multipart/mixed; boundary="BND"',
    '',
    '--BND',
    'Content-Type: text/plain',
    '',
    'Change things.',
    '--BND--not-a-delimiter',
    '---',
    diff('io_uring/kbuf.c'),
    '--BND--',
    '',
  ].join('\n');
  const series = seriesOf(mail);
  assert.deepEqual(paths(series.patches[0]?.files ?? []), ['io_uring/kbuf.c +1/-1']);
  const e = await refusal(checkWithGit(series, OPTS));
  assert.equal(e.code, 'SERIES_NO_DIFF');
  assert.match(e.message, /^Patch 1\/1 "\[PATCH 1\/1\] io_uring: change things": git reads no diff in it .*patchbay reads io_uring\/kbuf\.c/);
  assert.deepEqual(e.details.git, []);
});

test('a flowed diff with a blank context line: git and patchbay both join it to the next line', async () => {
  const mail = [
    'From: A U Thor <author@example.org>',
    'Subject: [PATCH] io_uring: change things',
    'Content-Type: text/plain; charset=utf-8; format=flowed',
    '',
    'Change things.',
    '---',
    'diff --git a/f b/f',
    '--- a/f',
    '+++ b/f',
    '@@ -1,2 +1,3 @@',
    '  a',
    '  ',
    '+b',
    '',
  ].join('\n');
  const series = seriesOf(mail);
  const checked = await checkWithGit(series, OPTS);
  assert.deepEqual(checked.patches.map((p) => paths(p.files)), series.patches.map((p) => paths(p.files)));
  assert.deepEqual(checked.problems, series.problems);
});

test('a mail git mailinfo refuses (a charset it cannot convert) is MBOX_MALFORMED', async () => {
  const mail = `From: A <a@example.org>\nSubject: [PATCH] x\nContent-Type: text/plain; charset=x-no-such-charset\n\nJ\xF6rg fixed it.\n---\n${diff('f')}`;
  const e = await refusal(checkWithGit(seriesOf(mail), OPTS));
  assert.equal(e.code, 'MBOX_MALFORMED');
  assert.match(e.message, /^Patch 1\/1 "\[PATCH\] x": git cannot read the mail \(error: cannot convert from x-no-such-charset to UTF-8\)/);
});

// ---------------------------------------------------------------------------
// Bounds, and what is left behind

test('past timeoutMs: MAILINFO_FAILED, retryable; past maxBytes: SERIES_TOO_LARGE', async () => {
  const series = golden('kmbuf-v3-thread');
  const slow = await refusal(checkWithGit(series, { timeoutMs: 0, maxBytes: OPTS.maxBytes }));
  assert.equal(slow.code, 'MAILINFO_FAILED');
  assert.equal(slow.retryable, true);
  const big = await refusal(checkWithGit(series, { timeoutMs: OPTS.timeoutMs, maxBytes: 2000 }));
  assert.equal(big.code, 'SERIES_TOO_LARGE');
  assert.equal(big.retryable, false);
});

test('without git: MAILINFO_FAILED, retryable', async (t) => {
  const path = process.env.PATH;
  t.after(() => {
    process.env.PATH = path;
  });
  process.env.PATH = '/nonexistent';
  const e = await refusal(checkWithGit(golden('qp-body'), OPTS));
  assert.equal(e.code, 'MAILINFO_FAILED');
  assert.equal(e.retryable, true);
});

test('the temporary directory is removed, refused or not', async () => {
  const before = leftovers();
  await checkWithGit(golden('flowed'), OPTS);
  await refusal(checkWithGit(seriesOf(twoParts(message + diff('f'), diff('../x'))), OPTS));
  await refusal(checkWithGit(golden('flowed'), { timeoutMs: 0, maxBytes: OPTS.maxBytes }));
  assert.deepEqual(leftovers(), before);
});

// ---------------------------------------------------------------------------
// patchIdsWithGit: what b4's prerequisite-patch-id lines name

test('patchIdsWithGit: each mail\'s git patch-id --stable as git am reads it; the same patch sent in base64 has the same id; a mail without a diff has none', async () => {
  const fixture = readFileSync(join(import.meta.dirname, '..', '..', '..', 'fixtures', 'series', 'pass-kbuf-pin.mbox'), 'latin1');
  const mails = parseMbox(fixture);
  const [cover, p1, p2] = mails;
  assert.ok(cover && p1 && p2);
  // git's own answer on the plain mails (8bit: patch-id reads the diff straight from the mail).
  const oracle = (raw: string): string => execFileSync('git', ['patch-id', '--stable'], { input: Buffer.from(raw, 'latin1') }).toString().split(' ')[0] ?? '';
  // The same first patch again, its body in base64 (a mailer that encodes everything).
  const at = p1.raw.search(/\r?\n\r?\n/);
  assert.ok(at > 0);
  const head = p1.raw.slice(0, at);
  const body = p1.raw.slice(at).replace(/^\r?\n\r?\n/, '');
  const b64 = parseMbox(`${head.replace(/^Content-Transfer-Encoding:.*\n/im, '').replace(/^Message-ID:.*$/im, 'Message-ID: <b64@example.org>')}\nContent-Transfer-Encoding: base64\n\n${Buffer.from(body, 'latin1').toString('base64').replace(/.{76}/g, '$&\n')}\n`);
  const ids = await patchIdsWithGit([cover, p1, p2, ...b64], OPTS);
  assert.equal(ids[0], null, 'the cover letter has no diff');
  assert.match(ids[1] ?? '', /^[0-9a-f]{40}$/);
  assert.deepEqual(ids.slice(1, 3), [oracle(p1.raw), oracle(p2.raw)]);
  assert.notEqual(ids[1], ids[2]);
  assert.equal(ids[3], ids[1], 'base64 or not, the same patch');
  assert.deepEqual(readdirSync(tmpdir()).filter((n) => n.startsWith('patchbay-patch-id-')), [], 'its temporary folder is gone');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffFiles } from '../patch.ts';

const body = [
  'Subject: x',
  '',
  'index 1234567..89abcde is prose in the commit message, not a header',
  '---',
  ' a.c | 2 +-',
  '',
  'diff --git a/a.c b/a.c',
  'index 1111111..2222222 100644',
  '--- a/a.c',
  '+++ b/a.c',
  '@@ -1 +1 @@',
  '-a',
  '+b',
  'diff --git a/new.c b/new.c',
  'new file mode 100644',
  'index 0000000..3333333',
  '--- /dev/null',
  '+++ b/new.c',
  '@@ -0,0 +1 @@',
  '+n',
  'diff --git a/gone.c b/gone.c',
  'deleted file mode 100644',
  'index 4444444..0000000',
  '--- a/gone.c',
  '+++ /dev/null',
  '@@ -1 +0,0 @@',
  '-g',
  'diff --git a/x.c b/y.c',
  'similarity index 90%',
  'rename from x.c',
  'rename to y.c',
  'index 5555555aBcDeF..6666666',
  '--- a/x.c',
  '+++ b/y.c',
  '@@ -1 +1 @@',
  '-x',
  '+y',
  'diff --git a/mode.sh b/mode.sh',
  'old mode 100644',
  'new mode 100755',
  'diff --git a/merged.c b/merged.c',
  'index 7777777,8888888..9999999',
  '--- a/merged.c',
  '+++ b/merged.c',
  '-- ',
  '2.47.3',
  '',
].join('\n');

test('diffFiles({ blobs: true }): the pre- and post-image blob ids of "index" lines', () => {
  const files = diffFiles(body, { blobs: true });
  assert.deepEqual(
    files.map((f) => [f.oldPath, f.newPath, f.oldBlob, f.newBlob]),
    [
      ['a.c', 'a.c', '1111111', '2222222'],
      [null, 'new.c', '0000000', '3333333'],
      ['gone.c', null, '4444444', '0000000'],
      ['x.c', 'y.c', '5555555abcdef', '6666666'],
      ['mode.sh', 'mode.sh', undefined, undefined],
      // a combined diff's "index a,b..c" is not read
      ['merged.c', 'merged.c', undefined, undefined],
    ],
  );
  assert.equal(Object.hasOwn(files[4] ?? {}, 'oldBlob'), false, 'absent, not undefined (exactOptionalPropertyTypes)');
});

test('diffFiles without the option: the shape stored and shown today, no blob fields', () => {
  const plain = diffFiles(body);
  const withBlobs = diffFiles(body, { blobs: true });
  for (const f of plain) assert.deepEqual(Object.keys(f).sort(), ['added', 'binary', 'newPath', 'oldPath', 'removed']);
  assert.deepEqual(
    plain,
    withBlobs.map(({ oldBlob: _o, newBlob: _n, ...rest }) => rest),
  );
});

test('diffFiles({ blobs: true }): SHA-256 ids, plain unified diffs, index lines outside a git header', () => {
  const sha256 = 'a'.repeat(64);
  assert.deepEqual(
    diffFiles(`diff --git a/f b/f\nindex ${sha256}..${'b'.repeat(64)} 100755\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n`, { blobs: true })[0]?.oldBlob,
    sha256,
  );
  // diff -u has no index line; one after the hunk headers is content, never read
  const plain = diffFiles('--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-a\n+b\n index 1111111..2222222\n', { blobs: true });
  assert.deepEqual(plain.map((f) => [f.oldPath, f.oldBlob]), [['f', undefined]]);
  // after ---/+++ the header is over: a later "index" line (a hunk cut short) is not this file's
  const late = diffFiles('diff --git a/f b/f\n--- a/f\n+++ b/f\nindex 1111111..2222222\n', { blobs: true });
  assert.equal(late[0]?.oldBlob, undefined);
  // malformed: too short, not hex, trailing junk
  for (const line of ['index 12..34', 'index xyzxyzx..1111111', 'index 1111111..2222222 100644 junk']) {
    assert.equal(diffFiles(`diff --git a/f b/f\n${line}\n--- a/f\n+++ b/f\n`, { blobs: true })[0]?.oldBlob, undefined, line);
  }
});

test('diffFiles({ blobs: true }) stays linear on hostile input', () => {
  const big = 50_000;
  const inputs: Array<[string, string]> = [
    ['many index lines', `diff --git a/f b/f\n${'index 1111111..2222222\n'.repeat(big)}`],
    ['a long index line', `diff --git a/f b/f\nindex ${'1'.repeat(big)}..${'2'.repeat(big)}\n`],
    ['index of dots', `diff --git a/f b/f\nindex ${'1..'.repeat(big)}\n`],
    ['many files', 'diff --git a/f b/f\nindex 1111111..2222222 100644\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n'.repeat(big / 5)],
  ];
  for (const [name, text] of inputs) {
    const start = performance.now();
    diffFiles(text, { blobs: true });
    const ms = performance.now() - start;
    assert.ok(ms < 1000, `${name}: ${Math.round(ms)} ms`);
  }
});

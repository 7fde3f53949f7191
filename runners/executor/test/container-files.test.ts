/**
 * Copy-out and inputs at the tar level, with hostile archives built here:
 * only a regular file with the expected name is ever written, never past
 * its limit, never through a link on the host side.
 */
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import tar from 'tar-stream';
import { copyOne, packInputs } from '../container-files.ts';

const dir = mkdtempSync(join(tmpdir(), 'patchbay-copy-out-'));
after(() => { rmSync(dir, { recursive: true, force: true }); });
let n = 0;
const dest = (): string => join(dir, `out-${++n}`);

type Entry = tar.Headers & { body?: Buffer | string };

function archive(entries: Entry[]): Readable {
  const pack = tar.pack();
  for (const { body, ...h } of entries) pack.entry(h, body === undefined ? undefined : (typeof body === 'string' ? Buffer.from(body) : body));
  pack.finalize();
  return pack;
}

const rule = { name: 'ktap.txt', maxBytes: 1024, truncate: true };

test('a regular file with the expected name is copied whole', async () => {
  const to = dest();
  const r = await copyOne(archive([{ name: 'ktap.txt', body: 'KTAP version 1\n1..0\n' }]), rule, to);
  assert.deepEqual(r, { name: 'ktap.txt', kept: true, bytes: 20, truncated: false });
  assert.equal(readFileSync(to, 'utf8'), 'KTAP version 1\n1..0\n');
});

for (const [what, header, word] of [
  ['a symbolic link to a host secret', { name: 'ktap.txt', type: 'symlink', linkname: '/root/.local/share/patchbay/admin-token' }, 'a symbolic link'],
  ['a hard link', { name: 'ktap.txt', type: 'link', linkname: 'other' }, 'a hard link'],
  ['a folder', { name: 'ktap.txt', type: 'directory' }, 'a folder'],
  ['a FIFO', { name: 'ktap.txt', type: 'fifo' }, 'a FIFO'],
  ['a character device', { name: 'ktap.txt', type: 'character-device', devmajor: 1, devminor: 3 }, 'a character device'],
] as const) {
  test(`${what} is refused and nothing is written`, async () => {
    const to = dest();
    const r = await copyOne(archive([header]), rule, to);
    assert.equal(r.kept, false);
    assert.match(r.reason, new RegExp(word));
    assert.equal(existsSync(to), false);
  });
}

test('an entry with another name (a path that climbs out) is refused', async () => {
  for (const name of ['../../etc/passwd', '/etc/passwd', 'sub/ktap.txt', 'KTAP.TXT']) {
    const to = dest();
    const r = await copyOne(archive([{ name, body: 'x' }]), rule, to);
    assert.equal(r.kept, false, name);
    assert.equal(existsSync(to), false);
  }
});

test('a log over its limit is cut with a marker; a binary over its limit is refused', async () => {
  const big = 'y'.repeat(1024 * 1024);
  const to = dest();
  const r = await copyOne(archive([{ name: 'ktap.txt', body: big }]), rule, to);
  assert.deepEqual(r, { name: 'ktap.txt', kept: true, bytes: 1024, truncated: true });
  const text = readFileSync(to, 'utf8');
  assert.ok(text.startsWith('y'.repeat(1024) + '\npatchbay: ktap.txt cut at 1 KiB'), text.slice(1000, 1100));
  assert.ok(text.length < 1200);
  const bin = dest();
  const b = await copyOne(archive([{ name: 'bzImage', body: big }]), { name: 'bzImage', maxBytes: 1024, truncate: false }, bin);
  assert.equal(b.kept, false);
  assert.match(b.reason, /over its 1024-byte limit/);
  assert.equal(existsSync(bin), false);
});

test('only the first entry counts: a second one is never written', async () => {
  const to = dest();
  const r = await copyOne(archive([{ name: 'ktap.txt', body: 'ok\n' }, { name: 'ktap.txt', body: 'evil\n' }, { name: '../x', body: 'evil\n' }]), rule, to);
  assert.equal(r.kept, true);
  assert.equal(readFileSync(to, 'utf8'), 'ok\n');
  assert.equal(existsSync(join(dir, 'x')), false);
});

test('the destination is created anew: an existing file or a link there is never written through', async () => {
  const target = join(dir, 'victim');
  writeFileSync(target, 'untouched');
  const link = dest();
  symlinkSync(target, link);
  await assert.rejects(copyOne(archive([{ name: 'ktap.txt', body: 'overwrite' }]), rule, link), /EEXIST/);
  assert.equal(readFileSync(target, 'utf8'), 'untouched');
  assert.ok(lstatSync(link).isSymbolicLink());
});

test('a broken or empty archive is refused, not thrown', async () => {
  const empty = await copyOne(archive([]), rule, dest());
  assert.deepEqual(empty, { name: 'ktap.txt', kept: false, reason: 'the archive was empty' });
  const junk = await copyOne(Readable.from([Buffer.alloc(1024, 7)]), rule, dest());
  assert.equal(junk.kept, false);
});

test('inputs are packed root-owned with their modes; a path that climbs is refused', async () => {
  const stream = packInputs([
    { type: 'dir', path: '/job/in', mode: 0o755, uid: 0 },
    { type: 'file', path: '/job/in/series.mbox', mode: 0o444, uid: 0, content: 'From x\n' },
  ]);
  const seen: Array<[string, string, number, number]> = [];
  const extract = tar.extract();
  extract.on('entry', (h, body, next) => { seen.push([h.name, h.type ?? '', h.mode ?? 0, h.uid ?? -1]); body.resume(); body.on('end', next); });
  await new Promise<void>((resolve, reject) => { extract.on('finish', resolve); extract.on('error', reject); stream.pipe(extract); });
  assert.deepEqual(seen, [['job/in/', 'directory', 0o755, 0], ['job/in/series.mbox', 'file', 0o444, 0]]);
  assert.throws(() => packInputs([{ type: 'file', path: '/job/in/../../etc/passwd', mode: 0o444, uid: 0, content: '' }]), /not a plain absolute path/);
});

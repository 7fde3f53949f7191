import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TreeCatalog, type Tree } from '../../catalog/trees.ts';
import { PatchbayError } from '../../domain/errors.ts';
import { parseMbox } from '../../domain/mbox.ts';
import { assembleSeries, type Series } from '../../domain/series.ts';
import { mirrorGit, preImageBlobs, prerequisiteMessageIds, resolveBase, type BaseDecision, type BaseGit, type ResolvedCommit } from '../base.ts';

// ---------------------------------------------------------------------------
// Series from mail text

interface FileEdit {
  path: string;
  /** Pre-image blob id as the index line gives it; null: a created file. */
  old: string | null;
  new?: string;
}

function diff(files: readonly FileEdit[]): string {
  return files
    .map((f) =>
      f.old === 'noindex'
        ? `diff --git a/${f.path} b/${f.path}\n--- a/${f.path}\n+++ b/${f.path}\n@@ -1 +1 @@\n-a\n+b\n`
        : f.old === null
        ? `diff --git a/${f.path} b/${f.path}\nnew file mode 100644\nindex 0000000..${f.new ?? 'aaaaaaa'}\n--- /dev/null\n+++ b/${f.path}\n@@ -0,0 +1 @@\n+n\n`
        : `diff --git a/${f.path} b/${f.path}\nindex ${f.old}..${f.new ?? 'bbbbbbb'} 100644\n--- a/${f.path}\n+++ b/${f.path}\n@@ -1 +1 @@\n-a\n+b\n`,
    )
    .join('');
}

let mailNo = 0;
function mail(subject: string, body: string, inReplyTo?: string): { id: string; text: string } {
  const id = `m${++mailNo}@example.org`;
  const reply = inReplyTo === undefined ? '' : `In-Reply-To: <${inReplyTo}>\n`;
  return {
    id,
    text: `From patchbay Thu Jan  1 00:00:00 2026\nFrom: A U Thor <a@example.org>\nSubject: ${subject}\nMessage-ID: <${id}>\n${reply}Date: Thu, 01 Jan 2026 00:00:${String(mailNo % 60).padStart(2, '0')} +0000\n\n${body}\n`,
  };
}

/** A series of patches (each a list of file edits), with an optional cover letter body and subject tags. */
function series(patches: ReadonlyArray<readonly FileEdit[]>, opts: { tags?: string; cover?: string; firstBody?: string } = {}): Series {
  const tags = opts.tags === undefined ? '' : `${opts.tags} `;
  const total = patches.length;
  const msgs: string[] = [];
  let parent: string | undefined;
  if (opts.cover !== undefined) {
    const c = mail(`[PATCH ${tags}0/${total}] the series`, `${opts.cover}\n`);
    msgs.push(c.text);
    parent = c.id;
  }
  patches.forEach((files, i) => {
    const pre = i === 0 && opts.firstBody !== undefined ? `${opts.firstBody}\n` : '';
    const m = mail(`[PATCH ${tags}${i + 1}/${total}] change ${i + 1}`, `Change ${i + 1}.\n\nSigned-off-by: A U Thor <a@example.org>\n---\n${diff(files)}${pre === '' ? '' : `\n${pre}`}`, parent);
    msgs.push(m.text);
  });
  return assembleSeries(parseMbox(msgs.join('\n')));
}

// ---------------------------------------------------------------------------
// A fake BaseGit: trees as data

const sha = (name: string): string => createHash('sha1').update(name).digest('hex');
const blob = (name: string): string => createHash('sha1').update(`blob ${name}`).digest('hex');

interface FakeTree {
  /** ref name -> commit */
  refs: Record<string, string>;
  /** The history of every ref, newest first (one line of history is enough here). */
  history: string[];
  tags?: Array<{ tag: string; commit: string }>;
  /** commit -> path -> full blob id */
  files: Record<string, Record<string, string>>;
  /** Mirror not here. */
  absent?: boolean;
}

function fakeGit(trees: Record<string, FakeTree>): BaseGit & { calls: string[] } {
  const calls: string[] = [];
  const get = (name: string): FakeTree => {
    const t = trees[name];
    if (t === undefined) throw new Error(`fake: no tree ${name}`);
    return t;
  };
  return {
    calls,
    hasRef(tree, ref) {
      calls.push(`hasRef ${tree} ${ref}`);
      const t = get(tree);
      return Promise.resolve(t.absent !== true && t.refs[ref] !== undefined);
    },
    resolveCommit(tree, rev): Promise<ResolvedCommit> {
      calls.push(`resolveCommit ${tree} ${rev}`);
      const t = get(tree);
      const ref = t.refs[rev];
      if (ref !== undefined) return Promise.resolve({ kind: 'commit', sha: ref });
      const all = new Set([...t.history, ...(t.tags ?? []).map((x) => x.commit), ...Object.keys(t.files)]);
      const hits = [...all].filter((c) => /^[0-9a-f]{4,}$/.test(rev) && c.startsWith(rev));
      if (hits.length > 1) return Promise.resolve({ kind: 'ambiguous' });
      return Promise.resolve(hits[0] === undefined ? { kind: 'missing' } : { kind: 'commit', sha: hits[0] });
    },
    recentCommits(tree, ref, n) {
      calls.push(`recentCommits ${tree} ${ref} ${n}`);
      return Promise.resolve(get(tree).history.slice(0, n));
    },
    recentTags(tree, n) {
      calls.push(`recentTags ${tree} ${n}`);
      return Promise.resolve((get(tree).tags ?? []).slice(0, n));
    },
    blobsAt(tree, commit, paths) {
      calls.push(`blobsAt ${tree} ${commit.slice(0, 7)} ${paths.join(',')}`);
      const at = get(tree).files[commit] ?? {};
      return Promise.resolve(new Map(paths.flatMap((p) => (at[p] === undefined ? [] : [[p, at[p]] as [string, string]]))));
    },
  };
}

const catalogTree = (name: string, ref: string, match?: Tree['match']): Tree => ({
  name,
  ref,
  url: `file:///srv/${name}`,
  ...(match === undefined ? {} : { match }),
});

/** Two trees: "io" (io_uring paths, tags io_uring-7.2/for-next) and "fuse" (fs/fuse/). */
const trees = new TreeCatalog([
  catalogTree('io', 'for-next', { tags: ['io_uring-7.2', 'for-next'], paths: ['io_uring/', 'include/uapi/linux/io_uring.h'] }),
  catalogTree('fuse', 'master', { tags: ['fuse'], paths: ['fs/fuse/', 'include/uapi/linux/fuse.h'] }),
]);

// io: history i3 (tip), i2, i1; kbuf.c changed at each; rsrc.c the same throughout.
const [i1, i2, i3] = [sha('i1'), sha('i2'), sha('i3')];
// fuse: f2 (tip), f1; a tag v7.1 on an older commit f0, out of the recent history.
const [f0, f1, f2] = [sha('f0'), sha('f1'), sha('f2')];
const fakeTrees = (): { io: FakeTree; fuse: FakeTree } => ({
  io: {
    refs: { 'for-next': i3, 'v7.2-rc1': i1 },
    history: [i3, i2, i1],
    files: {
      [i3]: { 'io_uring/kbuf.c': blob('kbuf3'), 'io_uring/rsrc.c': blob('rsrc') },
      [i2]: { 'io_uring/kbuf.c': blob('kbuf2'), 'io_uring/rsrc.c': blob('rsrc') },
      [i1]: { 'io_uring/kbuf.c': blob('kbuf1'), 'io_uring/rsrc.c': blob('rsrc') },
    },
  },
  fuse: {
    refs: { master: f2 },
    history: [f2, f1],
    tags: [{ tag: 'v7.1', commit: f0 }],
    files: {
      [f2]: { 'fs/fuse/dev.c': blob('dev2') },
      [f1]: { 'fs/fuse/dev.c': blob('dev1') },
      [f0]: { 'fs/fuse/dev.c': blob('dev0') },
    },
  },
});

const ab = (b: string, n = 7): string => b.slice(0, n);
const defaults = { trees, requestedTree: null, requestedBase: null, historyDepth: 10 };

function expectFound(d: BaseDecision, tree: string, commit: string, rule: string): Extract<BaseDecision, { kind: 'found' }> {
  assert.equal(d.kind, 'found', JSON.stringify(d));
  assert.deepEqual([d.tree, d.commit, d.rule], [tree, commit, rule], d.detail);
  return d;
}

function expectNoBase(d: BaseDecision, reason: RegExp): Extract<BaseDecision, { kind: 'no-base' }> {
  assert.equal(d.kind, 'no-base', JSON.stringify(d));
  assert.match(d.reason, reason);
  return d;
}

const kbufAt = (b: string): FileEdit[] => [{ path: 'io_uring/kbuf.c', old: ab(b) }];

// ---------------------------------------------------------------------------

describe('resolveBase with a fake BaseGit', () => {
  describe('requested', () => {
    it('a requested base that resolves in the requested tree decides, before everything else', async () => {
      const s = series([kbufAt(blob('kbuf3'))], { cover: `base-commit: ${i2}\nprerequisite-patch-id: ${sha('p')}` });
      const d = await resolveBase(s, { ...defaults, git: fakeGit(fakeTrees()), requestedTree: 'io', requestedBase: 'v7.2-rc1' });
      const f = expectFound(d, 'io', i1, 'requested');
      assert.match(f.detail, /requested base "v7\.2-rc1" is commit [0-9a-f]{12} of io/);
    });

    it('without a requested tree, the first tree in catalog order that has it', async () => {
      const d = await resolveBase(series([kbufAt('1234567')]), { ...defaults, git: fakeGit(fakeTrees()), requestedBase: f1.slice(0, 10) });
      expectFound(d, 'fuse', f1, 'requested');
    });

    it('a requested base the tree does not have is no base, and no other rule is tried', async () => {
      const git = fakeGit(fakeTrees());
      const d = expectNoBase(
        await resolveBase(series([kbufAt(blob('kbuf3'))]), { ...defaults, git, requestedTree: 'io', requestedBase: f1 }),
        new RegExp(`requested base "${f1}" is not a commit of tree io`),
      );
      assert.equal(d.tried.length, 1);
      assert.ok(!git.calls.some((c) => c.startsWith('blobsAt') || c.startsWith('recentCommits')), git.calls.join('\n'));
    });

    it('an ambiguous short id, an option-like or malformed base, an unknown tree: no base', async () => {
      const git = fakeGit(fakeTrees());
      const s = series([kbufAt('1234567')]);
      const twins = fakeTrees();
      const c1 = `abcd${'1'.repeat(36)}`;
      const c2 = `abcd${'2'.repeat(36)}`;
      twins.io.history = [c1, c2];
      twins.io.files = { [c1]: {}, [c2]: {} };
      expectNoBase(await resolveBase(s, { ...defaults, git: fakeGit(twins), requestedTree: 'io', requestedBase: 'abcd' }), /"abcd" is ambiguous in io/);
      expectNoBase(await resolveBase(s, { ...defaults, git, requestedBase: '--upload-pack=touch /tmp/x' }), /is not a commit id or ref/);
      expectNoBase(await resolveBase(s, { ...defaults, git, requestedBase: '-n' }), /is not a commit id or ref/);
      expectNoBase(await resolveBase(s, { ...defaults, git, requestedTree: 'net-next', requestedBase: null }), /requested tree "net-next" is not one of this service's trees \(io, fuse\)/);
      assert.ok(!git.calls.some((c) => c.includes('upload-pack') || c.includes(' -n')), git.calls.join('\n'));
    });
  });

  describe('prerequisites', () => {
    it('prerequisite-patch-id not fetched: no base, even with a base-commit the tree has', async () => {
      const s = series([kbufAt(blob('kbuf3'))], { cover: `base-commit: ${i2}\nprerequisite-patch-id: ${sha('p1')}\nprerequisite-patch-id: ${sha('p2')}` });
      const git = fakeGit(fakeTrees());
      const d = expectNoBase(await resolveBase(s, { ...defaults, git }), /^needs prerequisite patches \(prerequisite-patch-id [0-9a-f]{40}, prerequisite-patch-id [0-9a-f]{40}\), which were not fetched$/);
      assert.deepEqual(d.tried.map((l) => l.split(':')[0]), ['requested', 'prerequisites']);
      assert.deepEqual(git.calls, [], 'no guessing');
    });

    it('prerequisite-message-id: read from the cover letter, else the first patch', async () => {
      const withCover = series([kbufAt(blob('kbuf3'))], { cover: 'prerequisite-message-id: <dep-1@example.org>\nprerequisite-message-id: dep-2@example.org' });
      assert.deepEqual(prerequisiteMessageIds(withCover), ['dep-1@example.org', 'dep-2@example.org']);
      const inPatch = series([kbufAt(blob('kbuf3'))], { firstBody: 'prerequisite-message-id: <dep-3@example.org>' });
      assert.deepEqual(prerequisiteMessageIds(inPatch), ['dep-3@example.org']);
      assert.deepEqual(prerequisiteMessageIds(series([kbufAt(blob('kbuf3'))])), []);
      expectNoBase(await resolveBase(withCover, { ...defaults, git: fakeGit(fakeTrees()) }), /needs prerequisite patches \(prerequisite-message-id <dep-1@example\.org>, prerequisite-message-id <dep-2@example\.org>\)/);
    });
  });

  describe('with the prerequisites fetched', () => {
    // The prerequisite changes kbuf.c from kbuf2 to kbufP; the series then changes kbufP.
    const prereq = (): Series => series([[{ path: 'io_uring/kbuf.c', old: ab(blob('kbuf2')), new: ab(blob('kbufP')) }]]);
    const onTop = (cover: string): Series => series([[{ path: 'io_uring/kbuf.c', old: ab(blob('kbufP')) }, { path: 'io_uring/rsrc.c', old: ab(blob('rsrc')) }]], { cover: `${cover}prerequisite-patch-id: ${sha('p1')}` });

    it('the base-commit decides, and the decision says the prerequisites go first', async () => {
      const d = await resolveBase(onTop(`base-commit: ${i2}\n`), { ...defaults, git: fakeGit(fakeTrees()), prerequisites: prereq() });
      const f = expectFound(d, 'io', i2, 'base-commit');
      assert.match(f.detail, /of io \(with 1 prerequisite patch applied first\)$/);
      assert.match(f.tried.join('\n'), /^prerequisites: 1 patch fetched, applied before the series$/m);
    });

    it('without a base-commit, the blob guess reads the prerequisites\' pre-images, then the series\' files they do not touch', async () => {
      const git = fakeGit(fakeTrees());
      const d = await resolveBase(onTop(''), { ...defaults, git, prerequisites: prereq() });
      // kbuf2 is at i2 only; the series' own pre-image of kbuf.c (kbufP) is no base's.
      expectFound(d, 'io', i2, 'blob-guess');
      assert.ok(git.calls.some((c) => c === `blobsAt io ${i2.slice(0, 7)} io_uring/kbuf.c,io_uring/rsrc.c`), git.calls.join('\n'));
    });

    it('no tree-map guess for a series with prerequisites: no base', async () => {
      const unindexed = series([[{ path: 'io_uring/kbuf.c', old: 'noindex' }]], { cover: `prerequisite-patch-id: ${sha('p1')}` });
      const pre = series([[{ path: 'io_uring/rsrc.c', old: 'noindex' }]]);
      const d = expectNoBase(await resolveBase(unindexed, { ...defaults, git: fakeGit(fakeTrees()), prerequisites: pre }), /^the series and its prerequisites name no base this service has/);
      assert.match(d.tried.join('\n'), /^tree-map: not for a series with prerequisites/m);
    });
  });

  describe('base-commit', () => {
    it('the requested tree first, then catalog order; a short id resolves', async () => {
      const s = series([kbufAt('1234567')], { cover: `base-commit: ${f1.slice(0, 12)}` });
      const git = fakeGit(fakeTrees());
      const d = expectFound(await resolveBase(s, { ...defaults, git, requestedTree: 'fuse' }), 'fuse', f1, 'base-commit');
      assert.match(d.detail, /the series' base-commit [0-9a-f]{12} is commit [0-9a-f]{12} of fuse/);
      assert.equal(git.calls.filter((c) => c.startsWith('resolveCommit'))[0], `resolveCommit fuse ${f1.slice(0, 12)}`);
      // without a request: io is asked first, does not have it, fuse does
      const git2 = fakeGit(fakeTrees());
      expectFound(await resolveBase(s, { ...defaults, git: git2 }), 'fuse', f1, 'base-commit');
      assert.deepEqual(git2.calls.filter((c) => c.startsWith('resolveCommit')), [`resolveCommit io ${f1.slice(0, 12)}`, `resolveCommit fuse ${f1.slice(0, 12)}`]);
    });

    it('ambiguous in one tree, absent from all, or a tree without its mirror: the next rule is tried', async () => {
      const t = fakeTrees();
      const c1 = `${i2.slice(0, 7)}${'0'.repeat(33)}`;
      t.io.history.push(c1);
      t.fuse.absent = true;
      const s = series([kbufAt(blob('kbuf2'))], { cover: `base-commit: ${i2.slice(0, 7)}` });
      const d = expectFound(await resolveBase(s, { ...defaults, git: fakeGit(t) }), 'io', i2, 'blob-guess');
      assert.match(d.tried.find((l) => l.startsWith('base-commit')) ?? '', /is in none of the trees \(the short id is ambiguous in io; fuse has no mirror here with its ref master\)/);
      const s2 = series([kbufAt(blob('kbuf2'))], { cover: `base-commit: ${sha('elsewhere')}` });
      const d2 = expectFound(await resolveBase(s2, { ...defaults, git: fakeGit(fakeTrees()) }), 'io', i2, 'blob-guess');
      assert.match(d2.tried.join('\n'), /base-commit: [0-9a-f]{40} is in none of the trees \(not in io; not in fuse\)/);
    });
  });

  describe('blob-guess', () => {
    it('the newest commit of the ref where every pre-image matches; detail says how many at which', async () => {
      const s = series([[...kbufAt(blob('kbuf2')), { path: 'io_uring/rsrc.c', old: ab(blob('rsrc')) }]]);
      const d = expectFound(await resolveBase(s, { ...defaults, git: fakeGit(fakeTrees()) }), 'io', i2, 'blob-guess');
      assert.match(d.detail, new RegExp(`all 2 pre-image blobs of the series \\(io_uring/kbuf.c, io_uring/rsrc.c\\) match commit ${i2.slice(0, 12)} of io, the 2nd newest commit of for-next`));
      // unchanged files match at the tip: the newest wins
      const tip = series([[{ path: 'io_uring/rsrc.c', old: ab(blob('rsrc'), 12) }]]);
      assert.match(expectFound(await resolveBase(tip, { ...defaults, git: fakeGit(fakeTrees()) }), 'io', i3, 'blob-guess').detail, /the one pre-image blob of the series \(io_uring\/rsrc\.c\) matches commit [0-9a-f]{12} of io, the tip of for-next$/);
    });

    it("only each path's first touch counts; created files are skipped (b4)", async () => {
      // patch 2 changes kbuf.c again (its pre-image is patch 1's post-image) and a file patch 1 created
      const s = series([
        [...kbufAt(blob('kbuf1')), { path: 'io_uring/new.c', old: null }],
        [{ path: 'io_uring/kbuf.c', old: 'ccccccc' }, { path: 'io_uring/new.c', old: 'ddddddd' }],
      ]);
      assert.deepEqual(preImageBlobs(s), { preImages: [{ path: 'io_uring/kbuf.c', blob: ab(blob('kbuf1')) }], unindexed: 0 });
      expectFound(await resolveBase(s, { ...defaults, git: fakeGit(fakeTrees()) }), 'io', i1, 'blob-guess');
    });

    it("a tree's tags are read after the ref's recent history", async () => {
      const s = series([[{ path: 'fs/fuse/dev.c', old: ab(blob('dev0')) }]]);
      const d = expectFound(await resolveBase(s, { ...defaults, git: fakeGit(fakeTrees()) }), 'fuse', f0, 'blob-guess');
      assert.match(d.detail, /of fuse, tag v7\.1/);
    });

    it('historyDepth bounds the history read', async () => {
      const s = series([kbufAt(blob('kbuf1'))]);
      const git = fakeGit(fakeTrees());
      const d = await resolveBase(s, { ...defaults, git, historyDepth: 2 });
      assert.ok(git.calls.includes('recentCommits io for-next 2'));
      // not found in i3, i2: the blobs say the series is on something else; no guess from paths
      const f = expectNoBase(d, /pre-image blobs match no commit this service has/);
      assert.match(f.tried.join('\n'), /blob-guess: no tree has every pre-image blob: io: no commit in the last 2 commits of for-next and 0 newest tags has all 1; best 0\/1 at [0-9a-f]{12} \(the tip of for-next\)/);
    });

    it('no commit has all: the best partial match is in tried', async () => {
      const s = series([[...kbufAt(blob('kbuf1')), { path: 'io_uring/rsrc.c', old: ab(blob('rsrc-other')) }, { path: 'fs/fuse/dev.c', old: ab(blob('dev1')) }]]);
      const d = expectNoBase(await resolveBase(s, { ...defaults, git: fakeGit(fakeTrees()) }), /pre-image blobs match no commit this service has/);
      const line = d.tried.find((l) => l.startsWith('blob-guess')) ?? '';
      assert.match(line, new RegExp(`io: no commit in the last 3 commits of for-next and 0 newest tags has all 3; best 1/3 at ${i1.slice(0, 12)} \\(the 3rd newest commit of for-next\\)`));
      assert.match(line, new RegExp(`fuse: no commit in the last 2 commits of master and 1 newest tag has all 3; best 1/3 at ${f1.slice(0, 12)}`));
      assert.deepEqual(d.tried.map((l) => l.split(':')[0]), ['requested', 'base-commit', 'blob-guess'], 'tree-map is not tried against the blobs');
    });

    it('patches without index lines, or creating only: the rule says so', async () => {
      const plain = assembleSeries(parseMbox(mail('[PATCH] x', 'x\n---\n--- a/io_uring/kbuf.c\n+++ b/io_uring/kbuf.c\n@@ -1 +1 @@\n-a\n+b\n').text));
      const d = expectFound(await resolveBase(plain, { ...defaults, git: fakeGit(fakeTrees()) }), 'io', i3, 'tree-map');
      assert.match(d.tried.join('\n'), /blob-guess: the patches carry no pre-image blob ids \(1 file without an "index" line/);
      const created = series([[{ path: 'io_uring/new.c', old: null }]]);
      const d2 = expectFound(await resolveBase(created, { ...defaults, git: fakeGit(fakeTrees()) }), 'io', i3, 'tree-map');
      assert.match(d2.tried.join('\n'), /blob-guess: the series only creates files/);
    });
  });

  describe('tree-map', () => {
    // tree-map decides only for patches that name no pre-image (no "index" line).
    const unknownBlob = (path: string): FileEdit[] => [{ path, old: 'noindex' }];

    it('a subject tag names a tree: its ref, said to be a guess', async () => {
      const s = series([unknownBlob('fs/fuse/dev.c')], { tags: 'IO_URING-7.2' });
      const d = expectFound(await resolveBase(s, { ...defaults, git: fakeGit(fakeTrees()) }), 'io', i3, 'tree-map');
      assert.equal(d.detail, `a guess from the subject tag [IO_URING-7.2], which names tree io: on for-next = ${i3.slice(0, 12)}`);
    });

    it('tags that name no configured tree: no base, even when the paths match', async () => {
      const s = series([unknownBlob('io_uring/kbuf.c')], { tags: 'net-next' });
      const d = expectNoBase(await resolveBase(s, { ...defaults, git: fakeGit(fakeTrees()), requestedTree: 'io' }), /for a tree this service does not have: its subject tag \[net-next\] names none of io, fuse/);
      assert.equal(d.tried.at(-1), `tree-map: ${d.reason}`);
    });

    it('without tags: the tree whose match.paths cover every path', async () => {
      const s = series([unknownBlob('fs/fuse/dev.c'), unknownBlob('include/uapi/linux/fuse.h')]);
      const d = expectFound(await resolveBase(s, { ...defaults, git: fakeGit(fakeTrees()) }), 'fuse', f2, 'tree-map');
      assert.equal(d.detail, `a guess from paths: all 2 paths of the series are under fuse's match.paths, and no subject tag names a tree: on master = ${f2.slice(0, 12)}`);
    });

    it('without tags, a requested tree is the guess, with how its paths cover the series', async () => {
      const s = series([unknownBlob('fs/fuse/dev.c'), unknownBlob('net/core/dev.c')]);
      const d = expectFound(await resolveBase(s, { ...defaults, git: fakeGit(fakeTrees()), requestedTree: 'io' }), 'io', i3, 'tree-map');
      assert.match(d.detail, /^a guess from the request: tree io was named, no subject tag, 2 of 2 paths outside its match\.paths \(fs\/fuse\/dev\.c, net\/core\/dev\.c\): on for-next = [0-9a-f]{12}$/);
    });

    it('paths no tree covers: no base, every rule in tried', async () => {
      const s = series([unknownBlob('io_uring/kbuf.c'), unknownBlob('fs/fuse/dev.c')]);
      const d = expectNoBase(await resolveBase(s, { ...defaults, git: fakeGit(fakeTrees()) }), /^no rule named a base: /);
      assert.deepEqual(d.tried.map((l) => l.split(':')[0]), ['requested', 'base-commit', 'blob-guess', 'tree-map']);
      assert.match(d.tried[3] ?? '', /no subject tag, and no tree's match\.paths cover all 2 paths \(io leaves out fs\/fuse\/dev\.c; fuse leaves out io_uring\/kbuf\.c\)/);
    });

    it("the tree's mirror not here: not decided", async () => {
      const t = fakeTrees();
      t.fuse.absent = true;
      const s = series([unknownBlob('fs/fuse/dev.c')], { tags: 'fuse' });
      const d = expectNoBase(await resolveBase(s, { ...defaults, git: fakeGit(t) }), /^no rule named a base/);
      assert.match(d.tried.at(-1) ?? '', /tree-map: the subject tag \[fuse\], which names tree fuse, but fuse has no mirror here with its ref master/);
    });
  });
});

// ---------------------------------------------------------------------------
// mirrorGit on a real repository

describe('mirrorGit on a real git repository', () => {
  const root = mkdtempSync(join(tmpdir(), 'patchbay-base-'));
  const work = join(root, 'work');
  const mirrors = join(root, 'mirrors');
  const mirror = join(mirrors, 'lin.git');
  let clock = 1_767_225_600; // 2026-01-01
  const env = (): NodeJS.ProcessEnv => {
    clock += 60;
    const date = `${clock} +0000`;
    return {
      ...process.env,
      GIT_AUTHOR_NAME: 'A U Thor',
      GIT_AUTHOR_EMAIL: 'a@example.org',
      GIT_COMMITTER_NAME: 'A U Thor',
      GIT_COMMITTER_EMAIL: 'a@example.org',
      GIT_AUTHOR_DATE: date,
      GIT_COMMITTER_DATE: date,
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_CONFIG_NOSYSTEM: '1',
    };
  };
  const git = (args: string[], cwd = work): string => execFileSync('git', args, { cwd, env: env(), encoding: 'utf8' }).trim();
  const write = (files: Record<string, string>): void => {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(work, path)), { recursive: true });
      writeFileSync(join(work, path), text);
    }
  };
  const commit = (files: Record<string, string>, message: string): string => {
    write(files);
    git(['add', '-A']);
    git(['commit', '-q', '-m', message]);
    return git(['rev-parse', 'HEAD']);
  };
  const C: string[] = [];
  const catalog = new TreeCatalog([catalogTree('lin', 'main', { paths: ['io_uring/', 'fs/fuse/'] })]);
  const port = mirrorGit(mirrors, { env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' } });

  before(() => {
    mkdirSync(work, { recursive: true });
    git(['init', '-q', '-b', 'main']);
    C.push(commit({ 'io_uring/kbuf.c': 'v1\n', 'fs/fuse/dev.c': 'f1\n', README: 'r\n', 'odd name *.txt': 'o\n' }, 'c1'));
    git(['tag', 'old']);
    C.push(commit({ 'io_uring/kbuf.c': 'v2\n' }, 'c2'));
    git(['tag', '-a', '-m', 'release', 'v1.0']);
    C.push(commit({ 'io_uring/kbuf.c': 'v3\n' }, 'c3'));
    C.push(commit({ README: 'r2\n' }, 'c4'));
    C.push(commit({ 'fs/fuse/dev.c': 'f2\n' }, 'c5'));
    const readme = git(['rev-parse', 'HEAD:README']);
    git(['tag', 'a-blob', readme]);
    git(['clone', '-q', '--bare', work, mirror], root);
  });
  after(() => { rmSync(root, { recursive: true, force: true }); });

  /** The series `git format-patch` makes of commits made on a branch from `from` (not in the mirror). */
  const topic = (name: string, from: string, commits: Array<Record<string, string>>, formatArgs: string[] = []): Series => {
    git(['checkout', '-q', '-b', name, from]);
    commits.forEach((files, i) => commit(files, `${name} ${i + 1}`));
    const mbox = git(['format-patch', '--stdout', '--thread', '--cover-letter', ...formatArgs, `${from}..${name}`]);
    git(['checkout', '-q', 'main']);
    return assembleSeries(parseMbox(`${mbox}\n`));
  };

  it('hasRef and resolveCommit', async () => {
    const [c1, c2, c3] = C as [string, string, string];
    assert.equal(await port.hasRef('lin', 'main'), true);
    assert.equal(await port.hasRef('lin', 'nope'), false);
    assert.equal(await port.hasRef('absent', 'main'), false);
    assert.deepEqual(await port.resolveCommit('lin', c3), { kind: 'commit', sha: c3 });
    assert.deepEqual(await port.resolveCommit('lin', c3.slice(0, 7)), { kind: 'commit', sha: c3 });
    assert.deepEqual(await port.resolveCommit('lin', 'v1.0'), { kind: 'commit', sha: c2 }, 'an annotated tag, peeled');
    assert.deepEqual(await port.resolveCommit('lin', 'old'), { kind: 'commit', sha: c1 });
    assert.deepEqual(await port.resolveCommit('lin', 'main~4'), { kind: 'commit', sha: c1 });
    assert.deepEqual(await port.resolveCommit('lin', 'a-blob'), { kind: 'missing' }, 'a tag of a blob is no commit');
    assert.deepEqual(await port.resolveCommit('lin', sha('nowhere')), { kind: 'missing' });
    assert.deepEqual(await port.resolveCommit('absent', 'main'), { kind: 'missing' });
  });

  it('refuses option-like revisions, short commit ids in blobsAt and tree names that are paths', async () => {
    for (const rev of ['--output=/tmp/x', '-n', 'a b', 'HEAD:README', '']) {
      await assert.rejects(port.resolveCommit('lin', rev), (e: unknown) => e instanceof PatchbayError && e.code === 'BASE_INVALID', rev);
    }
    await assert.rejects(port.blobsAt('lin', 'main', ['README']), (e: unknown) => e instanceof PatchbayError && e.code === 'BASE_INVALID');
    for (const tree of ['../lin', 'lin/../lin', '/etc', 'Lin', '']) {
      await assert.rejects(port.hasRef(tree, 'main'), (e: unknown) => e instanceof PatchbayError && e.code === 'TREE_UNKNOWN', tree);
    }
  });

  it('an ambiguous short id', async () => {
    // Enough commits (made in one fast-import) for two to share 4 hex digits.
    const amb = join(mirrors, 'amb.git');
    git(['init', '-q', '--bare', amb], root);
    let stream = '';
    for (let i = 1; i <= 1500; i++) {
      stream += `commit refs/heads/main\nmark :${i}\ncommitter A <a@example.org> ${1_767_225_600 + i} +0000\ndata ${String(i).length}\n${i}\n${i > 1 ? `from :${i - 1}\n` : ''}`;
    }
    execFileSync('git', [`--git-dir=${amb}`, 'fast-import', '--quiet'], { input: stream, env: env() });
    const ids = git([`--git-dir=${amb}`, 'rev-list', 'main'], root).split('\n');
    const seen = new Set<string>();
    const twin = ids.map((id) => id.slice(0, 4)).find((p) => (seen.has(p) ? true : (seen.add(p), false)));
    assert.ok(twin !== undefined);
    assert.deepEqual(await port.resolveCommit('amb', twin), { kind: 'ambiguous' });
    assert.equal((await port.resolveCommit('amb', ids[0]?.slice(0, 12) ?? '')).kind, 'commit');
  });

  it('recentCommits and recentTags', async () => {
    const [c1, c2, c3, c4, c5] = C as [string, string, string, string, string];
    assert.deepEqual(await port.recentCommits('lin', 'main', 3), [c5, c4, c3]);
    assert.deepEqual(await port.recentCommits('lin', 'main', 100), [c5, c4, c3, c2, c1]);
    assert.deepEqual(await port.recentCommits('lin', 'main', 0), []);
    assert.deepEqual(await port.recentTags('lin', 10), [
      { tag: 'v1.0', commit: c2 },
      { tag: 'old', commit: c1 },
    ], 'newest first; the tag of a blob is left out');
    await assert.rejects(port.recentCommits('lin', 'nope', 3), (e: unknown) => e instanceof PatchbayError && e.code === 'BASE_GIT_FAILED');
  });

  it('blobsAt: one ls-tree for all paths, literal pathspecs, only files', async () => {
    const c3 = C[2] ?? '';
    const expected = (path: string): string => git([`--git-dir=${mirror}`, 'rev-parse', `${c3}:${path}`], root);
    const got = await port.blobsAt('lin', c3, ['io_uring/kbuf.c', 'fs/fuse/dev.c', 'odd name *.txt', 'missing.c', 'io_uring', '*', '-n', ':(glob)**']);
    assert.deepEqual(
      [...got.entries()].sort(),
      [
        ['fs/fuse/dev.c', expected('fs/fuse/dev.c')],
        ['io_uring/kbuf.c', expected('io_uring/kbuf.c')],
        ['odd name *.txt', expected('odd name *.txt')],
      ],
    );
    // thousands of paths: split over calls, same answer
    const many = [...Array.from({ length: 3000 }, (_, i) => `nowhere/${'x'.repeat(60)}/${i}.c`), 'io_uring/kbuf.c'];
    assert.deepEqual([...(await port.blobsAt('lin', c3, many)).keys()], ['io_uring/kbuf.c']);
  });

  it('bounded output', async () => {
    const tiny = mirrorGit(mirrors, { maxOutputBytes: 50 });
    await assert.rejects(tiny.recentCommits('lin', 'main', 5), (e: unknown) => e instanceof PatchbayError && e.code === 'BASE_GIT_FAILED' && e.retryable && /wrote more than 50 bytes/.test(e.message));
  });

  it('resolveBase end to end: base-commit, blob-guess (newest match, tags), tree-map', async () => {
    const [c1, , c3, c4] = C as [string, string, string, string];
    // based on c3 (kbuf v3, dev f1): c5 changed dev.c, so c4 is the newest where both match
    const onC3 = topic('on-c3', c3, [{ 'io_uring/kbuf.c': 'v3 fixed\n', 'fs/fuse/dev.c': 'f1 fixed\n' }, { 'io_uring/kbuf.c': 'v3 fixed twice\n', 'io_uring/new.c': 'n\n' }]);
    assert.equal(onC3.baseCommit, null);
    assert.deepEqual(preImageBlobs(onC3).preImages.map((p) => p.path), ['fs/fuse/dev.c', 'io_uring/kbuf.c']);
    const opts = { trees: catalog, git: port, requestedTree: null, requestedBase: null, historyDepth: 10 };
    const d = expectFound(await resolveBase(onC3, opts), 'lin', c4, 'blob-guess');
    assert.match(d.detail, /all 2 pre-image blobs .* match commit [0-9a-f]{12} of lin, the 2nd newest commit of main/);
    // the same with --base: the trailer decides
    const withBase = topic('on-c3-base', c3, [{ 'io_uring/kbuf.c': 'v3 again\n' }], [`--base=${c3}`]);
    assert.equal(withBase.baseCommit, c3);
    expectFound(await resolveBase(withBase, opts), 'lin', c3, 'base-commit');
    // based on c1, past historyDepth: the lightweight tag "old" has it
    const onC1 = topic('on-c1', c1, [{ 'io_uring/kbuf.c': 'v1 fixed\n', 'fs/fuse/dev.c': 'f1 fixed\n' }]);
    const d1 = expectFound(await resolveBase(onC1, { ...opts, historyDepth: 2 }), 'lin', c1, 'blob-guess');
    assert.match(d1.detail, /tag old/);
    // a base-commit the mirror does not have (a topic commit), blobs that match nowhere: no base, never a guess from paths
    const onTopic = topic('on-topic', 'on-c3', [{ 'io_uring/kbuf.c': 'v3 fixed thrice\n' }], ['--base=on-c3']);
    const d2 = expectNoBase(await resolveBase(onTopic, opts), /pre-image blobs match no commit this service has/);
    assert.match(d2.tried.join('\n'), /base-commit: [0-9a-f]{40} is in none of the trees \(not in lin\)/);
    assert.match(d2.tried.join('\n'), /best 0\/1/);
    assert.ok(!d2.tried.some((l) => l.startsWith('tree-map')));
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { PatchbayError } from '../../domain/errors.ts';
import { TreeCatalog, type Tree } from '../trees.ts';

const deployTrees = fileURLToPath(new URL('../../../deploy/trees.json', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'patchbay-trees-'));
after(() => { rmSync(scratch, { recursive: true, force: true }); });

let n = 0;
function file(trees: unknown): string {
  const path = join(scratch, `t${n++}.json`);
  writeFileSync(path, JSON.stringify({ trees }));
  return path;
}

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PatchbayError);
    assert.equal(e.code, 'TREES_INVALID');
    assert.match(e.message, pattern);
    return true;
  });
}

const tree = (name: string, match?: Tree['match']): Tree => ({ name, ref: 'main', url: `file:///srv/${name}`, ...(match === undefined ? {} : { match }) });

describe('TreeCatalog', () => {
  it('loads deploy/trees.json, whose tree maps io_uring and FUSE paths', () => {
    const catalog = TreeCatalog.load(deployTrees);
    const t = catalog.get('linux-7.1.y');
    const paths = t.match?.paths ?? [];
    for (const p of ['io_uring/kbuf.c', 'fs/fuse/dev.c', 'include/uapi/linux/io_uring.h', 'include/uapi/linux/fuse.h', 'include/linux/io_uring_types.h', 'tools/testing/selftests/filesystems/fuse/fusectl_test.c']) {
      assert.ok(paths.some((prefix) => p.startsWith(prefix)), p);
    }
    assert.ok(!paths.some((prefix) => 'net/core/dev.c'.startsWith(prefix)));
    assert.equal(catalog.byTag('7.1.Y')?.name, 'linux-7.1.y');
  });

  it('byTag: match.tags and the tree name, in any case; null for other tags', () => {
    const catalog = new TreeCatalog([tree('a', { tags: ['io_uring-7.2', 'For-Next'] }), tree('b')]);
    assert.equal(catalog.byTag('IO_URING-7.2')?.name, 'a');
    assert.equal(catalog.byTag('for-next')?.name, 'a');
    assert.equal(catalog.byTag('B')?.name, 'b');
    assert.equal(catalog.byTag('net-next'), null);
    assert.equal(catalog.byTag('io_uring'), null, 'exact, not a prefix');
  });

  it('a tag that names two trees is refused', () => {
    rejects(() => new TreeCatalog([tree('a', { tags: ['for-next'] }), tree('b', { tags: ['FOR-NEXT'] })]), /match tag "FOR-NEXT" already names tree "a"/);
    rejects(() => new TreeCatalog([tree('a'), tree('b', { tags: ['a'] })]), /match tag "a" already names tree "a"/);
    // the same tag twice on one tree is harmless
    assert.equal(new TreeCatalog([tree('a', { tags: ['x', 'X'] })]).byTag('x')?.name, 'a');
  });

  it('a bad match field stops loading, naming the field', () => {
    const base = { name: 'a', ref: 'main', url: 'file:///srv/a' };
    rejects(() => TreeCatalog.load(file([{ ...base, match: { tags: ['ok'], branch: 'x' } }])), /match/);
    rejects(() => TreeCatalog.load(file([{ ...base, match: { paths: ['/etc/'] } }])), /paths/);
    rejects(() => TreeCatalog.load(file([{ ...base, match: { paths: [''] } }])), /paths/);
    rejects(() => TreeCatalog.load(file([{ ...base, match: { tags: ['two words'] } }])), /tags/);
    rejects(() => TreeCatalog.load(file([{ ...base, match: { tags: 'for-next' } }])), /tags/);
    assert.deepEqual(TreeCatalog.load(file([{ ...base, match: {} }])).get('a').match, {});
  });
});

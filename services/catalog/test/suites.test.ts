import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { PatchbayError } from '../../domain/errors.ts';
import { SuiteCatalog } from '../suites.ts';

const repoSuites = fileURLToPath(new URL('../../../images/guest/suites', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'patchbay-suites-'));
after(() => { rmSync(scratch, { recursive: true, force: true }); });

let n = 0;
/** A catalogue folder with one suite "x" whose manifest is `manifest` (an object, or raw text). */
function catalogue(manifest: unknown, opts: { run?: boolean } = {}): string {
  const dir = join(scratch, `c${n++}`);
  mkdirSync(join(dir, 'x'), { recursive: true });
  writeFileSync(join(dir, 'x', 'manifest.json'), typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
  if (opts.run !== false) {
    writeFileSync(join(dir, 'x', 'run.sh'), '#!/bin/sh\necho "KTAP version 1"\n');
    chmodSync(join(dir, 'x', 'run.sh'), 0o755);
  }
  return dir;
}

const good = {
  name: 'x',
  description: 'a suite',
  timeoutSeconds: 60,
  testTimeoutSeconds: 10,
  kconfig: ['CONFIG_IO_URING=y'],
  build: { tree: ['make -C "$SRC/tools/testing/selftests/x"'] },
  run: 'run.sh',
  paths: ['io_uring/', 'include/uapi/linux/io_uring.h'],
};

function rejects(dir: string, pattern: RegExp): void {
  assert.throws(() => SuiteCatalog.load(dir), (e: unknown) => {
    assert.ok(e instanceof PatchbayError);
    assert.equal(e.code, 'SUITES_INVALID');
    assert.match(e.message, pattern);
    return true;
  });
}

describe('suite catalogue', () => {
  it('loads the repository\'s suites', () => {
    const names = SuiteCatalog.load(repoSuites).names();
    for (const s of ['kbuf', 'smoke']) assert.ok(names.includes(s), `${s} in ${names.join(', ')}`);
  });

  it('loads a valid manifest with tree builds and a per-test timeout', () => {
    const s = SuiteCatalog.load(catalogue(good)).get('x');
    assert.deepEqual(s.build.tree, good.build.tree);
    assert.equal(s.testTimeoutSeconds, 10);
  });

  it('a bad manifest stops start-up naming the file and the field', () => {
    rejects(catalogue('{ not json'), /x\/manifest\.json/);
    rejects(catalogue({ ...good, timeoutSeconds: 0 }), /timeoutSeconds/);
    rejects(catalogue({ ...good, kconfig: ['IO_URING=y'] }), /kconfig/);
    rejects(catalogue({ ...good, build: { image: [], later: [] } }), /build/);
    rejects(catalogue({ ...good, surprise: true }), /surprise|additional/i);
    rejects(catalogue({ ...good, name: 'y' }), /differs from its folder/);
    rejects(catalogue({ ...good, testTimeoutSeconds: 61 }), /testTimeoutSeconds \(61\) exceeds timeoutSeconds \(60\)/);
    rejects(catalogue(good, { run: false }), /run script "run\.sh" is missing or not executable/);
  });

  it('unknown names are SUITE_UNKNOWN with the known ones listed', () => {
    const c = SuiteCatalog.load(repoSuites);
    assert.throws(() => c.select(['nope']), (e: unknown) => e instanceof PatchbayError && e.code === 'SUITE_UNKNOWN' && /known suites: .*kbuf/.test(e.message));
  });

  it('a series\' changed paths select suites; nothing matching selects them all', () => {
    const dir = join(scratch, 'paths');
    cpSync(catalogue(good), dir, { recursive: true });
    cpSync(catalogue({ ...good, name: 'y', paths: ['fs/fuse/'] }), join(scratch, 'tmp-y'), { recursive: true });
    cpSync(join(scratch, 'tmp-y', 'x'), join(dir, 'y'), { recursive: true });
    const c = SuiteCatalog.load(dir);
    assert.deepEqual(c.forPaths(['io_uring/kbuf.c']).map((s) => s.name), ['x']);
    assert.deepEqual(c.forPaths(['fs/fuse/dev_uring.c', 'include/uapi/linux/io_uring.h']).map((s) => s.name), ['x', 'y']);
    assert.deepEqual(c.forPaths(['mm/slub.c']).map((s) => s.name), ['x', 'y']);
    assert.deepEqual(c.forPaths(['io_uring_is_not_a_prefix.c']).map((s) => s.name), ['x', 'y']);
  });
});

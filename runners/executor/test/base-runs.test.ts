import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type BootEvidence, DEFAULT_POLICY, compareWithBase, keyOf } from '../../../services/domain/compare.ts';
import type { TestResult } from '../../../services/domain/job.ts';
import type { TestStatus } from '../../../services/domain/status.ts';
import { BASE_HISTORY_BOOTS, BaseRunCache, type BaseRunKeyParts, baseRunKey } from '../base-runs.ts';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function cache(): { cache: BaseRunCache; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'patchbay-base-runs-'));
  dirs.push(dir);
  return { cache: new BaseRunCache(dir), dir };
}

const parts: BaseRunKeyParts = { baseCommit: 'a'.repeat(40), fragment: 'f', toolchain: 't', guestInputs: 'g', suiteVersion: 'v', suite: 'kbuf', accel: 'tcg' };
const row = (test: string, status: TestStatus, suite = 'kbuf'): TestResult => ({ suite, test, status, detail: '' });
const rerunBoot = (results: TestResult[], only: string[], completed = ['kbuf']): BootEvidence => ({ results, completed: new Set(completed), only: new Set(only) });

describe('the base-run cache', () => {
  it('keys change with every input, and an entry says what it was computed from', () => {
    const key = baseRunKey(parts);
    for (const field of Object.keys(parts) as Array<keyof BaseRunKeyParts>) {
      assert.notEqual(baseRunKey({ ...parts, [field]: field === 'accel' ? 'kvm' : 'other' }), key, field);
    }
    const { cache: c } = cache();
    c.put({ key, suite: 'kbuf', baseCommit: parts.baseCommit, inputs: parts, results: [row('a', 'PASS')], splats: [], jobId: 'j1', createdAt: '2026-12-03T00:00:00.000Z', durationMs: 5 });
    assert.deepEqual(c.get(key)?.inputs, parts);
    assert.equal(c.get(baseRunKey({ ...parts, suite: 'fuse' })), null);
  });

  it('re-run boots are kept one file each and read back per suite; other suites\' rows and damaged files are not evidence', () => {
    const { cache: c, dir } = cache();
    const key = baseRunKey(parts);
    c.addBoot(key, 'kbuf', 'j1', rerunBoot([row('a', 'FAIL'), row('x', 'FAIL', 'fuse')], [keyOf({ suite: 'kbuf', test: 'a' }), keyOf({ suite: 'fuse', test: 'x' })], ['kbuf', 'fuse']));
    c.addBoot(key, 'kbuf', 'j2', rerunBoot([], [keyOf({ suite: 'kbuf', test: 'a' })], []));
    writeFileSync(join(dir, `${key}.boots`, '99999999999999999-000000000000.json'), '{ not json');
    writeFileSync(join(dir, `${key}.boots`, 'stray.json'), '{}');
    const h = c.history(key, 'kbuf');
    assert.equal(h.length, 2);
    assert.deepEqual(h[0]?.results, [row('a', 'FAIL')]);
    assert.deepEqual([...(h[0].only ?? new Set<string>())], [keyOf({ suite: 'kbuf', test: 'a' })]);
    assert.deepEqual([...(h[1]?.completed ?? [])], [], 'a boot that did not finish the suite stays one');
    assert.deepEqual(c.history(baseRunKey({ ...parts, suite: 'fuse' }), 'fuse'), []);
  });

  it('counts only the most recent boots', () => {
    const { cache: c, dir } = cache();
    const key = baseRunKey(parts);
    for (let i = 0; i < BASE_HISTORY_BOOTS + 5; i++) c.addBoot(key, 'kbuf', `j${i}`, rerunBoot([row('a', 'PASS')], [keyOf({ suite: 'kbuf', test: 'a' })]));
    assert.equal(readdirSync(join(dir, `${key}.boots`)).length, BASE_HISTORY_BOOTS + 5);
    assert.equal(c.history(key, 'kbuf').length, BASE_HISTORY_BOOTS);
  });

  it('a flaky base failure recorded once is outweighed by the re-runs that follow it', () => {
    const { cache: c } = cache();
    const key = baseRunKey(parts);
    const a = keyOf({ suite: 'kbuf', test: 'a' });
    // An earlier job: the base's first run failed "a", its re-runs passed.
    for (let i = 0; i < 3; i++) c.addBoot(key, 'kbuf', 'j1', rerunBoot([row('a', 'PASS')], [a]));
    const first = { results: [row('a', 'FAIL')], completed: new Set(['kbuf']), only: null };
    const seriesBoots = [{ results: [row('a', 'FAIL')], completed: new Set(['kbuf']), only: null }, ...[1, 2, 3].map(() => rerunBoot([row('a', 'FAIL')], [a]))];
    const thisJobBase = [1, 2, 3].map(() => rerunBoot([row('a', 'PASS')], [a]));
    const asked = new Map([[a, 3]]);
    const without = compareWithBase({ series: { boots: seriesBoots, asked }, base: { boots: [first, ...thisJobBase], asked }, policy: DEFAULT_POLICY });
    assert.equal(without[0]?.comparison, 'flaky', '4 of 4 against 1 of 4 alone is not enough');
    const withHistory = compareWithBase({ series: { boots: seriesBoots, asked }, base: { boots: [first, ...c.history(key, 'kbuf'), ...thisJobBase], asked }, policy: DEFAULT_POLICY });
    assert.equal(withHistory[0]?.comparison, 'new-failure');
    assert.deepEqual(withHistory[0].baseRuns, { runs: 7, fails: 1, skips: 0, missing: 0 });
  });
});

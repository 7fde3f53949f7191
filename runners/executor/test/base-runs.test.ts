import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { type BootEvidence, DEFAULT_POLICY, compareWithBase, keyOf } from '../../../services/domain/compare.ts';
import type { GuestRun, TestResult } from '../../../services/domain/job.ts';
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

/**
 * A boot as the guest prints it: init's markers on the console, and for each
 * suite a KTAP subtest block with one line per test. A suite in `unfinished`
 * has no end marker and no result line; `lostResultLine` drops a finished
 * suite's result line from the KTAP (the channel lost it; the console's end
 * marker still has the exit code).
 */
function boot(suites: Record<string, Array<[string, 'ok' | 'not ok']>>, opts: { unfinished?: string[]; lostResultLine?: string[] } = {}): GuestRun {
  const names = Object.keys(suites);
  const ktap = ['KTAP version 1', `1..${names.length}`];
  const console = ['[    1.000000] patchbay: init started, kernel 7.1.8, 2 CPU(s)'];
  names.forEach((name, i) => {
    const tests = suites[name] ?? [];
    console.push(`patchbay: suite ${name} start (timeout 60s)`);
    ktap.push(`    # Subtest: ${name}`, '    KTAP version 1', `    1..${tests.length}`, ...tests.map(([t, r], j) => `    ${r} ${j + 1} ${t}`));
    if (opts.unfinished?.includes(name)) return;
    const failed = tests.some(([, r]) => r === 'not ok');
    if (!opts.lostResultLine?.includes(name)) ktap.push(`${failed ? 'not ok' : 'ok'} ${i + 1} ${name}`);
    console.push(`patchbay: suite ${name} end (exit ${failed ? 1 : 0})`);
  });
  console.push('patchbay: all suites done');
  return { consoleLog: `${console.join('\n')}\n`, ktap: `${ktap.join('\n')}\n`, exitCode: 0, timedOut: false, timeoutSeconds: 600, suites: names };
}
const rerunOf = (run: GuestRun, only: string[]): BootEvidence => ({ results: [], completed: new Set(run.suites), only: new Set(only) });

describe('the base-run cache', () => {
  it('keys change with every input, and an entry says what it was computed from', () => {
    const key = baseRunKey(parts);
    for (const field of Object.keys(parts) as Array<keyof BaseRunKeyParts>) {
      assert.notEqual(baseRunKey({ ...parts, [field]: field === 'accel' ? 'kvm' : 'other' }), key, field);
    }
    const { cache: c } = cache();
    c.put({ key, suite: 'kbuf', baseCommit: parts.baseCommit, inputs: parts, boot: boot({ kbuf: [['a', 'ok']], fuse: [['x', 'not ok']] }), jobId: 'j1', createdAt: '2026-12-03T00:00:00.000Z', durationMs: 5 });
    const read = c.get(key);
    assert.deepEqual(read?.run.inputs, parts);
    assert.deepEqual(read.results.map((r) => [r.suite, r.test, r.status]), [['kbuf', 'a', 'PASS']], 'the suite\'s own rows of a boot that ran two');
    assert.equal(c.get(baseRunKey({ ...parts, suite: 'fuse' })), null);
  });

  it('a filtered run has a key of its own; a whole run keeps the key it had before filters', () => {
    // The v4 key of a whole suite, as it was computed before test filters existed: no cached run is re-keyed by them.
    const before = createHash('sha256').update(['base-run-v4', parts.baseCommit, parts.fragment, parts.toolchain, parts.guestInputs, parts.suiteVersion, parts.suite, parts.accel].join('\0')).digest('hex').slice(0, 20);
    assert.equal(baseRunKey(parts), before);
    assert.equal(baseRunKey({ ...parts, only: [] }), before, 'an empty filter is the whole suite');
    const filtered = baseRunKey({ ...parts, only: ['buf-ring', 'buf-ring-mshot'] });
    assert.notEqual(filtered, before);
    assert.equal(baseRunKey({ ...parts, only: ['buf-ring-mshot', 'buf-ring', 'buf-ring'] }), filtered, 'order and repeats do not matter');
    assert.notEqual(baseRunKey({ ...parts, only: ['buf-ring'] }), filtered, 'another set of tests, another key');
    assert.notEqual(baseRunKey({ ...parts, only: ['buf-ring buf-ring-mshot'] }), filtered);
    const { cache: c } = cache();
    c.put({ key: filtered, suite: 'kbuf', baseCommit: parts.baseCommit, inputs: { ...parts, only: ['buf-ring', 'buf-ring-mshot'] }, boot: boot({ kbuf: [['buf-ring', 'ok'], ['buf-ring-mshot', 'ok']] }), jobId: 'j1', createdAt: '2026-12-03T00:00:00.000Z', durationMs: 5 });
    assert.equal(c.get(before), null, 'a filtered run never answers for the whole suite');
    assert.deepEqual(c.get(filtered)?.run.inputs.only, ['buf-ring', 'buf-ring-mshot']);
  });

  it('keeps the boot as printed and reads it with today\'s parser: a result line the KTAP channel lost is not a wrong row forever', () => {
    const { cache: c } = cache();
    const key = baseRunKey(parts);
    // The KTAP lost kbuf's result line; the console still says how it ended.
    const printed = boot({ kbuf: [['a', 'ok'], ['b', 'ok']], hang: [] }, { lostResultLine: ['kbuf'] });
    c.put({ key, suite: 'kbuf', baseCommit: parts.baseCommit, inputs: parts, boot: printed, jobId: 'j1', createdAt: '2026-12-03T00:00:00.000Z', durationMs: 5 });
    const read = c.get(key);
    assert.deepEqual(read?.results.map((r) => [r.suite, r.test, r.status]), [['kbuf', 'a', 'PASS'], ['kbuf', 'b', 'PASS']]);
  });

  it('re-run boots are kept one file each and read back per suite, limited to the tests asked; other suites\' rows and damaged or oversized files are not evidence', () => {
    const { cache: c, dir } = cache();
    const key = baseRunKey(parts);
    const a = keyOf({ suite: 'kbuf', test: 'a' });
    c.addBoot(key, 'kbuf', 'j1', boot({ kbuf: [['a', 'not ok'], ['other', 'ok']], fuse: [['x', 'not ok']] }), new Set([a, keyOf({ suite: 'fuse', test: 'x' })]));
    c.addBoot(key, 'kbuf', 'j2', boot({ kbuf: [] }, { unfinished: ['kbuf'] }), new Set([a]));
    writeFileSync(join(dir, `${key}.boots`, '99999999999999999-000000000000.json.gz'), '{ not gzip');
    writeFileSync(join(dir, `${key}.boots`, '99999999999999998-000000000000.json.gz'), gzipSync('{"only": [], "boot": {"consoleLog": 1}}'));
    writeFileSync(join(dir, `${key}.boots`, 'stray.json'), '{}');
    const h = c.history(key, 'kbuf');
    assert.equal(h.length, 2);
    assert.deepEqual(h[0]?.results.map((r) => [r.suite, r.test, r.status]), [['kbuf', 'a', 'FAIL']]);
    assert.deepEqual([...(h[0].only ?? new Set<string>())], [a]);
    assert.deepEqual([...(h[1]?.completed ?? [])], [], 'a boot that did not finish the suite stays one');
    assert.deepEqual(c.history(baseRunKey({ ...parts, suite: 'fuse' }), 'fuse'), []);
  });

  it('counts only the most recent boots', () => {
    const { cache: c, dir } = cache();
    const key = baseRunKey(parts);
    for (let i = 0; i < BASE_HISTORY_BOOTS + 5; i++) c.addBoot(key, 'kbuf', `j${i}`, boot({ kbuf: [['a', 'ok']] }), new Set([keyOf({ suite: 'kbuf', test: 'a' })]));
    assert.equal(readdirSync(join(dir, `${key}.boots`)).length, BASE_HISTORY_BOOTS + 5);
    assert.equal(c.history(key, 'kbuf').length, BASE_HISTORY_BOOTS);
  });

  it('a flaky base failure recorded once is outweighed by the re-runs that follow it', () => {
    const { cache: c } = cache();
    const key = baseRunKey(parts);
    const a = keyOf({ suite: 'kbuf', test: 'a' });
    // An earlier job: the base's first run failed "a", its re-runs passed.
    for (let i = 0; i < 3; i++) c.addBoot(key, 'kbuf', 'j1', boot({ kbuf: [['a', 'ok']] }), new Set([a]));
    const first = { results: [row('a', 'FAIL')], completed: new Set(['kbuf']), only: null };
    const rerun = (status: TestStatus): BootEvidence => ({ ...rerunOf(boot({ kbuf: [] }), [a]), results: [row('a', status)] });
    const seriesBoots = [{ results: [row('a', 'FAIL')], completed: new Set(['kbuf']), only: null }, ...[1, 2, 3].map(() => rerun('FAIL'))];
    const thisJobBase = [1, 2, 3].map(() => rerun('PASS'));
    const asked = new Map([[a, 3]]);
    const without = compareWithBase({ series: { boots: seriesBoots, asked }, base: { boots: [first, ...thisJobBase], asked }, policy: DEFAULT_POLICY });
    assert.equal(without[0]?.comparison, 'flaky', '4 of 4 against 1 of 4 alone is not enough');
    const withHistory = compareWithBase({ series: { boots: seriesBoots, asked }, base: { boots: [first, ...c.history(key, 'kbuf'), ...thisJobBase], asked }, policy: DEFAULT_POLICY });
    assert.equal(withHistory[0]?.comparison, 'new-failure');
    assert.deepEqual(withHistory[0].baseRuns, { runs: 7, fails: 1, skips: 0, missing: 0 });
  });
});

/**
 * The suites against the base kernel, through `patchbay run --json` on the
 * real pipeline (Docker, the 7.1.8 tree, QEMU): the passing fixture (the
 * kernel-managed buffer ring series) passes kbuf and fuse, whole; a series
 * that breaks provided-buffer-ring behaviour (not the build) is FAIL with the
 * right tests blamed, run with only the tests that claim is about, against
 * a cached base run of the same tests;
 * a failure the base also has is not blamed; a suite that hangs is cut at
 * its timeout and reported as ERROR; a selftest the series adds is run.
 */
import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { JobResult } from '../../../services/domain/job.ts';
import { parseKtap } from '../../../services/domain/ktap.ts';
import type { TestStatus } from '../../../services/domain/status.ts';
import { recordedBaseRun } from './base-record.ts';
import { patchbayRun, root } from './patchbay-run.ts';

const row = (r: JobResult, suite: string, test: string) => r.results.find((x) => x.suite === suite && x.test === test);
const HOUR = 60 * 60 * 1000;
/** A tests.list line that fails when a process whose command line matches PATTERN (a grep regex) is running. */
const nothingLeft = (pattern: string): string => `nothing-left sh -c 'if ps -o args | grep "${pattern}"; then echo left behind; exit 1; fi'`;

/**
 * The verdict on fail-kbuf-unregister-busy.mbox, run with the kbuf tests
 * ONLY: FAIL at test, kbuf-unregister-busy blamed on evidence from re-runs
 * on both kernels, nothing blamed that the base failed as often.
 */
function assertBlamed(code: number, result: JobResult, only: readonly string[]): void {
  assert.equal(code, 0);
  assert.equal(result.status, 'FAIL', result.summary);
  assert.equal(result.stage, 'test');
  assert.deepEqual(result.stages.map((s) => [s.stage, s.status]).slice(0, 4), [['setup', 'PASS'], ['apply', 'PASS'], ['build', 'PASS'], ['boot', 'PASS']]);
  assert.deepEqual(result.results.map((r) => `${r.suite}/${r.test}`).sort(), only.map((t) => `kbuf/${t}`), 'the named tests, and only they, have rows');
  const busy = row(result, 'kbuf', 'kbuf-unregister-busy');
  assert.ok(busy);
  assert.equal(busy.status, 'FAIL');
  assert.equal(busy.comparison, 'new-failure');
  assert.equal(busy.baseStatus, 'PASS');
  assert.deepEqual(busy.seriesRuns, { runs: 4, fails: 4, skips: 0, missing: 0 }, 'seen on every run of the series, one boot each');
  assert.ok(busy.baseRuns && busy.baseRuns.runs >= 4 && busy.baseRuns.fails === 0, `never on the base: ${JSON.stringify(busy.baseRuns)}`);
  assert.match(busy.detail, /unregistering a ring a pending receive uses.*-16|EBUSY|Device or resource busy/s);
  assert.match(result.summary, /new failure\(s\): .*kbuf\/kbuf-unregister-busy/);
  assert.equal(result.base?.rerun?.times, 3);
  // Blamed only where the base failed significantly less; what failed
  // in every run there too is not.
  // Checked against the base's own record of the run this job compared
  // with (the base-run cache), not against the job's copy of it.
  const baseRun = recordedBaseRun(result, 'kbuf');
  assert.deepEqual(baseRun.run.inputs.only, only, 'the recorded base run is one of the same tests, never the whole suite\'s');
  const onBase = new Map<string, TestStatus>();
  for (const r of baseRun.results) if (!onBase.has(r.test)) onBase.set(r.test, r.status);
  assert.deepEqual([...onBase.keys()].sort(), [...only], `the base ran the named tests, and only they: ${[...onBase.keys()].join(', ')}`);
  for (const r of result.results) {
    assert.equal(r.suite, 'kbuf');
    assert.equal(r.baseStatus, onBase.get(r.test) ?? null, `kbuf/${r.test}: the job's base status is the recorded base run's`);
  }
  const failed = (s: TestStatus | null | undefined): boolean => s === 'FAIL' || s === 'ERROR';
  const blamed = result.results.filter((x) => x.comparison === 'new-failure');
  assert.ok(blamed.includes(busy));
  for (const r of blamed) {
    assert.ok(r.baseRuns && r.baseRuns.fails < r.baseRuns.runs && r.baseRuns.fails < r.seriesRuns.fails, `kbuf/${r.test} is blamed, but the base failed ${r.baseRuns ? `${r.baseRuns.fails} of ${r.baseRuns.runs}` : '?'} runs`);
  }
  for (const r of result.results.filter((x) => failed(x.status) && failed(onBase.get(x.test)) && x.baseRuns?.fails === x.baseRuns?.runs)) {
    assert.notEqual(r.comparison, 'new-failure', `kbuf/${r.test} failed in every base run too (${onBase.get(r.test) ?? '?'}): not blamed`);
  }
  assert.equal(row(result, 'kbuf', 'kbuf-ring-edges')?.comparison, 'unchanged', 'the edges test drains its rings before unregistering');
}

describe('suites against the base kernel', { timeout: 3 * HOUR }, () => {
  test('the passing fixture passes kbuf and fuse, and nothing it is compared with is blamed', { timeout: 2 * HOUR }, async () => {
    // The kernel-managed buffer ring series: the base's uapi has no such
    // rings, so kbuf-kmbuf-ring skips there and really runs here.
    const { code, result } = await patchbayRun('pass-kmbuf-ring.mbox', ['--suite', 'kbuf', '--suite', 'fuse']);
    assert.equal(code, 0);
    assert.equal(result.status, 'PASS', result.summary);
    assert.deepEqual(result.suites, ['fuse', 'kbuf']);
    assert.ok(result.base, 'compared with the base');
    assert.deepEqual(result.base.suites.map((s) => [s.suite, s.source === 'unavailable' ? s.summary : 'ok']), [['fuse', 'ok'], ['kbuf', 'ok']]);
    assert.equal(result.results.filter((r) => r.comparison === 'new-failure').length, 0);
    for (const t of ['buf-ring.t', 'recv-multishot.t', 'read-mshot.t', 'kbuf-ring-edges', 'kbuf-unregister-busy']) {
      const r = row(result, 'kbuf', t);
      assert.ok(r, `kbuf/${t} ran`);
      assert.equal(r.status, 'PASS', `kbuf/${t}: ${r.detail}`);
      assert.equal(r.comparison, 'unchanged');
    }
    const kmbuf = row(result, 'kbuf', 'kbuf-kmbuf-ring');
    assert.ok(kmbuf, 'kbuf/kbuf-kmbuf-ring ran');
    assert.equal(kmbuf.status, 'PASS', kmbuf.detail);
    assert.equal(kmbuf.baseStatus, 'SKIP', 'the base kernel has no kernel-managed buffer rings');
    assert.equal(kmbuf.comparison, 'unchanged');
    // What it checked is in the job's KTAP, as the test's diagnostics.
    assert.ok(result.artifactsDir);
    const ktap = parseKtap(readFileSync(join(result.artifactsDir, 'ktap.txt'), 'utf8'));
    const said = ktap.tests.find((t) => t.name === 'kbuf')?.children.find((t) => t.name === 'kbuf-kmbuf-ring')?.diagnostics;
    assert.ok(said, 'kbuf-kmbuf-ring is in ktap.txt');
    for (const check of ['a second ring on the same group is -EEXIST', 'the buffers read as zero', 'a group with no ring does not map', 'the group then takes an ordinary provided buffer ring']) {
      assert.ok(said.some((l) => l.startsWith(`ok: ${check}`)), `kbuf-kmbuf-ring checked "${check}": ${said.join(' | ')}`);
    }
    assert.ok(!said.some((l) => l.startsWith('FAIL')), said.join(' | '));
    // liburing's buffer-ring tests: about 30, each named as liburing names it.
    assert.ok(result.results.filter((r) => r.suite === 'kbuf' && r.test.endsWith('.t')).length >= 30);
    const fuse = result.results.filter((r) => r.suite === 'fuse');
    assert.ok(fuse.length >= 3, JSON.stringify(fuse));
    assert.ok(fuse.some((r) => r.status === 'PASS'));
    // Whatever fails on this kernel fails on the base too: not blamed.
    for (const r of result.results.filter((x) => x.status === 'FAIL' || x.status === 'ERROR')) {
      assert.ok(['pre-existing', 'flaky'].includes(r.comparison), `${r.suite}/${r.test} ${r.comparison}`);
    }
  });

  test('a series that breaks buffer-ring behaviour is FAIL with the right tests blamed', { timeout: HOUR }, async () => {
    // Only the tests this claim is about (--test): the one the series breaks,
    // and the edges test, which unregisters rings too (drained) and must not
    // be blamed. The whole suite runs in the test above; here it would cost
    // two more boots of liburing's tests (read-mshot.t alone is about 140 s
    // under TCG) that say nothing about this series. A filtered job is
    // compared with a base run of the same tests, cached under a key of its
    // own (runners/executor/README.md, "Test filters").
    const only = ['kbuf-ring-edges', 'kbuf-unregister-busy'];
    const run = () => patchbayRun('fail-kbuf-unregister-busy.mbox', ['--suite', 'kbuf', ...only.flatMap((t) => ['--test', `kbuf/${t}`])]);
    let { code, result } = await run();
    if (result.base?.suites[0]?.source === 'run') {
      // No earlier job ran this base (a cold cache): this one booted it,
      // and is judged the same way; a second job must then reuse its run.
      assertBlamed(code, result, only);
      ({ code, result } = await run());
    }
    assert.equal(result.base?.suites[0]?.source, 'cached', `the base run an earlier job recorded is reused: ${JSON.stringify(result.base)}`);
    assert.notEqual(result.base.suites[0].jobId, result.jobId);
    assertBlamed(code, result, only);
  });

  test('an io_uring selftest the series adds is found, built from its tree and run', { timeout: HOUR }, async () => {
    const { code, result } = await patchbayRun('pass-selftest-pbuf-ring.mbox', []);
    assert.equal(code, 0);
    assert.deepEqual(result.suites, ['selftests'], 'its paths select the selftests suite only');
    assert.equal(result.status, 'PASS', result.summary);
    // A kselftest_harness program: each TEST_F is its own row under the program.
    const names = result.results.filter((r) => r.suite === 'selftests').map((r) => r.test).sort();
    assert.deepEqual(names, ['group_in_use', 'not_power_of_two', 'register_unregister'].map((t) => `io_uring/pbuf_ring.pbuf_ring.${t}`), JSON.stringify(result.results));
    for (const t of result.results) {
      assert.equal(t.status, 'PASS', `${t.test}: ${t.detail}`);
      assert.equal(t.baseStatus, null, 'the base has no such test');
      assert.equal(t.comparison, 'unchanged');
    }
  });

  test('a failure the base also has is not blamed; a suite that hangs is cut at its timeout as ERROR', { timeout: HOUR }, async () => {
    // A catalogue with two more suites that need no image build: one test
    // that fails on any kernel, and a script that never ends.
    const dir = mkdtempSync(join(tmpdir(), 'patchbay-suites-'));
    after(() => { rmSync(dir, { recursive: true, force: true }); });
    cpSync(join(root, 'images', 'guest', 'suites'), dir, { recursive: true });
    const suite = (name: string, manifest: object, run: string, files: Record<string, string> = {}): void => {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'manifest.json'), JSON.stringify({ name, description: name, kconfig: [], build: {}, run: 'run.sh', paths: [], ...manifest }));
      writeFileSync(join(dir, name, 'run.sh'), run);
      chmodSync(join(dir, name, 'run.sh'), 0o755);
      for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, name, file), text);
    };
    // lib/ktap.sh's per-test limits: a test that hangs (a pipeline) is cut at
    // 5 s, and neither it nor a child another test left running lives on
    // into the tests after it.
    suite('basefail', { timeoutSeconds: 120, testTimeoutSeconds: 5 },
      '#!/bin/sh\n. /patchbay/lib/ktap.sh\nktap_run_list tests.list 5 basefail\n',
      {
        'tests.list': [
          'works true',
          "broken sh -c 'echo always broken; exit 1'",
          "leaves-child sh -c 'sleep 1000 & exit 0'",
          "hangs sh -c 'sleep 2000 | sleep 2001'",
          nothingLeft('^slee[p] [12]00'),
        ].join('\n') + '\n',
      });
    // It leaves a process behind, which must not outlive the suite: the
    // suite after it checks.
    suite('hang', { timeoutSeconds: 8 }, '#!/bin/sh\necho "KTAP version 1"\necho "1..1"\n(sleep 100001 > /dev/null 2>&1 &)\nexec sleep 100000\n');
    suite('later', { timeoutSeconds: 60, testTimeoutSeconds: 10 },
      '#!/bin/sh\n. /patchbay/lib/ktap.sh\nktap_run_list tests.list 10 later\n',
      { 'tests.list': `${nothingLeft('^slee[p] 10000')}\n` });

    // One re-run per kernel is enough to show a failure on both is not
    // blamed (the flake rule's own rounds are the test above's subject);
    // each re-run boot here waits out the hanging tests' limits. Any
    // kernel that boots will do: the series is the one whose build is
    // shortest (it changes only selftests, which these suites do not build).
    const started = Date.now();
    const { code, result } = await patchbayRun('pass-selftest-pbuf-ring.mbox', ['--suite', 'basefail', '--suite', 'hang', '--suite', 'later'], { PATCHBAY_SUITES: dir, PATCHBAY_RERUNS: '1' });
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 20 * 60 * 1000, 'the job ends in bounded time');
    assert.equal(result.status, 'PASS', result.summary);
    assert.match(result.summary, /pre-existing: not blamed/);
    const broken = row(result, 'basefail', 'broken');
    assert.ok(broken);
    assert.deepEqual([broken.status, broken.baseStatus, broken.comparison], ['FAIL', 'FAIL', 'pre-existing']);
    assert.match(broken.detail, /always broken/);
    assert.equal(row(result, 'basefail', 'works')?.status, 'PASS');
    assert.equal(row(result, 'basefail', 'leaves-child')?.status, 'PASS');
    const hung = row(result, 'basefail', 'hangs');
    assert.ok(hung);
    assert.deepEqual([hung.status, hung.comparison], ['ERROR', 'pre-existing'], 'a test cut at its limit broke (ERROR), on both kernels');
    assert.match(hung.detail, /TIMEOUT 5 seconds/);
    const left = row(result, 'basefail', 'nothing-left');
    assert.equal(left?.status, 'PASS', `no process of an earlier test is left: ${left?.detail ?? 'no row'}`);
    const hang = result.results.filter((r) => r.suite === 'hang');
    assert.ok(hang.some((r) => r.status === 'ERROR' && /TIMEOUT 8 seconds/.test(r.detail)), JSON.stringify(hang));
    assert.ok(hang.every((r) => r.comparison === 'pre-existing'), 'it hangs on the base too: not blamed');
    const later = row(result, 'later', 'nothing-left');
    assert.equal(later?.status, 'PASS', `what the hung suite left running did not outlive it: ${later?.detail ?? 'no row'}`);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareWithBase, comparedVerdict, formatTally, testsToRerun } from '../compare.ts';
import type { TestResult } from '../job.ts';
import type { TestStatus } from '../status.ts';

const r = (test: string, status: TestStatus, suite = 'kbuf'): TestResult => ({ suite, test, status, detail: '' });

describe('testsToRerun', () => {
  it('picks tests failing on one side only, once each, never suite rows', () => {
    const series = [r('a', 'PASS'), r('b', 'FAIL'), r('c', 'FAIL'), r('d', 'PASS'), r('new', 'ERROR'), r('(suite)', 'ERROR'), r('b', 'FAIL')];
    const base = [r('a', 'PASS'), r('b', 'PASS'), r('c', 'FAIL'), r('d', 'FAIL'), r('(suite)', 'PASS')];
    assert.deepEqual(testsToRerun(series, base), [
      { suite: 'kbuf', test: 'b' },
      { suite: 'kbuf', test: 'd' },
      { suite: 'kbuf', test: 'new' },
    ]);
  });
  it('keeps suites apart', () => {
    assert.deepEqual(testsToRerun([r('x', 'FAIL', 'fuse')], [r('x', 'FAIL', 'kbuf')]), [{ suite: 'fuse', test: 'x' }]);
  });
});

describe('compareWithBase', () => {
  it('classifies after re-runs: new failure, pre-existing, fixed, flaky, unchanged', () => {
    const series = [r('broken', 'FAIL'), r('old', 'FAIL'), r('mended', 'PASS'), r('flake', 'FAIL'), r('fine', 'PASS'), r('basefl', 'FAIL')];
    const base = [r('broken', 'PASS'), r('old', 'FAIL'), r('mended', 'FAIL'), r('flake', 'PASS'), r('fine', 'PASS'), r('basefl', 'PASS')];
    const seriesReruns = [r('broken', 'FAIL'), r('broken', 'FAIL'), r('mended', 'PASS'), r('mended', 'PASS'), r('flake', 'PASS'), r('flake', 'FAIL'), r('basefl', 'FAIL'), r('basefl', 'FAIL')];
    const baseReruns = [r('broken', 'PASS'), r('broken', 'PASS'), r('mended', 'FAIL'), r('mended', 'FAIL'), r('flake', 'PASS'), r('flake', 'PASS'), r('basefl', 'FAIL'), r('basefl', 'PASS')];
    const out = compareWithBase({ series, base, seriesReruns, baseReruns });
    assert.deepEqual(
      out.map((x) => [x.test, x.comparison, formatTally(x.seriesRuns), x.baseRuns && formatTally(x.baseRuns), x.baseStatus]),
      [
        ['broken', 'new-failure', '3:3', '0:3', 'PASS'],
        ['old', 'pre-existing', '1:1', '1:1', 'FAIL'],
        ['mended', 'fixed', '0:3', '3:3', 'FAIL'],
        ['flake', 'flaky', '2:3', '0:3', 'PASS'],
        ['fine', 'unchanged', '0:1', '0:1', 'PASS'],
        ['basefl', 'flaky', '3:3', '1:3', 'PASS'],
      ],
    );
  });
  it('a test the base lacks counts as passing there', () => {
    const [x] = compareWithBase({ series: [r('kernel-warning', 'FAIL')], base: [r('a', 'PASS')] });
    assert.equal(x?.comparison, 'new-failure');
    assert.equal(x.baseStatus, null);
    assert.deepEqual(x.baseRuns, { fails: 0, runs: 1 });
  });
  it('an ERROR (timeout) on both sides is pre-existing', () => {
    const [x] = compareWithBase({ series: [r('hang', 'ERROR')], base: [r('hang', 'ERROR')] });
    assert.equal(x?.comparison, 'pre-existing');
  });
  it('no base: every result is no-base', () => {
    const out = compareWithBase({ series: [r('a', 'FAIL'), r('b', 'PASS')], base: null });
    assert.deepEqual(out.map((x) => [x.comparison, x.baseRuns]), [['no-base', null], ['no-base', null]]);
  });
});

describe('comparedVerdict', () => {
  const compare = (series: TestResult[], base: TestResult[] | null): ReturnType<typeof comparedVerdict> =>
    comparedVerdict(compareWithBase({ series, base }));
  it('FAIL names the new failures and still lists what is not blamed', () => {
    const v = compare([r('a', 'FAIL'), r('b', 'FAIL'), r('c', 'PASS')], [r('a', 'PASS'), r('b', 'FAIL'), r('c', 'PASS')]);
    assert.equal(v.status, 'FAIL');
    assert.equal(v.summary, '1 new failure(s): kbuf/a (1 pre-existing: not blamed)');
  });
  it('a new timeout (ERROR) against a passing base is the series\' FAIL', () => {
    assert.equal(compare([r('a', 'ERROR')], [r('a', 'PASS')]).status, 'FAIL');
  });
  it('PASS when every failure is pre-existing or flaky, and says so', () => {
    const v = compare([r('a', 'FAIL'), r('b', 'PASS'), r('c', 'SKIP')], [r('a', 'FAIL'), r('b', 'PASS'), r('c', 'SKIP')]);
    assert.equal(v.status, 'PASS');
    assert.equal(v.summary, 'no new failures: 1 passed, 1 skipped (1 pre-existing: not blamed)');
  });
  it('PASS names what the series fixed', () => {
    const v = compare([r('a', 'PASS')], [r('a', 'FAIL')]);
    assert.equal(v.summary, 'no new failures: 1 passed, 0 skipped; fixed by the series: kbuf/a');
  });
  it('SKIP when everything skipped; ERROR when nothing ran', () => {
    assert.equal(compare([r('a', 'SKIP')], [r('a', 'PASS')]).status, 'SKIP');
    assert.equal(compare([], []).status, 'ERROR');
  });
  it('without a base the worst status stands', () => {
    assert.equal(compare([r('a', 'ERROR'), r('b', 'PASS')], null).status, 'ERROR');
    const v = compare([r('a', 'FAIL')], null);
    assert.equal(v.status, 'FAIL');
    assert.match(v.summary, /no base to compare with/);
  });
});

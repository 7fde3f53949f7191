import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type BootEvidence,
  type Comparison,
  type KernelEvidence,
  DEFAULT_POLICY,
  compareSplats,
  compareWithBase,
  comparedVerdict,
  fisherGreater,
  formatTally,
  judge,
  keyOf,
  splatsNeedingBoots,
  testsNeedingMoreRuns,
  testsToRerun,
  withoutBase,
} from '../compare.ts';
import type { TestResult } from '../job.ts';
import type { Status, TestStatus } from '../status.ts';

/**
 * One kernel's evidence from a spec per test: the first run, "|", then one
 * character per re-run boot. P pass, F fail, E error, S skip, - absent from a
 * finished run of its suite (missing), x the boot never finished the suite.
 * A test with no "|" was not re-run.
 */
function kernel(specs: Readonly<Record<string, string>>, suite = 'kbuf'): KernelEvidence {
  const STATUS: Record<string, TestStatus> = { P: 'PASS', F: 'FAIL', E: 'ERROR', S: 'SKIP' };
  const parsed = Object.entries(specs).map(([test, spec]) => {
    const [first = '', again = ''] = spec.split('|');
    return { test, key: keyOf({ suite, test }), first, again: again.split('') };
  });
  const boots: BootEvidence[] = [];
  const rounds = Math.max(0, ...parsed.map((p) => p.again.length));
  for (let i = -1; i < rounds; i++) {
    const at = parsed.flatMap((p) => {
      const c = i < 0 ? p.first : p.again[i];
      return c === undefined || c === '' ? [] : [{ ...p, c }];
    });
    const results = at.flatMap(({ test, c }) => {
      const status = STATUS[c];
      return status === undefined ? [] : [{ suite, test, status, detail: '' }];
    });
    boots.push({
      results,
      completed: new Set(at.every((x) => x.c === 'x') && at.length > 0 ? [] : [suite]),
      only: i < 0 ? null : new Set(at.map((x) => x.key)),
    });
  }
  return { boots, asked: new Map(parsed.filter((p) => p.again.length > 0).map((p) => [p.key, p.again.length])) };
}

const compare = (series: Record<string, string>, base: Record<string, string> | null, policy = DEFAULT_POLICY) =>
  compareWithBase({ series: kernel(series), base: base === null ? null : kernel(base), policy });

describe('fisherGreater (one-sided Fisher exact test)', () => {
  it('gives the textbook values', () => {
    assert.ok(Math.abs(fisherGreater(4, 4, 0, 4) - 1 / 70) < 1e-12);
    assert.ok(Math.abs(fisherGreater(3, 4, 0, 4) - 4 / 56) < 1e-12);
    assert.ok(Math.abs(fisherGreater(1, 1, 0, 1) - 0.5) < 1e-12);
    assert.equal(fisherGreater(0, 4, 4, 4), 1);
    assert.equal(fisherGreater(2, 4, 2, 4) > 0.5, true);
    assert.equal(fisherGreater(1, 0, 0, 4), 1, 'no runs: no evidence');
  });
});

/**
 * The verdict matrix: (series runs × base runs) → the test's comparison
 * and the test stage's status, with the default policy (alpha 0.05,
 * borderline 0.25, 3 re-runs a round, at most 10 runs).
 */
const MATRIX: Array<{ name: string; series: string; base: string | null; comparison: Comparison; status: Status; tally?: string; more?: boolean }> = [
  { name: 'fails every run, passes every run on the base: blamed', series: 'F|FFF', base: 'P|PPP', comparison: 'new-failure', status: 'FAIL', tally: '4:4 / 0:4' },
  { name: 'an ERROR (a test timeout) every run against a passing base: blamed', series: 'E|EEE', base: 'P|PPP', comparison: 'new-failure', status: 'FAIL' },
  { name: 'one failure that the re-runs do not reproduce: a flake', series: 'F|PPP', base: 'P|PPP', comparison: 'flaky', status: 'PASS' },
  { name: 'fails every run on both kernels: pre-existing', series: 'F|FFF', base: 'F|FFF', comparison: 'pre-existing', status: 'PASS' },
  { name: 'times out every run on both: pre-existing', series: 'E|EEE', base: 'E|EEE', comparison: 'pre-existing', status: 'PASS' },
  { name: 'passes on the series, fails every run on the base: fixed', series: 'P|PPP', base: 'F|FFF', comparison: 'fixed', status: 'PASS' },
  { name: '3 of 4 against 0 of 4 is borderline (p 0.071): another round', series: 'F|PFF', base: 'P|PPP', comparison: 'flaky', status: 'PASS', more: true },
  { name: 'the rate change confirmed by a second round: 6 of 7 against 0 of 7', series: 'F|PFFFFF', base: 'P|PPPPPP', comparison: 'new-failure', status: 'FAIL' },
  { name: 'one flaky base failure does not hide a regression: 4 of 4 against 1 of 4 is borderline', series: 'F|FFF', base: 'F|PPP', comparison: 'flaky', status: 'PASS', more: true },
  { name: '... and 7 of 7 against 1 of 7 is the series\' failure', series: 'F|FFFFFF', base: 'F|PPPPPP', comparison: 'new-failure', status: 'FAIL' },
  { name: 'fails half the time on both: flaky, not borderline', series: 'F|PFP', base: 'P|FPF', comparison: 'flaky', status: 'PASS', more: false },
  { name: 'passes on the base, skips on the series every run: blamed as now skipping', series: 'S|SSS', base: 'P|PPP', comparison: 'now-skips', status: 'FAIL', tally: '0:4 (4 skipped) / 0:4' },
  { name: 'runs on the base, absent from every series run of its suite: blamed as missing', series: '-|---', base: 'P|PPP', comparison: 'now-missing', status: 'FAIL', tally: '0:4 (4 missing) / 0:4' },
  { name: 'skipped once, then passes: a flake', series: 'S|PPP', base: 'P|PPP', comparison: 'flaky', status: 'PASS' },
  { name: 'skips on both kernels: unchanged, not re-run', series: 'S', base: 'S', comparison: 'unchanged', status: 'SKIP' },
  { name: 'passes on the series, skips on the base: unchanged', series: 'P', base: 'S', comparison: 'unchanged', status: 'PASS' },
  { name: 'a re-run boot of the series crashed: 2 runs of 4 asked, unconfirmed (MISS)', series: 'F|Fxx', base: 'P|PPP', comparison: 'unconfirmed', status: 'MISS', tally: '2:2 / 0:4' },
  { name: 'a base re-run boot never finished: unconfirmed (MISS)', series: 'F|FFF', base: 'P|PPx', comparison: 'unconfirmed', status: 'MISS' },
  { name: 'a difference asked to be re-run that never was: unconfirmed', series: 'F|xxx', base: 'P|xxx', comparison: 'unconfirmed', status: 'MISS', tally: '1:1 / 0:1' },
  { name: 'a test the series adds that fails every run (the base lacks it): blamed', series: 'F|FFF', base: '-|---', comparison: 'new-failure', status: 'FAIL', tally: '4:4 / 0:4 (4 missing)' },
  { name: 'the base\'s first run lacks the test, its re-runs fail: their failures count', series: 'F|FFF', base: '-|FFF', comparison: 'flaky', status: 'PASS', tally: '4:4 / 3:4 (1 missing)' },
  { name: 'no base: a failure is not blamed (MISS)', series: 'F', base: null, comparison: 'no-base', status: 'MISS' },
  { name: 'no base: a pass stands', series: 'P', base: null, comparison: 'no-base', status: 'PASS' },
  { name: 'passes on both: unchanged', series: 'P', base: 'P', comparison: 'unchanged', status: 'PASS' },
];

describe('the verdict matrix', () => {
  for (const row of MATRIX) {
    it(row.name, () => {
      const [x, ...rest] = compare({ t: row.series }, row.base === null ? null : { t: row.base });
      assert.equal(rest.length, 0);
      assert.ok(x);
      assert.equal(x.comparison, row.comparison);
      assert.equal(comparedVerdict([x]).status, row.status);
      if (row.tally !== undefined) assert.equal(`${formatTally(x.seriesRuns)} / ${x.baseRuns ? formatTally(x.baseRuns) : '-'}`, row.tally);
      if (row.more !== undefined && x.baseRuns) {
        const j = judge(x.seriesRuns, x.baseRuns, { series: x.seriesRuns.runs, base: x.baseRuns.runs }, DEFAULT_POLICY);
        assert.equal(j.moreRuns, row.more);
      }
    });
  }
  it('covers every comparison', () => {
    const seen = new Set(MATRIX.map((m) => m.comparison));
    for (const c of ['new-failure', 'now-skips', 'now-missing', 'unconfirmed', 'pre-existing', 'fixed', 'flaky', 'unchanged', 'no-base'] as const) assert.ok(seen.has(c), c);
  });
});

describe('re-runs', () => {
  it('every test the series does not plainly pass is re-run, failures on both included; never suite rows or names with spaces', () => {
    const out = compare(
      { ok: 'P', broken: 'F', both: 'F', gone: 'S', skipboth: 'S', fixed: 'P', '(suite)': 'E', 'two words': 'F' },
      { ok: 'P', broken: 'P', both: 'F', gone: 'P', skipboth: 'S', fixed: 'F', '(suite)': 'P', 'two words': 'P', baseonly: 'P' },
    );
    assert.deepEqual(testsToRerun(out).map((k) => k.test), ['broken', 'both', 'gone', 'baseonly']);
  });
  it('a test only the base ran gets a row of its own, shown as not run on the series', () => {
    const out = compare({ a: 'P' }, { a: 'P', b: 'P' });
    assert.deepEqual(out.map((r) => [r.test, r.status, r.baseStatus]), [['a', 'PASS', 'PASS'], ['b', 'SKIP', 'PASS']]);
    assert.match(out[1]?.detail ?? '', /not in the series/);
  });
  it('borderline tests ask for another round until the policy\'s most runs', () => {
    const round1 = { series: kernel({ t: 'F|PFF', u: 'F|FFF' }), base: kernel({ t: 'P|PPP', u: 'P|PPP' }), policy: DEFAULT_POLICY };
    assert.deepEqual(testsNeedingMoreRuns(round1).map((k) => k.test), ['t']);
    const capped = { ...round1, policy: { ...DEFAULT_POLICY, maxRuns: 4 } };
    assert.deepEqual(testsNeedingMoreRuns(capped), []);
  });
  it('with no re-runs in the policy nothing is confirmed, so a single difference is not blamed', () => {
    const [x] = compare({ t: 'F' }, { t: 'P' }, { ...DEFAULT_POLICY, reruns: 0 });
    assert.equal(x?.comparison, 'flaky');
  });
});

describe('comparedVerdict', () => {
  const verdict = (series: Record<string, string>, base: Record<string, string> | null) => comparedVerdict(compare(series, base));
  it('FAIL names what is blamed and still lists what is not', () => {
    const v = verdict({ a: 'F|FFF', b: 'F|FFF', c: 'P', d: 'S|SSS' }, { a: 'P|PPP', b: 'F|FFF', c: 'P', d: 'P|PPP' });
    assert.equal(v.status, 'FAIL');
    assert.equal(v.summary, '1 new failure(s): kbuf/a; 1 test(s) now skip: kbuf/d (1 pre-existing: not blamed)');
  });
  it('MISS says which differences could not be confirmed, with their counts', () => {
    const v = verdict({ a: 'F|Fxx', b: 'P' }, { a: 'P|PPP', b: 'P' });
    assert.equal(v.status, 'MISS');
    assert.equal(v.summary, '1 difference(s) from the base could not be confirmed: their re-runs did not all happen (kbuf/a 2:2 vs 0:4)');
  });
  it('PASS when every failure is pre-existing or flaky, and says so', () => {
    const v = verdict({ a: 'F|FFF', b: 'P', c: 'S' }, { a: 'F|FFF', b: 'P', c: 'S' });
    assert.equal(v.status, 'PASS');
    assert.equal(v.summary, 'no new failures: 1 passed, 1 skipped (1 pre-existing: not blamed)');
  });
  it('PASS names what the series fixed', () => {
    assert.equal(verdict({ a: 'P|PPP' }, { a: 'F|FFF' }).summary, 'no new failures: 1 passed, 0 skipped; fixed by the series: kbuf/a');
  });
  it('SKIP when everything skipped; ERROR when nothing ran', () => {
    assert.equal(verdict({ a: 'S' }, { a: 'S' }).status, 'SKIP');
    assert.equal(comparedVerdict([]).status, 'ERROR');
  });
  it('without a base, failures are MISS, never blamed', () => {
    const v = comparedVerdict(withoutBase([{ suite: 'kbuf', test: 'a', status: 'FAIL', detail: '' } satisfies TestResult]));
    assert.deepEqual(v, { status: 'MISS', summary: '1 failure(s) with no base run to compare with: kbuf/a' });
  });
});

describe('kernel splats, judged per kernel by boots', () => {
  const F = { fingerprint: 'f00dfeedf00dfeed', kind: 'warning', title: 'WARNING: CPU: 0 PID: 9 at io_uring/kbuf.c:186 io_kbuf_commit+0x9c/0xb0', culprit: 'io_kbuf_commit' };
  const B = { fingerprint: 'b007b007b007b007', kind: 'warning', title: 'WARNING: CPU: 0 PID: 1 at arch/x86/kernel/cpu/x.c:1 early+0x1/0x2', culprit: 'early' };
  const boot = (splats: Array<typeof F & { suite: string | null; test: string | null }>, first = false): BootEvidence =>
    ({ results: [{ suite: 'kbuf', test: 'a', status: 'PASS', detail: '' }], completed: new Set(['kbuf']), only: first ? null : new Set([keyOf({ suite: 'kbuf', test: 'a' })]), splats });
  const at = (test: string | null) => ({ ...F, suite: test === null ? null : 'kbuf', test });
  const atBoot = { ...B, suite: null, test: null };
  const ev = (boots: BootEvidence[]): KernelEvidence => ({ boots, asked: new Map(), rerunBoots: boots.length - 1 });

  it('a WARN_ON_ONCE landing in a different test each boot, in every series boot and no base boot, is the series\' FAIL naming the splat', () => {
    const series = ev([boot([at('a')], true), boot([at('b')]), boot([at('a')]), boot([at('c')])]);
    const base = ev([boot([], true), boot([]), boot([]), boot([])]);
    const [x, ...rest] = compareSplats({ series, base, policy: DEFAULT_POLICY });
    assert.equal(rest.length, 0);
    assert.equal(x?.comparison, 'new-failure');
    assert.deepEqual(x.landed.sort(), ['kbuf/a', 'kbuf/b', 'kbuf/c']);
    assert.deepEqual([x.series, x.base], [{ runs: 4, fails: 4, skips: 0, missing: 0 }, { runs: 4, fails: 0, skips: 0, missing: 0 }]);
    const v = comparedVerdict(compareWithBase({ series, base, policy: DEFAULT_POLICY }), [x]);
    assert.equal(v.status, 'FAIL');
    assert.match(v.summary, /^kernel warning "WARNING: CPU: 0 PID: 9 at io_uring\/kbuf\.c:186 .*" \[f00dfeedf00dfeed\] \(new: in 4 of 4 boot\(s\) of the series kernel, 0 of 4 boot\(s\) of the base\)/);
  });
  it('a boot-time WARNING the base prints too is pre-existing: PASS, said so, and no re-run boots for it', () => {
    const series = ev([boot([atBoot], true)]);
    const base = ev([boot([atBoot], true)]);
    assert.deepEqual(splatsNeedingBoots({ series, base, policy: DEFAULT_POLICY }), []);
    const splats = compareSplats({ series, base, policy: DEFAULT_POLICY });
    assert.deepEqual(splats.map((x) => [x.comparison, x.landed]), [['pre-existing', ['(boot)']]]);
    const v = comparedVerdict(compareWithBase({ series, base, policy: DEFAULT_POLICY }), splats);
    assert.deepEqual(v, { status: 'PASS', summary: 'no new failures: 1 passed, 0 skipped (1 kernel splat(s) the base prints too: not blamed)' });
  });
  it('a splat in the series\' first boot that the base did not print asks for re-run boots', () => {
    const input = { series: ev([boot([at('a')], true)]), base: ev([boot([], true)]), policy: DEFAULT_POLICY };
    assert.deepEqual(splatsNeedingBoots(input).map((x) => x.fingerprint), [F.fingerprint]);
    assert.deepEqual(splatsNeedingBoots({ ...input, policy: { ...DEFAULT_POLICY, reruns: 0 } }), []);
  });
  it('a splat in one series boot of four is not blamed', () => {
    const splats = compareSplats({ series: ev([boot([at('a')], true), boot([]), boot([]), boot([])]), base: ev([boot([], true), boot([]), boot([]), boot([])]), policy: DEFAULT_POLICY });
    assert.equal(splats[0]?.comparison, 'flaky');
  });
  it('re-run boots asked for but not all done: unconfirmed, MISS', () => {
    const series: KernelEvidence = { boots: [boot([at('a')], true), boot([at('a')])], asked: new Map(), rerunBoots: 3 };
    const base: KernelEvidence = { boots: [boot([], true), boot([]), boot([]), boot([])], asked: new Map(), rerunBoots: 3 };
    const splats = compareSplats({ series, base, policy: DEFAULT_POLICY });
    assert.equal(splats[0]?.comparison, 'unconfirmed');
    assert.equal(comparedVerdict([], splats).status, 'MISS');
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { judgeGuestRun } from '../job.ts';
import {
  flattenKtap,
  KTAP_CUT_MARKER,
  KTAP_PROBLEMS_SHOWN,
  ktapProblemLines,
  parseKtap,
  parseResultLine,
  statusOf,
  type KtapDocument,
  type KtapTest,
} from '../ktap.ts';
import { assertGolden, GOLDEN_CASES, goldenInputs } from './golden-cases.ts';

const GOLDEN = join(import.meta.dirname, 'golden', 'ktap');

// Golden files: NAME.ktap in, NAME.json out ({ document, flat }). With
// UPDATE_GOLDEN=1 the expected files are rewritten (not under CI): read
// every one after.
for (const file of goldenInputs(GOLDEN, '.ktap', GOLDEN_CASES.ktap)) {
  const name = file.slice(0, -'.ktap'.length);
  test(`golden ktap: ${name}`, () => {
    const document = parseKtap(readFileSync(join(GOLDEN, file), 'utf8'));
    assertGolden(join(GOLDEN, `${name}.json`), { document, flat: flattenKtap(document) });
  });
}

function only<T>(xs: readonly T[]): T {
  assert.equal(xs.length, 1);
  const [x] = xs;
  assert.ok(x !== undefined);
  return x;
}

function at(tests: readonly KtapTest[], i: number): KtapTest {
  const t = tests[i];
  assert.ok(t !== undefined, `no test at index ${i}`);
  return t;
}

/** name:status, nested with brackets, for compact structural assertions. */
function shape(tests: readonly KtapTest[]): string {
  return tests
    .map((t) => `${t.name}:${t.status}${t.children.length > 0 ? `[${shape(t.children)}]` : ''}`)
    .join(' ');
}

test('status mapping follows ktap.rst: SKIP with either result, XFAIL and TODO fall back to ok / not ok', () => {
  assert.equal(statusOf(true, null), 'PASS');
  assert.equal(statusOf(false, null), 'FAIL');
  assert.equal(statusOf(true, 'SKIP'), 'SKIP');
  assert.equal(statusOf(false, 'SKIP'), 'SKIP');
  assert.equal(statusOf(true, 'XFAIL'), 'PASS');
  assert.equal(statusOf(false, 'XFAIL'), 'FAIL', 'XFAIL counts as a pass only with "ok"');
  assert.equal(statusOf(false, 'TODO'), 'FAIL', 'TODO is not recognized in KTAP: the result stands');
  assert.equal(statusOf(true, 'TODO'), 'PASS');
  assert.equal(statusOf(false, 'TIMEOUT'), 'ERROR');
  assert.equal(statusOf(true, 'TIMEOUT'), 'ERROR');
  assert.equal(statusOf(false, 'ERROR'), 'ERROR');
});

test('result lines: number, "- " prefix, directive, reason, escaped #', () => {
  assert.deepEqual(parseResultLine('ok 1 - foo # SKIP no bar'), {
    ok: true,
    number: 1,
    name: 'foo',
    directive: 'SKIP',
    reason: 'no bar',
  });
  assert.deepEqual(parseResultLine('not ok 12 a\\#b # TODO later'), {
    ok: false,
    number: 12,
    name: 'a#b',
    directive: 'TODO',
    reason: 'later',
  });
  assert.deepEqual(parseResultLine('ok'), { ok: true, number: null, name: '', directive: null, reason: '' });
  assert.deepEqual(parseResultLine('ok 3 # skip lower case'), {
    ok: true,
    number: 3,
    name: '',
    directive: 'SKIP',
    reason: 'lower case',
  });
  // kselftest.h's ksft_test_result_error()
  assert.equal(parseResultLine('not ok 4 # error setup failed')?.directive, 'ERROR');
  // kselftest's runner: not a directive, kept as the reason
  assert.deepEqual(parseResultLine('not ok 2 selftests: fs: t # exit=139'), {
    ok: false,
    number: 2,
    name: 'selftests: fs: t',
    directive: null,
    reason: 'exit=139',
  });
  assert.equal(parseResultLine('ok 5 big # SKIPPED: no memory')?.directive, 'SKIP');
  assert.equal(parseResultLine('ok 6 x # skipping the rest')?.directive, null, 'only whole keywords are directives');
  assert.equal(parseResultLine('okay 1 x'), null);
  assert.equal(parseResultLine('not okay'), null);
  assert.equal(parseResultLine('# ok 1 x'), null);
});

test('two-space and tab indentation nest like four spaces', () => {
  for (const ind of ['  ', '\t']) {
    const doc = parseKtap(
      [
        'KTAP version 1',
        '1..1',
        `${ind}KTAP version 1`,
        `${ind}1..2`,
        `${ind}${ind}KTAP version 1`,
        `${ind}${ind}1..1`,
        `${ind}${ind}not ok 1 leaf`,
        `${ind}not ok 1 mid`,
        `${ind}ok 2 other`,
        'not ok 1 top',
      ].join('\n'),
    );
    assert.deepEqual(doc.problems, []);
    assert.equal(shape(doc.tests), 'top:FAIL[mid:FAIL[leaf:FAIL] other:PASS]');
  }
});

test('the example from ktap.rst parses into its documented hierarchy', () => {
  const doc = parseKtap(
    [
      'KTAP version 1',
      '1..1',
      '  KTAP version 1',
      '  1..3',
      '    KTAP version 1',
      '    1..1',
      '    # test_1: initializing test_1',
      '    ok 1 test_1',
      '  ok 1 example_test_1',
      '    KTAP version 1',
      '    1..2',
      '    ok 1 test_1 # SKIP test_1 skipped',
      '    ok 2 test_2',
      '  ok 2 example_test_2',
      '    KTAP version 1',
      '    1..3',
      '    ok 1 test_1',
      '    # test_2: FAIL',
      '    not ok 2 test_2',
      '    ok 3 test_3 # SKIP test_3 skipped',
      '  not ok 3 example_test_3',
      'not ok 1 main_test',
    ].join('\n'),
  );
  assert.deepEqual(doc.problems, []);
  assert.equal(
    shape(doc.tests),
    'main_test:FAIL[example_test_1:PASS[test_1:PASS] example_test_2:PASS[test_1:SKIP test_2:PASS] ' +
      'example_test_3:FAIL[test_1:PASS test_2:FAIL test_3:SKIP]]',
  );
  const main = only(doc.tests);
  assert.deepEqual(at(at(main.children, 0).children, 0).diagnostics, ['test_1: initializing test_1']);
  assert.deepEqual(at(at(main.children, 2).children, 1).diagnostics, ['test_2: FAIL']);
  assert.equal(at(at(main.children, 1).children, 0).reason, 'test_1 skipped');
});

test('a parent diagnostic between its subtests and its result stays the parent\'s', () => {
  const doc = parseKtap(
    ['KTAP version 1', '1..1', '  KTAP version 1', '  1..2', '  ok 1 test_1', '  not ok 2 test_2', '# example failed', 'not ok 1 example'].join(
      '\n',
    ),
  );
  const ex = only(doc.tests);
  assert.deepEqual(ex.diagnostics, ['example failed']);
  assert.deepEqual(at(ex.children, 1).diagnostics, []);
});

test('kselftest output nested in kselftest output ("# # ...")', () => {
  const doc = parseKtap(
    [
      'TAP version 13',
      '1..1',
      '# selftests: wrapper: run_all.sh',
      '# TAP version 13',
      '# 1..1',
      '# # selftests: inner: prog',
      '# # TAP version 13',
      '# # 1..2',
      '# # ok 1 a',
      '# # # b: bad',
      '# # not ok 2 b',
      '# not ok 1 selftests: inner: prog # exit=1',
      'not ok 1 selftests: wrapper: run_all.sh # exit=1',
    ].join('\n'),
  );
  assert.deepEqual(doc.problems, []);
  assert.equal(shape(doc.tests), 'selftests: wrapper: run_all.sh:FAIL[selftests: inner: prog:FAIL[a:PASS b:FAIL]]');
  const b = at(at(only(doc.tests).children, 0).children, 1);
  assert.deepEqual(b.diagnostics, ['b: bad']);
});

test('KUnit run through kselftest: indentation inside the "# " prefix', () => {
  const doc = parseKtap(
    [
      'TAP version 13',
      '1..1',
      '# selftests: kunit: kbuf_kunit.sh',
      '# KTAP version 1',
      '# 1..1',
      '#     KTAP version 1',
      '#     # Subtest: io_uring_kbuf',
      '#     1..2',
      '#     ok 1 kbuf_ring_register',
      '#     not ok 2 kbuf_ring_mmap',
      '# not ok 1 io_uring_kbuf',
      'not ok 1 selftests: kunit: kbuf_kunit.sh # exit=1',
    ].join('\n'),
  );
  assert.deepEqual(doc.problems, []);
  assert.equal(
    shape(doc.tests),
    'selftests: kunit: kbuf_kunit.sh:FAIL[io_uring_kbuf:FAIL[kbuf_ring_register:PASS kbuf_ring_mmap:FAIL]]',
  );
  assert.deepEqual(
    flattenKtap(doc).map((r) => r.path.join(' / ')),
    [
      'selftests: kunit: kbuf_kunit.sh / io_uring_kbuf / kbuf_ring_register',
      'selftests: kunit: kbuf_kunit.sh / io_uring_kbuf / kbuf_ring_mmap',
    ],
  );
});

test('the kselftest runner without KSFT_TAP_LEVEL: the child block starts at its plan', () => {
  const doc = parseKtap(
    ['TAP version 13', '1..1', '# selftests: io_uring: kbuf', '# 1..2', '# ok 1 a', '# ok 2 b', 'ok 1 selftests: io_uring: kbuf'].join('\n'),
  );
  assert.equal(shape(doc.tests), 'selftests: io_uring: kbuf:PASS[a:PASS b:PASS]');
});

test('a Bail out! inside a kselftest program ends only that program\'s block', () => {
  const doc = parseKtap(
    [
      'TAP version 13',
      '1..2',
      '# selftests: io_uring: kbuf',
      '# TAP version 13',
      '# 1..3',
      '# ok 1 a',
      '# Bail out! cannot open /dev/fuse',
      '# # Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0',
      'not ok 1 selftests: io_uring: kbuf # exit=1',
      '# selftests: io_uring: other',
      'ok 2 selftests: io_uring: other',
    ].join('\n'),
  );
  assert.equal(doc.tests.length, 2);
  const kbuf = at(doc.tests, 0);
  assert.equal(shape(kbuf.children), 'a:PASS (missing):ERROR (missing):ERROR');
  assert.equal(at(kbuf.children, 1).reason, 'no result in output (Bail out! cannot open /dev/fuse)');
  assert.ok(kbuf.diagnostics.includes('# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0'));
  assert.equal(at(doc.tests, 1).status, 'PASS');
  assert.ok(doc.problems.some((p) => p.includes('Bail out! cannot open /dev/fuse')));
});

test('a timed-out program: its missing subtests say so', () => {
  const doc = parseKtap(
    [
      'TAP version 13',
      '1..1',
      '# selftests: filesystems/fuse: fuse_uring_kbuf_test',
      '# TAP version 13',
      '# 1..3',
      '# ok 1 a',
      '#',
      'not ok 1 selftests: filesystems/fuse: fuse_uring_kbuf_test # TIMEOUT 45 seconds',
    ].join('\n'),
  );
  const prog = only(doc.tests);
  assert.equal(prog.status, 'ERROR');
  assert.equal(prog.directive, 'TIMEOUT');
  assert.equal(prog.reason, '45 seconds');
  assert.equal(shape(prog.children), 'a:PASS (missing):ERROR (missing):ERROR');
  assert.equal(at(prog.children, 2).reason, 'no result in output (parent: TIMEOUT 45 seconds)');
  assert.deepEqual(
    doc.problems,
    ['selftests: filesystems/fuse: fuse_uring_kbuf_test: plan 1..3 but 1 result: 2 missing (output truncated?)'],
  );
});

test('a kselftest program cut off mid-run takes its name from the runner\'s header', () => {
  const doc = parseKtap(
    ['TAP version 13', '1..2', '# selftests: filesystems/fuse: fusectl_test', '# TAP version 13', '# 1..2', '# ok 1 fusectl.abort'].join(
      '\n',
    ),
  );
  const cut = at(doc.tests, 0);
  assert.equal(cut.name, 'selftests: filesystems/fuse: fusectl_test');
  assert.equal(cut.number, 1);
  assert.equal(cut.status, 'ERROR');
  assert.equal(cut.line, 4);
  assert.equal(shape(cut.children), 'fusectl.abort:PASS (missing):ERROR');
  assert.equal(at(doc.tests, 1).name, '(missing)');
  assert.equal(at(doc.tests, 1).number, 2);
});

test('TAP 14 style: "# Subtest: NAME" before the indented block names a truncated parent', () => {
  const doc = parseKtap(['TAP version 14', '1..1', '# Subtest: kbuf', '    1..2', '    ok 1 - a'].join('\n'));
  const t = only(doc.tests);
  assert.equal(t.name, 'kbuf');
  assert.deepEqual(t.diagnostics, [], '"# Subtest:" is structure, not a diagnostic');
});

test('no truncated parent without a name gets "(truncated)"', () => {
  const doc = parseKtap(['KTAP version 1', '1..1', '  KTAP version 1', '  1..1', '  ok 1 a'].join('\n'));
  assert.equal(only(doc.tests).name, '(truncated)');
  assert.equal(only(doc.tests).reason, 'no result line in output (truncated?)');
});

test('duplicate and out-of-order numbers, extra results, a second plan', () => {
  const doc = parseKtap(['KTAP version 1', '1..2', 'ok 1 a', 'ok 1 b', 'ok 3 c', '1..3'].join('\n'));
  assert.deepEqual(doc.problems, [
    'line 4: duplicate test number 1',
    'line 5: test number 3 out of order (expected 2)',
    'line 6: second plan line "1..3"',
    'plan 1..2 but 3 results',
  ]);
  assert.equal(doc.tests.length, 3);
});

test('a missing number in the middle is filled in at its place', () => {
  const doc = parseKtap(['KTAP version 1', '1..3', 'ok 1 a', 'ok 3 c'].join('\n'));
  assert.deepEqual(
    doc.tests.map((t) => `${t.number ?? '-'}:${t.name}`),
    ['1:a', '2:(missing)', '3:c'],
  );
});

test('a plan after the results (TAP allows it) is no problem', () => {
  const doc = parseKtap(['TAP version 13', 'ok 1 a', 'ok 2 b', '1..2'].join('\n'));
  assert.deepEqual(doc.problems, []);
  assert.equal(doc.plan, 2);
});

test('results without a version line are parsed, and the missing line is reported', () => {
  const doc = parseKtap('1..1\nok 1 a\n');
  assert.equal(doc.version, null);
  assert.equal(only(doc.tests).status, 'PASS');
  assert.equal(doc.problems.length, 1);
  assert.match(doc.problems[0] ?? '', /no version line/);
});

test('no KTAP at all: one problem, no tests', () => {
  for (const text of ['', '\n\n', '[    0.000000] Linux version 6.12.0\nreboot: Power down\n']) {
    const doc: KtapDocument = parseKtap(text);
    assert.deepEqual(doc, { version: null, plan: null, tests: [], problems: ['no KTAP output found'] });
  }
});

test('CRLF line ends and trailing spaces are ignored', () => {
  const doc = parseKtap('KTAP version 1\r\n1..1  \r\n    KTAP version 1\r\n    1..1\r\n    ok 1 a \r\nok 1 s\r\n');
  assert.deepEqual(doc.problems, []);
  assert.equal(shape(doc.tests), 's:PASS[a:PASS]');
});

test('"1..0 # SKIP reason" gives a bare "# SKIP" its reason', () => {
  const doc = parseKtap(['TAP version 13', '1..1', '# TAP version 13', '# 1..0 # SKIP no io_uring', 'ok 1 selftests: x: y # SKIP'].join('\n'));
  const t = only(doc.tests);
  assert.equal(t.status, 'SKIP');
  assert.equal(t.reason, 'no io_uring');
  assert.deepEqual(t.children, []);
  assert.deepEqual(doc.problems, []);
});

test('output after the top-level Bail out! is ignored', () => {
  const doc = parseKtap(['TAP version 13', '1..2', 'Bail out!', 'ok 1 a', 'ok 2 b'].join('\n'));
  assert.equal(shape(doc.tests), '(missing):ERROR (missing):ERROR');
  assert.equal(at(doc.tests, 0).reason, 'no result in output (Bail out!)');
  assert.equal(at(doc.tests, 0).line, 3);
});

test('garbage never throws', () => {
  const junk = [
    'ok',
    'not ok',
    '1..',
    '1..x',
    '#',
    '# ',
    '    ',
    '\t# Subtest:',
    'KTAP version',
    '  ok 1',
    '# # # ok 1',
    'Bail out',
    '\u0000\u001b[0m',
    'ok 99999999999999999999 big',
  ];
  let seed = 7;
  for (let n = 0; n < 200; n++) {
    const lines: string[] = [];
    for (let i = 0; i < 30; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      lines.push(junk[seed % junk.length] ?? '');
    }
    const doc = parseKtap(lines.join('\n'));
    flattenKtap(doc);
  }
});

test('flatten: a failing parent is listed only when no child shows the failure', () => {
  const doc = parseKtap(
    [
      'KTAP version 1',
      '1..3',
      '    KTAP version 1',
      '    1..1',
      '    ok 1 a',
      '# teardown failed: -EBUSY',
      'not ok 1 quiet_parent',
      '    KTAP version 1',
      '    1..1',
      '    not ok 1 b',
      'not ok 2 loud_parent',
      '    KTAP version 1',
      '    1..1',
      '    ok 1 c # SKIP nope',
      'not ok 3 skipped_children # TIMEOUT 10 seconds',
    ].join('\n'),
  );
  assert.deepEqual(
    flattenKtap(doc).map((r) => `${r.path.join('/')}=${r.status}`),
    [
      'quiet_parent/a=PASS',
      'quiet_parent=FAIL',
      'loud_parent/b=FAIL',
      'skipped_children/c=SKIP',
      'skipped_children=ERROR',
    ],
  );
  const flat = flattenKtap(doc);
  assert.equal(flat[1]?.detail, 'teardown failed: -EBUSY');
  assert.equal(flat[4]?.detail, 'TIMEOUT 10 seconds');
});

test('flatten: details carry at most 20 lines, the last ones', () => {
  const diags = Array.from({ length: 30 }, (_, i) => `# line ${i + 1}`);
  const doc = parseKtap(['KTAP version 1', '1..2', ...diags, 'not ok 1 noisy # TIMEOUT 5 seconds', ...diags, 'ok 2 quiet'].join('\n'));
  const [noisy, quiet] = flattenKtap(doc);
  const lines = noisy?.detail.split('\n') ?? [];
  assert.equal(lines.length, 20);
  assert.equal(lines[0], 'TIMEOUT 5 seconds');
  assert.equal(lines[1], 'line 12');
  assert.equal(lines[19], 'line 30');
  assert.equal(quiet?.detail, '', 'passing tests carry no diagnostics');
});

test('flatten: siblings with the same name get their number in the path', () => {
  const doc = parseKtap(['KTAP version 1', '1..4', 'ok 1 same', 'ok 2 same', 'ok 3 # SKIP', 'ok 4 other'].join('\n'));
  assert.deepEqual(
    flattenKtap(doc).map((r) => r.path.join('/')),
    ['same #1', 'same #2', '#3', 'other'],
  );
});

test('lines before the top-level version line are not part of the document', () => {
  const doc = parseKtap(['ok 1 not-a-test', 'garbage', 'TAP version 13', '1..1', 'ok 1 real'].join('\n'));
  assert.equal(shape(doc.tests), 'real:PASS');
  assert.equal(only(doc.tests).line, 5);
});

// ---------------------------------------------------------------------------
// Issue 11: KTAP edge cases, and suites marked in the guest output.

const GUEST_LIB = join(import.meta.dirname, '..', '..', '..', 'images', 'guest', 'lib', 'ktap.sh');
const GUEST_INIT = join(import.meta.dirname, '..', '..', '..', 'images', 'guest', 'init');

/**
 * Runs SCRIPT in sh with the guest's lib/ktap.sh sourced ("$1" is a scratch
 * folder). The guest's shell is busybox's; the host's sh and awk are POSIX
 * too, and the script uses nothing else.
 */
function guestSh(script: string, input = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'patchbay-ktap-sh-'));
  try {
    return execFileSync('sh', ['-c', `. "$0" && ${script}`, GUEST_LIB, dir], { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The guest's document as init prints it: SUITES' blocks, each with its top-level result if it has one. */
function guestDocument(blocks: ReadonlyArray<{ suite: string; output: string[]; result: string | null }>): string {
  const lines = ['KTAP version 1', `1..${blocks.length}`];
  blocks.forEach((b, i) => {
    lines.push(`    # Subtest: ${b.suite}`, ...b.output.map((l) => `    ${l}`));
    if (b.result !== null) lines.push(b.result.replace('$i', String(i + 1)));
  });
  return `${lines.join('\n')}\n`;
}

const rows = (doc: KtapDocument): string[] => flattenKtap(doc).map((r) => `${r.path.join('/')}=${r.status}`);

test('case 1: a passing test whose own output reads "1..3" and "ok 1 foo" gets no subtests and no (missing) rows', () => {
  // lib/ktap.sh puts a test's output behind "# "; no version line came, so
  // it is the test's free-form output, not a nested KTAP document.
  const doc = parseKtap(
    guestDocument([
      {
        suite: 'kbuf',
        output: ['KTAP version 1', '1..2', '# 1..3', '# ok 1 foo', '# not ok 2 bar', '# chatty: done', 'ok 1 chatty.t # time=0.2s', 'ok 2 quiet.t # time=0.1s'],
        result: 'ok $i kbuf',
      },
    ]),
  );
  assert.deepEqual(doc.problems, []);
  assert.deepEqual(rows(doc), ['kbuf/chatty.t=PASS', 'kbuf/quiet.t=PASS']);
  assert.deepEqual(at(only(doc.tests).children, 0).diagnostics, ['1..3', 'ok 1 foo', 'not ok 2 bar', 'chatty: done']);
});

test('case 1: a test\'s own KTAP behind "# " nests from its version line; what it printed before that stays diagnostics', () => {
  const doc = parseKtap(
    [
      'KTAP version 1',
      '1..1',
      '# ok 1 not-a-subtest',
      '# TAP version 13',
      '# 1..2',
      '# ok 1 fusectl.abort',
      '# not ok 2 fusectl.other',
      'not ok 1 fusectl_test # exit=1 time=1.0s',
    ].join('\n'),
  );
  assert.deepEqual(doc.problems, []);
  assert.equal(shape(doc.tests), 'fusectl_test:FAIL[fusectl.abort:PASS fusectl.other:FAIL]');
  assert.deepEqual(only(doc.tests).diagnostics, ['ok 1 not-a-subtest']);
});

test('case 2: "not ok # XFAIL" and "not ok # TODO" are FAIL; "ok # XFAIL" and "ok # SKIP" are PASS and SKIP', () => {
  const doc = parseKtap(
    ['KTAP version 1', '1..5', 'ok 1 a # XFAIL known', 'not ok 2 b # XFAIL known', 'not ok 3 c # TODO later', 'ok 4 d # SKIP', 'not ok 5 e # SKIP why'].join('\n'),
  );
  assert.deepEqual(doc.problems, []);
  assert.equal(shape(doc.tests), 'a:PASS b:FAIL c:FAIL d:SKIP e:SKIP');
});

test('case 2: "ok" over a subtest plan "1..0 # SKIP why" is SKIP with that reason', () => {
  // The selftests suite when the series touches no selftests, as init nests it.
  const doc = parseKtap(
    guestDocument([
      { suite: 'selftests', output: ['KTAP version 1', '1..0 # SKIP the series adds or changes no io_uring or FUSE selftests'], result: 'ok $i selftests' },
      // A kselftest program that skipped whole, run by lib/ktap.sh, which saw exit 0.
      { suite: 'fuse', output: ['KTAP version 1', '1..1', '# TAP version 13', '# 1..0 # SKIP no /dev/fuse', 'ok 1 fusectl_test # time=0.1s'], result: 'ok $i fuse' },
    ]),
  );
  assert.deepEqual(doc.problems, []);
  assert.deepEqual(
    flattenKtap(doc).map((r) => [r.path.join('/'), r.status, r.detail]),
    [
      ['selftests', 'SKIP', 'the series adds or changes no io_uring or FUSE selftests'],
      ['fuse/fusectl_test', 'SKIP', 'no /dev/fuse (time=0.1s)'],
    ],
  );
  // "not ok" over the same plan stays a failure.
  const failed = parseKtap(['KTAP version 1', '1..1', '  KTAP version 1', '  1..0 # SKIP no fuse', 'not ok 1 t # exit=1'].join('\n'));
  assert.equal(only(failed.tests).status, 'FAIL');
});

test('case 2: "ok" with TIMEOUT or ERROR is ERROR, and a problem says the line is off', () => {
  const doc = parseKtap(['KTAP version 1', '1..3', 'ok 1 a # TIMEOUT 30 seconds', 'ok 2 b # ERROR no ring', 'not ok 3 c # TIMEOUT 30 seconds'].join('\n'));
  assert.equal(shape(doc.tests), 'a:ERROR b:ERROR c:ERROR');
  assert.deepEqual(doc.problems, [
    'line 3: "ok" with the TIMEOUT directive (ktap.rst pairs it with "not ok"): taken as ERROR',
    'line 4: "ok" with the ERROR directive (ktap.rst pairs it with "not ok"): taken as ERROR',
  ]);
});

/** A kselftest program's output: N subtests, the given ones failing, with two lines of chatter each. */
function kselftestOutput(n: number, failing: readonly number[]): string {
  const out = ['TAP version 13', `1..${n}`];
  for (let i = 1; i <= n; i++) {
    out.push(`# RUN t${i}: doing something rather verbose for the log, line ${i}`, `# more output for ${i}`);
    out.push(`${failing.includes(i) ? 'not ok' : 'ok'} ${i} t${i}`);
  }
  out.push(`# Totals: pass:${n - failing.length} fail:${failing.length}`);
  return `${out.join('\n')}\n`;
}

test('case 3: lib/ktap.sh keeps a failing test\'s output up to 64 KiB, head and tail, and every KTAP line: failing subtests keep their names', () => {
  const output = kselftestOutput(3000, [5, 2990]);
  assert.ok(output.length > 300_000);
  const shown = guestSh('cat > "$1/out" && ktap_output "$1/out" fail', output);
  const diag = shown.split('\n').filter((l) => l !== '' && !/^# (TAP version|1\.\.|(not )?ok )/.test(l));
  const marker = diag.find((l) => l.startsWith('# patchbay: diagnostics cut: '));
  assert.ok(marker, 'a line says where diagnostics went');
  assert.ok(diag.join('\n').length <= 65_536 + marker.length + 2 * diag.length, 'diagnostics: 64 KiB, plus "# " a line and the marker');
  assert.ok(shown.includes('# RUN t1: ') && shown.includes('# Totals: pass:2998 fail:2'), 'the head and the tail are kept');
  const doc = parseKtap(['KTAP version 1', '1..1', shown.trimEnd(), 'not ok 1 big_kselftest # exit=1 time=9.0s'].join('\n'));
  assert.deepEqual(doc.problems, []);
  const prog = only(doc.tests);
  assert.equal(prog.children.length, 3000);
  assert.deepEqual(
    flattenKtap(doc).filter((r) => r.status !== 'PASS').map((r) => r.path.join('/')),
    ['big_kselftest/t5', 'big_kselftest/t2990'],
  );
});

test('case 3: lib/ktap.sh keeps a passing test\'s last 40 diagnostic lines and every KTAP line: the same rows as when it fails', () => {
  const output = kselftestOutput(3000, []);
  const shown = guestSh('cat > "$1/out" && ktap_output "$1/out" pass', output);
  const lines = shown.trimEnd().split('\n');
  assert.match(lines[2] ?? '', /^# patchbay: diagnostics cut: 5961 of 9003 lines \(\d+ bytes\) not shown from here on; KTAP lines are kept$/);
  assert.equal(lines.filter((l) => !/^# (TAP version|1\.\.|(not )?ok )/.test(l)).length, 40 + 1);
  const doc = parseKtap(['KTAP version 1', '1..1', shown.trimEnd(), 'ok 1 big_kselftest # time=9.0s'].join('\n'));
  assert.deepEqual(doc.problems, []);
  assert.equal(flattenKtap(doc).length, 3000);
  // A short output comes back whole, each line behind "# ".
  assert.equal(guestSh('printf "a\\n  b\\n\\nlast" > "$1/out" && ktap_output "$1/out" fail'), '# a\n#   b\n# \n# last\n');
  assert.equal(guestSh(': > "$1/out" && ktap_output "$1/out" pass'), '');
});

test('case 3: past its cap of KTAP lines lib/ktap.sh says the output was cut; the parser then makes no (missing) tests', () => {
  const output = kselftestOutput(50, [3]);
  const shown = guestSh('cat > "$1/out" && KTAP_OUT_KTAP=200 && ktap_output "$1/out" fail', output);
  assert.match(shown, /^# patchbay: output cut: \d+ KTAP lines \(\d+ bytes\) not shown from here on: the results among them are missing$/m);
  const text = ['KTAP version 1', '1..1', shown.trimEnd(), 'not ok 1 prog # exit=1'].join('\n');
  const doc = parseKtap(text);
  const prog = only(doc.tests);
  assert.ok(prog.children.length > 0 && prog.children.length < 50);
  assert.ok(!prog.children.some((c) => c.name === '(missing)'), shape(prog.children));
  const cutLine = text.split('\n').findIndex((l) => l.startsWith(`# ${KTAP_CUT_MARKER}`)) + 1;
  assert.deepEqual(doc.problems, [
    `prog: plan 1..50 but ${prog.children.length} results: ${50 - prog.children.length} not listed, the output was cut by the guest at line ${cutLine}`,
  ]);
  assert.deepEqual(
    flattenKtap(doc).filter((r) => r.status !== 'PASS').map((r) => r.path.join('/')),
    ['prog/t3'],
  );
});

test('case 3: after a cut, results that jump ahead are no "out of order" problem; without the marker they are', () => {
  const lines = (marker: string): string =>
    ['KTAP version 1', '1..1', '# TAP version 13', '# 1..9', '# ok 1 a', marker, '# ok 8 h', '# ok 9 i', 'ok 1 prog'].join('\n');
  assert.deepEqual(parseKtap(lines(`# ${KTAP_CUT_MARKER} 6 KTAP lines (60 bytes) not shown from here on`)).problems, [
    'prog: plan 1..9 but 3 results: 6 not listed, the output was cut by the guest at line 6',
  ]);
  const plain = parseKtap(lines('# some chatter'));
  assert.ok(plain.problems.some((p) => p.includes('test number 8 out of order')), plain.problems.join('\n'));
  assert.ok(plain.problems.some((p) => p.includes('6 missing')), plain.problems.join('\n'));
});

test('case 4: ktapProblemLines shows at most 20 problems, the last line counting the rest (with those the parser did not list)', () => {
  assert.equal(KTAP_PROBLEMS_SHOWN, 20);
  assert.deepEqual(ktapProblemLines([]), []);
  const few = ['line 4: duplicate test number 1', 'plan 1..2 but 3 results'];
  assert.deepEqual(ktapProblemLines(few), few);
  const many = Array.from({ length: 25 }, (_, i) => `problem ${i + 1}`);
  const shown = ktapProblemLines(many);
  assert.equal(shown.length, 20);
  assert.equal(shown[18], 'problem 19');
  assert.equal(shown[19], '... and 6 more problems');
  assert.deepEqual(ktapProblemLines([...many.slice(0, 3), '1000 more problems not listed', 'a note']), [
    'problem 1',
    'problem 2',
    'problem 3',
    'a note',
    '... and 1000 more problems',
  ]);
  assert.equal(ktapProblemLines([`x${'y'.repeat(1000)}`])[0]?.length, 300);
  // Real problems from a guest document, as judgeGuestRun would show them.
  const doc = parseKtap(guestDocument([{ suite: 'kbuf', output: ['KTAP version 1', '1..3', 'ok 1 a'], result: null }]));
  assert.deepEqual(ktapProblemLines(doc.problems), [
    'line 3: subtest block "kbuf" has no result line (output truncated?)',
    'kbuf: plan 1..3 but 1 result: 2 missing (output truncated?)',
  ]);
});

test('case 5: "# Subtest: NAME" before the nested version line (init) or after it (ktap.rst, KUnit) names the block', () => {
  for (const order of [['# Subtest: kbuf', 'KTAP version 1'], ['KTAP version 1', '# Subtest: kbuf']]) {
    const doc = parseKtap(['KTAP version 1', '1..1', ...order.map((l) => `    ${l}`), '    1..1', '    ok 1 a', 'ok 1 kbuf'].join('\n'));
    assert.deepEqual(doc.problems, [], order.join(', '));
    assert.equal(shape(doc.tests), 'kbuf:PASS[a:PASS]');
    assert.deepEqual(only(doc.tests).diagnostics, []);
  }
});

test('case 5: init nests each suite under "# Subtest: SUITE" (ktap_nest), to the console and the KTAP channel alike', () => {
  const out = guestSh('ktap_nest kbuf 3> "$1/ch" && printf "%s" "--channel--" && cat "$1/ch"', 'KTAP version 1\n1..1\n  indented stays\nok 1 a');
  const [console, channel] = out.split('--channel--');
  assert.equal(console, '    # Subtest: kbuf\n    KTAP version 1\n    1..1\n      indented stays\n    ok 1 a\n', 'a last line without a newline is kept');
  assert.equal(channel, console);
  const init = readFileSync(GUEST_INIT, 'utf8');
  assert.match(init, /^\. \/patchbay\/lib\/ktap\.sh$/m);
  assert.match(init, /\) 3>&- \\\n\s+\| ktap_nest "\$s"\n/, 'every suite\'s output goes through ktap_nest');
});

const initLines = ['[    1.587389] Run /init as init process', 'patchbay: init started, kernel 7.1.8+'];

test('case 5: a suite the guest died in keeps its rows under its own name; the suites after it are "not run"', () => {
  // smoke finished; kbuf was at its second test when the kernel panicked.
  const ktap = guestDocument([
    { suite: 'smoke', output: ['KTAP version 1', '1..1', 'ok 1 io_uring_setup'], result: 'ok $i smoke' },
    { suite: 'kbuf', output: ['KTAP version 1', '1..3', 'ok 1 buf-ring.t # time=0.1s'], result: null },
  ]).replace('1..2', '1..3');
  const consoleLog = [
    ...initLines,
    'patchbay: suite smoke start (timeout 60s)',
    'patchbay: suite smoke end (exit 0)',
    'patchbay: suite kbuf start (timeout 600s)',
    '[    3.000000] patchbay: test kbuf/buf-ring.t start',
    '[    3.000000] patchbay: test kbuf/buf-ring.t end',
    '[    3.100000] patchbay: test kbuf/kbuf-unregister-busy start',
    '[    3.200000] Kernel panic - not syncing: Fatal exception',
  ].join('\n');
  const v = judgeGuestRun({ consoleLog, ktap, exitCode: 0, timedOut: false, timeoutSeconds: 600, suites: ['smoke', 'kbuf', 'fuse'] });
  const got = v.results.map((r) => `${r.suite}/${r.test}=${r.status}`);
  assert.ok(!got.some((r) => r.startsWith('(truncated)') || r.startsWith('(missing)')), got.join(', '));
  for (const want of ['smoke/io_uring_setup=PASS', 'kbuf/buf-ring.t=PASS', 'kbuf/(missing) #2=ERROR', 'kbuf/(missing) #3=ERROR', 'fuse/(suite)=ERROR']) {
    assert.ok(got.includes(want), `${want} in ${got.join(', ')}`);
  }
  assert.match(v.results.find((r) => r.suite === 'fuse')?.detail ?? '', /^not run/);
});

test('case 5: a suite block that ends with all its results but no result line of its own is an ERROR row of that suite', () => {
  const ktap = guestDocument([{ suite: 'smoke', output: ['KTAP version 1', '1..1', 'ok 1 io_uring_setup'], result: null }]);
  const v = judgeGuestRun({ consoleLog: [...initLines, 'patchbay: suite smoke start (timeout 60s)'].join('\n'), ktap, exitCode: null, timedOut: true, timeoutSeconds: 120, suites: ['smoke'] });
  const suiteRow = v.results.find((r) => r.suite === 'smoke' && r.test === '(suite)');
  assert.equal(suiteRow?.status, 'ERROR', JSON.stringify(v.results));
  assert.match(suiteRow.detail, /no result line in output/);
  assert.equal(v.results.find((r) => r.test === 'io_uring_setup')?.suite, 'smoke');
});

test('case 5: re-runs: a suite listed twice, the guest dying in its second run, files both runs under the suite, in order', () => {
  const ktap = guestDocument([
    { suite: 'kbuf', output: ['KTAP version 1', '1..1', 'not ok 1 buf-ring.t # exit=1'], result: 'ok $i kbuf' },
    { suite: 'kbuf', output: ['KTAP version 1', '1..1'], result: null },
  ]);
  const v = judgeGuestRun({ consoleLog: [...initLines, 'patchbay: suite kbuf start', 'patchbay: suite kbuf end (exit 0)', 'patchbay: suite kbuf start'].join('\n'), ktap, exitCode: 0, timedOut: false, timeoutSeconds: 600, suites: ['kbuf', 'kbuf'] });
  assert.deepEqual(
    v.results.map((r) => `${r.suite}/${r.test}=${r.status}`),
    ['kbuf/buf-ring.t=FAIL', 'kbuf/(missing)=ERROR'],
  );
});

test('case 5: KTAP from an older init (no "# Subtest:" lines): an unfinished block is the suite at its position', () => {
  const ktap = 'KTAP version 1\n1..2\n    KTAP version 1\n    1..1\n    ok 1 a\nok 1 smoke\n    KTAP version 1\n    1..2\n    ok 1 buf-ring.t\n';
  const v = judgeGuestRun({ consoleLog: [...initLines, 'patchbay: suite kbuf start'].join('\n'), ktap, exitCode: 0, timedOut: false, timeoutSeconds: 600, suites: ['smoke', 'kbuf'] });
  assert.deepEqual(
    v.results.map((r) => `${r.suite}/${r.test}=${r.status}`),
    ['smoke/a=PASS', 'kbuf/buf-ring.t=PASS', 'kbuf/(missing)=ERROR'],
  );
});

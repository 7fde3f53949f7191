import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { flattenKtap, parseKtap, parseResultLine, statusOf, type KtapDocument, type KtapTest } from '../ktap.ts';
import { goldenInputs } from './golden-cases.ts';

const GOLDEN = join(import.meta.dirname, 'golden', 'ktap');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

// Golden files: NAME.ktap in, NAME.json out ({ document, flat }). With
// UPDATE_GOLDEN=1 the expected files are rewritten: read every one after.
for (const file of goldenInputs(GOLDEN, '.ktap')) {
  const name = file.slice(0, -'.ktap'.length);
  test(`golden ktap: ${name}`, () => {
    const document = parseKtap(readFileSync(join(GOLDEN, file), 'utf8'));
    const actual = { document, flat: flattenKtap(document) };
    const expectedPath = join(GOLDEN, `${name}.json`);
    if (UPDATE) writeFileSync(expectedPath, `${JSON.stringify(actual, null, 2)}\n`);
    assert.ok(existsSync(expectedPath), `missing ${expectedPath} (run with UPDATE_GOLDEN=1, then review it)`);
    assert.deepStrictEqual(actual, JSON.parse(readFileSync(expectedPath, 'utf8')));
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

test('status mapping follows the directive, then ok / not ok', () => {
  assert.equal(statusOf(true, null), 'PASS');
  assert.equal(statusOf(false, null), 'FAIL');
  assert.equal(statusOf(true, 'SKIP'), 'SKIP');
  assert.equal(statusOf(false, 'SKIP'), 'SKIP');
  assert.equal(statusOf(true, 'XFAIL'), 'PASS');
  assert.equal(statusOf(false, 'XFAIL'), 'PASS');
  assert.equal(statusOf(false, 'TODO'), 'SKIP');
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

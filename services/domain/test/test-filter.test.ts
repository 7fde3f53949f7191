/**
 * The test filter (`patchbay run --test SUITE/TEST`): what a selector may
 * say, the tests per suite the guest's plan gets, and the rows the host
 * keeps of a run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestResult } from '../job.ts';
import { NOT_RETRIED_CODES } from '../errors.ts';
import { checkTestSelectors, filterRows, parseTestSelector, rowSelected, testsBySuite, unanswered } from '../test-filter.ts';
import { errorCodeOf } from './error-code.ts';

const row = (suite: string, t: string): TestResult => ({ suite, test: t, status: 'PASS', detail: '' });

test('a selector is SUITE/TEST; the test may hold slashes (selftests name COLLECTION/TEST)', () => {
  assert.deepEqual(parseTestSelector('smoke/pbuf_ring_register'), { suite: 'smoke', test: 'pbuf_ring_register' });
  assert.deepEqual(parseTestSelector('kbuf/buf-ring.t'), { suite: 'kbuf', test: 'buf-ring.t' });
  assert.deepEqual(parseTestSelector('selftests/filesystems/fuse:fusectl_test'), { suite: 'selftests', test: 'filesystems/fuse:fusectl_test' });
  assert.deepEqual(parseTestSelector('fuse/passthrough_hp.io-uring.abort'), { suite: 'fuse', test: 'passthrough_hp.io-uring.abort' });
});

test('a selector the guest\'s plan or shell could misread is refused (TEST_FILTER_INVALID)', () => {
  for (const bad of ['smoke', 'smoke/', '/x', 'Smoke/x', 'smoke/a b', 'smoke/*', 'smoke/a;reboot', 'smoke/$(id)', 'smoke/a\nkbuf', 'smoke/../x', 'smoke/a//b', 'smoke/-x', `smoke/${'a'.repeat(201)}`]) {
    assert.equal(errorCodeOf(() => parseTestSelector(bad)), 'TEST_FILTER_INVALID', JSON.stringify(bad));
  }
  assert.equal(errorCodeOf(() => { checkTestSelectors([{ suite: 'smoke', test: 'x y' }]); }), 'TEST_FILTER_INVALID');
  assert.equal(errorCodeOf(() => { checkTestSelectors([{ suite: 'smoke', test: 'io_uring_setup' }]); }), 'no error');
  assert.ok(NOT_RETRIED_CODES.has('TEST_FILTER_INVALID'), 'the same input gives the same answer: not retried');
});

test('the tests per suite: sorted, without repeats, suites in name order', () => {
  const by = testsBySuite([{ suite: 'smoke', test: 'b' }, { suite: 'kbuf', test: 'x' }, { suite: 'smoke', test: 'a' }, { suite: 'smoke', test: 'b' }]);
  assert.deepEqual([...by], [['kbuf', ['x']], ['smoke', ['a', 'b']]]);
  assert.equal(testsBySuite(undefined).size, 0);
  assert.equal(testsBySuite([]).size, 0);
});

test('rows kept: a named test and its subtests, rows about the whole suite, every row of a suite not named', () => {
  assert.ok(rowSelected('a', ['a']));
  assert.ok(rowSelected('a.sub', ['a']));
  assert.ok(!rowSelected('ab', ['a']), 'a prefix of another name is not a subtest');
  assert.ok(rowSelected('(suite)', ['a']));
  assert.ok(rowSelected('(timeout)', ['a']));
  const rows = [row('smoke', 'io_uring_setup'), row('smoke', 'pbuf_ring_register'), row('smoke', 'pbuf_ring_register_duplicate'), row('smoke', '(timeout)'), row('kbuf', 'buf-ring'), row('kbuf', 'buf-ring.sub')];
  const by = testsBySuite([{ suite: 'smoke', test: 'pbuf_ring_register' }]);
  assert.deepEqual(filterRows(rows, by).map((r) => `${r.suite}/${r.test}`), ['smoke/pbuf_ring_register', 'smoke/(timeout)', 'kbuf/buf-ring', 'kbuf/buf-ring.sub']);
  assert.deepEqual(filterRows(rows, new Map()), rows, 'no filter: every row');
});

test('a named test no row answers for is reported', () => {
  const by = testsBySuite([{ suite: 'smoke', test: 'io_uring_setup' }, { suite: 'smoke', test: 'nosuch' }, { suite: 'kbuf', test: 'buf-ring' }]);
  assert.deepEqual(unanswered([row('smoke', 'io_uring_setup'), row('kbuf', 'buf-ring.case1')], by), [{ suite: 'smoke', test: 'nosuch' }]);
});

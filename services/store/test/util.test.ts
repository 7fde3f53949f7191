import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PatchbayError } from '../../domain/errors.ts';
import { jobIdempotencyKey, uniqueTestNames } from '../job-repo.ts';
import { hashSecret } from '../token-repo.ts';
import { checkLimit, cleanText, decodeCursor, encodeCursor, jsonb, newId, storeError } from '../util.ts';

test('ids: prefix, 20 base32 characters, sortable by time', async () => {
  const a = newId('s');
  await new Promise((resolve) => setTimeout(resolve, 3));
  const b = newId('s');
  assert.match(a, /^s-[0-9a-hjkmnp-tv-z]{20}$/);
  assert.ok(a < b);
  assert.notEqual(newId('j'), newId('j'));
  assert.match(newId('t'), /^t-/);
});

test('cursors round-trip and refuse what they did not hand out', () => {
  const c = { createdAt: '2026-11-23T20:51:02.328123Z', id: newId('j') };
  assert.deepEqual(decodeCursor(encodeCursor(c), 'j'), c);
  for (const bad of ['', 'x', encodeCursor({ ...c, createdAt: 'yesterday' }), encodeCursor({ ...c, id: "j-'; drop" })]) {
    assert.throws(() => decodeCursor(bad, 'j'), (e: unknown) => e instanceof PatchbayError && e.code === 'STORE_BAD_CURSOR');
  }
  // A job cursor is not a series cursor.
  assert.throws(() => decodeCursor(encodeCursor(c), 's'), /not one this list handed out/);
});

test('limits are 1..500', () => {
  assert.equal(checkLimit(50), 50);
  for (const bad of [0, -1, 501, 1.5, Number.NaN]) assert.throws(() => checkLimit(bad), /1 to 500/);
});

test('cleanText and jsonb replace NUL and lone surrogates, keep pairs', () => {
  assert.equal(cleanText('a\u0000b\uD800c\uDC00d\uD83D\uDE00'), 'a\uFFFDb\uFFFDc\uFFFDd\uD83D\uDE00');
  assert.equal(jsonb({ k: ['x\u0000'] }), '{"k":["x\uFFFD"]}');
});

test('uniqueTestNames numbers repeated names within a suite', () => {
  const r = uniqueTestNames([
    { suite: 's', test: 'kernel-warning', status: 'FAIL', detail: '' },
    { suite: 's', test: 'kernel-warning', status: 'FAIL', detail: '' },
    { suite: 't', test: 'kernel-warning', status: 'FAIL', detail: '' },
    { suite: 's', test: 'kernel-warning (2)', status: 'PASS', detail: '' },
  ]);
  assert.deepEqual(r.map((x) => `${x.suite}/${x.test}`), ['s/kernel-warning', 's/kernel-warning (2)', 't/kernel-warning', 's/kernel-warning (2) (2)']);
});

test('jobIdempotencyKey: order and repeats of suites do not matter, tree and base do', () => {
  const base = { contentHash: 'c'.repeat(64), tree: 'io_uring', base: null, suites: ['kbuf', 'fuse'] };
  const k = jobIdempotencyKey(base);
  assert.match(k, /^[0-9a-f]{64}$/);
  assert.equal(jobIdempotencyKey({ ...base, suites: ['fuse', 'kbuf', 'fuse'] }), k);
  assert.notEqual(jobIdempotencyKey({ ...base, tree: 'fuse' }), k);
  assert.notEqual(jobIdempotencyKey({ ...base, base: 'v7.1' }), k);
  assert.match(jobIdempotencyKey({ ...base, force: true }), new RegExp(`^${k}:force:[0-9a-f]{16}$`));
});

test('jobIdempotencyKey: a rerun keyed by what asked for it is a new job, the same one each time it is asked', () => {
  const base = { contentHash: 'c'.repeat(64), tree: 'io_uring', base: null, suites: ['kbuf'] };
  const k = jobIdempotencyKey(base);
  const once = jobIdempotencyKey({ ...base, force: true, rerunKey: 'reply-command:a@example.org' });
  assert.match(once, new RegExp(`^${k}:rerun:[0-9a-f]{32}$`));
  assert.equal(jobIdempotencyKey({ ...base, force: true, rerunKey: 'reply-command:a@example.org' }), once);
  assert.notEqual(jobIdempotencyKey({ ...base, rerunKey: 'reply-command:b@example.org' }), once);
  assert.equal(jobIdempotencyKey({ ...base, rerunKey: null }), k);
});

test('storeError: constraint violations, transient failures, the rest', () => {
  const dup = storeError(Object.assign(new Error('duplicate key'), { code: '23505', constraint: 'tokens_name_key' }), 'x');
  assert.equal(dup.code, 'STORE_CONSTRAINT');
  assert.equal(dup.details.constraint, 'tokens_name_key');
  const gone = storeError(Object.assign(new Error('terminating connection'), { code: '57P01' }), 'x');
  assert.equal(gone.code, 'STORE_UNAVAILABLE');
  assert.equal(gone.retryable, true);
  assert.equal(storeError(new Error('connect ECONNREFUSED /tmp/.s.PGSQL.5432'), 'x').code, 'STORE_UNAVAILABLE');
  assert.equal(storeError(Object.assign(new Error('syntax'), { code: '42601' }), 'x').code, 'STORE_QUERY_FAILED');
});

test('hashSecret is sha256 hex', () => {
  assert.equal(hashSecret('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

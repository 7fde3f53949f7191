import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteBudget, cutMarker, formatBytes, utf8Prefix } from '../limits.ts';

test('a budget passes text up to its limit, then one marker, then nothing', () => {
  const b = new ByteBudget(10, 'build output');
  assert.deepEqual(b.take('12345'), { text: '12345', cutNow: false });
  const cut = b.take('67890abc');
  assert.equal(cut.cutNow, true);
  assert.equal(cut.text, `67890${cutMarker('build output', 10)}`);
  assert.match(cut.text, /build output cut at 10 bytes/);
  assert.deepEqual(b.take('more'), { text: '', cutNow: false });
  assert.equal(b.exhausted, true);
  assert.equal(b.usedBytes, 10);
});

test('text that ends exactly at the limit is not cut', () => {
  const b = new ByteBudget(4, 'x');
  assert.equal(b.take('abcd').text, 'abcd');
  assert.equal(b.exhausted, false);
  assert.equal(b.take('e').cutNow, true);
});

test('a cut never splits a UTF-8 character', () => {
  const b = new ByteBudget(5, 'x');
  // "ü" is two bytes: 4 + 2 > 5, so only "abcd" is kept.
  const t = b.take('abcdü');
  assert.ok(t.text.startsWith('abcd\n'), JSON.stringify(t.text));
  assert.equal(utf8Prefix('€€', 4), '€');
  assert.equal(utf8Prefix('€€', 2), '');
  assert.equal(utf8Prefix('abc', 0), '');
});

test('a megabyte through a kilobyte budget keeps a kilobyte and the marker', () => {
  const b = new ByteBudget(1024, 'console');
  let kept = '';
  for (let i = 0; i < 1024; i++) kept += b.take('x'.repeat(1023) + '\n').text;
  assert.equal(kept, 'x'.repeat(1023) + '\n' + cutMarker('console', 1024));
});

test('sizes are named in the marker', () => {
  assert.equal(formatBytes(32 * 1024 * 1024), '32 MiB');
  assert.equal(formatBytes(2 * 1024 * 1024 * 1024), '2 GiB');
  assert.equal(formatBytes(1536), '1536 bytes');
  assert.throws(() => new ByteBudget(-1, 'x'), RangeError);
});

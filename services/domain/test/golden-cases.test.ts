import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertGolden, GOLDEN_CASES, goldenInputs, goldenUpdateRequested, underCi } from './golden-cases.ts';

function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'patchbay-golden-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

test('CI is set unless unset, empty, 0 or false', () => {
  assert.equal(underCi({}), false);
  for (const v of ['', '0', 'false', 'FALSE']) assert.equal(underCi({ CI: v }), false, v);
  for (const v of ['true', '1', 'yes', 'woodpecker']) assert.equal(underCi({ CI: v }), true, v);
});

test('UPDATE_GOLDEN=1 asks for an update outside CI, and is refused under CI', () => {
  assert.equal(goldenUpdateRequested({}), false);
  assert.equal(goldenUpdateRequested({ UPDATE_GOLDEN: '0' }), false);
  assert.equal(goldenUpdateRequested({ CI: 'true' }), false, 'CI alone: compare, as always');
  assert.equal(goldenUpdateRequested({ UPDATE_GOLDEN: '1' }), true);
  assert.equal(goldenUpdateRequested({ UPDATE_GOLDEN: '1', CI: 'false' }), true);
  assert.throws(() => goldenUpdateRequested({ UPDATE_GOLDEN: '1', CI: 'true' }), /UPDATE_GOLDEN=1 is refused under CI \(CI=true\)/);
  assert.throws(() => goldenUpdateRequested({ UPDATE_GOLDEN: '1', CI: '1' }), /refused under CI/);
});

test('assertGolden under CI with UPDATE_GOLDEN=1 fails and leaves the expected file as it was', (t) => {
  const dir = folder({ 'a.json': '{"n": 1}\n' });
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const path = join(dir, 'a.json');
  assert.throws(() => { assertGolden(path, { n: 2 }, { UPDATE_GOLDEN: '1', CI: 'true' }); }, /refused under CI/);
  assert.equal(readFileSync(path, 'utf8'), '{"n": 1}\n');
  // The same call without the update compares, and fails on the difference.
  assert.throws(() => { assertGolden(path, { n: 2 }, { CI: 'true' }); }, assert.AssertionError);
  assertGolden(path, { n: 1 }, { CI: 'true' });
});

test('assertGolden outside CI with UPDATE_GOLDEN=1 rewrites the expected file; without it, a missing one fails', (t) => {
  const dir = folder({});
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const path = join(dir, 'a.json');
  assert.throws(() => { assertGolden(path, { n: 2 }, {}); }, /missing .*a\.json/);
  assertGolden(path, { n: 2 }, { UPDATE_GOLDEN: '1' });
  assert.equal(readFileSync(path, 'utf8'), '{\n  "n": 2\n}\n');
  assertGolden(path, { n: 2 }, {});
});

test('goldenInputs: exactly the expected cases, by name', (t) => {
  const dir = folder({ 'a.log': '', 'a.json': '', 'b.log': '', 'b.json': '' });
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  assert.deepEqual(goldenInputs(dir, '.log', ['b', 'a']), ['a.log', 'b.log']);
  assert.throws(() => goldenInputs(dir, '.log', ['a', 'b', 'c']), /1 of 3 expected golden inputs missing: c\.log/);
  assert.throws(() => goldenInputs(dir, '.log', ['a']), /not in the expected cases .*: b\.log/);
  assert.throws(() => goldenInputs(dir, '.log', []), /no golden cases expected/);
  assert.throws(() => goldenInputs(dir, '.ktap', ['a']), /expected golden inputs missing: a\.ktap/, 'an extension that matches nothing');
});

test('goldenInputs: an empty folder, and an expected output without its input, fail', (t) => {
  const empty = folder({});
  const orphan = folder({ 'a.log': '', 'a.json': '', 'gone.json': '' });
  t.after(() => { rmSync(empty, { recursive: true, force: true }); rmSync(orphan, { recursive: true, force: true }); });
  assert.throws(() => goldenInputs(empty, '.log', ['a']), /expected golden inputs missing/);
  assert.throws(() => goldenInputs(orphan, '.log', ['a']), /without their input: gone\.json/);
});

test('the golden folders hold exactly the listed cases', () => {
  const ext: Record<keyof typeof GOLDEN_CASES, string> = { console: '.log', ktap: '.ktap', mbox: '.mbox' };
  for (const kind of ['console', 'ktap', 'mbox'] as const) {
    assert.equal(goldenInputs(join(import.meta.dirname, 'golden', kind), ext[kind], GOLDEN_CASES[kind]).length, GOLDEN_CASES[kind].length, kind);
  }
});

/**
 * Prerequisite patches as a job records them: read from an mbox, the hash of
 * what is applied, the base-run key part that keeps base + prerequisites
 * apart from the plain base, and the one line people read.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { NOT_RETRIED_CODES } from '../errors.ts';
import { baseKeyCommit, describeBase, prerequisitesApplied, prerequisitesFromMbox, prerequisitesLine, prerequisitesMbox } from '../prerequisites.ts';
import { seriesMbox } from '../series.ts';
import { errorCodeOf } from './error-code.ts';

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, '..', '..', '..', 'fixtures', 'series', name)).toString('latin1');
const BASE = '0dfbac4f4be0f380cd34673a572ab902a33a82b2';
const helpers = prerequisitesFromMbox(fixture('prereq-kbuf-pin-helpers.mbox'));
const kmbuf = prerequisitesFromMbox(fixture('fail-apply-needs-kmbuf.mbox'));

test('an mbox of prerequisites: each patch one prerequisite, numbered in file order, the cover letter left out', () => {
  assert.deepEqual(helpers.patches.map((p) => [p.counter, p.subject.title]), [[1, 'io_uring/kbuf: add buffer ring pinning/unpinning helpers']]);
  assert.equal(helpers.cover, null);
  assert.deepEqual(kmbuf.patches.map((p) => [p.counter, p.message.messageId]), [
    [1, '20261121-kmbuf-followups-v1-1@patchbay.invalid'],
    [2, '20261121-kmbuf-followups-v1-2@patchbay.invalid'],
  ]);
  assert.equal(kmbuf.cover, null);
  assert.doesNotMatch(seriesMbox(kmbuf), /\[PATCH 0\/2\]/, 'the cover letter is never applied');
});

test('an mbox of prerequisites without a patch, or with a patch mail that lost its diff, is refused', () => {
  const cover = fixture('fail-apply-needs-kmbuf.mbox').split(/\n(?=From mboxrd@z )/)[0] ?? '';
  assert.equal(errorCodeOf(() => prerequisitesFromMbox(`${cover}\n`)), 'SERIES_NO_PATCHES');
  const noDiff = fixture('prereq-kbuf-pin-helpers.mbox').replace(/^---\n[\s\S]*$/m, '--\n2.47.0\n\n');
  assert.equal(errorCodeOf(() => prerequisitesFromMbox(noDiff)), 'SERIES_NO_DIFF');
});

test('what is applied is recorded: titles, Message-IDs and the sha256 of the mbox git am reads', () => {
  const applied = prerequisitesApplied(helpers);
  assert.deepEqual(applied.patches, [{ title: 'io_uring/kbuf: add buffer ring pinning/unpinning helpers', messageId: '20261120-kbuf-pin-v2-1@patchbay.invalid' }]);
  assert.equal(applied.hash, createHash('sha256').update(prerequisitesMbox(helpers)).digest('hex'));
  assert.equal(applied.hash, createHash('sha256').update(Buffer.from(seriesMbox(helpers), 'latin1')).digest('hex'));
  assert.equal(prerequisitesApplied(prerequisitesFromMbox(fixture('prereq-kbuf-pin-helpers.mbox'))).hash, applied.hash, 'the same patches, the same hash');
  assert.notEqual(prerequisitesApplied(kmbuf).hash, applied.hash);
});

test('the base-run key\'s baseCommit: the commit alone without prerequisites, the commit and their hash with them', () => {
  const applied = prerequisitesApplied(helpers);
  assert.equal(baseKeyCommit(BASE, null), BASE, 'the plain base keeps the key it always had');
  assert.equal(baseKeyCommit(BASE, applied), `${BASE}+prerequisites:${applied.hash}`);
  assert.notEqual(baseKeyCommit(BASE, applied), baseKeyCommit(BASE, prerequisitesApplied(kmbuf)));
});

test('the base for people: the commit, and "+ N prerequisite patch(es)" when any', () => {
  assert.equal(describeBase(BASE, 0), '0dfbac4f4be0');
  assert.equal(describeBase(BASE, 1), '0dfbac4f4be0 + 1 prerequisite patch');
  assert.equal(describeBase(BASE, 3), '0dfbac4f4be0 + 3 prerequisite patches');
});

test('one line on the prerequisites; none for a result without them or recorded before them', () => {
  assert.equal(prerequisitesLine(null), null);
  assert.equal(prerequisitesLine(undefined), null);
  const applied = prerequisitesApplied(kmbuf);
  assert.equal(prerequisitesLine(applied),
    `2 prerequisite patches on the base before the series (sha256 ${applied.hash.slice(0, 12)}): `
    + '"io_uring/kbuf: clarify the unit of PEEK_MAX_IMPORT" <20261121-kmbuf-followups-v1-1@patchbay.invalid>, '
    + '"io_uring/kbuf: refuse to unregister a pinned kernel-managed ring" <20261121-kmbuf-followups-v1-2@patchbay.invalid>');
  const many = { hash: 'f'.repeat(64), patches: Array.from({ length: 7 }, (_, i) => ({ title: `t${i}`, messageId: `m${i}@x` })) };
  const line = prerequisitesLine(many) ?? '';
  assert.match(line, /^7 prerequisite patches .*"t4" <m4@x>, \+2 more$/);
  assert.doesNotMatch(line, /\n/);
});

test('prerequisites that do not apply or do not build are MISS the worker does not retry', () => {
  assert.ok(NOT_RETRIED_CODES.has('PREREQUISITES_APPLY'));
  assert.ok(NOT_RETRIED_CODES.has('PREREQUISITES_BUILD'));
  assert.ok(!NOT_RETRIED_CODES.has('APPLY_FAILED'), 'git killed is still retried');
  assert.ok(!NOT_RETRIED_CODES.has('BUILD_NO_DIAGNOSTIC'));
});

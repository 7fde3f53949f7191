/** The CLI's results text: the base kernel and the prerequisites, and older results that lack them. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { JobResult } from '../../domain/job.ts';
import { renderResult } from '../results-table.ts';

const root = join(import.meta.dirname, '..', '..', '..');
/** A result recorded before prerequisites existed (no `prerequisites`, no base `prerequisites`/`kernel`). */
const older = JSON.parse(readFileSync(join(root, 'services', 'api', 'test', 'golden', 'pass-result.json'), 'utf8')) as JobResult;

test('an older result without prerequisites renders as before: the base commit, no prerequisites line', () => {
  assert.equal(older.prerequisites, undefined);
  const text = renderResult(older);
  assert.match(text, /^base: {3}0dfbac4f4be0: smoke cached/m);
  assert.doesNotMatch(text, /prerequisite/);
});

test('a result with prerequisites names them in one line, and the base as commit + N prerequisite patch(es)', () => {
  const hash = 'ab'.repeat(32);
  const r: JobResult = {
    ...older,
    prerequisites: { hash, patches: [{ title: 'io_uring/kbuf: add buffer ring pinning/unpinning helpers', messageId: '20261120-kbuf-pin-v2-1@patchbay.invalid' }] },
    base: older.base === null ? null : { ...older.base, prerequisites: 1, kernel: '0dfbac4f4be0 + 1 prerequisite patch' },
  };
  const lines = renderResult(r).split('\n');
  assert.ok(lines.some((l) => l.startsWith('base:   0dfbac4f4be0 + 1 prerequisite patch: smoke cached')), lines.join('\n'));
  const line = lines.filter((l) => l.startsWith('prerequisites: '));
  assert.deepEqual(line, ['prerequisites: 1 prerequisite patch on the base before the series (sha256 abababababab): "io_uring/kbuf: add buffer ring pinning/unpinning helpers" <20261120-kbuf-pin-v2-1@patchbay.invalid>']);
});

test('a job that stopped at its prerequisites (no base comparison) still names them', () => {
  const r: JobResult = {
    ...older, status: 'MISS', stage: 'setup', base: null, results: [],
    error: { code: 'PREREQUISITES_APPLY', message: 'prerequisite patch 1/1 "x" <m@x> does not apply on the base 0dfbac4f4be0' },
    prerequisites: { hash: 'cd'.repeat(32), patches: [{ title: 'x', messageId: 'm@x' }] },
  };
  const text = renderResult(r);
  assert.match(text, /^prerequisites: 1 prerequisite patch on the base before the series/m);
  assert.match(text, /^error: {2}\[PREREQUISITES_APPLY\] prerequisite patch 1\/1 "x"/m);
});

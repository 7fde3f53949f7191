/**
 * Inputs shaped to stall the parsers (issue 10): each must be parsed in
 * time linear in its size. The bound is wide (a second, for inputs the old
 * code took from 20 s to over 10 min on), so a loaded machine does not make
 * it flaky; a quadratic path would miss it by orders of magnitude.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { findCrashes } from '../console.ts';
import { parseKtap } from '../ktap.ts';
import { parseMbox } from '../mbox.ts';

const BOUND_MS = 1000;

function timed<T>(what: string, fn: () => T): T {
  const t0 = performance.now();
  const out = fn();
  const ms = performance.now() - t0;
  assert.ok(ms < BOUND_MS, `${what} took ${ms.toFixed(0)} ms`);
  return out;
}

const patch = (n: number, total: number): string => [
  `From patchbay-${n} Mon Sep 17 00:00:00 2001`,
  `Message-ID: <p${n}@example.org>`,
  'From: A U Thor <author@example.org>',
  `Subject: [PATCH ${n}/${total}] io_uring: change ${n}`,
  'Date: Mon, 1 Dec 2026 10:00:00 +0000',
  '',
  'Signed-off-by: A U Thor <author@example.org>',
  '---',
  ' io_uring/kbuf.c | 1 +',
  '',
  'diff --git a/io_uring/kbuf.c b/io_uring/kbuf.c',
  '--- a/io_uring/kbuf.c',
  '+++ b/io_uring/kbuf.c',
  '@@ -1,1 +1,2 @@',
  ' a',
  `+b${n}`,
  '',
].join('\n');

test('KTAP: a line of 100,000 blanks that does not end there (22 s before)', () => {
  const doc = timed('parseKtap', () => parseKtap(`KTAP version 1\n1..1\nok 1 x${' '.repeat(100_000)}x\n`));
  assert.equal(doc.tests.length, 1);
});

test('console: a line of 100,000 carriage returns that does not end there', () => {
  const crashes = timed('findCrashes', () => findCrashes(`[    1.000000] boot${'\r'.repeat(100_000)}x\n[    2.000000] done\n`));
  assert.deepEqual(crashes, []);
});

test('mbox: a References header with 150,000 ids, some repeated (over 10 min before)', () => {
  const ids = Array.from({ length: 150_000 }, (_, i) => `<r${i % 100_000}@example.org>`).join(' ');
  const mbox = patch(1, 1).replace('Date:', `References: ${ids}\nDate:`);
  const [msg] = timed('parseMbox', () => parseMbox(mbox));
  assert.ok(msg);
  assert.equal(msg.references.length, 100_000);
  assert.equal(msg.references[0], 'r0@example.org');
  assert.equal(msg.references.at(-1), 'r99999@example.org');
});

/**
 * `patchbay run`'s arguments: exactly one series source (--mbox FILE, or
 * --message-id ID with --inbox URL), and --test selectors, refused with
 * exit status 2 (bad input) before anything runs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError, runSource } from '../main.ts';
import { runMain as run } from './main-run.ts';

test('run takes an mbox or a Message-ID with its inbox, exactly one', () => {
  assert.deepEqual(runSource({ mbox: 'a.mbox' }), { kind: 'mbox', file: 'a.mbox' });
  assert.deepEqual(runSource({ 'message-id': '<x@y>', inbox: 'http://127.0.0.1:9/io-uring' }), { kind: 'message-id', messageId: '<x@y>', inbox: 'http://127.0.0.1:9/io-uring' });
  for (const bad of [{}, { mbox: 'a', 'message-id': 'x@y' }, { 'message-id': 'x@y' }, { mbox: 'a', inbox: 'http://127.0.0.1:9/x' }]) {
    assert.throws(() => runSource(bad), UsageError, JSON.stringify(bad));
  }
});

test('bad run arguments end with exit status 2 and say why, before any job', async () => {
  const both = await run(['run', '--mbox', 'fixtures/series/pass-kbuf-pin.mbox', '--message-id', 'x@y', '--inbox', 'http://127.0.0.1:1/x']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--mbox and --message-id exclude each other/);
  const noInbox = await run(['run', '--message-id', 'x@y']);
  assert.equal(noInbox.code, 2);
  assert.match(noInbox.stderr, /--message-id needs --inbox URL/);
  const badTest = await run(['run', '--mbox', 'fixtures/series/pass-kbuf-pin.mbox', '--test', 'smoke']);
  assert.equal(badTest.code, 2);
  assert.match(badTest.stderr, /error \[TEST_FILTER_INVALID\]: "smoke" is not SUITE\/TEST/);
  const shell = await run(['run', '--mbox', 'fixtures/series/pass-kbuf-pin.mbox', '--test', 'smoke/$(reboot)']);
  assert.equal(shell.code, 2);
  assert.match(shell.stderr, /TEST_FILTER_INVALID/);
});

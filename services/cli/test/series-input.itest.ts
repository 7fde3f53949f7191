/**
 * `patchbay run --message-id ID --inbox URL` against a real public-inbox on
 * loopback (Debian's public-inbox: services/lore/test/public-inbox-server.ts):
 * the thread holds v1, a review of it and v2 sent in reply to v1, and the
 * revision the Message-ID belongs to is assembled. The inbox allowlist
 * (PATCHBAY_INBOX_ALLOW) holds as for the API. It stops before the
 * executor: the job itself is the fixtures' (runners/executor/test).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PatchbayError } from '../../domain/errors.ts';
import { bareMessageId } from '../../domain/series.ts';
import { THREAD_IDS, revisionThread } from '../../domain/test/revision-thread.ts';
import type { InboxFetchOptions } from '../../lore/inbox.ts';
import { type PublicInbox, startPublicInbox } from '../../lore/test/public-inbox-server.ts';
import { seriesFromSource } from '../series-input.ts';
import { runMain as run } from './main-run.ts';

const code = (expected: string) => (e: unknown): boolean => e instanceof PatchbayError && e.code === expected;

describe('run --message-id on a public-inbox on loopback', { timeout: 120_000 }, () => {
  let inbox: PublicInbox;
  let limits: InboxFetchOptions;
  before(async () => {
    inbox = await startPublicInbox();
    inbox.deliverMany(revisionThread().map((m) => Buffer.from(m, 'latin1')));
    limits = { allow: [inbox.origin], timeoutMs: 10_000, maxBytes: 5 * 1024 * 1024 };
  });
  after(() => { inbox.stop(); });

  test('the revision the Message-ID is in: v1 by its patch or its review, v2 by its own', async () => {
    for (const [id, version] of [[THREAD_IDS.v1[2], 1], [THREAD_IDS.review, 1], [THREAD_IDS.v1[0], 1], [THREAD_IDS.v2[1], 2], [`<${THREAD_IDS.v2[0] ?? ''}>`, 2]] as const) {
      const { series, from, note } = await seriesFromSource({ kind: 'message-id', messageId: id ?? '', inbox: inbox.url }, limits);
      assert.equal(series.version, version, id);
      assert.deepEqual(series.patches.map((p) => bareMessageId(p.message.messageId)), (version === 1 ? THREAD_IDS.v1 : THREAD_IDS.v2).slice(1), id);
      assert.equal(series.title, 'io_uring/kbuf: buffer ring pinning');
      assert.equal(series.baseCommit, '0dfbac4f4be0f380cd34673a572ab902a33a82b2');
      assert.equal(from, `<${bareMessageId(id ?? '')}> from ${inbox.url}`);
      assert.match(note ?? '', new RegExp(`is in v${version} .*the thread also holds v${3 - version}`));
    }
  });

  test('an origin outside the allowlist is refused before any request; an unknown Message-ID is INBOX_NOT_FOUND', async () => {
    await assert.rejects(seriesFromSource({ kind: 'message-id', messageId: THREAD_IDS.v1[1] ?? '', inbox: inbox.url }, { ...limits, allow: ['http://127.0.0.1:9'] }), code('INBOX_NOT_ALLOWED'));
    await assert.rejects(seriesFromSource({ kind: 'message-id', messageId: 'nobody@patchbay.invalid', inbox: inbox.url }, limits), code('INBOX_NOT_FOUND'));
    await assert.rejects(seriesFromSource({ kind: 'message-id', messageId: 'not an id', inbox: inbox.url }, limits), code('MESSAGE_ID_INVALID'));
  });

  test('patchbay run --message-id: the configured allowlist is kept, and the revision is named before the job', async () => {
    const args = ['run', '--message-id', THREAD_IDS.review, '--inbox', inbox.url, '--suite', 'nosuch'];
    // The default allowlist (lore) does not hold the loopback inbox.
    const refused = await run(args, { PATCHBAY_INBOX_ALLOW: 'https://lore.kernel.org' });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /error \[INBOX_NOT_ALLOWED\]: this service fetches only from https:\/\/lore\.kernel\.org/);
    // Allowed: the thread is fetched and v1 assembled; the unknown suite then stops it before any container.
    const allowed = await run(args, { PATCHBAY_INBOX_ALLOW: inbox.origin });
    assert.match(allowed.stderr, new RegExp(`patchbay: series from <${THREAD_IDS.review}> from ${inbox.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: <${THREAD_IDS.review}> is in v1 "io_uring/kbuf: buffer ring pinning" \\(the thread also holds v2\\)`));
    assert.match(allowed.stderr, /error \[SUITE_UNKNOWN\]: unknown suite "nosuch"/);
    assert.equal(allowed.code, 2);
  });
});

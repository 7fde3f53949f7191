/** Fetching a series by Message-ID from a real public-inbox server on loopback. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PatchbayError } from '../../domain/errors.ts';
import { parseMbox, splitMbox } from '../../domain/mbox.ts';
import { assembleSeries } from '../../domain/series.ts';
import { fetchThreadMbox } from '../inbox.ts';
import { type PublicInbox, startPublicInbox } from './public-inbox-server.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const limits = { timeoutMs: 10_000, maxBytes: 5 * 1024 * 1024 };

describe('a public-inbox on loopback', { timeout: 120_000 }, () => {
  let inbox: PublicInbox;
  before(async () => {
    inbox = await startPublicInbox();
    const mbox = readFileSync(join(root, 'fixtures/series/pass-kbuf-pin.mbox')).toString('latin1');
    for (const raw of splitMbox(mbox)) inbox.deliver(Buffer.from(raw, 'latin1'));
  });
  after(() => { inbox.stop(); });

  test('a series is fetched by the Message-ID of any of its messages and assembles as sent', async () => {
    for (const id of ['20261120-kbuf-pin-v2-0@patchbay.invalid', '<20261120-kbuf-pin-v2-2@patchbay.invalid>']) {
      const series = assembleSeries(parseMbox(await fetchThreadMbox(inbox.url, id, limits)));
      assert.equal(series.title, 'io_uring/kbuf: buffer ring pinning');
      assert.equal(series.version, 2);
      assert.deepEqual(series.patches.map((p) => p.counter), [1, 2, 3]);
      assert.equal(series.cover?.messageId, '20261120-kbuf-pin-v2-0@patchbay.invalid');
      assert.equal(series.baseCommit, '0dfbac4f4be0f380cd34673a572ab902a33a82b2');
    }
  });

  test('an unknown Message-ID is INBOX_NOT_FOUND; a malformed one is refused before any request', async () => {
    await assert.rejects(fetchThreadMbox(inbox.url, 'nobody@nowhere.invalid', limits), (e: unknown) => e instanceof PatchbayError && e.code === 'INBOX_NOT_FOUND');
    await assert.rejects(fetchThreadMbox(inbox.url, 'not a message id', limits), (e: unknown) => e instanceof PatchbayError && e.code === 'MESSAGE_ID_INVALID');
    await assert.rejects(fetchThreadMbox('ftp://x/y', 'a@b', limits), (e: unknown) => e instanceof PatchbayError && e.code === 'INBOX_INVALID');
  });

  test('a thread larger than the limit is refused', async () => {
    await assert.rejects(fetchThreadMbox(inbox.url, '20261120-kbuf-pin-v2-0@patchbay.invalid', { timeoutMs: 10_000, maxBytes: 200 }), (e: unknown) => e instanceof PatchbayError && e.code === 'BODY_TOO_LARGE');
  });
});

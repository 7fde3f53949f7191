/**
 * seriesOfMessage: in a thread that holds v1, its review and v2 (sent in
 * reply to v1), the revision a Message-ID belongs to is assembled, not the
 * thread's newest. The same through a real public-inbox:
 * services/cli/test/series-input.itest.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMbox } from '../mbox.ts';
import { assembleSeries, bareMessageId, seriesOfMessage } from '../series.ts';
import { errorCodeOf } from './error-code.ts';
import { THREAD_IDS, revisionThreadMbox } from './revision-thread.ts';

const messages = parseMbox(revisionThreadMbox());
const ids = (s: { patches: Array<{ message: { messageId: string } }> }): string[] => s.patches.map((p) => bareMessageId(p.message.messageId));

test('the thread as a whole gives v2 (the newest); a Message-ID of v1 gives v1', () => {
  assert.equal(assembleSeries(messages).version, 2);
  for (const id of [THREAD_IDS.v1[0], THREAD_IDS.v1[1], THREAD_IDS.v1[3], `<${THREAD_IDS.v1[2] ?? ''}>`]) {
    const { series, note } = seriesOfMessage(messages, id ?? '');
    assert.equal(series.version, 1, id);
    assert.deepEqual(ids(series), THREAD_IDS.v1.slice(1), id);
    assert.equal(bareMessageId(series.cover?.messageId ?? ''), THREAD_IDS.v1[0]);
    assert.match(note, /is in v1 "io_uring\/kbuf: buffer ring pinning" \(the thread also holds v2\)$/);
  }
});

test('a Message-ID of v2 gives v2, with its patches; a review reply to a v1 patch gives v1, with its trailer', () => {
  for (const id of THREAD_IDS.v2) {
    const { series } = seriesOfMessage(messages, id);
    assert.equal(series.version, 2, id);
    assert.deepEqual(ids(series), THREAD_IDS.v2.slice(1));
  }
  const { series } = seriesOfMessage(messages, THREAD_IDS.review);
  assert.equal(series.version, 1);
  assert.ok(series.patches[1]?.trailers.some((t) => t.name.toLowerCase() === 'reviewed-by' && t.value.includes('rita@patchbay.invalid')), JSON.stringify(series.patches[1]?.trailers));
});

test('a Message-ID the thread does not hold is refused', () => {
  assert.equal(errorCodeOf(() => seriesOfMessage(messages, 'nosuch@patchbay.invalid')), 'MESSAGE_NOT_IN_THREAD');
});

/**
 * A thread holding two revisions of one series, as lore serves it: v1 of
 * the passing fixture series (fixtures/series/pass-kbuf-pin.mbox, made
 * v1 a week earlier), a review reply to its patch 2, and v2 (the fixture
 * itself) sent in reply to v1's cover letter. For the tests of
 * seriesOfMessage and `patchbay run --message-id`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { splitMbox } from '../mbox.ts';

const fixture = readFileSync(join(import.meta.dirname, '..', '..', '..', 'fixtures', 'series', 'pass-kbuf-pin.mbox')).toString('latin1');

export const THREAD_IDS = {
  v1: [0, 1, 2, 3].map((i) => `20261120-kbuf-pin-v1-${i}@patchbay.invalid`),
  v2: [0, 1, 2, 3].map((i) => `20261120-kbuf-pin-v2-${i}@patchbay.invalid`),
  review: '20261114-review-v1-2@patchbay.invalid',
};

/** The thread's messages, each a raw message (no mbox From line), in the order they were sent. */
export function revisionThread(): string[] {
  const v2 = splitMbox(fixture).map((m) => m.replace(/^From mboxrd@z .*\n/, ''));
  const v1 = v2.map((m) => m
    .replaceAll('[PATCH v2 ', '[PATCH ')
    .replaceAll('-kbuf-pin-v2-', '-kbuf-pin-v1-')
    .replace(/^Date: Fri, 20 Nov 2026/m, 'Date: Fri, 13 Nov 2026'));
  const threaded = v2.map((m, i) => i === 0
    ? m.replace(/^(Message-ID: <[^>]*>)$/m, `$1\nIn-Reply-To: <${THREAD_IDS.v1[0] ?? ''}>\nReferences: <${THREAD_IDS.v1[0] ?? ''}>`)
    : m.replace(/^References: (.*)$/m, `References: <${THREAD_IDS.v1[0] ?? ''}> $1`));
  const review = [
    'From: Rita Reviewer <rita@patchbay.invalid>',
    'Date: Sat, 14 Nov 2026 09:00:00 +0000',
    'Subject: Re: [PATCH 2/3] io_uring/kbuf: refuse to unregister a pinned buffer ring',
    `Message-ID: <${THREAD_IDS.review}>`,
    `In-Reply-To: <${THREAD_IDS.v1[2] ?? ''}>`,
    `References: <${THREAD_IDS.v1[0] ?? ''}> <${THREAD_IDS.v1[2] ?? ''}>`,
    'To: io-uring@vger.kernel.org',
    'Content-Type: text/plain; charset=UTF-8',
    '',
    'Looks right to me.',
    '',
    'Reviewed-by: Rita Reviewer <rita@patchbay.invalid>',
    '',
  ].join('\n');
  return [...v1, review, ...threaded];
}

/** The thread as one mbox (mboxrd, as t.mbox.gz serves it). */
export function revisionThreadMbox(): string {
  const quoted = (m: string): string => m.replace(/^(>*From )/gm, '>$1');
  return revisionThread().map((m) => `From mboxrd@z Thu Jan  1 00:00:00 1970\n${quoted(m.endsWith('\n') ? m : `${m}\n`)}\n`).join('');
}

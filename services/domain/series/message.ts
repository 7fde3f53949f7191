/**
 * The series a Message-ID belongs to, in a thread as public-inbox serves it
 * (t.mbox.gz: every revision sent in reply to one another, and the review):
 * the revision holding that message, assembled as the lore watcher
 * assembles it (listRevisions' messages, then assembleSeries at its
 * version), not simply the newest revision of the thread. A report's
 * reproducer names the series by the Message-ID it tested.
 */
import { PatchbayError } from '../errors.ts';
import type { MailMessage } from '../mbox.ts';
import { parseSubject } from '../subject.ts';
import { assembleSeries } from './assemble.ts';
import type { RevisionSummary, Series } from './model.ts';
import { listRevisions } from './revisions.ts';

/** A Message-ID as compared here: without its angle brackets and outer spaces. */
export function bareMessageId(id: string): string {
  return id.trim().replace(/^<|>$/g, '').trim();
}

export interface SeriesOfMessage {
  series: Series;
  /** How the revision was chosen, for the person who reads the run. */
  note: string;
}

/**
 * The revision `messageId` belongs to: among the revisions whose messages
 * hold it (a revision's messages include the older patches a partial reroll
 * took, its replies, and what its thread was sent in reply to), the one of
 * the version its subject names; then one it starts (its cover letter or
 * first patch); then the oldest. A message in
 * no revision (a discussion mail of the thread) gets what the thread's mail
 * gives as a whole, the newest revision, and says so. Throws
 * MESSAGE_NOT_IN_THREAD when the mail does not hold the message, and what
 * assembleSeries throws (an incomplete revision, no patches).
 */
export function seriesOfMessage(messages: readonly MailMessage[], messageId: string): SeriesOfMessage {
  const id = bareMessageId(messageId);
  const message = messages.find((m) => bareMessageId(m.messageId) === id);
  if (message === undefined) {
    throw new PatchbayError('MESSAGE_NOT_IN_THREAD', `the thread fetched for <${id}> does not hold that message`, { details: { messageId: id, messages: messages.length } });
  }
  const holding = listRevisions(messages).filter((r) => r.messageIds.some((m) => bareMessageId(m) === id));
  const picked = pick(holding, id, parseSubject(message.subject).version);
  if (picked === null) {
    const series = assembleSeries(messages);
    return { series, note: `<${id}> is in no revision of the thread (not a patch, a cover letter or a reply to one); took the thread's v${series.version}` };
  }
  const byId = new Map(messages.map((m) => [bareMessageId(m.messageId), m]));
  const mail = picked.messageIds.map((m) => byId.get(bareMessageId(m))).filter((m): m is MailMessage => m !== undefined);
  const series = assembleSeries(mail, { version: picked.version });
  const others = [...new Set(listRevisions(messages).map((r) => r.version))].filter((v) => v !== picked.version).sort((a, b) => a - b);
  return { series, note: `<${id}> is in v${picked.version} "${picked.title}"${others.length > 0 ? ` (the thread also holds ${others.map((v) => `v${v}`).join(', ')})` : ''}` };
}

function pick(holding: readonly RevisionSummary[], id: string, version: number): RevisionSummary | null {
  if (holding.length === 0) return null;
  const ranked = [...holding].sort((a, b) =>
    Number(b.version === version) - Number(a.version === version) ||
    Number(bareMessageId(b.rootMessageId) === id) - Number(bareMessageId(a.rootMessageId) === id) ||
    a.version - b.version ||
    a.rootMessageId.localeCompare(b.rootMessageId));
  return ranked[0] ?? null;
}

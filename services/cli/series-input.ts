/**
 * Where `patchbay run` gets its series: an mbox file, or a Message-ID and
 * the public-inbox that has it. The thread is fetched as the API fetches
 * one (fetchThreadMbox: only origins in the inbox allowlist, capped, under
 * a deadline), and the revision that message belongs to is assembled
 * (seriesOfMessage), so a report's reproducer runs the revision it tested
 * even after a newer one was posted in the same thread.
 */
import { readFileSync } from 'node:fs';
import { parseMbox } from '../domain/mbox.ts';
import { type Series, assembleSeries, seriesOfMessage } from '../domain/series.ts';
import { type InboxFetchOptions, fetchThreadMbox, normalizeInbox, normalizeMessageId } from '../lore/inbox.ts';

export type SeriesSource =
  | { kind: 'mbox'; file: string }
  | { kind: 'message-id'; messageId: string; inbox: string };

export interface SeriesInput {
  series: Series;
  /** Where it came from, for the run's first line. */
  from: string;
  /** How the revision was chosen in the thread (message-id only). */
  note: string | null;
}

/** The series of a source; throws PatchbayError for a refused or failed fetch and for mail that holds no such series. */
export async function seriesFromSource(source: SeriesSource, fetch: InboxFetchOptions): Promise<SeriesInput> {
  if (source.kind === 'mbox') {
    return { series: assembleSeries(parseMbox(readFileSync(source.file).toString('latin1'))), from: source.file, note: null };
  }
  const id = normalizeMessageId(source.messageId);
  const inbox = normalizeInbox(source.inbox);
  const mbox = await fetchThreadMbox(inbox.href, id, fetch);
  const { series, note } = seriesOfMessage(parseMbox(mbox), id);
  return { series, from: `<${id}> from ${inbox.href}`, note };
}

/**
 * public-inbox's Atom search results (`?q=...&x=A`): one <entry> per
 * message, its link the message's URL (`<inbox>/<Message-ID, escaped>/`).
 * A pure parser: it reads only what the watcher needs (the Message-ID, the
 * subject and the time) and takes linear time in the document, which comes
 * from the network and is capped in size by the caller.
 */
import { MESSAGE_ID_MAX } from '../domain/mbox.ts';
import { PatchbayError } from '../domain/errors.ts';

export interface AtomEntry {
  messageId: string;
  title: string;
  /** The entry's <updated> (the message's Date), null when absent or unreadable. */
  updated: Date | null;
}

const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function decodeXmlText(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-z]{2,4});/g, (all, name: string) => {
    if (name.startsWith('#x')) return safeCodePoint(parseInt(name.slice(2), 16)) ?? all;
    if (name.startsWith('#')) return safeCodePoint(parseInt(name.slice(1), 10)) ?? all;
    return ENTITIES[name] ?? all;
  });
}

function safeCodePoint(n: number): string | undefined {
  return n > 0 && n <= 0x10ffff && !(n >= 0xd800 && n <= 0xdfff) ? String.fromCodePoint(n) : undefined;
}

/** The Message-ID in a public-inbox message URL: its last non-empty path segment, unescaped. */
export function messageIdFromUrl(href: string, base: URL): string | null {
  let url: URL;
  try {
    url = new URL(href, base);
  } catch {
    return null;
  }
  if (url.origin !== base.origin || !url.pathname.startsWith(base.pathname)) return null;
  const rest = url.pathname.slice(base.pathname.length).replace(/\/+$/, '');
  if (rest === '' || rest.includes('/')) return null;
  let id: string;
  try {
    id = decodeURIComponent(rest);
  } catch {
    return null;
  }
  // An id as public-inbox files it (services/domain/mbox.ts msgIds): what a
  // sender wrote, spaces, quotes and parentheses included (such ids are
  // fetched by their own raw URL, not a search); no control characters, at
  // most MESSAGE_ID_MAX.
  // eslint-disable-next-line no-control-regex
  return id.length <= MESSAGE_ID_MAX && /^[^>\x00-\x1f\x7f]+$/.test(id) && id.includes('@') ? id : null;
}

/**
 * The entries of an Atom feed, in document order. An entry without a link
 * into the inbox is skipped; a document that is not an Atom feed throws
 * LORE_BAD_FEED.
 */
export function parseAtom(xml: string, inbox: URL): AtomEntry[] {
  // A page past the last one (offset = the number of results) is a feed
  // with nothing but its end: public-inbox answers 200 and "</feed>".
  if (!/<feed[\s>]/.test(xml.slice(0, 2000)) && xml.trim() !== '</feed>') {
    throw new PatchbayError('LORE_BAD_FEED', 'the inbox answered a search with something that is not an Atom feed', {
      details: { head: xml.slice(0, 200) },
    });
  }
  const out: AtomEntry[] = [];
  let at = 0;
  for (;;) {
    const start = xml.indexOf('<entry>', at);
    if (start < 0) break;
    const end = xml.indexOf('</entry>', start);
    if (end < 0) break;
    const entry = xml.slice(start, end);
    at = end + 8;
    // public-inbox writes the message link as the entry's only <link href=...>; the content is xhtml with its own <a>s.
    const contentAt = entry.indexOf('<content');
    const head = contentAt < 0 ? entry : entry.slice(0, contentAt);
    const link = /<link\s+(?:[^>]*\s)?href="([^"]*)"/.exec(head);
    if (link?.[1] === undefined) continue;
    const messageId = messageIdFromUrl(decodeXmlText(link[1]), inbox);
    if (messageId === null) continue;
    const title = /<title>([^<]*)<\/title>/.exec(head)?.[1];
    const updated = /<updated>([^<]*)<\/updated>/.exec(head)?.[1];
    const date = updated === undefined ? null : new Date(updated);
    out.push({
      messageId,
      title: title === undefined ? '' : decodeXmlText(title),
      updated: date !== null && Number.isFinite(date.getTime()) ? date : null,
    });
  }
  return out;
}

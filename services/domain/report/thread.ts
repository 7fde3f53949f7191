/**
 * The headers a reply in a thread takes from the mail it answers, as a
 * mail client's "reply all" does: Subject "Re: ...", In-Reply-To its
 * Message-ID, References its References then its Message-ID, and the
 * people: its From, To and Cc (read from the raw header, where an encoded
 * name cannot hide a comma).
 */
import { ADDRESS_MAX_CHARS, type MailMessage, parseAddress } from '../mbox.ts';

export interface ThreadTarget {
  messageId: string;
  /** The reply's subject: "Re: " and the answered subject, never "Re: Re:". */
  subject: string;
  references: string[];
  from: { name: string; email: string };
  to: Array<{ name: string; email: string }>;
  cc: Array<{ name: string; email: string }>;
}

/** References a reply carries at most (the oldest, the root, is kept; the middle is dropped, as mail clients do). */
export const MAX_REFERENCES = 20;
/** Addresses read from one header at most. */
const MAX_ADDRESSES = 200;

export function replySubject(subject: string): string {
  const s = subject.replace(/\s+/g, ' ').trim();
  return /^re:/i.test(s) ? s : `Re: ${s}`;
}

export function replyReferences(target: Pick<MailMessage, 'references' | 'messageId'>): string[] {
  const chain = [...target.references.filter((r) => r !== target.messageId), target.messageId];
  if (chain.length <= MAX_REFERENCES) return chain;
  return [chain[0] ?? target.messageId, ...chain.slice(chain.length - (MAX_REFERENCES - 1))];
}

export function threadTarget(target: MailMessage): ThreadTarget {
  return {
    messageId: target.messageId,
    subject: replySubject(target.subject),
    references: replyReferences(target),
    from: target.from,
    to: addressList(rawHeaders(target.raw, 'to')),
    cc: addressList(rawHeaders(target.raw, 'cc')),
  };
}

/** Every header of that name in the raw message's header block, unfolded, joined by commas. */
export function rawHeaders(raw: string, name: string): string {
  const end = raw.search(/\n\r?\n/);
  const block = (end < 0 ? raw : raw.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  const want = `${name.toLowerCase()}:`;
  return block.split(/\r?\n/).filter((l) => l.toLowerCase().startsWith(want)).map((l) => l.slice(want.length).trim()).join(', ');
}

/** An address list split at commas outside quotes, angle brackets and comments; each read as parseAddress reads a From. */
export function addressList(value: string): Array<{ name: string; email: string }> {
  const out: Array<{ name: string; email: string }> = [];
  let depth = 0;
  let quoted = false;
  let angle = false;
  let start = 0;
  const v = value.slice(0, ADDRESS_MAX_CHARS * 10);
  const push = (part: string): void => {
    if (part.trim() === '' || out.length >= MAX_ADDRESSES) return;
    const a = parseAddress(part);
    if (a.email !== '') out.push(a);
  };
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (c === '\\') { i++; continue; }
    if (quoted) { if (c === '"') quoted = false; continue; }
    if (c === '"') quoted = true;
    else if (c === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (c === '<') angle = true;
    else if (c === '>') angle = false;
    else if (c === ',' && depth === 0 && !angle) {
      push(v.slice(start, i));
      start = i + 1;
    }
  }
  push(v.slice(start));
  return out;
}

/**
 * Mail messages and mboxrd.
 *
 * Input is a "binary string": every byte one char (what
 * Buffer.toString('latin1') gives), so that the raw messages written back by
 * toMboxrd() are byte for byte what came in. Only the decoded, human-facing
 * fields (subject, from, body, header values) are real Unicode strings.
 *
 * mboxrd (what public-inbox serves and `git am --patch-format=mboxrd` reads):
 * messages start at a "From " line carrying a date; on write, a body line
 * matching /^>*From / gets one more ">"; on read, one ">" is taken off lines
 * matching /^>+From /. The blank line that ends each message belongs to the
 * mbox, not to the message.
 *
 * Mail comes from public lists and uploads: parsing takes time linear in
 * the input, and what is malformed throws PatchbayError MBOX_MALFORMED,
 * nothing else. Lines are not cut (the raw message must stay byte for byte
 * what git am applies); a few fields are read only up to a length no real
 * one reaches (SEPARATOR_MAX_CHARS, ADDRESS_MAX_CHARS, DATE_MAX_CHARS, and
 * SUBJECT_MAX_CHARS in subject.ts). How many messages make one series is
 * capped in series.ts.
 */
import { createHash } from 'node:crypto';
import { TextDecoder } from 'node:util';
import { PatchbayError } from './errors.ts';

export interface MailMessage {
  /** Binary string: headers and body as stored, mboxrd-unescaped, no "From " line, LF line endings. */
  raw: string;
  /** Unfolded, decoded, in order; names as written. */
  headers: ReadonlyArray<readonly [name: string, value: string]>;
  /** The first header of that name (case-insensitive), decoded. */
  header(name: string): string | undefined;
  /** Without <>; "patchbay-<sha256 prefix of raw>@local" when the message has none. */
  messageId: string;
  /** Without <>. */
  inReplyTo: string | null;
  /** Without <>, oldest first, In-Reply-To last when References lacks it. */
  references: string[];
  /** Decoded, whitespace collapsed. */
  subject: string;
  from: { name: string; email: string };
  date: Date | null;
  /** Decoded text of the body (the first text/plain part of a multipart message). */
  body: string;
}

/**
 * What public-inbox's mbox reader takes for a message separator ("From " +
 * address + date): /^From \S+ +\S+ \S+ +\S+ [^:]+:[^:]+:[^:]+ [^:]+$/, with its
 * tail "[^:]+ [^:]+$" (quadratic when it fails) written as the same language
 * "[^:][^: ]* [^:]+$".
 */
const FROM_LINE_RE = /^From \S+ +\S+ \S+ +\S+ [^:]+:[^:]+:[^:][^: ]* [^:]+$/;
/** Longer "From " lines are not separators (a date line is short). */
export const SEPARATOR_MAX_CHARS = 500;
/** An RFC 5322 header line: a printable-ASCII name without ":" and a colon. */
const HEADER_LINE_RE = /^[!-9;-~]+[ \t]*:/;
const BOM = '\xEF\xBB\xBF';
const MBOXRD_FROM = 'From mboxrd@z Thu Jan  1 00:00:00 1970\n';

function malformed(message: string, details: Record<string, unknown> = {}): PatchbayError {
  return new PatchbayError('MBOX_MALFORMED', message, { details });
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/** Lines split on LF only (never on a lone CR, which may be patch content). */
function lines(text: string): string[] {
  return text.split('\n');
}

/**
 * Finishes a raw message: CRLF to LF when the message's own first line ends
 * in CRLF (a mail stored with network line endings; a message that uses LF
 * keeps any CR that is part of its content), and a final newline.
 */
function finishRaw(text: string): string {
  const firstNl = text.indexOf('\n');
  let t = firstNl > 0 && text[firstNl - 1] === '\r' ? text.replace(/\r\n/g, '\n') : text;
  if (!t.endsWith('\n')) t += '\n';
  return t;
}

function looksLikeMessage(raw: string): boolean {
  const first = raw.split('\n', 1)[0] ?? '';
  return HEADER_LINE_RE.test(first);
}

function describeStart(raw: string): string {
  const first = (raw.split('\n', 1)[0] ?? '').slice(0, 60);
  if (/^diff --git |^--- |^Index: /.test(first)) {
    return `it starts with a bare diff ("${first}"), not a mail; send the patch as git format-patch writes it`;
  }
  return `its first line is not a mail header: "${first}"`;
}

/**
 * Splits an mbox (or a single bare message such as a .patch or .eml file)
 * into raw messages, mboxrd-unescaped. Accepts CRLF line endings, a leading
 * byte-order mark and leading blank lines.
 */
export function splitMbox(data: string): string[] {
  let text = data.startsWith(BOM) ? data.slice(BOM.length) : data;
  text = text.replace(/^(?:[ \t]*\r?\n)+/, '');
  if (text.trim() === '') throw malformed('The mbox is empty.');
  const all = lines(text);
  if (all[all.length - 1] === '') all.pop();

  const isSeparator = (i: number): boolean => {
    const line = stripCr(all[i] ?? '');
    if (!line.startsWith('From ') || line.length > SEPARATOR_MAX_CHARS) return false;
    if (FROM_LINE_RE.test(line)) return true;
    // A first line "From someone" without a date, followed by headers.
    return i === 0 && HEADER_LINE_RE.test(stripCr(all[1] ?? ''));
  };

  if (!isSeparator(0)) {
    // A single bare message: stored as is, no mboxrd unescaping.
    const raw = finishRaw(text);
    if (!looksLikeMessage(raw)) {
      throw malformed(`The input is neither an mbox nor a mail message: ${describeStart(raw)}.`);
    }
    return [raw];
  }

  const out: string[] = [];
  let chunk: string[] = [];
  const flush = (): void => {
    // The blank line before the next "From " line is the mbox's, not the message's.
    if (chunk.length > 0 && stripCr(chunk[chunk.length - 1] ?? 'x') === '') chunk.pop();
    if (chunk.some((l) => stripCr(l).trim() !== '')) {
      const raw = finishRaw(chunk.map((l) => (/^>+From /.test(l) ? l.slice(1) : l)).join('\n') + '\n');
      if (!looksLikeMessage(raw)) {
        throw malformed(`Message ${out.length + 1} of the mbox has no header block: ${describeStart(raw)}.`, {
          index: out.length,
        });
      }
      out.push(raw);
    }
    chunk = [];
  };
  for (let i = 0; i < all.length; i++) {
    if (isSeparator(i)) {
      flush();
      continue;
    }
    chunk.push(all[i] ?? '');
  }
  flush();
  if (out.length === 0) throw malformed('The mbox holds "From " lines but no messages.');
  return out;
}

/** toMboxrd's quoting: one more ">" on every line matching /^>*From /. */
function escapeMboxrd(raw: string): string {
  return raw.replace(/(^|\n)(>*From )/g, '$1>$2');
}

export function toMboxrd(messages: readonly MailMessage[]): string {
  let out = '';
  for (const m of messages) {
    out += MBOXRD_FROM + escapeMboxrd(m.raw);
    if (!m.raw.endsWith('\n')) out += '\n';
    out += '\n';
  }
  return out;
}

export function parseMbox(data: string): MailMessage[] {
  return splitMbox(data).map((raw, i) => {
    try {
      return parseMessage(raw);
    } catch (e) {
      if (e instanceof PatchbayError && e.code === 'MBOX_MALFORMED') {
        throw new PatchbayError('MBOX_MALFORMED', `Message ${i + 1} of the mbox: ${e.message}`, {
          details: { ...e.details, index: i },
        });
      }
      throw e;
    }
  });
}

// ---------------------------------------------------------------------------
// Bytes and charsets

function binToBytes(bin: string): Uint8Array {
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i) & 0xff;
  return bytes;
}

function charsetLabel(charset: string): string {
  const c = charset.trim().toLowerCase().replace(/^"|"$/g, '');
  // RFC 2231 language suffix: utf-8*en
  const star = c.indexOf('*');
  return star >= 0 ? c.slice(0, star) : c;
}

/** windows-1252's characters for the bytes 0x80-0x9f (C1 controls in ISO-8859-1, never meant in mail). */
const CP1252_HIGH =
  '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';

/** Latin-1 as mail means it: windows-1252 (as WHATWG decodes the label, and Node 20 does not). */
function decodeLatin1(bin: string): string {
  return bin.replace(/[\x80-\x9f]/g, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80] ?? c);
}

const LATIN1_LABELS = new Set(['latin1', 'l1', 'iso-8859-1', 'iso8859-1', 'iso_8859-1', 'windows-1252', 'cp1252', 'cp819']);

/** Decodes a binary string in a charset; unknown charsets are read as UTF-8. */
function decodeBytes(bin: string, charset: string): string {
  const label = charsetLabel(charset);
  if (/^(?:us-)?ascii$/.test(label) || label === '') return decodeBytes(bin, 'utf-8');
  if (LATIN1_LABELS.has(label)) return decodeLatin1(bin);
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label);
  } catch {
    decoder = new TextDecoder('utf-8');
  }
  return decoder.decode(binToBytes(bin));
}

/** Raw 8-bit text with no declared charset: UTF-8 when it is valid UTF-8, else windows-1252. */
function decodeUnlabelled(bin: string): string {
  if (!/[\x80-\xff]/.test(bin)) return bin;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(binToBytes(bin));
  } catch {
    return decodeLatin1(bin);
  }
}

function base64ToBin(text: string): string {
  let clean = text.replace(/[^A-Za-z0-9+/]/g, '');
  clean = clean.slice(0, clean.length - (clean.length % 4 === 1 ? 1 : 0));
  return Buffer.from(clean, 'base64').toString('latin1');
}

/** A line without its trailing blanks (a loop: /[ \t]+$/ is quadratic on long runs of blanks). */
function trimBlanksEnd(line: string): string {
  let end = line.length;
  while (end > 0 && (line[end - 1] === ' ' || line[end - 1] === '\t')) end--;
  return end === line.length ? line : line.slice(0, end);
}

function quotedPrintableToBin(text: string, inHeader: boolean): string {
  let t = text;
  if (inHeader) t = t.replace(/_/g, ' ');
  else t = t.split('\n').map(trimBlanksEnd).join('\n').replace(/=\r?\n/g, '');
  return t.replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

// ---------------------------------------------------------------------------
// Headers

const ENCODED_WORD_RE = /=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=/g;

/** RFC 2047: decodes encoded-words; whitespace between adjacent ones goes. */
export function decodeHeaderValue(value: string): string {
  let out = '';
  let last = 0;
  let pending: { charset: string; bin: string } | null = null;
  const flushPending = (): void => {
    if (pending !== null) out += decodeBytes(pending.bin, pending.charset);
    pending = null;
  };
  for (const m of value.matchAll(ENCODED_WORD_RE)) {
    const between = value.slice(last, m.index);
    const charset = m[1] ?? 'utf-8';
    const enc = (m[2] ?? 'q').toLowerCase();
    const text = m[3] ?? '';
    const bin = enc === 'b' ? base64ToBin(text) : quotedPrintableToBin(text, true);
    const current: { charset: string; bin: string } | null = pending;
    if (current !== null && /^\s*$/.test(between)) {
      // Adjacent encoded words: join bytes when the charset is the same, so a
      // character split across two words decodes whole.
      if (charsetLabel(current.charset) === charsetLabel(charset)) {
        current.bin += bin;
      } else {
        flushPending();
        pending = { charset, bin };
      }
    } else {
      flushPending();
      out += decodeUnlabelled(between);
      pending = { charset, bin };
    }
    last = m.index + m[0].length;
  }
  flushPending();
  out += decodeUnlabelled(value.slice(last));
  return out;
}

interface RawHeader {
  name: string;
  /** Unfolded, still encoded. */
  value: string;
}

/**
 * Parses a header block (lines before the first empty line). Returns the
 * headers and the index where the body starts.
 */
function parseHeaderBlock(text: string): { headers: RawHeader[]; bodyStart: number } {
  const headers: RawHeader[] = [];
  let pos = 0;
  let lineNo = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const end = nl < 0 ? text.length : nl;
    const line = stripCr(text.slice(pos, end));
    const next = nl < 0 ? text.length : nl + 1;
    lineNo++;
    if (line === '') return { headers, bodyStart: next };
    const last = headers[headers.length - 1];
    if ((line.startsWith(' ') || line.startsWith('\t')) && last !== undefined) {
      last.value += line;
    } else {
      const colon = line.indexOf(':');
      if (colon < 0 || !HEADER_LINE_RE.test(line)) {
        if (headers.length === 0) throw malformed(`it has no header block: ${describeStart(text)}`);
        throw malformed(
          `line ${lineNo} of its header block is not a header (no blank line between headers and body?): "${line.slice(0, 60)}"`,
        );
      }
      headers.push({ name: line.slice(0, colon).trimEnd(), value: line.slice(colon + 1).trim() });
    }
    pos = next;
  }
  return { headers, bodyStart: text.length };
}

function firstHeader(headers: readonly RawHeader[], name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find((h) => h.name.toLowerCase() === lower)?.value;
}

function msgIds(value: string | undefined): string[] {
  if (value === undefined) return [];
  const ids = [...value.matchAll(/<([^<>\s]+)>/g)].map((m) => m[1] ?? '').filter((x) => x !== '');
  if (ids.length > 0) return ids;
  // A bare id without angle brackets.
  const bare = value.trim().split(/\s+/)[0] ?? '';
  return /^[^\s@]+@[^\s@]+$/.test(bare) ? [bare] : [];
}

function unquote(s: string): string {
  const t = s.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/\\(.)/g, '$1');
  return t;
}

/** A From: value is read up to this many characters: an address is at most 254, and a name is a few words. */
export const ADDRESS_MAX_CHARS = 1000;

/** /\s/ and what "." does not match, one char at a time. */
const SPACE_RE = /\s/;
const LINE_BREAK_RE = /[\n\r\u2028\u2029]/;

/** Whether a word has an "@" with something either side: /^\S+@\S+$/ on a word. */
function isBareAddress(word: string): boolean {
  const at = word.indexOf('@', 1);
  return at >= 0 && at <= word.length - 2;
}

/**
 * "a@b.example (A Name)": what /^(\S+@\S+)\s*\((.*)\)$/ captures, as its
 * backtracking decides (the last "(" that can open the comment, the last "@"
 * before it), without the backtracking, which is quadratic in a long word.
 */
function parenAddress(v: string): { email: string; comment: string } | null {
  if (!v.endsWith(')')) return null;
  let word = 0;
  while (word < v.length && !SPACE_RE.test(v[word] ?? '')) word++;
  let next = word;
  while (next < v.length && SPACE_RE.test(v[next] ?? '')) next++;
  // The address ends at the first word's end when "(" comes next, else at the last "(" inside it.
  const afterWord = next < v.length - 1 && v[next] === '(';
  const open = afterWord ? next : v.lastIndexOf('(', word - 1);
  const end = afterWord ? word : open;
  if (open < 0 || open >= v.length - 1) return null;
  const comment = v.slice(open + 1, -1);
  if (LINE_BREAK_RE.test(comment)) return null;
  const at = v.lastIndexOf('@', end - 2);
  if (at < 1) return null;
  return { email: v.slice(0, end), comment };
}

/** One address from a From: value (still RFC 2047-encoded). */
export function parseAddress(value: string): { name: string; email: string } {
  const v = value.trim().slice(0, ADDRESS_MAX_CHARS);
  const angle = /<([^<>]*)>[^<>]*$/.exec(v);
  if (angle !== null) {
    const name = unquote(decodeHeaderValue(v.slice(0, angle.index).trim()));
    return { name: name.replace(/\s+/g, ' ').trim(), email: (angle[1] ?? '').trim() };
  }
  const paren = parenAddress(v);
  if (paren !== null) {
    return { name: decodeHeaderValue(paren.comment).trim(), email: paren.email };
  }
  if (!/\s/.test(v) && isBareAddress(v)) return { name: '', email: v };
  return { name: decodeHeaderValue(v).trim(), email: '' };
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const ZONES: Record<string, number> = {
  UT: 0, GMT: 0, Z: 0, EST: -300, EDT: -240, CST: -360, CDT: -300, MST: -420, MDT: -360, PST: -480, PDT: -420,
};

/** Longer Date: values are unreadable (a date is some 40 characters). */
export const DATE_MAX_CHARS = 200;

/** RFC 5322 dates ("Thu, 8 Jan 2026 11:18:17 -0800 (PST)"); null when unreadable. */
export function parseMailDate(value: string | undefined): Date | null {
  if (value === undefined || value.length > DATE_MAX_CHARS) return null;
  const m =
    /(?:^|\s|,)(\d{1,2})\s+([A-Za-z]{3})[a-z]*\s+(\d{2,4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([+-]\d{4}|[A-Za-z]{1,3}))?/.exec(
      value,
    );
  if (m === null) {
    const t = Date.parse(value);
    return Number.isNaN(t) ? null : new Date(t);
  }
  const month = MONTHS.indexOf((m[2] ?? '').toLowerCase());
  if (month < 0) return null;
  let year = Number(m[3]);
  if ((m[3] ?? '').length <= 2) year += year < 50 ? 2000 : 1900;
  const zone = m[7] ?? 'GMT';
  let offset: number;
  if (/^[+-]\d{4}$/.test(zone)) {
    const sign = zone.startsWith('-') ? -1 : 1;
    const hh = Number(zone.slice(1, 3));
    const mm = Number(zone.slice(3, 5));
    // An impossible zone (b4 sees -9900) is read as UTC.
    offset = hh < 24 && mm < 60 ? sign * (hh * 60 + mm) : 0;
  } else {
    offset = ZONES[zone.toUpperCase()] ?? 0;
  }
  const utc = Date.UTC(year, month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0));
  const t = utc - offset * 60_000;
  return Number.isNaN(t) ? null : new Date(t);
}

// ---------------------------------------------------------------------------
// MIME bodies

interface ContentType {
  type: string;
  params: Record<string, string>;
}

function parseContentType(value: string | undefined): ContentType {
  if (value === undefined) return { type: 'text/plain', params: {} };
  const head = value.split(';', 1)[0] ?? '';
  const params: Record<string, string> = {};
  // Parameters, quoted strings may hold ";".
  for (const m of value.slice(head.length).matchAll(/;\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)/g)) {
    const key = (m[1] ?? '').toLowerCase();
    params[key] = unquote(m[2] ?? '');
  }
  const type = head.trim().toLowerCase();
  return { type: type === '' ? 'text/plain' : type, params };
}

interface Part {
  headers: RawHeader[];
  body: string;
}

function decodeTransfer(body: string, cte: string | undefined): string {
  const enc = (cte ?? '7bit').trim().toLowerCase();
  if (enc === 'base64') return base64ToBin(body);
  if (enc === 'quoted-printable') return quotedPrintableToBin(body, false);
  return body;
}

function isTextPart(type: string): boolean {
  return type === 'text/plain' || type === 'text/x-patch' || type === 'text/x-diff' || type === 'text/x-log';
}

function textOf(part: Part): string {
  const ct = parseContentType(firstHeader(part.headers, 'Content-Type'));
  const bin = decodeTransfer(part.body, firstHeader(part.headers, 'Content-Transfer-Encoding'));
  const charset = ct.params.charset;
  const text = charset === undefined ? decodeUnlabelled(bin) : decodeBytes(bin, charset);
  return text.replace(/\r\n/g, '\n');
}

function splitMultipart(body: string, boundary: string): Part[] {
  const parts: Part[] = [];
  const delim = `--${boundary}`;
  let current: string[] | null = null;
  for (const rawLine of body.split('\n')) {
    const line = stripCr(rawLine).trimEnd();
    if (line === delim || line === `${delim}--`) {
      if (current !== null) {
        const text = current.join('\n');
        try {
          const { headers, bodyStart } = parseHeaderBlock(text);
          parts.push({ headers, body: text.slice(bodyStart) });
        } catch {
          parts.push({ headers: [], body: text });
        }
      }
      if (line === `${delim}--`) break;
      current = [];
      continue;
    }
    if (current !== null) current.push(rawLine);
  }
  return parts;
}

/** Leaf parts in order (a depth-first walk, like Python's msg.walk()). */
function leafParts(part: Part, depth = 0): Part[] {
  const ct = parseContentType(firstHeader(part.headers, 'Content-Type'));
  const boundary = ct.params.boundary;
  if (!ct.type.startsWith('multipart/') || boundary === undefined || depth > 10) return [part];
  return splitMultipart(part.body, boundary).flatMap((p) => leafParts(p, depth + 1));
}

const DIFF_START_RE = /^(?:diff --git |--- \S.*\n\+\+\+ |GIT binary patch)/m;

/**
 * The text to analyse: the body, or for a multipart message its first
 * text/plain part; as b4 does, a later text part with a diff wins over a
 * first part without one (a patch sent as an attachment).
 */
function bodyText(top: Part): string {
  const ct = parseContentType(firstHeader(top.headers, 'Content-Type'));
  if (!ct.type.startsWith('multipart/')) return isTextPart(ct.type) ? textOf(top) : '';
  let chosen: string | null = null;
  // Whether chosen has a diff, found once: testing it again for every later
  // part was quadratic in a message of many small parts.
  let chosenHasDiff = false;
  for (const part of leafParts(top)) {
    const pct = parseContentType(firstHeader(part.headers, 'Content-Type'));
    if (!isTextPart(pct.type)) continue;
    const text = textOf(part);
    if (chosen === null) {
      chosen = text;
      chosenHasDiff = DIFF_START_RE.test(text);
    } else if (!chosenHasDiff && DIFF_START_RE.test(text)) {
      chosen = text;
      chosenHasDiff = true;
    }
  }
  return chosen ?? '';
}

// ---------------------------------------------------------------------------

export function parseMessage(raw: string): MailMessage {
  const { headers: rawHeaders, bodyStart } = parseHeaderBlock(raw);
  if (rawHeaders.length === 0) throw malformed(`it has no header block: ${describeStart(raw)}`);
  const subjectRaw = firstHeader(rawHeaders, 'Subject');
  if (subjectRaw === undefined) {
    throw malformed('it has no Subject header', {
      messageId: msgIds(firstHeader(rawHeaders, 'Message-ID'))[0] ?? null,
    });
  }
  const headers = rawHeaders.map((h) => [h.name, decodeHeaderValue(h.value)] as const);
  const header = (name: string): string | undefined => {
    const lower = name.toLowerCase();
    return headers.find(([n]) => n.toLowerCase() === lower)?.[1];
  };

  const messageId =
    msgIds(firstHeader(rawHeaders, 'Message-ID'))[0] ??
    `patchbay-${createHash('sha256').update(raw, 'latin1').digest('hex').slice(0, 16)}@local`;
  const inReplyTo = msgIds(firstHeader(rawHeaders, 'In-Reply-To'))[0] ?? null;
  // A Set: an upload may name hundreds of thousands of references.
  const references = new Set<string>();
  for (const h of rawHeaders) {
    if (h.name.toLowerCase() !== 'references') continue;
    for (const id of msgIds(h.value)) if (id !== messageId) references.add(id);
  }
  if (inReplyTo !== null) references.add(inReplyTo);

  const fromRaw = firstHeader(rawHeaders, 'From');
  const from = fromRaw === undefined ? { name: '', email: '' } : parseAddress(fromRaw);

  return {
    raw,
    headers,
    header,
    messageId,
    inReplyTo,
    references: [...references],
    subject: decodeHeaderValue(subjectRaw).replace(/\s+/g, ' ').trim(),
    from,
    date: parseMailDate(firstHeader(rawHeaders, 'Date')),
    body: bodyText({ headers: rawHeaders, body: raw.slice(bodyStart) }),
  };
}

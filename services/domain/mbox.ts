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
 * MIME decoding is postal-mime's (a maintained, pure-JS mail parser, pinned
 * to one version in package.json), called synchronously: parseMbox() and
 * parseMessage() stay synchronous (intake, the worker, the CLI and the
 * tests call them so), while PostalMime.parse() is async all the way down
 * (its transfer decoders finish through Blob.arrayBuffer()). So this module
 * drives postal-mime's own synchronous pieces:
 * - decodeWords, its public export: RFC 2047 encoded words (Q and B, any
 *   charset, adjacent words joined) in every header value;
 * - from the modules it ships but does not export (its exports map lists
 *   only the parser; they are loaded by path from its package, see
 *   loadPostalMime): getDecoder (charset labels to decoders, with its
 *   aliases: cp932, x-sjis, ks_c_5601 ...), QPDecoder and Base64Decoder (the
 *   transfer encodings, fed as PostalMime feeds them and read out through
 *   their synchronous flush instead of the Blob-based finalize()), and
 *   MimeNode's parseStructuredHeader (Content-Type, with RFC 2231 parameters
 *   and comments) and decodeFlowedText (RFC 3676, DelSp too).
 * Loading checks that each piece is there, so an upgrade that moves one
 * fails at import, not on some mail; test/mime.test.ts checks that the
 * bodies of the golden mails read here are the text PostalMime.parse()
 * reads (the async parse, through the public API). What stays written
 * here is not MIME decoding: mboxrd, the header block (for MBOX_MALFORMED
 * and the raw ids), which parts make the body, addresses and dates.
 *
 * The body is the first text part (text/plain, text/x-patch, text/x-diff,
 * text/x-log), every line ending in "\n"; when it holds no diff and a later
 * text part does (a patch sent as an attachment), that part follows it, as
 * git mailinfo reads on from the message into the attachment. 8-bit text
 * without a charset (or labelled ASCII) is UTF-8 when it is valid UTF-8,
 * else windows-1252. format=flowed text is unflowed (the space-stuffing
 * taken off, soft breaks joined, with DelSp=yes their space dropped), as
 * git mailinfo does since git 2.20: a flowed patch is applied unflowed, so
 * that is the diff to read. What git itself reads in each patch is checked
 * at intake (services/intake/mailinfo.ts).
 *
 * Mail comes from public lists and uploads: parsing takes time linear in
 * the input, and what is malformed throws PatchbayError MBOX_MALFORMED,
 * nothing else. Lines are not cut (the raw message must stay byte for byte
 * what git am applies); a few fields are read only up to a length no real
 * one reaches (SEPARATOR_MAX_CHARS, ADDRESS_MAX_CHARS, DATE_MAX_CHARS, and
 * SUBJECT_MAX_CHARS in subject.ts), and MIME parts nest at most
 * MIME_MAX_DEPTH deep. How many messages make one series is capped in
 * series.ts.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { TextDecoder } from 'node:util';
import { decodeWords } from 'postal-mime';
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
  /**
   * Decoded text of the body: of a multipart message, its first text part,
   * and after it a later text part holding the diff when the first holds none
   * (a patch sent as an attachment). Each line ends in LF.
   */
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
// postal-mime's synchronous pieces

/** What this module uses of postal-mime's MimeNode (methods that read nothing of their node but each other). */
interface MimeNodeMethods {
  parseStructuredHeader(value: string): { value: string; params: Record<string, string> };
  decodeFlowedText(text: string, delSp: boolean): string;
}

/** postal-mime's QPDecoder: update() per line (without its line break), flushBuffer(), then chunks. */
interface QpDecoder {
  bufferPos: number;
  chunks: Uint8Array[];
  update(line: Uint8Array): void;
  flushBuffer(): void;
}

/** postal-mime's Base64Decoder: update() with any text, flushRemainder(), then chunks. */
interface Base64Decoder {
  chunks: ArrayBuffer[];
  remainder: string;
  update(data: Uint8Array): void;
  flushRemainder(): void;
}

interface PostalMimePieces {
  getDecoder(charset?: string | null): { readonly encoding: string; decode(bytes: Uint8Array): string };
  mimeNode: MimeNodeMethods;
  qp: QpDecoder;
  base64: Base64Decoder;
}

function missingPiece(what: string): Error {
  return new Error(`postal-mime no longer has ${what} where mbox.ts loads it from; see the module comment of services/domain/mbox.ts`);
}

/**
 * Loads getDecoder, QPDecoder, Base64Decoder and MimeNode from postal-mime's
 * CommonJS build (synchronous, by path from its package.json: its exports map
 * has no entry for them) and checks their shape. One decoder of each kind is
 * kept and reset for every part (QPDecoder allocates a 100 KiB buffer: one
 * per part would make many small parts cost far more than their size).
 */
function loadPostalMime(): PostalMimePieces {
  const load = createRequire(import.meta.url);
  const dist = join(dirname(load.resolve('postal-mime/package.json')), 'dist', 'cjs');
  const strings = load(join(dist, 'decode-strings.js')) as { getDecoder?: unknown };
  const node = (load(join(dist, 'mime-node.js')) as { default?: { prototype?: Partial<MimeNodeMethods> } }).default?.prototype;
  const Qp = (load(join(dist, 'qp-decoder.js')) as { default?: new () => QpDecoder }).default;
  const B64 = (load(join(dist, 'base64-decoder.js')) as { default?: new () => Base64Decoder }).default;
  if (typeof strings.getDecoder !== 'function') throw missingPiece('getDecoder in dist/cjs/decode-strings.js');
  if (typeof node?.parseStructuredHeader !== 'function' || typeof node.decodeFlowedText !== 'function') {
    throw missingPiece('MimeNode.parseStructuredHeader and decodeFlowedText in dist/cjs/mime-node.js');
  }
  if (typeof Qp !== 'function' || typeof B64 !== 'function') throw missingPiece('the QPDecoder and Base64Decoder classes');
  const qp = new Qp();
  const base64 = new B64();
  if (typeof qp.flushBuffer !== 'function' || !Array.isArray(qp.chunks) || typeof base64.flushRemainder !== 'function' || !Array.isArray(base64.chunks)) {
    throw missingPiece('the synchronous flush of its decoders');
  }
  return { getDecoder: strings.getDecoder as PostalMimePieces['getDecoder'], mimeNode: node as MimeNodeMethods, qp, base64 };
}

const postal = loadPostalMime();

// ---------------------------------------------------------------------------
// Bytes and charsets

function binToBytes(bin: string): Buffer {
  return Buffer.from(bin, 'latin1');
}

const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true });

/** Labels that say nothing about 8-bit bytes: none, or ASCII (8-bit bytes under it are out of spec). */
const UNLABELLED = new Set(['', 'ascii', 'us-ascii', 'us_ascii', 'ansi_x3.4-1968']);

/** windows-1252's characters for the bytes 0x80-0x9f (C1 controls in ISO-8859-1, never meant in mail). */
const CP1252_HIGH =
  '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';

/** Bytes in the charset a label names, by postal-mime's table (an unknown label reads as windows-1252, as in postal-mime and browsers). */
function decodeIn(label: string, bytes: Uint8Array): string {
  const decoder = postal.getDecoder(label);
  const text = decoder.decode(bytes);
  // Node 20's TextDecoder reads windows-1252 (and so ISO-8859-1 and ASCII,
  // which WHATWG maps to it) as ISO-8859-1: 0x80-0x9f come out as C1
  // controls. They are put right here (on a Node that decodes them right,
  // only the five bytes windows-1252 leaves undefined are left, unchanged).
  return decoder.encoding === 'windows-1252' ? c1AsCp1252(text) : text;
}

function c1AsCp1252(text: string): string {
  return text.replace(/[\x80-\x9f]/g, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80] ?? c);
}

/**
 * Bytes in a charset. Without a charset (or under ASCII): UTF-8 when the
 * bytes are valid UTF-8, else windows-1252.
 */
function decodeBytes(bytes: Uint8Array, charset: string | undefined): string {
  const label = (charset ?? '').trim().toLowerCase();
  if (!UNLABELLED.has(label)) return decodeIn(label, bytes);
  try {
    return UTF8_STRICT.decode(bytes);
  } catch {
    return decodeIn('windows-1252', bytes);
  }
}

/** Raw 8-bit text with no declared charset (a header written in UTF-8, or in Latin-1). */
function decodeUnlabelled(bin: string): string {
  if (!/[\x80-\uffff]/.test(bin)) return bin;
  return decodeBytes(binToBytes(bin), undefined);
}

// ---------------------------------------------------------------------------
// Headers

/** One RFC 2047 encoded word, as postal-mime's decodeWords finds them. */
const ENCODED_WORD_RE = /=\?([^?\s]+)\?([QqBb])\?([^?]*)\?=/g;

/**
 * Adjacent B words in one charset, re-encoded as one word when a word
 * before the last ends in base64 padding. decodeWords joins such words
 * only when the first ends on a base64 group (joining the text of a padded
 * one would shift every byte after it), so a character split across them
 * ("SsM=" "tnJn": J, then the two bytes of "ö" split) came out as two
 * replacement characters; some mailers split words so. Decoding stays
 * decodeWords': this only moves the bytes into one word.
 */
function repackBWords(text: string): string {
  let out = '';
  let last = 0;
  let run: Array<{ start: number; end: number; charset: string; payload: string }> = [];
  const flush = (): void => {
    const head = run[0];
    const tail = run[run.length - 1];
    const unaligned = (w: { payload: string }): boolean => {
      const clean = w.payload.replace(/[^A-Za-z0-9+/=]/g, '');
      return clean.includes('=') || clean.length % 4 !== 0;
    };
    if (head !== undefined && tail !== undefined && run.length > 1 && run.slice(0, -1).some(unaligned)) {
      const bytes = Buffer.concat(run.map((w) => Buffer.from(w.payload, 'base64')));
      out += text.slice(last, head.start) + `=?${head.charset}?B?${bytes.toString('base64')}?=`;
      last = tail.end;
    }
    run = [];
  };
  for (const m of text.matchAll(ENCODED_WORD_RE)) {
    const start = m.index;
    const charset = m[1] ?? '';
    const isB = (m[2] ?? '').toUpperCase() === 'B';
    const prev = run[run.length - 1];
    const adjacent = prev !== undefined && /^[ \t\r\n]*$/.test(text.slice(prev.end, start)) && prev.charset.toLowerCase() === charset.toLowerCase();
    if (!isB || !adjacent) flush();
    if (isB) run.push({ start, end: start + m[0].length, charset, payload: m[3] ?? '' });
  }
  flush();
  return last === 0 ? text : out + text.slice(last);
}

/**
 * A header value as read: raw 8-bit text decoded (UTF-8, else windows-1252),
 * then RFC 2047 encoded words by postal-mime's decodeWords (whitespace
 * between adjacent words goes; words in one charset are joined before they
 * are decoded, so a character split across two of them decodes whole).
 */
export function decodeHeaderValue(value: string): string {
  const text = decodeUnlabelled(value);
  if (!text.includes('=?')) return text;
  try {
    // decodeWords decodes through the same TextDecoders (see decodeIn); a C1
    // control in a header is never meant, and comes from a Latin-1 word.
    return c1AsCp1252(decodeWords(repackBWords(text)));
  } catch {
    // decodeWords does not throw on any input seen; should it, the words stay as written.
    return text;
  }
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

/** public-inbox's longest Message-ID (PublicInbox::MID MAX_MID_SIZE, a Xapian term limit): longer ones it cuts to this. */
export const MESSAGE_ID_MAX = 244;

/**
 * The Message-IDs of a header as public-inbox reads them (PublicInbox::MID:
 * what is between "<" and ">", tabs and line breaks removed, cut at
 * MESSAGE_ID_MAX), so that an id here is the id lore files the message
 * under, spaces, quotes and parentheses included.
 */
function msgIds(value: string | undefined): string[] {
  if (value === undefined) return [];
  const ids = [...value.matchAll(/<([^>]+)>/g)].map((m) => (m[1] ?? '').replace(/[\n\t\r]/g, '').slice(0, MESSAGE_ID_MAX)).filter((x) => x !== '');
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

/** How deep multipart parts are read (real mail nests two or three deep); deeper parts are not read. */
export const MIME_MAX_DEPTH = 10;

interface ContentType {
  type: string;
  params: Record<string, string>;
}

/** Content-Type as postal-mime reads it (type lowercased, parameter names too); text/plain when absent or empty. */
function parseContentType(value: string | undefined): ContentType {
  if (value === undefined) return { type: 'text/plain', params: {} };
  const parsed = postal.mimeNode.parseStructuredHeader(value);
  return { type: parsed.value === '' ? 'text/plain' : parsed.value, params: parsed.params };
}

interface Part {
  headers: RawHeader[];
  /** Binary string. */
  body: string;
}

/** A line without the CRs that end it (a loop: /\r+$/ is quadratic on a long run of CRs that does not end the line). */
function trimCrs(line: string): string {
  let end = line.length;
  while (end > 0 && line[end - 1] === '\r') end--;
  return end === line.length ? line : line.slice(0, end);
}

/** A part body's lines as PostalMime reads them: split at LF, the CRs before it dropped, no empty line after a final LF. */
function partLines(body: string): string[] {
  const all = body.split('\n');
  if (all[all.length - 1] === '') all.pop();
  return all.map(trimCrs);
}

/** Reads what a reused postal-mime decoder gathered, and empties it. */
function takeChunks(chunks: readonly (Uint8Array | ArrayBuffer)[]): Buffer {
  return Buffer.concat(chunks.map((c) => (c instanceof Uint8Array ? c : new Uint8Array(c))));
}

/** A part body without its transfer encoding, by postal-mime's decoders, fed as PostalMime feeds them. */
function transferDecode(body: string, encoding: string | undefined): Buffer {
  const enc = encoding ?? '';
  if (/base64/i.test(enc)) {
    const d = postal.base64;
    d.chunks = [];
    d.remainder = '';
    d.update(binToBytes(body));
    d.flushRemainder();
    const out = takeChunks(d.chunks);
    d.chunks = [];
    return out;
  }
  if (/quoted-printable/i.test(enc)) {
    const d = postal.qp;
    d.chunks = [];
    d.bufferPos = 0;
    for (const line of partLines(body)) d.update(binToBytes(line));
    d.flushBuffer();
    const out = takeChunks(d.chunks);
    d.chunks = [];
    return out;
  }
  // 7bit, 8bit, binary: the lines as they are, each ending in LF (split only when CRs are to go).
  if (!body.includes('\r')) return binToBytes(body === '' || body.endsWith('\n') ? body : `${body}\n`);
  const lines = partLines(body);
  return binToBytes(lines.length === 0 ? '' : `${lines.join('\n')}\n`);
}

function isTextPart(type: string): boolean {
  return type === 'text/plain' || type === 'text/x-patch' || type === 'text/x-diff' || type === 'text/x-log';
}

/** A text part's text: transfer encoding, charset and format=flowed undone, as postal-mime's MimeNode.getTextContent() does. */
function textOf(part: Part, ct: ContentType): string {
  const bytes = transferDecode(part.body, firstHeader(part.headers, 'Content-Transfer-Encoding'));
  let text = decodeBytes(bytes, ct.params.charset);
  if (/^flowed$/i.test(ct.params.format ?? '')) {
    text = postal.mimeNode.decodeFlowedText(text, /^yes$/i.test(ct.params.delsp ?? ''));
  }
  return text.replace(/\r\n/g, '\n');
}

/**
 * A multipart body's parts. A delimiter line is "--" and the boundary, "--"
 * more for the last one, then blanks only (RFC 2046, as PostalMime matches
 * it). The part open when the body ends without its closing delimiter is a
 * part too (git mailinfo and PostalMime read it).
 */
function splitMultipart(body: string, boundary: string): Part[] {
  const parts: Part[] = [];
  const delim = `--${boundary}`;
  /** Where the open part's text starts; -1 before the first delimiter. */
  let partStart = -1;
  const push = (end: number): void => {
    if (partStart < 0) return;
    // Its lines, each with its LF: RFC 2046 gives the LF before a delimiter to
    // the delimiter, git mailinfo and PostalMime keep it as the last line's.
    const text = body.slice(partStart, end);
    try {
      const { headers, bodyStart } = parseHeaderBlock(text);
      parts.push({ headers, body: text.slice(bodyStart) });
    } catch {
      // No header block: all of it is body (git mailinfo reads it so).
      parts.push({ headers: [], body: text });
    }
  };
  let pos = 0;
  while (pos < body.length) {
    const nl = body.indexOf('\n', pos);
    const next = nl < 0 ? body.length : nl + 1;
    if (body.startsWith(delim, pos)) {
      const line = trimBlanksEnd(trimCrs(body.slice(pos, nl < 0 ? body.length : nl)));
      if (line === delim || line === `${delim}--`) {
        push(pos);
        partStart = next;
        if (line !== delim) return parts;
      }
    }
    pos = next;
  }
  push(body.length);
  return parts;
}

/** A line without its trailing blanks (a loop: /[ \t]+$/ is quadratic on long runs of blanks). */
function trimBlanksEnd(line: string): string {
  let end = line.length;
  while (end > 0 && (line[end - 1] === ' ' || line[end - 1] === '\t')) end--;
  return end === line.length ? line : line.slice(0, end);
}

/** Leaf parts in order (a depth-first walk, like Python's msg.walk()), with their Content-Type. */
function leafParts(part: Part, ct: ContentType, depth: number, out: Array<{ part: Part; ct: ContentType }>): void {
  const boundary = ct.params.boundary;
  if (!ct.type.startsWith('multipart/') || boundary === undefined || boundary === '' || depth >= MIME_MAX_DEPTH) {
    out.push({ part, ct });
    return;
  }
  for (const p of splitMultipart(part.body, boundary)) {
    leafParts(p, parseContentType(firstHeader(p.headers, 'Content-Type')), depth + 1, out);
  }
}

const DIFF_START_RE = /^(?:diff --git |--- \S.*\n\+\+\+ |GIT binary patch)/m;

/**
 * The text to analyse: the body, or for a multipart message its first text
 * part; when that part has no diff and a later text part has one (a patch
 * sent as an attachment), that part follows it, as git mailinfo reads on
 * into it. Each part is decoded at most once, and none after the diff.
 */
function bodyText(top: Part): string {
  const ct = parseContentType(firstHeader(top.headers, 'Content-Type'));
  if (!ct.type.startsWith('multipart/')) return isTextPart(ct.type) ? textOf(top, ct) : '';
  const leaves: Array<{ part: Part; ct: ContentType }> = [];
  leafParts(top, ct, 0, leaves);
  let first: string | null = null;
  for (const leaf of leaves) {
    if (!isTextPart(leaf.ct.type)) continue;
    const text = textOf(leaf.part, leaf.ct);
    if (first === null) {
      if (DIFF_START_RE.test(text)) return text;
      first = text;
    } else if (DIFF_START_RE.test(text)) {
      return first === '' || first.endsWith('\n') ? first + text : `${first}\n${text}`;
    }
  }
  return first ?? '';
}

/** bodyText, with whatever the MIME pieces throw refused as MBOX_MALFORMED (no input seen makes them throw). */
function readBody(top: Part): string {
  try {
    return bodyText(top);
  } catch (e) {
    if (e instanceof PatchbayError) throw e;
    throw malformed(`its MIME body cannot be read: ${e instanceof Error ? e.message : String(e)}`);
  }
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
    body: readBody({ headers: rawHeaders, body: raw.slice(bodyStart) }),
  };
}

/**
 * Plain-text rules of a mail report: what is kept of untrusted text (job
 * output, git's and the compiler's messages, the kernel's console), how
 * prose is wrapped, how excerpts are capped, and lines that `b4 am` would
 * misread. Pure.
 */

/** Prose is wrapped at this many columns (characters). */
export const WIDTH = 72;

/* eslint-disable no-control-regex -- these match the control characters that are removed */
// ANSI escape sequences: CSI (colours, cursor), OSC (titles, links, ended by BEL or ST), and two-character ones.
const CSI = /\x1b\[[0-?]*[ -/]*[@-~]/g;
const OSC = /\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?/g;
const ESC2 = /\x1b[@-Z\\-_]/g;
/** C0 and C1 controls but \t and \n; DEL; the bidirectional overrides and marks; BOM. */
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;
/* eslint-enable no-control-regex */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Untrusted text made safe to print: escape sequences removed whole, line
 * ends made \n, every other control character (but \t) dropped, bidi
 * overrides dropped, broken UTF-16 replaced.
 */
export function sanitize(s: string): string {
  return s
    .replace(CSI, '')
    .replace(OSC, '')
    .replace(ESC2, '')
    .replace(/\r\n?/g, '\n')
    .replace(/[\u2028\u2029]/g, '\n')
    .replace(CONTROLS, '')
    .replace(LONE_SURROGATE, '\ufffd');
}

/** Cuts a string at `max` characters (code points), marking the cut. */
export function cutChars(s: string, max: number, marker = ' [...]'): string {
  const chars = Array.from(s);
  return chars.length <= max ? s : chars.slice(0, max).join('') + marker;
}

/** One line of untrusted text for prose: sanitized, whitespace runs made one space, at most `max` characters. */
export function oneLine(s: string, max = 200): string {
  // Only the start is read: whatever the job printed, the work is bounded.
  return cutChars(sanitize(s.slice(0, max * 4 + 64)).replace(/\s+/g, ' ').trim(), max, '...');
}

/**
 * An excerpt of untrusted text: its first lines (blank ones at either end
 * dropped), sanitized, tabs kept, each cut at `maxLineChars`, at most
 * `maxLines` of them, the last then saying how many more there were and
 * where they are. Only what is shown is read closely (the rest is counted).
 */
export function excerptLines(s: string, maxLines: number, maxLineChars: number, where: string): string[] {
  const raw = s.replace(/^(?:[ \t]*\r?\n)+/, '').trimEnd();
  if (raw === '') return [];
  const head: string[] = [];
  let at = 0;
  while (at <= raw.length && head.length <= maxLines) {
    const nl = raw.indexOf('\n', at);
    const end = nl < 0 ? raw.length : nl;
    head.push(raw.slice(at, Math.min(end, at + maxLineChars * 4 + 64)).replace(/\r$/, ''));
    at = end + 1;
  }
  let more = 0;
  for (let i = at - 1; i >= 0 && i < raw.length; i = raw.indexOf('\n', i + 1)) more++;
  const lines = head.flatMap((l) => sanitize(l).split('\n')).map((l) => cutChars(l.trimEnd(), maxLineChars));
  const total = lines.length + more;
  if (total <= maxLines) return lines;
  return [...lines.slice(0, maxLines - 1), `[... ${total - (maxLines - 1)} more lines: ${where}]`];
}

export const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/**
 * What is left for excerpts in one report, in bytes: each excerpt takes its
 * share; one that does not fit is cut at a line end, and once little is
 * left an excerpt is replaced by a line that says so.
 */
export class ExcerptBudget {
  constructor(private left: number) {}

  take(lines: readonly string[], where: string): string[] {
    const out: string[] = [];
    let used = 0;
    const marker = (n: number): string => n === lines.length
      ? `[left out to keep this mail short: ${where}]`
      : `[... ${lines.length - n} more lines left out to keep this mail short: ${where}]`;
    for (const [i, line] of lines.entries()) {
      const cost = bytes(line) + 5;
      if (used + cost + 120 > this.left) {
        out.push(marker(i));
        this.left = Math.max(0, this.left - used - 120);
        return out;
      }
      used += cost;
      out.push(line);
    }
    this.left -= used;
    return out;
  }
}

/**
 * The column a wrapped line continues at: under the text after a list
 * marker ("- ", "* "), or under the value of an aligned "key:   value"
 * line (two or more spaces after the colon).
 */
export function hangingIndent(line: string): number {
  const list = /^[-*] /.exec(line);
  if (list) return 2;
  const aligned = /^[^\s:]{1,24}: {2,}(?=\S)/.exec(line);
  return aligned ? aligned[0].length : 0;
}

/** Columns a line takes: its code points (a console's text is mostly ASCII). */
export const width = (s: string): number => Array.from(s).length;

/**
 * Word-wraps one line of prose at `cols`: breaks only at spaces, never in a
 * word (a URL longer than the line stands on a line of its own), continues
 * at the line's hanging indent.
 */
export function wrapLine(line: string, cols = WIDTH): string[] {
  if (width(line) <= cols) return [line];
  const hang = hangingIndent(line);
  const head = line.slice(0, hang);
  const words = line.slice(hang).split(/ +/).filter((w) => w !== '');
  const out: string[] = [];
  let current = head;
  let empty = true;
  for (const w of words) {
    if (empty) {
      current += w;
      empty = false;
    } else if (width(current) + 1 + width(w) <= cols) {
      current += ` ${w}`;
    } else {
      out.push(current);
      current = ' '.repeat(hang) + w;
    }
  }
  out.push(current);
  return out;
}

/** Names b4 takes as a follow-up trailer even without an address (b4 0.12, LoreMessage.find_trailers). */
const B4_NONPERSON = new Set(['fixes', 'subject', 'date', 'link', 'buglink', 'obsoleted-by', 'change-id', 'base-commit']);
const B4_IGNORED = new Set(['phone', 'email']);

/**
 * Whether `b4 am` on the series would take this line of the report (a reply
 * in its thread) for a trailer to add to the patches: "Name: value" at the
 * start of a line, indented or not, with an address in the value or a name
 * b4 takes without one, and no URL. Also a line that would make the report
 * look like a patch to b4 (a diff at the start of a line), and a bare
 * "<address>" line b4 joins to the line before.
 */
export function b4WouldMisread(line: string): boolean {
  if (/^(?:---|\+\+\+|diff --git |GIT binary patch)/i.test(line)) return true;
  if (/^<[^>]+>$/.test(line)) return true;
  const m = /^\s*([\p{L}\p{N}_][^\s]+):\s+(\S.*)$/u.exec(line);
  if (m?.[1] === undefined || m[2] === undefined) return false;
  const name = m[1].toLowerCase();
  const value = m[2];
  if (B4_IGNORED.has(name)) return false;
  if (/https?:\/\//.test(value)) return false;
  return /\S+@\S+\.\S+/.test(value) || B4_NONPERSON.has(name);
}

/** Such a line, quoted as the trailers are ("| "), after its indentation: b4 reads no trailer there. */
export function defuse(line: string): string {
  if (!b4WouldMisread(line)) return line;
  const indent = /^\s*/.exec(line)?.[0] ?? '';
  return `${indent}| ${line.slice(indent.length)}`;
}

/**
 * The final layout of expanded template text: lines that start with a space
 * or "|" are kept as they are (excerpts, commands, quoted trailers); every
 * other line is prose, its tabs made spaces, wrapped at WIDTH; trailing
 * whitespace removed; lines b4 would misread quoted; runs of blank lines
 * made one; no blank line at either end; one line end at the end.
 */
export function layout(text: string): string {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    const verbatim = /^[ |]/.test(line);
    const lines = verbatim ? [line] : wrapLine(line.replace(/\t/g, ' '));
    for (const l of lines) {
      const d = defuse(l.trimEnd());
      if (d === '' && (out.length === 0 || out[out.length - 1] === '')) continue;
      out.push(d);
    }
  }
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return `${out.join('\n')}\n`;
}

/** "1 patch", "3 patches". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "12m 34s", "45s", "1h 2m 3s". */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${m}m ${s}s`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

/**
 * A word for a POSIX shell: as it is when it holds only safe characters,
 * else in single quotes.
 */
export function shellWord(s: string): string {
  if (/^[A-Za-z0-9@%+=:,./_-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A Message-ID in a public-inbox URL, escaped as public-inbox escapes it
 * (mid_escape: letters, digits and -._~!$&'()*+,;=:@ kept, the rest
 * percent-encoded as UTF-8).
 */
export function midEscape(mid: string): string {
  return Array.from(sanitize(mid)).map((c) => (/[A-Za-z0-9\-._~!$&'()*+,;=:@]/.test(c) ? c : encodeURIComponent(c))).join('');
}

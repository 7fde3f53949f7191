/**
 * What a patch mail's diff touches, whether it is safe to apply, and its
 * trailers (Signed-off-by:, Reviewed-by: ...). Works on the decoded body
 * text of one message.
 */
import { createHash } from 'node:crypto';
import { TextDecoder, TextEncoder } from 'node:util';

export interface FileChange {
  /** Path before the change with the a/ (or -p1) prefix taken off; null for /dev/null. */
  oldPath: string | null;
  /** Path after the change; null for /dev/null (a deleted file). */
  newPath: string | null;
  binary: boolean;
  added: number;
  removed: number;
  /**
   * The pre-image blob id of a git diff's "index <old>..<new>" line, as
   * written (abbreviated, lower case); all zeros for a new file. Only with
   * diffFiles(body, { blobs: true }), and only when the diff has the line.
   */
  oldBlob?: string;
  /** The post-image blob id of the same line; all zeros for a deleted file. */
  newBlob?: string;
}

export interface DiffFilesOptions {
  /** Read the "index <old>..<new>" lines into oldBlob/newBlob (default false: the shape stored and shown today). */
  blobs?: boolean;
}

export interface PatchProblem {
  code: 'PATCH_BINARY' | 'PATCH_PATH_ESCAPES' | 'PATCH_NO_DIFF';
  message: string;
  path?: string;
}

export interface Trailer {
  name: string;
  value: string;
}

// ---------------------------------------------------------------------------
// Diffs

/** git's C-style quoting of unusual paths: "a/f\303\266o\tbar". */
function unquoteC(quoted: string): string {
  const inner = quoted.slice(1, -1);
  const bytes: number[] = [];
  const simple: Record<string, number> = { n: 10, t: 9, r: 13, b: 8, f: 12, v: 11, a: 7, '"': 34, '\\': 92 };
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i] ?? '';
    if (c === '\\') {
      const octal = /^[0-7]{3}/.exec(inner.slice(i + 1));
      if (octal !== null) {
        bytes.push(parseInt(octal[0], 8) & 0xff);
        i += 3;
        continue;
      }
      const next = inner[i + 1] ?? '';
      bytes.push(simple[next] ?? next.charCodeAt(0));
      i += 1;
      continue;
    }
    for (const b of new TextEncoder().encode(c)) bytes.push(b);
  }
  return new TextDecoder('utf-8').decode(new Uint8Array(bytes));
}

/** Reads one possibly C-quoted path at the start of text; returns it and the rest. */
function takePath(text: string): { path: string; rest: string } {
  if (text.startsWith('"')) {
    const m = /^"(?:[^"\\]|\\.)*"/.exec(text);
    if (m !== null) return { path: unquoteC(m[0]), rest: text.slice(m[0].length) };
  }
  return { path: text, rest: '' };
}

/** -p1: the first path component (a/, b/, linux.orig/) goes; absolute paths stay as written. */
function stripPrefix(path: string): string {
  if (path.startsWith('/')) return path;
  const slash = path.indexOf('/');
  return slash >= 0 ? path.slice(slash + 1) : path;
}

/** A path from a ---/+++ line: timestamps after a tab go, /dev/null is null. */
function headerPath(text: string): string | null {
  let t = text;
  if (!t.startsWith('"')) {
    const tab = t.indexOf('\t');
    if (tab >= 0) t = t.slice(0, tab);
    t = t.trimEnd();
  }
  const { path } = takePath(t);
  if (path === '/dev/null') return null;
  return stripPrefix(path);
}

/** The two paths of a "diff --git a/x b/x" line. */
function gitHeaderPaths(rest: string): { oldPath: string; newPath: string } {
  if (rest.startsWith('"')) {
    const first = takePath(rest);
    const second = first.rest.trimStart();
    const b = second.startsWith('"') ? takePath(second).path : second;
    return { oldPath: stripPrefix(first.path), newPath: stripPrefix(b) };
  }
  const quotedB = rest.indexOf(' "');
  if (quotedB > 0) {
    return { oldPath: stripPrefix(rest.slice(0, quotedB)), newPath: stripPrefix(takePath(rest.slice(quotedB + 1)).path) };
  }
  // Unquoted paths may hold spaces: "a/X b/X" splits in the middle (as git reads it).
  const mid = (rest.length - 1) / 2;
  if (Number.isInteger(mid) && rest[mid] === ' ') {
    const a = stripPrefix(rest.slice(0, mid));
    const b = stripPrefix(rest.slice(mid + 1));
    if (a === b) return { oldPath: a, newPath: b };
  }
  // A rename or copy: the "rename from/to" lines that follow give the real paths.
  const firstB = rest.indexOf(' b/');
  const at = firstB >= 0 ? firstB : rest.indexOf(' ');
  if (at < 0) return { oldPath: stripPrefix(rest), newPath: stripPrefix(rest) };
  return { oldPath: stripPrefix(rest.slice(0, at)), newPath: stripPrefix(rest.slice(at + 1)) };
}

/** Header lines longer than this are not read as headers (it bounds the regexes' work). */
const MAX_LINE = 4096;

const HUNK_RE = /^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@/;
/** git's "index <old>..<new>[ <mode>]" (not a merge's "index a,b..c"); SHA-1 or SHA-256 ids. */
const INDEX_RE = /^index ([0-9a-f]{4,64})\.\.([0-9a-f]{4,64})(?: [0-7]{6})?$/i;

/**
 * The files a patch touches, from "diff --git" headers and ---/+++ lines
 * (plain unified diffs too), with the lines each hunk adds and removes.
 * Hunks are counted by their header's line counts, so the "-- " signature
 * after the last hunk is never read as a removed line. With { blobs: true }
 * a git diff's "index" lines give each file its pre- and post-image blob ids
 * (what a base is guessed from); one pass over the lines either way.
 */
export function diffFiles(body: string, opts: DiffFilesOptions = {}): FileChange[] {
  const blobs = opts.blobs === true;
  const lines = body.replace(/\r\n/g, '\n').split('\n');
  const files: FileChange[] = [];
  let current: FileChange | null = null;
  /** The current file came from a "diff --git" line and has not had its ---/+++ yet. */
  let gitHeader = false;
  let oldLeft = 0;
  let newLeft = 0;

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (current !== null && (oldLeft > 0 || newLeft > 0)) {
      const c = line[0];
      if (line === '' || c === ' ') {
        // Context; some mailers strip the space of an empty context line.
        oldLeft--;
        newLeft--;
        continue;
      }
      if (c === '-' && oldLeft > 0) {
        current.removed++;
        oldLeft--;
        continue;
      }
      if (c === '+' && newLeft > 0) {
        current.added++;
        newLeft--;
        continue;
      }
      if (c === '\\') continue;
      // A hunk cut short: read the line as a header below.
      oldLeft = 0;
      newLeft = 0;
    }
    if (line.startsWith('diff --git ')) {
      current = { ...gitHeaderPaths(line.slice('diff --git '.length)), binary: false, added: 0, removed: 0 };
      files.push(current);
      gitHeader = true;
      continue;
    }
    const next = lines[i + 1];
    if (line.startsWith('--- ') && next?.startsWith('+++ ') === true) {
      const oldPath = headerPath(line.slice(4));
      const newPath = headerPath(next.slice(4));
      if (current !== null && gitHeader) {
        current.oldPath = oldPath;
        current.newPath = newPath;
      } else {
        current = { oldPath, newPath, binary: false, added: 0, removed: 0 };
        files.push(current);
      }
      gitHeader = false;
      i++;
      continue;
    }
    const hunk = HUNK_RE.exec(line);
    if (hunk !== null && current !== null) {
      oldLeft = hunk[1] === undefined ? 1 : Number(hunk[1]);
      newLeft = hunk[2] === undefined ? 1 : Number(hunk[2]);
      gitHeader = false;
      continue;
    }
    const binary = line.startsWith('Binary files ') && line.length <= MAX_LINE ? /^Binary files (.+) and (.+) differ$/.exec(line) : null;
    if (binary !== null) {
      if (current === null || !gitHeader) {
        current = { oldPath: null, newPath: null, binary: true, added: 0, removed: 0 };
        files.push(current);
      }
      current.binary = true;
      current.oldPath = headerPath(binary[1] ?? '');
      current.newPath = headerPath(binary[2] ?? '');
      gitHeader = false;
      continue;
    }
    if (current === null || !gitHeader) continue;
    // Extended header lines of a git diff.
    if (line === 'GIT binary patch') current.binary = true;
    else if (line.startsWith('new file mode ')) current.oldPath = null;
    else if (blobs && line.startsWith('index ') && line.length <= MAX_LINE) {
      const index = INDEX_RE.exec(line);
      if (index?.[1] !== undefined && index[2] !== undefined) {
        current.oldBlob = index[1].toLowerCase();
        current.newBlob = index[2].toLowerCase();
      }
    }
    else if (line.startsWith('deleted file mode ')) current.newPath = null;
    else if (line.startsWith('rename from ') || line.startsWith('copy from ')) {
      current.oldPath = takePath(line.slice(line.indexOf(' from ') + 6)).path;
    } else if (line.startsWith('rename to ') || line.startsWith('copy to ')) {
      current.newPath = takePath(line.slice(line.indexOf(' to ') + 4)).path;
    }
  }
  return files;
}

function escapeReason(path: string): string | null {
  if (path === '') return 'is empty';
  if (path.startsWith('/')) return 'is absolute';
  const parts = path.split('/');
  if (parts.includes('..')) return 'climbs out of the tree with ".."';
  if (parts.some((p) => p.toLowerCase() === '.git')) return 'points into .git/';
  return null;
}

/** Why a patch must not be applied: binary content, paths outside the tree, or no diff at all. */
export function patchProblems(files: readonly FileChange[]): PatchProblem[] {
  if (files.length === 0) return [{ code: 'PATCH_NO_DIFF', message: 'the message holds no diff' }];
  const problems: PatchProblem[] = [];
  for (const f of files) {
    const shown = f.newPath ?? f.oldPath ?? '';
    if (f.binary) {
      problems.push({ code: 'PATCH_BINARY', message: `${shown} is a binary patch`, path: shown });
    }
    for (const p of new Set([f.oldPath, f.newPath])) {
      if (p === null) continue;
      const reason = escapeReason(p);
      if (reason !== null) problems.push({ code: 'PATCH_PATH_ESCAPES', message: `path "${p}" ${reason}`, path: p });
    }
  }
  return problems;
}

/**
 * What a patch changes, as `git patch-id --stable` sees it (b4 compares
 * revisions' patches by it): each file's ---/+++ lines and hunk lines with
 * all whitespace taken out, without the commit message, the diffstat, index
 * and mode lines, hunk line numbers or what follows the last hunk; files in
 * any order. Equal for the same change sent again (rebased, reworded,
 * renumbered); not git's own id, only ever compared with another patchId.
 * Null when the body holds no diff. Linear in the body's length.
 */
export function patchId(body: string): string | null {
  const lines = body.replace(/\r\n/g, '\n').split('\n');
  const files: string[] = [];
  let current: string[] | null = null;
  /** The current file came from a "diff --git" line and has not had its ---/+++ yet. */
  let gitHeader = false;
  let oldLeft = 0;
  let newLeft = 0;
  const flush = (): void => {
    if (current !== null && current.length > 0) files.push(createHash('sha256').update(current.join('\n')).digest('hex'));
    current = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (current !== null && (oldLeft > 0 || newLeft > 0)) {
      const c = line[0];
      if (line === '' || c === ' ' || (c === '-' && oldLeft > 0) || (c === '+' && newLeft > 0) || c === '\\') {
        if (c !== '+' && c !== '\\') oldLeft--;
        if (c !== '-' && c !== '\\') newLeft--;
        current.push(line.replace(/\s+/g, ''));
        continue;
      }
      oldLeft = 0;
      newLeft = 0;
    }
    if (line.startsWith('diff --git ')) {
      flush();
      current = [];
      gitHeader = true;
      continue;
    }
    if (line.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ') === true) {
      // A plain unified diff's file starts here; a git diff's was started by its "diff --git" line.
      if (current === null || !gitHeader) {
        flush();
        current = [];
      }
      gitHeader = false;
      current.push(line.replace(/\s+/g, ''), (lines[i + 1] ?? '').replace(/\s+/g, ''));
      i++;
      continue;
    }
    const hunk = current === null ? null : HUNK_RE.exec(line);
    if (hunk !== null && current !== null) {
      oldLeft = hunk[1] === undefined ? 1 : Number(hunk[1]);
      newLeft = hunk[2] === undefined ? 1 : Number(hunk[2]);
      gitHeader = false;
      current.push('@@');
      continue;
    }
    // A git diff's header lines that say what changes without a hunk.
    if (current !== null && /^(?:rename|copy) (?:from|to) |^(?:new|deleted) file mode |^GIT binary patch$|^Binary files /.test(line)) {
      current.push(line.replace(/\s+/g, ''));
    }
  }
  flush();
  if (files.length === 0) return null;
  return createHash('sha256').update(files.sort().join('\n')).digest('hex');
}

// ---------------------------------------------------------------------------
// Trailers

const TRAILER_RE = /^([A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]):[ \t]+(\S.*)$/;
/** Trailer-shaped lines that are not trailers (b4's list). */
const NOT_TRAILERS = new Set(['phone', 'mail', 'email', 'e-mail', 'prerequisite-message-id']);
/** Known trailers that need no person in their value. */
const NON_PERSON = new Set(['link', 'buglink', 'closes', 'fixes', 'obsoleted-by', 'change-id', 'base-commit']);
const LINKS = new Set(['link', 'buglink', 'closes']);
/** Header-like lines in a reply that are mail metadata, not review tags (b4's list). */
const NOT_FOLLOWUP = new Set([
  'from', 'author', 'cc', 'to', 'date', 'subject', 'subscribe', 'unsubscribe', 'base-commit', 'change-id', 'message-id',
]);

function isKnownTrailer(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.endsWith('-by') || NON_PERSON.has(lower) || lower === 'cc';
}

/** Above the first "-- " signature line. */
function aboveSignature(text: string): string {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const sig = lines.indexOf('-- ');
  return (sig >= 0 ? lines.slice(0, sig) : lines).join('\n');
}

/** The commit message part of a patch mail: above "---", the diff, and the signature. */
function commitMessage(body: string): string[] {
  const lines = aboveSignature(body).split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (/^---[ \t]*$/.test(line) || line.startsWith('diff --git ')) break;
    if (line.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ') === true) break;
    out.push(line);
  }
  return out;
}

/** Trailer lines of a paragraph, with RFC 822-style continuation lines joined. */
function trailerLines(paragraph: readonly string[]): { trailers: Trailer[]; others: number } {
  const trailers: Trailer[] = [];
  let others = 0;
  let prevTrailer = false;
  for (let i = 0; i < paragraph.length; i++) {
    let line = paragraph[i] ?? '';
    const last = trailers[trailers.length - 1];
    if (prevTrailer && last !== undefined && /^[ \t]+\S/.test(line)) {
      last.value += ` ${line.trim()}`;
      continue;
    }
    // b4: "Fixes: abcd0123 (foo bar" wrapped before its ")".
    const nextLine = paragraph[i + 1];
    // (/^[^\s:][^:]*\)$/ is /^[^\s:]+[^:]*\)$/ without its quadratic backtracking.)
    if (/^\S+:\s+[\da-f]+\s+\([^)]+$/.test(line) && nextLine !== undefined && /^[^\s:][^:]*\)$/.test(nextLine)) {
      line = `${line} ${nextLine.trim()}`;
      i++;
    }
    const m = line.length <= MAX_LINE ? TRAILER_RE.exec(line) : null;
    if (m?.[1] !== undefined && m[2] !== undefined && !NOT_TRAILERS.has(m[1].toLowerCase())) {
      trailers.push({ name: m[1], value: m[2].trim() });
      prevTrailer = true;
      continue;
    }
    prevTrailer = false;
    // "[for the foo bits]" after a trailer is extra information, not prose.
    if (/^\s*\[[^\]]+\]\s*$/.test(line)) continue;
    others++;
  }
  return { trailers, others };
}

/**
 * A patch's own trailers: the "Token-With-Dashes: value" lines of the last
 * paragraph of its commit message (above "---"). The paragraph counts when
 * it holds a known trailer (Signed-off-by:, any "-by", Fixes:, Link:,
 * Closes:, Cc:) or nothing but trailer lines.
 */
export function parseTrailers(body: string): Trailer[] {
  const message = commitMessage(body);
  while (message.length > 0 && (message[message.length - 1] ?? '').trim() === '') message.pop();
  let start = message.length;
  while (start > 0 && (message[start - 1] ?? '').trim() !== '') start--;
  const { trailers, others } = trailerLines(message.slice(start));
  if (trailers.length === 0) return [];
  if (others > 0 && !trailers.some((t) => isKnownTrailer(t.name))) return [];
  return trailers.filter((t) => t.name.toLowerCase() !== 'fixes' || /^[0-9a-f]{6,}/i.test(t.value));
}

/**
 * Trailers a reviewer gives in a reply (b4's follow-up rules): trailer lines
 * anywhere above the signature, never in quoted ("> ") text; person trailers
 * must name an address, links only in Link:/Closes:, and mail header lines
 * (From:, Cc:, Date: ...) do not count.
 */
export function parseFollowupTrailers(body: string): Trailer[] {
  const out: Trailer[] = [];
  for (const line of aboveSignature(body).split('\n')) {
    if (/^\s*>/.test(line) || line.length > MAX_LINE) continue;
    const m = TRAILER_RE.exec(line.trim());
    if (m?.[1] === undefined || m[2] === undefined) continue;
    const name = m[1];
    const value = m[2].trim();
    const lower = name.toLowerCase();
    if (NOT_TRAILERS.has(lower) || NOT_FOLLOWUP.has(lower)) continue;
    if (!hasAddress(value) && !NON_PERSON.has(lower)) continue;
    if (/https?:\/\//.test(value) && !LINKS.has(lower)) continue;
    if (lower === 'fixes' && !/^[0-9a-f]{6,}/i.test(value)) continue;
    out.push({ name, value });
  }
  return out;
}

/**
 * Whether a word of text looks like an address: /\S+@\S+\.\S+/, read a word
 * at a time (that regex is cubic in a long word of "@").
 */
function hasAddress(text: string): boolean {
  for (const m of text.matchAll(/\S+/g)) {
    const word = m[0];
    const at = word.indexOf('@', 1);
    if (at >= 0 && word.lastIndexOf('.', word.length - 2) >= at + 2) return true;
  }
  return false;
}

/**
 * The address in a person trailer's value ("Name <a@b>" or a bare address),
 * lower-cased. What /<([^<>\s]+@[^<>\s]+)>/, else /(\S+@\S+\.[^\s>]+)/,
 * would find, in linear time (those regexes are quadratic and cubic in a
 * long run of "@").
 */
export function trailerEmail(value: string): string | null {
  for (const m of value.matchAll(/<([^<>\s]+)>/g)) {
    const inner = m[1] ?? '';
    const at = inner.indexOf('@', 1);
    if (at >= 0 && at <= inner.length - 2) return inner.toLowerCase();
  }
  for (const m of value.matchAll(/\S+/g)) {
    const bare = bareAddress(m[0]);
    if (bare !== null) return bare.toLowerCase();
  }
  return null;
}

/**
 * /^\S+@\S+\.[^\s>]+/ on one word, as its backtracking decides: the last "."
 * that has a character other than ">" after it, the last "@" at least two
 * before it, and from that "." on up to the first ">".
 */
function bareAddress(word: string): string | null {
  let dot = -1;
  for (let i = word.length - 2; i >= 0; i--) {
    if (word[i] === '.' && word[i + 1] !== '>') {
      dot = i;
      break;
    }
  }
  if (dot < 0) return null;
  const at = word.lastIndexOf('@', dot - 2);
  if (at < 1) return null;
  const gt = word.indexOf('>', dot + 1);
  return word.slice(0, gt < 0 ? word.length : gt);
}

/**
 * Patch mail subjects: `[RFC PATCH net-next v3 06/25] io_uring/kbuf: ...`.
 * The rules follow b4's LoreSubject: reply markers first, then every
 * leading bracket group, split into words.
 */

export interface SubjectInfo {
  /** Starts with Re:/Aw:/Fwd: (possibly repeated). */
  isReply: boolean;
  /** A prefix word starts with PATCH, or the subject is an RFC. */
  isPatch: boolean;
  isRfc: boolean;
  isResend: boolean;
  /** v3 / V3 / PATCHv3 / PATCH-v3; 1 when the subject names none. */
  version: number;
  /** 06/25 gives 6 and 25; a cover letter is 0/N; null when there is no counter. */
  counter: number | null;
  total: number | null;
  /** Prefix words that are not PATCH/RFC/RESEND/vN/N/M: net-next, io_uring-7.2, for-next, 6.12.y ... */
  treeTags: string[];
  /** All prefix words in order, as written (a spaced counter "6 / 25" is written 6/25). */
  prefixes: string[];
  /** The subject without its reply markers and leading bracket groups. */
  title: string;
}

/** Reply markers, including the common non-English ones. */
const REPLY_RE = /^(?:re|aw|fwd?|sv|vs|antw|odp|ynt)\s*(?:\[\d+\])?\s*:\s*/i;
/** b4: any two- or three-letter word and a colon right before a bracket. */
const SHORT_REPLY_RE = /^\w{2,3}:\s*(?=\[)/;
const COUNTER_RE = /^(\d{1,4})\/(\d{1,4})$/;

/**
 * The revision a single prefix word names: `v3`, `V3`, `PATCHv3`,
 * `PATCH-v3`, `RFCv2`, `RESENDv2`; null for any other word.
 */
export function versionWord(word: string): number | null {
  const m = /^(?:(?:patch|rfc|resend)[-_]?)?v(\d{1,4})$/i.exec(word);
  return m?.[1] === undefined ? null : Number(m[1]);
}

/**
 * Longer subjects are cut to this many characters before parsing: no real
 * one comes close (git format-patch subjects are one line of prose), and it
 * bounds the work on a forged one.
 */
export const SUBJECT_MAX_CHARS = 1000;

/**
 * s.replace(/\[([^\]]*)\[([^[\]]*)\]/, '[$1$2]') in one pass: the first "["
 * whose group (up to the next "]") holds another "[" loses the last of those.
 * The regex, tried from every "[" of a run, was quadratic in it.
 */
function mergeInnerOpen(s: string): string {
  let first = -1;
  let last = -1;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '[') {
      if (first < 0) first = i;
      last = i;
    } else if (s[i] === ']') {
      if (last > first && first >= 0) return s.slice(0, last) + s.slice(last + 1);
      first = -1;
      last = -1;
    }
  }
  return s;
}

/**
 * s.replace(/\[([^\]]*)\]([^[\]]*)\]/, '[$1$2]') in linear time: the first
 * group whose "]" is followed by another "]" before any "[" loses its "]".
 */
function mergeExtraClose(s: string): string {
  let opened = false;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '[') {
      opened = true;
    } else if (s[i] === ']') {
      if (opened) {
        let k = i + 1;
        while (k < s.length && s[k] !== '[' && s[k] !== ']') k++;
        if (s[k] === ']') return s.slice(0, i) + s.slice(i + 1);
      }
      opened = false;
    }
  }
  return s;
}

/** Never throws; time linear in the subject (which is cut at SUBJECT_MAX_CHARS). */
export function parseSubject(subject: string): SubjectInfo {
  let s = subject.slice(0, SUBJECT_MAX_CHARS * 2).replace(/\s+/g, ' ').trim().slice(0, SUBJECT_MAX_CHARS);
  let isReply = false;
  for (;;) {
    const m = REPLY_RE.exec(s) ?? SHORT_REPLY_RE.exec(s);
    if (m === null) break;
    isReply = true;
    s = s.slice(m[0].length);
  }

  // "RESEND: [PATCH] x": a resend marked before the brackets.
  let resendMark = false;
  const resend = /^resend\s*:\s*(?=\[)/i.exec(s);
  if (resend !== null) {
    resendMark = true;
    s = s.slice(resend[0].length);
  }

  // Brackets inside brackets ("[PATCH [net] v2]") merge into their group.
  for (let i = 0; i < 16; i++) {
    const before = s;
    s = mergeExtraClose(mergeInnerOpen(s));
    if (s === before) break;
  }

  const info: SubjectInfo = {
    isReply,
    isPatch: false,
    isRfc: false,
    isResend: resendMark,
    version: 1,
    counter: null,
    total: null,
    treeTags: [],
    prefixes: [],
    title: '',
  };

  for (;;) {
    const m = /^\[([^\]]*)\]\s*/.exec(s);
    if (m === null) break;
    s = s.slice(m[0].length);
    const inside = (m[1] ?? '').replace(/(\d)\s*\/\s*(\d)/g, '$1/$2');
    // "[PATCH net-next,v2 1/3]": commas and semicolons separate words too.
    for (const word of inside.split(/[\s,;]+/)) {
      if (word === '') continue;
      info.prefixes.push(word);
      const counter = COUNTER_RE.exec(word);
      if (counter?.[1] !== undefined && counter[2] !== undefined) {
        info.counter = Number(counter[1]);
        info.total = Number(counter[2]);
        continue;
      }
      const version = versionWord(word);
      if (version !== null) {
        info.version = version;
        if (/^patch/i.test(word)) info.isPatch = true;
        if (/^rfc/i.test(word)) info.isRfc = true;
        if (/^resend/i.test(word)) info.isResend = true;
        continue;
      }
      const lower = word.toLowerCase();
      if (lower.startsWith('rfc')) info.isRfc = true;
      else if (lower.startsWith('resend')) info.isResend = true;
      else if (lower.startsWith('patch')) info.isPatch = true;
      else info.treeTags.push(word);
    }
  }
  if (info.isRfc) info.isPatch = true;
  info.title = s.trim();
  return info;
}

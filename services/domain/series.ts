/**
 * From a pile of mail (a lore thread, an uploaded mbox) to one patch series,
 * following b4's rules: replies only carry trailers, the cover letter is
 * 0/N, the newest revision wins, every patch 1..N must be there.
 */
import { PatchbayError } from './errors.ts';
import { toMboxrd, type MailMessage } from './mbox.ts';
import {
  diffFiles,
  parseFollowupTrailers,
  parseTrailers,
  patchProblems,
  trailerEmail,
  type FileChange,
  type PatchProblem,
  type Trailer,
} from './patch.ts';
import { parseSubject, versionWord, type SubjectInfo } from './subject.ts';

export interface SeriesPatch {
  counter: number;
  message: MailMessage;
  subject: SubjectInfo;
  files: FileChange[];
  /** The patch's own trailers, then those collected from replies to it and to the cover letter. */
  trailers: Trailer[];
}

export interface Series {
  title: string;
  version: number;
  total: number;
  isRfc: boolean;
  cover: MailMessage | null;
  /** Ordered 1..total. */
  patches: SeriesPatch[];
  /** "base-commit: <sha>" in the cover letter, else in the first patch. */
  baseCommit: string | null;
  /** "change-id: ..." (b4 prep). */
  changeId: string | null;
  /** "prerequisite-patch-id: ..." lines. */
  prerequisitePatchIds: string[];
  treeTags: string[];
  /** The cover letter's Message-ID, else the first patch's: the thread a report replies to. */
  rootMessageId: string;
  /** Non-fatal notes for the person who reads the result. */
  problems: string[];
}

/**
 * How many messages assembleSeries reads: a lore thread of a big series with
 * every revision and its review holds hundreds; each message costs a parse of
 * its subject, diff and trailers.
 */
export const SERIES_MAX_MESSAGES = 10_000;
/**
 * How many patches a series may have (and patch mails its revision): the
 * largest series sent to the kernel's lists hold a few hundred. Past it
 * assembleSeries throws SERIES_TOO_LARGE.
 */
export const SERIES_MAX_PATCHES = 1000;
/**
 * How many trailers replies may add to one patch (its own are not counted):
 * a patch gathers a few dozen at most, and a reply to the cover letter gives
 * its trailers to every patch. Past it they are ignored, with a problem.
 */
export const SERIES_MAX_REPLY_TRAILERS = 100;

interface Node {
  msg: MailMessage;
  subj: SubjectInfo;
  files: FileChange[];
  kind: 'patch' | 'cover' | 'reply' | 'other';
  version: number;
  /** 1 for a patch without a counter ("[PATCH] x"), 0 for a cover letter. */
  counter: number;
  total: number;
}

function hasDiffstat(body: string): boolean {
  return /^ *\d+ files? changed, \d+ (?:insertion|deletion)/m.test(body);
}

function hasExplicitVersion(subj: SubjectInfo): boolean {
  return subj.prefixes.some((p) => versionWord(p) !== null);
}

function later(a: Node, b: Node): Node {
  return (b.msg.date?.getTime() ?? -Infinity) >= (a.msg.date?.getTime() ?? -Infinity) ? b : a;
}

function describe(node: Node): string {
  return `"${node.msg.subject}" <${node.msg.messageId}>`;
}

function classify(msg: MailMessage): Node {
  const subj = parseSubject(msg.subject);
  const files = diffFiles(msg.body);
  const base = { msg, subj, files, version: subj.version, counter: subj.counter ?? 1, total: subj.total ?? 1 };
  if (subj.isReply) return { ...base, kind: 'reply' };
  // b4: a reply without "Re:" that gives trailers and carries no diff.
  const threaded = msg.inReplyTo !== null || msg.references.length > 0;
  if (!subj.isPatch && threaded && files.length === 0 && parseFollowupTrailers(msg.body).length > 0) {
    return { ...base, kind: 'reply' };
  }
  if (subj.counter === 0) return { ...base, kind: 'cover', counter: 0 };
  // b4: "[PATCH v2] x" without a counter and without a diff may be a naked
  // cover letter; it is a patch only when it has a counter or a diff.
  if (files.length > 0 || (subj.isPatch && subj.counter !== null)) {
    // "[PATCH 6/5]": the total grows to the counter, as b4 does.
    return { ...base, kind: 'patch', total: Math.max(base.total, base.counter) };
  }
  return { ...base, kind: 'other' };
}

function metadata(body: string): { baseCommit: string | null; changeId: string | null; prereqs: string[] } {
  const base = /^base-commit:[ \t]*([0-9a-f]{7,64})\b/im.exec(body);
  const change = /^change-id:[ \t]+([A-Za-z0-9._@+-]+)/im.exec(body);
  const prereqs = [...body.matchAll(/^prerequisite-patch-id:[ \t]+([0-9a-f]{7,64})\b/gim)].map((m) => m[1] ?? '');
  return { baseCommit: base?.[1]?.toLowerCase() ?? null, changeId: change?.[1] ?? null, prereqs };
}

/** Two trailers are the same when their keys are: the name in any case, the value with whitespace runs as one space. */
function trailerKey(t: Trailer): string {
  return `${t.name.toLowerCase()}\0${t.value.replace(/\s+/g, ' ')}`;
}

/** A value without its first <...> (as .replace(/<[^>]*>/, '') does, which is quadratic in a run of "<"). */
function withoutFirstAngle(value: string): string {
  const open = value.indexOf('<');
  const close = open < 0 ? -1 : value.indexOf('>', open);
  return close < 0 ? value : value.slice(0, open) + value.slice(close + 1);
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function tooLarge(message: string, details: Record<string, unknown>): PatchbayError {
  return new PatchbayError('SERIES_TOO_LARGE', message, { details });
}

/**
 * Assembles one series from messages, in time linear in their size (but
 * for sorting the replies by date). Throws
 * PatchbayError: SERIES_TOO_LARGE (past SERIES_MAX_MESSAGES or
 * SERIES_MAX_PATCHES), SERIES_NO_PATCHES, SERIES_INCOMPLETE, SERIES_NO_DIFF,
 * PATCH_BINARY, PATCH_PATH_ESCAPES.
 */
export function assembleSeries(messages: readonly MailMessage[], opts: { version?: number } = {}): Series {
  if (messages.length > SERIES_MAX_MESSAGES) {
    throw tooLarge(`The mail holds ${messages.length} messages; patchbay reads at most ${SERIES_MAX_MESSAGES} for one series.`, {
      messages: messages.length,
      limit: SERIES_MAX_MESSAGES,
    });
  }
  const problems: string[] = [];
  const byId = new Map<string, Node>();
  const nodes: Node[] = [];
  for (const msg of messages) {
    if (byId.has(msg.messageId)) continue; // the same mail twice (merged search results)
    const node = classify(msg);
    byId.set(msg.messageId, node);
    nodes.push(node);
  }

  // b4: a patch that names no revision takes the one of the cover letter or
  // patch 1 it replies to.
  for (const node of nodes) {
    if (node.kind !== 'patch' || hasExplicitVersion(node.subj) || node.msg.inReplyTo === null) continue;
    const parent = byId.get(node.msg.inReplyTo);
    if (parent === undefined || !hasExplicitVersion(parent.subj)) continue;
    if (parent.kind === 'cover' || (parent.kind === 'patch' && parent.counter === 1)) node.version = parent.version;
  }

  const patchNodes = nodes.filter((n) => n.kind === 'patch');
  const versions = [...new Set(patchNodes.map((n) => n.version))].sort((a, b) => a - b);
  if (patchNodes.length === 0) {
    const lone = nodes.find((n) => n.kind === 'other' && n.subj.isPatch);
    if (lone !== undefined) {
      throw new PatchbayError('SERIES_NO_DIFF', `Patch ${describe(lone)} has no diff.`, {
        details: { counter: 1, subject: lone.msg.subject, path: null, messageId: lone.msg.messageId },
      });
    }
    const replies = nodes.filter((n) => n.kind === 'reply').length;
    throw new PatchbayError(
      'SERIES_NO_PATCHES',
      `No patches among ${plural(nodes.length, 'message')} (${plural(replies, 'reply', 'replies')}); a patch mail has a "[PATCH ...]" subject and a diff.`,
      { details: { messages: nodes.length, replies } },
    );
  }
  const version = opts.version ?? versions[versions.length - 1] ?? 1;
  if (!versions.includes(version)) {
    throw new PatchbayError(
      'SERIES_NO_PATCHES',
      `No patches of v${version}; the mail holds ${versions.map((v) => `v${v}`).join(', ')}.`,
      { details: { version, versions } },
    );
  }
  const others = versions.filter((v) => v !== version);
  if (others.length > 0) {
    const list = others.map((v) => `v${v}`).join(', ');
    const asked = opts.version === undefined ? '' : ' as asked';
    problems.push(`${list} also present; took v${version}${asked}`);
  }

  const mails = patchNodes.filter((n) => n.version === version).length;
  const largest = patchNodes.reduce((m, n) => (n.version === version ? Math.max(m, n.total) : m), 0);
  if (mails > SERIES_MAX_PATCHES || largest > SERIES_MAX_PATCHES) {
    throw tooLarge(
      mails > SERIES_MAX_PATCHES
        ? `The v${version} series comes in ${mails} patch mails; patchbay takes at most ${SERIES_MAX_PATCHES} patches in a series.`
        : `The v${version} series has ${largest} patches; patchbay takes at most ${SERIES_MAX_PATCHES} patches in a series.`,
      { version, mails, total: largest, limit: SERIES_MAX_PATCHES },
    );
  }

  // One message per counter; duplicates: one with a diff first, then the later one.
  const chosen = new Map<number, Node>();
  let total = 0;
  const totals = new Set<number>();
  for (const node of patchNodes) {
    if (node.version !== version) continue;
    total = Math.max(total, node.total);
    totals.add(node.total);
    const had = chosen.get(node.counter);
    if (had === undefined) {
      chosen.set(node.counter, node);
      continue;
    }
    const hadDiff = had.files.length > 0;
    const hasDiff = node.files.length > 0;
    const keep = hadDiff !== hasDiff ? (hasDiff ? node : had) : later(had, node);
    const drop = keep === node ? had : node;
    chosen.set(node.counter, keep);
    problems.push(`patch ${node.counter}/${node.total} sent more than once; took ${describe(keep)}, not ${describe(drop)}`);
  }
  if (totals.size > 1) {
    problems.push(`patches disagree on the series length (${[...totals].sort((a, b) => a - b).join(', ')}); expecting ${total}`);
  }
  const missing: number[] = [];
  for (let c = 1; c <= total; c++) if (!chosen.has(c)) missing.push(c);
  if (missing.length > 0) {
    const width = String(total).length;
    const shown = missing.map((c) => `${String(c).padStart(width, '0')}/${total}`).join(', ');
    const named = nodes.find((n) => n.kind === 'cover' && n.version === version) ?? [...chosen.values()][0];
    const title = named === undefined ? '' : ` "${named.subj.title}"`;
    throw new PatchbayError(
      'SERIES_INCOMPLETE',
      `The v${version} series${title} is incomplete: missing ${missing.length === 1 ? 'patch' : 'patches'} ${shown}.`,
      { details: { version, total, missing, present: [...chosen.keys()].sort((a, b) => a - b) } },
    );
  }

  // The cover letter: 0/N of this revision, else (b4) the message patch 1
  // replies to when it has no diff and looks like one.
  let cover: Node | null = null;
  for (const node of nodes) {
    if (node.kind !== 'cover' || node.version !== version) continue;
    if (cover !== null) {
      const keep = later(cover, node);
      problems.push(`more than one v${version} cover letter; took ${describe(keep)}`);
      cover = keep;
    } else {
      cover = node;
    }
  }
  const first = chosen.get(1);
  if (first === undefined) throw new Error('unreachable: patch 1 checked above');
  if (cover === null && first.msg.inReplyTo !== null) {
    const parent = byId.get(first.msg.inReplyTo);
    if (
      parent !== undefined &&
      parent.kind === 'other' &&
      parent.files.length === 0 &&
      (hasDiffstat(parent.msg.body) ||
        (parent.msg.inReplyTo === null && parent.msg.from.email.toLowerCase() === first.msg.from.email.toLowerCase()))
    ) {
      cover = parent;
    }
  }

  const patches: SeriesPatch[] = [];
  for (let c = 1; c <= total; c++) {
    const node = chosen.get(c);
    if (node === undefined) continue;
    patches.push({ counter: c, message: node.msg, subject: node.subj, files: node.files, trailers: parseTrailers(node.msg.body) });
  }

  // Refuse what must not be applied: no diff, binary content, paths outside the tree.
  const refusals: Array<PatchProblem & { counter: number; subject: string; messageId: string }> = [];
  for (const p of patches) {
    for (const pr of patchProblems(p.files)) {
      refusals.push({ ...pr, counter: p.counter, subject: p.message.subject, messageId: p.message.messageId });
    }
  }
  const firstRefusal = refusals[0];
  if (firstRefusal !== undefined) {
    const where = `Patch ${firstRefusal.counter}/${total} "${firstRefusal.subject}"`;
    const code = firstRefusal.code === 'PATCH_NO_DIFF' ? 'SERIES_NO_DIFF' : firstRefusal.code;
    const message =
      firstRefusal.code === 'PATCH_NO_DIFF'
        ? `${where} has no diff.`
        : firstRefusal.code === 'PATCH_BINARY'
          ? `${where} holds a binary patch for ${firstRefusal.path ?? '?'}; binary patches are not applied.`
          : `${where} touches a path outside the source tree: ${firstRefusal.message}.`;
    throw new PatchbayError(code, message, {
      details: {
        counter: firstRefusal.counter,
        subject: firstRefusal.subject,
        messageId: firstRefusal.messageId,
        path: firstRefusal.path ?? null,
        problems: refusals.map((r) => ({ code: r.code, counter: r.counter, path: r.path ?? null, message: r.message })),
      },
    });
  }

  // Trailers from replies: walk up each reply's thread to the patch or cover
  // letter it answers; a person trailer counts only from that person (b4).
  const coverId = cover?.msg.messageId ?? null;
  const patchById = new Map<string, SeriesPatch>();
  const patchByCounter = new Map<number, SeriesPatch>();
  for (const p of patches) {
    patchById.set(p.message.messageId, p);
    if (!patchByCounter.has(p.counter)) patchByCounter.set(p.counter, p);
  }
  for (const node of patchNodes) {
    // A reply to a duplicate we did not take still reviews the same patch.
    const taken = patchByCounter.get(node.counter);
    if (node.version === version && taken !== undefined) patchById.set(node.msg.messageId, taken);
  }
  // The message each one replies to: In-Reply-To, else the last of its
  // References that is here; never itself.
  const parentOf = (node: Node): Node | undefined => {
    const own = node.msg.messageId;
    if (node.msg.inReplyTo !== null) return node.msg.inReplyTo === own ? undefined : byId.get(node.msg.inReplyTo);
    const refs = node.msg.references;
    for (let k = refs.length - 1; k >= 0; k--) {
      const id = refs[k];
      if (id === undefined || id === own) continue;
      const parent = byId.get(id);
      if (parent !== undefined) return parent;
    }
    return undefined;
  };
  // The patch or cover letter (or other non-reply) a reply answers, up its
  // thread through other replies; remembered for every reply on the way, so
  // a thread of n replies costs n steps, not n². A thread that loops (only
  // forged References do) answers nothing.
  const answers = new Map<Node, Node | null>();
  const answerOf = (reply: Node): Node | undefined => {
    const path: Node[] = [];
    const onPath = new Set<Node>();
    let answer: Node | null = null;
    for (let cursor: Node = reply; ; ) {
      const known = answers.get(cursor);
      if (known !== undefined) {
        answer = known;
        break;
      }
      path.push(cursor);
      onPath.add(cursor);
      const parent = parentOf(cursor);
      if (parent === undefined || onPath.has(parent)) break;
      if (parent.kind !== 'reply') {
        answer = parent;
        break;
      }
      cursor = parent;
    }
    for (const n of path) answers.set(n, answer);
    return answer ?? undefined;
  };

  // Trailers given to each patch, by key, and how many came from replies.
  const keys = new Map<SeriesPatch, Set<string>>(patches.map((p) => [p, new Set(p.trailers.map(trailerKey))]));
  const fromReplies = new Map<SeriesPatch, number>();
  const full = new Set<SeriesPatch>();
  /** Adds t to p unless p has it or is full; true when added. */
  const give = (p: SeriesPatch, t: Trailer, key: string): boolean => {
    const have = keys.get(p);
    if (have === undefined || have.has(key) || full.has(p)) return false;
    const n = fromReplies.get(p) ?? 0;
    if (n >= SERIES_MAX_REPLY_TRAILERS) {
      full.add(p);
      problems.push(`patch ${p.counter}/${total} got more than ${SERIES_MAX_REPLY_TRAILERS} trailers from replies; the rest were ignored`);
      return false;
    }
    have.add(key);
    fromReplies.set(p, n + 1);
    p.trailers.push(t);
    return true;
  };
  // A reply to the cover letter gives its trailers to every patch: a key
  // given once is in every patch (or the patch is full), and the patches
  // still open are kept in a list, so that each key costs one pass.
  const givenToAll = new Set<string>();
  let open = patches;

  // Replies in the order they were sent, so trailers come out the same
  // whatever order the mbox holds them in.
  const replies = nodes
    .filter((n) => n.kind === 'reply')
    .sort(
      (a, b) =>
        (a.msg.date?.getTime() ?? Infinity) - (b.msg.date?.getTime() ?? Infinity) ||
        (a.msg.messageId < b.msg.messageId ? -1 : a.msg.messageId > b.msg.messageId ? 1 : 0),
    );
  let ignoredReplies = 0;
  for (const node of replies) {
    const trailers = parseFollowupTrailers(node.msg.body);
    if (trailers.length === 0) {
      ignoredReplies++;
      continue;
    }
    const target = answerOf(node);
    const toAll = target !== undefined && target.msg.messageId === coverId;
    const one = target === undefined || toAll ? undefined : patchById.get(target.msg.messageId);
    if (!toAll && one === undefined) {
      ignoredReplies++;
      continue;
    }
    let added = false;
    for (const t of trailers) {
      const email = trailerEmail(t.value);
      const lower = t.name.toLowerCase();
      const personal = lower.endsWith('-by') && email !== null;
      if (personal && email !== node.msg.from.email.toLowerCase()) {
        const name = withoutFirstAngle(t.value).trim().toLowerCase();
        if (name === '' || name !== node.msg.from.name.toLowerCase()) {
          problems.push(
            `ignored "${t.name}: ${t.value}" in a reply from ${node.msg.from.email || 'an unknown sender'}: it names someone else`,
          );
          continue;
        }
      }
      const key = trailerKey(t);
      if (one !== undefined) {
        if (give(one, t, key)) added = true;
        continue;
      }
      if (givenToAll.has(key)) continue;
      givenToAll.add(key);
      const wereFull = full.size;
      for (const p of open) if (give(p, t, key)) added = true;
      if (full.size !== wereFull) open = open.filter((p) => !full.has(p));
    }
    if (!added) ignoredReplies++;
  }
  if (ignoredReplies > 0) problems.push(`ignored ${plural(ignoredReplies, 'reply', 'replies')}`);
  const strays = nodes.filter((n) => n.kind === 'other' && n !== cover);
  if (strays.length > 0) {
    problems.push(`ignored ${plural(strays.length, 'message')} that ${strays.length === 1 ? 'is' : 'are'} neither patch nor reply: ${strays.map(describe).join(', ')}`);
  }

  const head = cover ?? first;
  const fromCover = cover === null ? null : metadata(cover.msg.body);
  const fromFirst = metadata(first.msg.body);
  const prereqs = fromCover !== null && fromCover.prereqs.length > 0 ? fromCover.prereqs : fromFirst.prereqs;

  return {
    title: head.subj.title,
    version,
    total,
    isRfc: (cover?.subj.isRfc ?? false) || patches.some((p) => p.subject.isRfc),
    cover: cover?.msg ?? null,
    patches,
    baseCommit: fromCover?.baseCommit ?? fromFirst.baseCommit,
    changeId: fromCover?.changeId ?? fromFirst.changeId,
    prerequisitePatchIds: [...new Set(prereqs)],
    treeTags: [...new Set(head.subj.treeTags)],
    rootMessageId: head.msg.messageId,
    problems,
  };
}

/** What `git am -3 --patch-format=mboxrd` gets: the patches, in order, without the cover letter. */
export function seriesMbox(series: Series): string {
  return toMboxrd(series.patches.map((p) => p.message));
}

/** Every path the series' patches touch (old and new names), sorted, without repeats. */
export function seriesPaths(series: Series): string[] {
  const paths = new Set<string>();
  for (const p of series.patches) {
    for (const f of p.files) {
      if (f.oldPath !== null) paths.add(f.oldPath);
      if (f.newPath !== null) paths.add(f.newPath);
    }
  }
  return [...paths].sort();
}

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

function sameTrailer(a: Trailer, b: Trailer): boolean {
  return a.name.toLowerCase() === b.name.toLowerCase() && a.value.replace(/\s+/g, ' ') === b.value.replace(/\s+/g, ' ');
}

function addTrailer(list: Trailer[], t: Trailer): boolean {
  if (list.some((x) => sameTrailer(x, t))) return false;
  list.push(t);
  return true;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * Assembles one series from messages. Throws PatchbayError:
 * SERIES_NO_PATCHES, SERIES_INCOMPLETE, SERIES_NO_DIFF, PATCH_BINARY,
 * PATCH_PATH_ESCAPES.
 */
export function assembleSeries(messages: readonly MailMessage[], opts: { version?: number } = {}): Series {
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
  const version = opts.version ?? Math.max(...versions);
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
    let target: Node | undefined;
    const seen = new Set<string>([node.msg.messageId]);
    let cursor: Node = node;
    for (;;) {
      const parentIds: string[] =
        cursor.msg.inReplyTo !== null ? [cursor.msg.inReplyTo] : [...cursor.msg.references].reverse();
      let parent: Node | undefined;
      for (const id of parentIds) {
        if (seen.has(id)) continue;
        parent = byId.get(id);
        if (parent !== undefined) break;
      }
      if (parent === undefined) break;
      seen.add(parent.msg.messageId);
      if (parent.kind !== 'reply') {
        target = parent;
        break;
      }
      cursor = parent;
    }
    let receivers: SeriesPatch[] = [];
    if (target !== undefined && target.msg.messageId === coverId) receivers = patches;
    else if (target !== undefined) {
      const p = patchById.get(target.msg.messageId);
      if (p !== undefined) receivers = [p];
    }
    if (receivers.length === 0) {
      ignoredReplies++;
      continue;
    }
    let added = false;
    for (const t of trailers) {
      const email = trailerEmail(t.value);
      const lower = t.name.toLowerCase();
      const personal = lower.endsWith('-by') && email !== null;
      if (personal && email !== node.msg.from.email.toLowerCase()) {
        const name = t.value.replace(/<[^>]*>/, '').trim().toLowerCase();
        if (name === '' || name !== node.msg.from.name.toLowerCase()) {
          problems.push(
            `ignored "${t.name}: ${t.value}" in a reply from ${node.msg.from.email || 'an unknown sender'}: it names someone else`,
          );
          continue;
        }
      }
      for (const p of receivers) if (addTrailer(p.trailers, t)) added = true;
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

/**
 * Step 4: whether a revision has every patch 1..N, which message stands for
 * each, and which is its cover letter; a partial reroll takes what it did
 * not resend from the revision before it (b4's LoreMailbox.partial_reroll).
 */
import {
  SERIES_MAX_REROLL_CHAIN,
  SERIES_MAX_REROLL_DEPTH,
  type Completeness,
  type MessageNode,
  type PatchChoice,
  type Revision,
} from './model.ts';
import { counters, describe, later } from './util.ts';

/** A revision on its own: one message per counter, what is missing, its cover letter. */
function ownView(revision: Revision): Completeness {
  const problems: string[] = [];
  const version = revision.version;
  // One message per counter; duplicates: one with a diff first, then the later one.
  const chosen = new Map<number, MessageNode>();
  const aliases = new Map<string, number>();
  let total = 0;
  const totals = new Set<number>();
  for (const node of revision.patches) {
    total = Math.max(total, node.total);
    totals.add(node.total);
    aliases.set(node.msg.messageId, node.counter);
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
  if (total === 0) total = revision.head.total; // a cover letter and no patch yet

  // The cover letter: 0/N of this revision, else (b4's get_series) the
  // message a patch replies to when it has no diff and looks like one.
  let cover: MessageNode | null = null;
  for (const node of revision.covers) {
    if (cover !== null) {
      const keep = later(cover, node);
      problems.push(`more than one v${version} cover letter; took ${describe(keep)}`);
      cover = keep;
    } else {
      cover = node;
    }
  }
  const patches: PatchChoice[] = [];
  const missing: number[] = [];
  for (let c = 1; c <= total; c++) {
    const node = chosen.get(c);
    if (node === undefined) missing.push(c);
    else patches.push({ counter: c, node, fromVersion: node.version });
  }
  if (cover === null && revision.nakedCovers.length > 0) {
    const naked = new Set(revision.nakedCovers);
    for (const p of patches) {
      const parent = p.node.msg.inReplyTo === null ? null : p.node.parent;
      if (parent !== null && naked.has(parent)) {
        cover = parent;
        break;
      }
    }
  }
  const first = chosen.get(1) ?? patches[0]?.node;
  return {
    revision,
    version,
    total,
    patches,
    present: patches.map((p) => p.counter),
    missing,
    complete: missing.length === 0 && patches.length > 0,
    cover,
    head: cover ?? first ?? revision.head,
    rerollFrom: null,
    evidence: [],
    aliases,
    problems,
    mails: revision.patches.length,
    largest: revision.patches.reduce((m, n) => Math.max(m, n.total), 0),
  };
}

/**
 * What a message answers when it is a reply: up its thread to the first
 * message that is not (added to `path`, with the replies on the way).
 */
function answered(node: MessageNode, path: MessageNode[]): MessageNode | null {
  const seen = new Set<MessageNode>();
  let cursor: MessageNode | null = node;
  while (cursor !== null && cursor.kind === 'reply' && !seen.has(cursor) && seen.size < SERIES_MAX_REROLL_DEPTH) {
    seen.add(cursor);
    cursor = cursor.parent;
    if (cursor !== null) path.push(cursor);
  }
  return cursor !== null && cursor.kind !== 'reply' ? cursor : null;
}

/**
 * b4's partial_reroll test: the revision is v2 or later, and every patch it
 * has was sent in reply (In-Reply-To) to the older patch with its counter and
 * N, or to a reply under it; here that older patch must also be of the
 * revision just before (b4's revision - 1) of the thread it hangs from.
 * Returns that revision and the messages that tie them, or null.
 */
function rerollSource(view: Completeness): { from: Revision; evidence: MessageNode[] } | null {
  const revision = view.revision;
  const from = revision.repliesTo;
  if (view.complete || from === null || from.version !== revision.version - 1 || from.patches.length === 0) return null;
  if (view.patches.length === 0) return null;
  const older = new Set<MessageNode>([...from.patches, ...from.covers]);
  const evidence: MessageNode[] = [];
  for (const { node } of view.patches) {
    if (node.msg.inReplyTo === null || node.parent === null) return null;
    let match: MessageNode | null = null;
    const seen = new Set<MessageNode>([node]);
    for (let cursor: MessageNode | null = node.parent; cursor !== null && !seen.has(cursor); ) {
      seen.add(cursor);
      evidence.push(cursor);
      if (cursor.counter === node.counter && Math.max(cursor.total, cursor.counter) === node.total) {
        match = cursor;
        break;
      }
      if (seen.size > SERIES_MAX_REROLL_DEPTH || cursor.msg.inReplyTo === null) break;
      cursor = cursor.parent;
    }
    if (match === null) return null;
    const patch = answered(match, evidence);
    if (patch === null || !older.has(patch)) return null;
  }
  return { from, evidence };
}

/** A partial reroll's view: its own patches, the older revision's for the counters it lacks (b4 copies them over). */
function backfill(view: Completeness, older: Completeness, evidence: MessageNode[]): Completeness {
  const own = new Map(view.patches.map((p) => [p.counter, p]));
  const old = new Map(older.patches.map((p) => [p.counter, p]));
  const patches: PatchChoice[] = [];
  const missing: number[] = [];
  const aliases = new Map(view.aliases);
  for (let c = 1; c <= view.total; c++) {
    const p = own.get(c) ?? old.get(c);
    if (p === undefined) {
      missing.push(c);
      continue;
    }
    patches.push(p);
  }
  // Replies to the older mails of a counter taken over review what was taken.
  for (const [id, c] of older.aliases) if (!own.has(c) && old.has(c) && c <= view.total) aliases.set(id, c);
  const cover = view.cover ?? older.cover;
  const complete = missing.length === 0;
  const byVersion = new Map<number, number[]>();
  for (const p of patches) {
    const list = byVersion.get(p.fromVersion);
    if (list === undefined) byVersion.set(p.fromVersion, [p.counter]);
    else list.push(p.counter);
  }
  const parts = [...byVersion.entries()]
    .sort((a, b) => b[0] - a[0])
    .map(([v, list]) => `${list.length === 1 ? 'patch' : 'patches'} ${counters(list, view.total)} from v${v}`);
  if (view.cover === null && older.cover !== null) parts.push(`the cover letter from v${older.revision.version}`);
  const still = complete ? '' : `; still missing ${counters(missing, view.total)}`;
  return {
    ...view,
    patches,
    present: patches.map((p) => p.counter),
    missing,
    complete,
    cover,
    // b4 names a rebuilt revision after the one it was rebuilt from (but
    // for a cover letter of its own).
    head: view.cover ?? (complete ? older.head : (cover ?? view.head)),
    rerollFrom: older.revision,
    // With the older revision's own messages and what ties its threads
    // together: those alone must make the same revision again.
    evidence: [
      ...new Set([
        ...evidence,
        ...older.evidence,
        ...older.revision.covers,
        ...older.revision.nakedCovers,
        ...older.revision.patches,
        ...older.revision.anchors,
      ]),
    ],
    aliases,
    problems: [
      ...view.problems,
      `v${view.version} is a partial reroll of v${older.version} (b4): ${parts.join('; ')}${still}`,
    ],
  };
}

/**
 * Checks one revision: one message per counter (a duplicate: the one with a
 * diff, then the later one), what is missing, the cover letter; an
 * incomplete v2+ that b4 would call a partial reroll is filled in from the
 * revision before it (which may be one itself, up to
 * SERIES_MAX_REROLL_CHAIN back). Never throws; assembleSeries throws
 * SERIES_INCOMPLETE on what it reports missing.
 */
export function checkCompleteness(revision: Revision): Completeness {
  const views: Completeness[] = [ownView(revision)];
  const evidence: MessageNode[][] = [];
  const seen = new Set<Revision>([revision]);
  while (views.length < SERIES_MAX_REROLL_CHAIN) {
    const last = views[views.length - 1];
    if (last === undefined) break;
    const source = rerollSource(last);
    if (source === null || seen.has(source.from)) break;
    seen.add(source.from);
    views.push(ownView(source.from));
    evidence.push(source.evidence);
  }
  let result = views[views.length - 1];
  for (let i = views.length - 2; i >= 0; i--) {
    const view = views[i];
    if (view === undefined || result === undefined) break;
    result = backfill(view, result, evidence[i] ?? []);
  }
  if (result === undefined) throw new Error('unreachable: a revision has a view');
  return result;
}

/**
 * Step 2: which revision of which series each patch and cover letter
 * belongs to. b4 (LoreMailbox.add_message) keys a pile by revision number
 * alone, for it reads one thread; a watcher's pile holds several series, so
 * here a revision is a version AND a series:
 *
 * - A patch hangs from the message it replies to when that is a cover
 *   letter of its revision (0/N, or without 0/N: a diffstat and no diff, or
 *   the author's own thread root, as b4's get_series finds one), or a patch
 *   of its revision with a lower counter (git send-email's shallow and deep
 *   threading). A cover letter hangs from nothing, and neither does a patch
 *   without N/M (b4's get_strict_thread: a standalone patch posted in
 *   someone else's thread is its own series).
 * - A thread that starts with a cover letter or patch 1 is a revision of
 *   the series seriesIdentity names (change-id:, else title and author);
 *   two such threads with the same version and identity are one revision
 *   (a RESEND as a new thread).
 * - A thread that starts elsewhere (patch 3/5 alone) joins the revision of
 *   the same version it was sent in reply to; sent in reply to another
 *   revision (b4's partial reroll: "[PATCH v2 3/5]" in reply to v1's 3/5),
 *   the revision of its version that hangs from that one, or has its
 *   identity, else a revision of its own; sent in reply to a message not
 *   here (a cover letter not fetched), the revision of its version sent in
 *   reply to the same one, else one of its own; not threaded at all (git
 *   send-email --no-thread, b4 am's output), the revision of its version
 *   from the same author (then with the same N), else one per version.
 */
import { SERIES_MAX_REROLL_CHAIN, SERIES_MAX_REROLL_DEPTH, type MessageNode, type Revision } from './model.ts';
import { identityOf, metadata } from './util.ts';

interface Cluster {
  top: MessageNode;
  version: number;
  members: MessageNode[];
  rooted: boolean;
  /** The cluster its top was sent in reply to (through replies), if another. */
  above: Cluster | null;
  /** The messages from its top's parent up to the member it hangs from (that one included). */
  path: MessageNode[];
  group: Group | null;
}

interface Group {
  key: string;
  version: number;
  identity: string | null;
  clusters: Cluster[];
  repliesTo: Cluster | null;
  /** Threads sent in reply to an older revision, no cover letter or patch 1 of their own (a partial reroll). */
  reroll: boolean;
  order: number;
}

/** Messages by date (undated last), then by Message-ID: an order whatever order the pile has. */
function byDate(a: MessageNode, b: MessageNode): number {
  const x = a.msg.date?.getTime() ?? Infinity;
  const y = b.msg.date?.getTime() ?? Infinity;
  if (x !== y) return x < y ? -1 : 1;
  return a.msg.messageId < b.msg.messageId ? -1 : a.msg.messageId > b.msg.messageId ? 1 : 0;
}

/** The earliest of some messages (byDate). */
function earliest(nodes: readonly MessageNode[]): MessageNode | undefined {
  let best: MessageNode | undefined;
  for (const n of nodes) if (best === undefined || byDate(n, best) < 0) best = n;
  return best;
}

function sameEmail(a: MessageNode, b: MessageNode): boolean {
  return a.msg.from.email.toLowerCase() === b.msg.from.email.toLowerCase();
}

/** b4's test for a cover letter without 0/N: no diff, and a diffstat or the author's own thread root. */
function nakedCoverFor(patch: MessageNode, parent: MessageNode): boolean {
  return (
    parent.kind === 'other' &&
    parent.files.length === 0 &&
    (parent.version === patch.version || parent.versionInferred) &&
    (parent.hasDiffstat || (parent.msg.inReplyTo === null && sameEmail(parent, patch)))
  );
}

/** The message a patch hangs from in its revision's thread, or null. */
function linkOf(node: MessageNode): MessageNode | null {
  const p = node.parent;
  if (node.kind !== 'patch' || node.counterInferred || p === null) return null;
  if (p.kind === 'cover' && p.version === node.version) return p;
  if (p.kind === 'patch' && p.version === node.version && p.counter < node.counter) return p;
  if (nakedCoverFor(node, p)) return p;
  return null;
}

/** The change-id: a cluster names (its top's, else its patch 1's), and its identity key. */
function clusterIdentity(c: Cluster): string {
  let changeId = metadata(c.top.msg.body).changeId;
  if (changeId === null) {
    const first = c.members.find((m) => m.kind === 'patch' && m.counter === 1);
    if (first !== undefined) changeId = metadata(first.msg.body).changeId;
  }
  return identityOf(changeId, c.top.subj.title, c.top.msg.from.email);
}

/**
 * Every revision in the pile (of every series; with a cover letter and no
 * patch yet too), in the order their first message comes. Time linear in
 * the number of messages.
 */
export function groupRevisions(nodes: readonly MessageNode[]): Revision[] {
  const order = new Map<MessageNode, number>();
  nodes.forEach((n, i) => order.set(n, i));

  // Members and their links.
  const link = new Map<MessageNode, MessageNode | null>();
  const members = new Set<MessageNode>();
  for (const n of nodes) {
    if (n.kind !== 'patch' && n.kind !== 'cover') continue;
    members.add(n);
    const up = linkOf(n);
    link.set(n, up);
    if (up !== null) members.add(up);
  }

  // Each member's thread top: links only go to a lower counter or a cover
  // letter (which links to nothing), so every walk ends.
  const topOf = new Map<MessageNode, MessageNode>();
  const top = (n: MessageNode): MessageNode => {
    const path: MessageNode[] = [];
    let cursor = n;
    let found: MessageNode | undefined;
    for (;;) {
      found = topOf.get(cursor);
      if (found !== undefined) break;
      path.push(cursor);
      const up = link.get(cursor) ?? null;
      if (up === null) {
        found = cursor;
        break;
      }
      cursor = up;
    }
    for (const p of path) topOf.set(p, found);
    return found;
  };

  const clusters = new Map<MessageNode, Cluster>();
  const list: Cluster[] = [];
  for (const n of nodes) {
    if (!members.has(n)) continue;
    const t = top(n);
    let c = clusters.get(t);
    if (c === undefined) {
      c = { top: t, version: t.version, members: [], rooted: false, above: null, path: [], group: null };
      clusters.set(t, c);
      list.push(c);
    }
    c.members.push(n);
  }
  for (const c of list) {
    const t = c.top;
    if (t.kind === 'other') {
      // A naked cover letter without a version takes its patches'.
      const patch = c.members.find((m) => m.kind === 'patch');
      if (t.versionInferred && patch !== undefined) c.version = patch.version;
    }
    c.rooted = t.kind === 'cover' || t.kind === 'other' || t.counter === 1;
  }

  // The member a message's thread leads up to (itself excluded), through
  // replies and other messages; remembered for every message on the way.
  const memberAbove = new Map<MessageNode, MessageNode | null>();
  const nearestMember = (n: MessageNode): MessageNode | null => {
    const path: MessageNode[] = [];
    const seen = new Set<MessageNode>([n]);
    let answer: MessageNode | null = null;
    for (let cursor = n.parent; cursor !== null && !seen.has(cursor); cursor = cursor.parent) {
      if (members.has(cursor)) {
        answer = cursor;
        break;
      }
      const known = memberAbove.get(cursor);
      if (known !== undefined) {
        answer = known;
        break;
      }
      seen.add(cursor);
      path.push(cursor);
    }
    for (const p of path) memberAbove.set(p, answer);
    return answer;
  };
  const clusterOf = (m: MessageNode): Cluster | undefined => clusters.get(top(m));
  for (const c of list) {
    const a = nearestMember(c.top);
    if (a === null) continue;
    const k = clusterOf(a);
    if (k === undefined || k === c) continue;
    c.above = k;
    for (let cursor = c.top.parent; cursor !== null && c.path.length < SERIES_MAX_REROLL_DEPTH; cursor = cursor.parent) {
      c.path.push(cursor);
      if (cursor === a) break;
    }
    if (!c.path.includes(a)) c.path.push(a);
    // And up the links from there to that thread's top.
    for (let up = link.get(a) ?? null; up !== null && c.path.length < 2 * SERIES_MAX_REROLL_DEPTH; up = link.get(up) ?? null) c.path.push(up);
  }
  /**
   * A thread's path up, and the paths of the threads it hangs from, with the
   * messages the revisions it hangs from are named after (their identity
   * decides where a thread of another version goes); bounded.
   */
  const anchorsOf = (c: Cluster): MessageNode[] => {
    const out: MessageNode[] = [];
    const seen = new Set<Cluster>();
    for (
      let cursor: Cluster | null = c;
      cursor !== null && !seen.has(cursor) && seen.size < SERIES_MAX_REROLL_CHAIN && out.length < SERIES_MAX_REROLL_DEPTH;
      cursor = cursor.above
    ) {
      seen.add(cursor);
      out.push(...cursor.path);
      const named = earliest((cursor.above?.group?.clusters ?? []).filter((k) => k.rooted).map((k) => k.top));
      if (named !== undefined) {
        out.push(named);
        const first = earliest((clusters.get(named)?.members ?? []).filter((m) => m.kind === 'patch' && m.counter === 1));
        if (first !== undefined) out.push(first);
      }
    }
    return out;
  };

  // Rooted threads: one revision per version and identity.
  const groups: Group[] = [];
  const byKey = new Map<string, Group>();
  /** The rooted revision of a version that hangs from a cluster, by cluster. */
  const hanging = new Map<Cluster, Map<number, Group>>();
  const newGroup = (key: string, version: number, identity: string | null, first: Cluster): Group => {
    const g: Group = { key, version, identity, clusters: [], repliesTo: null, reroll: false, order: order.get(first.top) ?? 0 };
    groups.push(g);
    byKey.set(key, g);
    return g;
  };
  // Threads taken in date order (then by Message-ID), not the pile's, so
  // that ties go the same way whatever order the pile has; cover letters
  // first. A patch 1 sent without any threading (git send-email
  // --no-thread) joins a cover letter no patch replies to, of its version,
  // author and N.
  const notThreaded = (n: MessageNode): boolean => n.msg.inReplyTo === null && n.msg.references.length === 0;
  const loose = (c: Cluster): string => `${c.version}\0${c.top.msg.from.email.toLowerCase()}\0${c.top.total}`;
  const sorted = [...list].sort((a, b) => byDate(a.top, b.top));
  const looseCovers = new Map<string, Group>();
  for (const c of [...sorted.filter((k) => k.top.kind !== 'patch'), ...sorted.filter((k) => k.top.kind === 'patch')]) {
    if (!c.rooted) continue;
    let g = c.top.kind === 'patch' && notThreaded(c.top) ? looseCovers.get(loose(c)) : undefined;
    if (g === undefined) {
      const identity = clusterIdentity(c);
      const key = `v${c.version} ${identity}`;
      g = byKey.get(key) ?? newGroup(key, c.version, identity, c);
      // (A cover letter no patch replies to: every cover letter starts a thread.)
      if (c.top.kind !== 'patch' && c.members.length === 1 && !looseCovers.has(loose(c))) looseCovers.set(loose(c), g);
    }
    g.clusters.push(c);
    c.group = g;
    if (c.above !== null && c.above.version !== c.version) {
      const byVersion = hanging.get(c.above) ?? new Map<number, Group>();
      if (!byVersion.has(c.version)) byVersion.set(c.version, g);
      hanging.set(c.above, byVersion);
      g.repliesTo ??= c.above;
    }
  }

  // Threads that start past patch 1 (or 0/N) and hang from no revision
  // here. One sent in reply to something (a cover letter not fetched, a
  // patch lost) joins the rooted revision of its version sent in reply to
  // the same message, else one of its own for that message: never another
  // series of its author's (its own is incomplete anyway, and a watcher's
  // pile may hold both). One without any In-Reply-To or References (git
  // send-email --no-thread, b4 am's output, where each patch has its
  // author's From:) joins the rooted revision of its version by author and
  // N, author, N, or version alone, else one per version. The earliest
  // first. A thread is named by its root (the first of References), else
  // by In-Reply-To.
  const threadKey = (n: MessageNode): string | null => n.msg.references[0] ?? n.msg.inReplyTo;
  const rootedBy = new Map<string, Group>();
  for (const c of sorted) {
    const g = c.group;
    if (g === null) continue;
    const t = c.top;
    const email = t.msg.from.email.toLowerCase();
    const thread = threadKey(t);
    const keys = [`${g.version}\0${email}\0${t.total}`, `${g.version}\0${email}`, `${g.version}\0\0${t.total}`, `${g.version}`];
    if (thread !== null) keys.push(`${g.version}\0thread\0${thread}`);
    for (const key of keys) if (!rootedBy.has(key)) rootedBy.set(key, g);
  }
  const unplaced = (c: Cluster): Group => {
    const email = c.top.msg.from.email.toLowerCase();
    const v = c.version;
    const thread = threadKey(c.top);
    const keys =
      thread === null
        ? [`${v}\0${email}\0${c.top.total}`, `${v}\0${email}`, `${v}\0\0${c.top.total}`, `${v}`]
        : [`${v}\0thread\0${thread}`];
    for (const key of keys) {
      const g = rootedBy.get(key);
      if (g !== undefined) return g;
    }
    const key = thread === null ? `v${v} (not threaded)` : `v${v} (in reply to ${thread})`;
    return byKey.get(key) ?? newGroup(key, v, null, c);
  };
  const place = (c: Cluster, k: Cluster): Group => {
    const kg = k.group;
    if (kg === null) return unplaced(c);
    if (k.version === c.version) return kg;
    // Sent in reply to another revision: the revision of this version that
    // hangs from the same one, or has its identity, else one of its own.
    const hangs = hanging.get(k)?.get(c.version);
    if (hangs !== undefined) return hangs;
    if (kg.identity !== null) {
      const same = byKey.get(`v${c.version} ${kg.identity}`);
      if (same !== undefined) {
        same.repliesTo ??= k;
        return same;
      }
    }
    const key = `v${c.version} reroll of ${kg.key}`;
    const g = byKey.get(key) ?? newGroup(key, c.version, null, c);
    g.repliesTo ??= k;
    g.reroll = true;
    return g;
  };
  // Placed after what they hang from, with an explicit stack (a chain of
  // them may be long); a loop of them (forged References) is read as
  // hanging from nothing.
  const onStack = new Set<Cluster>();
  for (const start of sorted) {
    if (start.group !== null) continue;
    const stack: Cluster[] = [start];
    onStack.add(start);
    while (stack.length > 0) {
      const c = stack[stack.length - 1];
      if (c === undefined) break;
      const k = c.above;
      if (k !== null && k.group === null && !onStack.has(k)) {
        stack.push(k);
        onStack.add(k);
        continue;
      }
      const g = k === null || k.group === null ? unplaced(c) : place(c, k);
      g.clusters.push(c);
      c.group = g;
      stack.pop();
      onStack.delete(c);
    }
  }

  // A reroll's threads join the rooted revision of their version that hangs
  // from the same older revision (known only now that every thread has one).
  const rootedHanging = new Map<Group, Map<number, Group>>();
  for (const g of groups) {
    const from = g.repliesTo?.group;
    if (g.reroll || g.identity === null || from === undefined || from === null || from === g) continue;
    const byVersion = rootedHanging.get(from) ?? new Map<number, Group>();
    if (!byVersion.has(g.version)) byVersion.set(g.version, g);
    rootedHanging.set(from, byVersion);
  }
  const merged = new Set<Group>();
  for (const b of groups) {
    const from = b.repliesTo?.group;
    if (!b.reroll || from === undefined || from === null) continue;
    const into = rootedHanging.get(from)?.get(b.version);
    if (into === undefined || into === b) continue;
    for (const c of b.clusters) {
      c.group = into;
      into.clusters.push(c);
    }
    merged.add(b);
  }
  if (merged.size > 0) groups.splice(0, groups.length, ...groups.filter((g) => !merged.has(g)));

  groups.sort((a, b) => a.order - b.order);
  const revisions = new Map<Group, Revision>();
  for (const g of groups) {
    const all = g.clusters.flatMap((c) => c.members).sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0));
    const own = new Set(all);
    let head = earliest(g.clusters.filter((c) => c.rooted).map((c) => c.top));
    if (head === undefined) {
      for (const m of all) if (m.kind === 'patch' && (head === undefined || m.counter < head.counter)) head = m;
    }
    if (head === undefined) continue;
    revisions.set(g, {
      version: g.version,
      key: g.key,
      head,
      isThreadRoot: head.parent === null,
      covers: all.filter((m) => m.kind === 'cover'),
      nakedCovers: all.filter((m) => m.kind === 'other'),
      patches: all.filter((m) => m.kind === 'patch'),
      anchors: [...new Set(g.clusters.flatMap(anchorsOf))].filter((n) => !own.has(n)),
      repliesTo: null,
    });
  }
  for (const [g, r] of revisions) {
    const from = g.repliesTo?.group;
    r.repliesTo = from === undefined || from === null || from === g ? null : (revisions.get(from) ?? null);
  }
  return [...revisions.values()];
}

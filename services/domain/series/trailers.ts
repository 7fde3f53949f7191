/**
 * Step 5: the trailers replies give (b4's get_series, its follow-ups loop):
 * each reply is walked up its thread to the patch or cover letter it
 * answers; a reply to the cover letter gives its trailers to every patch; a
 * reply to a patch of another revision gives its trailers to the patch that
 * makes the same change (b4's trailer_map, "carry over trailers from
 * previous series if patch/metadata did not change"); a person trailer
 * counts only from that person.
 */
import { parseFollowupTrailers, patchId, trailerEmail, type Trailer } from '../patch.ts';
import { SERIES_MAX_REPLY_TRAILERS, type MessageNode, type SeriesPatch } from './model.ts';
import { byId, plural } from './util.ts';

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

/**
 * What each reply answers: the first message up its thread (through other
 * replies) that is not a reply. Remembered for every reply on the way, so a
 * thread of n replies costs n steps, not n². A thread that loops (only
 * forged References do) answers nothing.
 */
export function replyTargets(): (reply: MessageNode) => MessageNode | undefined {
  const answers = new Map<MessageNode, MessageNode | null>();
  return (reply) => {
    const path: MessageNode[] = [];
    const onPath = new Set<MessageNode>();
    let answer: MessageNode | null = null;
    for (let cursor: MessageNode = reply; ; ) {
      const known = answers.get(cursor);
      if (known !== undefined) {
        answer = known;
        break;
      }
      path.push(cursor);
      onPath.add(cursor);
      const parent = cursor.parent;
      if (parent === null || onPath.has(parent)) break;
      if (parent.kind !== 'reply') {
        answer = parent;
        break;
      }
      cursor = parent;
    }
    for (const n of path) answers.set(n, answer);
    return answer ?? undefined;
  };
}

export interface GatheredTrailers {
  /** Per patch, in the order given: its own trailers, then those replies added. */
  trailers: Trailer[][];
  problems: string[];
}

/**
 * The trailers of each patch once replies are read: its own first, then
 * each reply's in the order they were sent (the same whatever order the
 * mbox holds them in), without repeats, at most SERIES_MAX_REPLY_TRAILERS
 * from replies. `aliases` maps the Message-ID of every mail that stands for
 * a counter (a duplicate not taken, a reroll's older patch) to it. A reply
 * to any other patch mail in the pile (an older revision's) counts for the
 * patches whose diff is the same change (patchId: git patch-id --stable's
 * view, which b4 compares by). Time linear in the replies, their trailers
 * and the patches' size (but for sorting the replies by date).
 */
export function gatherTrailers(
  nodes: readonly MessageNode[],
  patches: readonly SeriesPatch[],
  opts: { coverId: string | null; total: number; aliases?: ReadonlyMap<string, number> },
): GatheredTrailers {
  const problems: string[] = [];
  const lists = patches.map((p) => [...p.trailers]);
  const index = new Map<string, number>();
  const byCounter = new Map<number, number>();
  patches.forEach((p, i) => {
    index.set(p.message.messageId, i);
    if (!byCounter.has(p.counter)) byCounter.set(p.counter, i);
  });
  // A reply to a duplicate we did not take still reviews the same patch.
  for (const [id, counter] of opts.aliases ?? []) {
    const i = byCounter.get(counter);
    if (i !== undefined) index.set(id, i);
  }

  // Trailers given to each patch, by key, and how many came from replies.
  const keys = lists.map((list) => new Set(list.map(trailerKey)));
  const fromReplies = lists.map(() => 0);
  const full = new Set<number>();
  /** Adds t to patch i unless it has it or is full; true when added. */
  const give = (i: number, t: Trailer, key: string): boolean => {
    const have = keys[i];
    const list = lists[i];
    if (have === undefined || list === undefined || have.has(key) || full.has(i)) return false;
    const n = fromReplies[i] ?? 0;
    if (n >= SERIES_MAX_REPLY_TRAILERS) {
      full.add(i);
      problems.push(`patch ${patches[i]?.counter ?? 0}/${opts.total} got more than ${SERIES_MAX_REPLY_TRAILERS} trailers from replies; the rest were ignored`);
      return false;
    }
    have.add(key);
    fromReplies[i] = n + 1;
    list.push(t);
    return true;
  };
  // A reply to the cover letter gives its trailers to every patch: a key
  // given once is in every patch (or the patch is full), and the patches
  // still open are kept in a list, so that each key costs one pass.
  const givenToAll = new Set<string>();
  let open = lists.map((_, i) => i);

  const answerOf = replyTargets();
  // The patches of this series by the change they make, computed once, the
  // first time a reply answers a patch mail that is not one of them.
  let byChange: Map<string, number[]> | null = null;
  const changeOf = new Map<MessageNode, number[]>();
  const sameChange = (target: MessageNode): number[] => {
    if (target.kind !== 'patch' || target.files.length === 0) return [];
    if (byChange === null) {
      byChange = new Map();
      patches.forEach((p, i) => {
        const id = patchId(p.message.body);
        if (id === null || byChange === null) return;
        const list = byChange.get(id);
        if (list === undefined) byChange.set(id, [i]);
        else list.push(i);
      });
    }
    let found = changeOf.get(target);
    if (found === undefined) {
      const id = patchId(target.msg.body);
      found = id === null ? [] : (byChange.get(id) ?? []);
      changeOf.set(target, found);
    }
    return found;
  };
  const replies = nodes
    .filter((n) => n.kind === 'reply')
    .sort(
      (a, b) =>
        (a.msg.date?.getTime() ?? Infinity) - (b.msg.date?.getTime() ?? Infinity) || byId(a.msg.messageId, b.msg.messageId),
    );
  let ignoredReplies = 0;
  for (const node of replies) {
    const trailers = parseFollowupTrailers(node.msg.body);
    if (trailers.length === 0) {
      ignoredReplies++;
      continue;
    }
    const target = answerOf(node);
    const toAll = target !== undefined && target.msg.messageId === opts.coverId;
    const own = target === undefined || toAll ? undefined : index.get(target.msg.messageId);
    // Else a review of the same change in another revision: b4 carries it over.
    const to = own !== undefined ? [own] : target !== undefined && !toAll ? sameChange(target) : [];
    if (!toAll && to.length === 0) {
      ignoredReplies++;
      continue;
    }
    let added = false;
    for (const t of trailers) {
      const email = trailerEmail(t.value);
      const personal = t.name.toLowerCase().endsWith('-by') && email !== null;
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
      if (!toAll) {
        for (const i of to) if (give(i, t, key)) added = true;
        continue;
      }
      if (givenToAll.has(key)) continue;
      givenToAll.add(key);
      const wereFull = full.size;
      for (const i of open) if (give(i, t, key)) added = true;
      if (full.size !== wereFull) open = open.filter((i) => !full.has(i));
    }
    if (!added) ignoredReplies++;
  }
  if (ignoredReplies > 0) problems.push(`ignored ${plural(ignoredReplies, 'reply', 'replies')}`);
  return { trailers: lists, problems };
}

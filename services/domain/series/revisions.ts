/**
 * For a watcher that sees a pile of mail (several threads, several series,
 * some of them still arriving): every revision in it, and whether it is
 * complete, by the same steps assembleSeries takes.
 */
import { errorMessage } from '../errors.ts';
import type { MailMessage } from '../mbox.ts';
import { seriesIdentity, refusal, revisionTooLarge, seriesOf, seriesPatches } from './assemble.ts';
import { classifyMessages } from './classify.ts';
import { checkCompleteness } from './complete.ts';
import { groupRevisions } from './group.ts';
import { SERIES_MAX_MESSAGES, type MessageNode, type Revision, type RevisionSummary } from './model.ts';
import { replyTargets } from './trailers.ts';
import { byId, counters, identityOf, metadata, time } from './util.ts';

function newest(nodes: Iterable<MessageNode>): Date | null {
  let best: Date | null = null;
  for (const n of nodes) {
    const d = n.msg.date;
    if (d !== null && (best === null || d.getTime() > best.getTime())) best = d;
  }
  return best;
}

/** A revision that could not be judged: what its head says, complete: false, and why. */
function unjudged(revision: Revision, problem: string): RevisionSummary {
  const head = revision.head;
  const members = [...revision.covers, ...revision.nakedCovers, ...revision.patches];
  return {
    identity: identityOf(metadata(head.msg.body).changeId, head.subj.title, head.msg.from.email),
    version: revision.version,
    isRfc: members.some((m) => m.subj.isRfc),
    isResend: members.some((m) => m.subj.isResend),
    title: head.subj.title,
    author: { name: head.msg.from.name, email: head.msg.from.email },
    rootMessageId: head.msg.messageId,
    total: head.total,
    present: [...new Set(revision.patches.map((p) => p.counter))].sort((a, b) => a - b),
    missing: [],
    complete: false,
    messageIds: members.sort((a, b) => time(a, Infinity) - time(b, Infinity) || byId(a.msg.messageId, b.msg.messageId)).map((m) => m.msg.messageId),
    newestDate: newest(members),
    treeTags: [...new Set(head.subj.treeTags)],
    changeId: metadata(head.msg.body).changeId,
    problem,
  };
}

function summarize(revision: Revision, repliesTo: ReadonlyMap<MessageNode, MessageNode[]>): RevisionSummary {
  const view = checkCompleteness(revision);
  const patches = seriesPatches(view);
  const series = seriesOf(view, patches, []);

  // The messages that make it: its own, the older ones a reroll took (and
  // what ties them), and every reply to any of those.
  const made = new Set<MessageNode>([...revision.covers, ...revision.nakedCovers, ...revision.patches]);
  if (view.cover !== null) made.add(view.cover);
  for (const p of view.patches) made.add(p.node);
  for (const n of view.evidence) made.add(n);
  const all = new Set(made);
  for (const n of made) for (const r of repliesTo.get(n) ?? []) all.add(r);
  // What ties its threads to the revision they were sent in reply to: a
  // subset without them would not group the same way.
  for (const n of revision.anchors) all.add(n);
  const ordered = [...all].sort((a, b) => time(a, Infinity) - time(b, Infinity) || byId(a.msg.messageId, b.msg.messageId));

  const notes: string[] = [];
  const large = revisionTooLarge(view);
  if (large !== null) notes.push(large.message.replace(/\.$/, ''));
  if (view.patches.length === 0) notes.push(`no patches yet: the cover letter says ${view.total}`);
  else if (!view.complete) notes.push(`missing ${view.missing.length === 1 ? 'patch' : 'patches'} ${counters(view.missing, view.total)}`);
  if (view.complete && large === null) {
    const refused = refusal(patches, view.total);
    if (refused !== null) notes.push(refused.message.replace(/\.$/, ''));
  }
  const author = view.cover?.msg.from ?? view.head.msg.from;
  return {
    identity: seriesIdentity(series),
    version: series.version,
    isRfc: series.isRfc,
    isResend: series.isResend,
    title: series.title,
    author: { name: author.name, email: author.email },
    rootMessageId: view.patches.length === 0 ? view.head.msg.messageId : series.rootMessageId,
    total: view.total,
    present: view.present,
    missing: view.missing,
    complete: view.complete && large === null,
    messageIds: ordered.map((n) => n.msg.messageId),
    newestDate: newest(ordered),
    treeTags: series.treeTags,
    changeId: series.changeId,
    problem: notes.length === 0 ? null : notes.join('; '),
  };
}

/**
 * Every revision of every series in a pile of messages: whether it is
 * complete (a partial reroll filled in from the revision before it, as
 * assembleSeries does), which counters it has and lacks, and the messages
 * that make it, so that assembleSeries(those messages, { version }) builds
 * it. Ordered by identity, then version, then root Message-ID. Never
 * throws: a revision it cannot judge comes back with complete: false and
 * the reason in `problem`; past SERIES_MAX_MESSAGES messages, the rest are
 * not read (and every revision says so).
 */
export function listRevisions(messages: readonly MailMessage[]): RevisionSummary[] {
  let nodes: MessageNode[];
  let revisions: Revision[];
  try {
    nodes = classifyMessages(messages.slice(0, SERIES_MAX_MESSAGES));
    revisions = groupRevisions(nodes);
  } catch {
    return [];
  }
  const answerOf = replyTargets();
  const repliesTo = new Map<MessageNode, MessageNode[]>();
  for (const n of nodes) {
    if (n.kind !== 'reply') continue;
    const target = answerOf(n);
    if (target === undefined) continue;
    const list = repliesTo.get(target);
    if (list === undefined) repliesTo.set(target, [n]);
    else list.push(n);
  }
  const cut =
    messages.length > SERIES_MAX_MESSAGES ? `the pile holds ${messages.length} messages; only the first ${SERIES_MAX_MESSAGES} were read` : null;
  const out = revisions.map((r) => {
    let s: RevisionSummary;
    try {
      s = summarize(r, repliesTo);
    } catch (e) {
      s = unjudged(r, `could not be judged: ${errorMessage(e)}`);
    }
    if (cut !== null) s.problem = s.problem === null ? cut : `${s.problem}; ${cut}`;
    return s;
  });
  return out.sort(
    (a, b) => byId(a.identity, b.identity) || a.version - b.version || byId(a.rootMessageId, b.rootMessageId),
  );
}

/**
 * Step 1: what each message of a pile is (b4's LoreMessage and the first
 * part of LoreMailbox.add_message): a patch, a cover letter, a reply, or
 * something else, with its revision, counter and total.
 */
import type { MailMessage } from '../mbox.ts';
import { diffFiles, parseFollowupTrailers } from '../patch.ts';
import { parseSubject, versionWord } from '../subject.ts';
import type { MessageNode } from './model.ts';

/** b4's DIFFSTAT_RE: " 4 files changed, 91 insertions(+)". */
function hasDiffstat(body: string): boolean {
  return /^ *\d+ files? changed, \d+ (?:insertion|deletion)/m.test(body);
}

/** A quoted diff line: "> diff --git ...", "> @@ -1,3 +1,4 @@", "> +++ b/x". */
const QUOTED_DIFF_RE = /^>[> \t]*(?:diff --git |@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@|\+\+\+ [ab]\/)/m;

function classify(msg: MailMessage): MessageNode {
  const subj = parseSubject(msg.subject);
  const files = diffFiles(msg.body);
  const versionInferred = !subj.prefixes.some((p) => versionWord(p) !== null);
  const base = {
    msg,
    subj,
    files,
    version: subj.version,
    versionInferred,
    counter: subj.counter ?? 1,
    counterInferred: subj.counter === null,
    total: subj.total ?? 1,
    hasDiffstat: hasDiffstat(msg.body),
    parent: null,
  };
  // b4: "Re:" (or any two- or three-letter word and a colon before the
  // brackets) makes a reply, whatever it holds: a review that quotes the
  // whole patch is still a review.
  if (subj.isReply) return { ...base, kind: 'reply' };
  // b4: a reply without "Re:" that gives trailers and carries no diff (not
  // for a "[PATCH ...]" subject here: that is a patch whose diff got lost,
  // refused as such). A "[PATCH ...]" subject without "Re:" on a message
  // that quotes a diff and has none is a review whose client dropped the "Re:".
  const threaded = msg.inReplyTo !== null || msg.references.length > 0;
  if (threaded && files.length === 0) {
    if (!subj.isPatch && parseFollowupTrailers(msg.body).length > 0) return { ...base, kind: 'reply' };
    if (subj.isPatch && QUOTED_DIFF_RE.test(msg.body)) return { ...base, kind: 'reply' };
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

/**
 * Classifies every message once (the same Message-ID twice counts once, the
 * first kept), links each to the message it answers, and gives a patch that
 * names no revision the one of the message it replies to when that is its
 * cover letter (a 0/N one, or one without 0/N that has a diffstat and no
 * diff) or patch 1 (b4's add_message). Time linear in the messages' size.
 */
export function classifyMessages(messages: readonly MailMessage[]): MessageNode[] {
  const byId = new Map<string, MessageNode>();
  const nodes: MessageNode[] = [];
  for (const msg of messages) {
    if (byId.has(msg.messageId)) continue; // the same mail twice (merged search results)
    const node = classify(msg);
    byId.set(msg.messageId, node);
    nodes.push(node);
  }
  for (const node of nodes) {
    const own = node.msg.messageId;
    const irt = node.msg.inReplyTo;
    if (irt !== null) {
      node.parent = irt === own ? null : (byId.get(irt) ?? null);
      continue;
    }
    const refs = node.msg.references;
    for (let k = refs.length - 1; k >= 0; k--) {
      const id = refs[k];
      if (id === undefined || id === own) continue;
      const parent = byId.get(id);
      if (parent !== undefined) {
        node.parent = parent;
        break;
      }
    }
  }
  // Parents first: a patch 2/3 that names no revision, under a patch 1/3
  // that names none, under a "[PATCH v2 0/3]", is v2 (b4 reads them in
  // thread order and fixes each patch's revision as it comes).
  const from = (node: MessageNode): MessageNode | null => {
    if (node.kind !== 'patch' || !node.versionInferred || node.msg.inReplyTo === null) return null;
    const parent = node.parent;
    if (parent === null) return null;
    const cover = parent.kind === 'cover' || (parent.kind === 'other' && parent.files.length === 0 && parent.hasDiffstat);
    return cover || (parent.kind === 'patch' && parent.counter === 1) ? parent : null;
  };
  const done = new Set<MessageNode>();
  for (const node of nodes) {
    const chain: MessageNode[] = [];
    const onChain = new Set<MessageNode>();
    for (let cursor: MessageNode | null = node; cursor !== null && !done.has(cursor) && !onChain.has(cursor); cursor = from(cursor)) {
      chain.push(cursor);
      onChain.add(cursor);
    }
    // Top down; a loop (forged headers) keeps the version its top had.
    for (let i = chain.length - 1; i >= 0; i--) {
      const n = chain[i];
      if (n === undefined) continue;
      const parent = from(n);
      if (parent !== null && (done.has(parent) || !parent.versionInferred)) n.version = parent.version;
      done.add(n);
    }
  }
  return nodes;
}

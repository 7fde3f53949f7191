/**
 * From a pile of mail (a lore thread, an uploaded mbox) to one patch
 * series: classifyMessages, groupRevisions, pickRevision,
 * checkCompleteness, gatherTrailers, then the refusals (no diff, binary,
 * paths outside the tree).
 */
import { PatchbayError } from '../errors.ts';
import { toMboxrd, type MailMessage } from '../mbox.ts';
import { parseTrailers, patchProblems, type PatchProblem } from '../patch.ts';
import { classifyMessages } from './classify.ts';
import { checkCompleteness } from './complete.ts';
import { groupRevisions } from './group.ts';
import {
  SERIES_MAX_MESSAGES,
  SERIES_MAX_PATCHES,
  type Completeness,
  type MessageNode,
  type Series,
  type SeriesPatch,
} from './model.ts';
import { pickRevision } from './pick.ts';
import { gatherTrailers } from './trailers.ts';
import { counters, describe, identityOf, metadata, plural } from './util.ts';

function tooLarge(message: string, details: Record<string, unknown>): PatchbayError {
  return new PatchbayError('SERIES_TOO_LARGE', message, { details });
}

/**
 * What v1, v2, v3 ... of one series share: "change-id:<id>" when the series
 * has one (b4 prep), else "subject:<author's address>:<title>" with the
 * address lower-cased and the title (without its [PATCH ...] prefixes)
 * case-folded and its whitespace runs as one space. The author is the cover
 * letter's sender, else the first patch's. A series whose title changed
 * between revisions and that has no change-id gets another identity (b4's
 * find_threaded_copy looks a series up the same way).
 */
export function seriesIdentity(series: Pick<Series, 'changeId' | 'title' | 'cover' | 'patches'>): string {
  const author = series.cover ?? series.patches[0]?.message ?? null;
  return identityOf(series.changeId, series.title, author?.from.email ?? '');
}

/** SERIES_TOO_LARGE when a revision has more patch mails, or a larger N, than SERIES_MAX_PATCHES; null when it fits. */
export function revisionTooLarge(view: Pick<Completeness, 'version' | 'mails' | 'largest'>): PatchbayError | null {
  const { version, mails, largest } = view;
  if (mails <= SERIES_MAX_PATCHES && largest <= SERIES_MAX_PATCHES) return null;
  return tooLarge(
    mails > SERIES_MAX_PATCHES
      ? `The v${version} series comes in ${mails} patch mails; patchbay takes at most ${SERIES_MAX_PATCHES} patches in a series.`
      : `The v${version} series has ${largest} patches; patchbay takes at most ${SERIES_MAX_PATCHES} patches in a series.`,
    { version, mails, total: largest, limit: SERIES_MAX_PATCHES },
  );
}

/** Why no series is in a pile without patches: a lone patch that lost its diff, or nothing that looks like one. */
function noPatches(nodes: readonly MessageNode[]): PatchbayError {
  const lone = nodes.find((n) => n.kind === 'other' && n.subj.isPatch);
  if (lone !== undefined) {
    return new PatchbayError('SERIES_NO_DIFF', `Patch ${describe(lone)} has no diff.`, {
      details: { counter: 1, subject: lone.msg.subject, path: null, messageId: lone.msg.messageId },
    });
  }
  const replies = nodes.filter((n) => n.kind === 'reply').length;
  return new PatchbayError(
    'SERIES_NO_PATCHES',
    `No patches among ${plural(nodes.length, 'message')} (${plural(replies, 'reply', 'replies')}); a patch mail has a "[PATCH ...]" subject and a diff.`,
    { details: { messages: nodes.length, replies } },
  );
}

/** The refusal of the first patch that must not be applied (no diff, binary content, a path outside the tree), or null. */
export function refusal(patches: readonly SeriesPatch[], total: number): PatchbayError | null {
  const refusals: Array<PatchProblem & { counter: number; subject: string; messageId: string }> = [];
  for (const p of patches) {
    for (const pr of patchProblems(p.files)) {
      refusals.push({ ...pr, counter: p.counter, subject: p.message.subject, messageId: p.message.messageId });
    }
  }
  const first = refusals[0];
  if (first === undefined) return null;
  const where = `Patch ${first.counter}/${total} "${first.subject}"`;
  const code = first.code === 'PATCH_NO_DIFF' ? 'SERIES_NO_DIFF' : first.code;
  const message =
    first.code === 'PATCH_NO_DIFF'
      ? `${where} has no diff.`
      : first.code === 'PATCH_BINARY'
        ? `${where} holds a binary patch for ${first.path ?? '?'}; binary patches are not applied.`
        : `${where} touches a path outside the source tree: ${first.message}.`;
  return new PatchbayError(code, message, {
    details: {
      counter: first.counter,
      subject: first.subject,
      messageId: first.messageId,
      path: first.path ?? null,
      problems: refusals.map((r) => ({ code: r.code, counter: r.counter, path: r.path ?? null, message: r.message })),
    },
  });
}

/** The patches a view takes, with their own trailers. */
export function seriesPatches(view: Completeness): SeriesPatch[] {
  return view.patches.map(({ counter, node }) => ({
    counter,
    message: node.msg,
    subject: node.subj,
    files: node.files,
    trailers: parseTrailers(node.msg.body),
  }));
}

/** The Series a complete view makes, its trailers not yet gathered. */
export function seriesOf(view: Completeness, patches: SeriesPatch[], problems: string[]): Series {
  const cover = view.cover;
  const first = view.patches[0]?.node ?? view.head;
  const head = view.head;
  const fromCover = cover === null ? null : metadata(cover.msg.body);
  const fromFirst = metadata(first.msg.body);
  const prereqs = fromCover !== null && fromCover.prereqs.length > 0 ? fromCover.prereqs : fromFirst.prereqs;
  const series: Series = {
    title: head.subj.title,
    version: view.version,
    total: view.total,
    isRfc: (cover?.subj.isRfc ?? false) || view.patches.some((p) => p.node.subj.isRfc),
    isResend: (cover?.subj.isResend ?? false) || view.patches.some((p) => p.node.subj.isResend),
    identity: '',
    cover: cover?.msg ?? null,
    patches,
    baseCommit: fromCover?.baseCommit ?? fromFirst.baseCommit,
    changeId: fromCover?.changeId ?? fromFirst.changeId,
    prerequisitePatchIds: [...new Set(prereqs)],
    treeTags: [...new Set(head.subj.treeTags)],
    rootMessageId: (cover ?? first).msg.messageId,
    problems,
  };
  series.identity = seriesIdentity(series);
  return series;
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
  const nodes = classifyMessages(messages);
  const revisions = groupRevisions(nodes);
  if (!revisions.some((r) => r.patches.length > 0)) throw noPatches(nodes);
  const picked = pickRevision(revisions, opts);
  const revision = picked.revision;
  const problems = picked.problems;
  const version = revision.version;

  const large = revisionTooLarge({
    version,
    mails: revision.patches.length,
    largest: revision.patches.reduce((m, n) => Math.max(m, n.total), 0),
  });
  if (large !== null) throw large;

  const view = checkCompleteness(revision);
  problems.push(...view.problems);
  if (!view.complete) {
    const firstMail = revision.patches[0];
    const named = revision.covers[0] ?? view.patches.find((p) => p.counter === firstMail?.counter)?.node ?? view.patches[0]?.node;
    const title = named === undefined ? '' : ` "${named.subj.title}"`;
    const { total, missing } = view;
    throw new PatchbayError(
      'SERIES_INCOMPLETE',
      `The v${version} series${title} is incomplete: missing ${missing.length === 1 ? 'patch' : 'patches'} ${counters(missing, total)}.`,
      { details: { version, total, missing, present: view.present } },
    );
  }

  const patches = seriesPatches(view);
  const refused = refusal(patches, view.total);
  if (refused !== null) throw refused;

  const gathered = gatherTrailers(nodes, patches, { coverId: view.cover?.msg.messageId ?? null, total: view.total, aliases: view.aliases });
  patches.forEach((p, i) => {
    p.trailers = gathered.trailers[i] ?? p.trailers;
  });
  problems.push(...gathered.problems);
  const cover = view.cover;
  const strays = nodes.filter((n) => n.kind === 'other' && n !== cover);
  if (strays.length > 0) {
    problems.push(`ignored ${plural(strays.length, 'message')} that ${strays.length === 1 ? 'is' : 'are'} neither patch nor reply: ${strays.map(describe).join(', ')}`);
  }
  return seriesOf(view, patches, problems);
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

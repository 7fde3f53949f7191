/**
 * The prerequisite patches a series names, fetched from the watched inboxes
 * as b4 finds them:
 *
 *   prerequisite-patch-id: <id>   (b4 send writes one per prerequisite
 *       patch) a `patchid:` search (public-inbox indexes `git patch-id
 *       --stable` of every patch it holds); of what it finds, the mail
 *       whose patch git itself gives that id (a reply quoting the patch
 *       gives none), so a search hit is never trusted as it is. Applied in
 *       the order the series lists them, as b4 shazam does.
 *   prerequisite-message-id: <id> (without patch ids) the thread of that
 *       message; the revision it belongs to, complete, assembled by the
 *       series rules; its patches in order.
 *   prerequisite-change-id:      not resolved (b4 expands it into patch ids
 *       when it sends; without them there is no way to name one revision).
 *
 * Each inbox is searched in turn (the series' own first) until all are
 * found. Anything not found is a reason, never a guess: the caller records
 * the series as having no base.
 */
import { isPatchbayError } from '../domain/errors.ts';
import { type MailMessage, parseMbox, toMboxrd } from '../domain/mbox.ts';
import { type Series, assembleSeries, listRevisions, prerequisiteSeries } from '../domain/series.ts';
import { prerequisiteMessageIds } from '../intake/base.ts';
import { type PoliteClient, fetchThread, searchMbox } from './client.ts';

export type PrerequisiteOutcome =
  | { kind: 'none' }
  | { kind: 'found'; prerequisites: Series; mbox: string; detail: string }
  | { kind: 'missing'; reason: string };

export interface PrerequisiteDeps {
  client: PoliteClient;
  /** Where to look, in order (the series' inbox first). */
  inboxes: readonly URL[];
  /** `git patch-id --stable` of each mail as git am reads it (services/intake/mailinfo.ts patchIdsWithGit). */
  patchIds: (mails: readonly MailMessage[]) => Promise<Array<string | null>>;
}

/** Patch ids per `patchid:` search: the query stays short. */
const PATCH_ID_BATCH = 20;
/** The most prerequisite lines followed for one series. */
export const MAX_PREREQUISITES = 100;

const mailsOf = (mbox: string | null): MailMessage[] => {
  if (mbox === null) return [];
  try {
    return parseMbox(mbox);
  } catch {
    return [];
  }
};

/** The `prerequisite-change-id:` lines of the cover letter, else of the first patch. */
function changeIds(series: Series): string[] {
  const read = (body: string): string[] => [...body.matchAll(/^prerequisite-change-id:[ \t]*(\S{1,300})[ \t]*$/gim)].map((m) => m[1] ?? '');
  const fromCover = series.cover === null ? [] : read(series.cover.body);
  const first = series.patches[0];
  return fromCover.length > 0 || first === undefined ? fromCover : read(first.message.body);
}

export async function fetchPrerequisites(series: Series, deps: PrerequisiteDeps): Promise<PrerequisiteOutcome> {
  const patchIds = [...new Set(series.prerequisitePatchIds.map((x) => x.toLowerCase()))].slice(0, MAX_PREREQUISITES);
  if (patchIds.length > 0) return byPatchIds(patchIds, deps);
  const messageIds = prerequisiteMessageIds(series).slice(0, MAX_PREREQUISITES);
  if (messageIds.length > 0) return byMessageIds(messageIds, deps);
  const changes = changeIds(series);
  if (changes.length > 0) {
    return { kind: 'missing', reason: `it names prerequisites only by change-id (${changes.slice(0, 3).join(', ')}), without the prerequisite-patch-id lines b4 adds when it sends; patchbay cannot tell which patches those are` };
  }
  return { kind: 'none' };
}

async function byPatchIds(ids: readonly string[], deps: PrerequisiteDeps): Promise<PrerequisiteOutcome> {
  const found = new Map<string, MailMessage>();
  const searched: string[] = [];
  for (const inbox of deps.inboxes) {
    const wanted = ids.filter((id) => !found.has(id));
    if (wanted.length === 0) break;
    searched.push(inbox.href);
    for (let i = 0; i < wanted.length; i += PATCH_ID_BATCH) {
      const batch = wanted.slice(i, i + PATCH_ID_BATCH);
      const hits = mailsOf(await searchMbox(deps.client, inbox, batch.map((id) => `patchid:${id}`).join(' OR ')));
      if (hits.length === 0) continue;
      const computed = await deps.patchIds(hits);
      hits.forEach((mail, k) => {
        const id = computed[k];
        // The first mail git gives the id: the patch itself, not a later copy.
        if (id !== null && id !== undefined && batch.includes(id) && !found.has(id)) found.set(id, mail);
      });
    }
  }
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length > 0) {
    return { kind: 'missing', reason: `prerequisite patch${missing.length === 1 ? '' : 'es'} not found: no mail in ${searched.join(', ') || 'the watched inboxes'} has git patch-id ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''}` };
  }
  const mails = ids.map((id) => found.get(id)).filter((m): m is MailMessage => m !== undefined);
  return assembled(mails, `${ids.length} prerequisite patch${ids.length === 1 ? '' : 'es'} found by patch-id: ${mails.slice(0, 3).map((m) => `"${m.subject}" <${m.messageId}>`).join(', ')}${mails.length > 3 ? ', …' : ''}`);
}

async function byMessageIds(ids: readonly string[], deps: PrerequisiteDeps): Promise<PrerequisiteOutcome> {
  const mails: MailMessage[] = [];
  const named: string[] = [];
  for (const id of ids) {
    let thread: MailMessage[] = [];
    for (const inbox of deps.inboxes) {
      thread = mailsOf(await fetchThread(deps.client, inbox, id));
      if (thread.length > 0) break;
    }
    if (thread.length === 0) return { kind: 'missing', reason: `prerequisite <${id}> is in none of ${deps.inboxes.map((u) => u.href).join(', ')}` };
    const revision = listRevisions(thread).find((r) => r.messageIds.includes(id) || r.rootMessageId === id);
    if (revision === undefined) return { kind: 'missing', reason: `prerequisite <${id}> is not part of a patch series in its thread` };
    if (!revision.complete) return { kind: 'missing', reason: `prerequisite <${id}>: its series "${revision.title}" v${revision.version} is incomplete` };
    const byId = new Map(thread.map((m) => [m.messageId, m]));
    const own = revision.messageIds.map((m) => byId.get(m)).filter((m): m is MailMessage => m !== undefined);
    let prereq: Series;
    try {
      prereq = assembleSeries(own, { version: revision.version });
    } catch (e) {
      if (!isPatchbayError(e)) throw e;
      return { kind: 'missing', reason: `prerequisite <${id}>: its series cannot be assembled (${e.code}: ${e.message})` };
    }
    mails.push(...prereq.patches.map((p) => p.message));
    named.push(`"${prereq.title}" v${prereq.version} (${prereq.patches.length} patch${prereq.patches.length === 1 ? '' : 'es'})`);
  }
  return assembled(mails, `prerequisite series by Message-ID: ${named.join(', ')}`);
}

function assembled(mails: readonly MailMessage[], detail: string): PrerequisiteOutcome {
  try {
    const prerequisites = prerequisiteSeries(mails);
    return { kind: 'found', prerequisites, mbox: toMboxrd(mails), detail };
  } catch (e) {
    if (!isPatchbayError(e)) throw e;
    return { kind: 'missing', reason: `the prerequisite patches cannot be applied as sent (${e.code}: ${e.message})` };
  }
}

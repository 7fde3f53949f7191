/**
 * From a pile of mail (a lore thread, an uploaded mbox, a watcher's batch)
 * to patch series, following b4's rules: replies only carry trailers, the
 * cover letter is 0/N, the newest revision wins, every patch 1..N must be
 * there, a partial reroll takes the rest from the revision before it. In
 * named steps (services/domain/series/):
 *
 * 1. classifyMessages: patch, cover letter, reply or other; version, counter, total.
 * 2. groupRevisions: every revision of every series in the pile.
 * 3. pickRevision: the newest (or the asked) one.
 * 4. checkCompleteness: one mail per counter, what is missing, the cover letter, partial rerolls.
 * 5. gatherTrailers: what replies add.
 *
 * assembleSeries runs them for one series; listRevisions for every revision in a pile;
 * seriesOfMessage for the revision a Message-ID belongs to.
 */
export {
  SERIES_MAX_MESSAGES,
  SERIES_MAX_PATCHES,
  SERIES_MAX_REPLY_TRAILERS,
  SERIES_MAX_REROLL_CHAIN,
  SERIES_MAX_REROLL_DEPTH,
  type Completeness,
  type MessageNode,
  type NodeKind,
  type PatchChoice,
  type Revision,
  type RevisionSummary,
  type Series,
  type SeriesPatch,
} from './series/model.ts';
export { classifyMessages } from './series/classify.ts';
export { groupRevisions } from './series/group.ts';
export { pickRevision, type PickedRevision } from './series/pick.ts';
export { checkCompleteness } from './series/complete.ts';
export { gatherTrailers, replyTargets, type GatheredTrailers } from './series/trailers.ts';
export { assembleSeries, seriesIdentity, seriesMbox, seriesPaths } from './series/assemble.ts';
export { listRevisions } from './series/revisions.ts';
export { prerequisiteSeries } from './series/prerequisites.ts';
export { prerequisitesFromStoredMail, seriesFromStoredMail } from './series/stored.ts';
export { bareMessageId, seriesOfMessage, type SeriesOfMessage } from './series/message.ts';

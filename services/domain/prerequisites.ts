/**
 * Prerequisite patches (b4's `prerequisite-patch-id:` and
 * `prerequisite-message-id:`), as a job's result records them: patches not
 * yet in the tree that are applied on the base before the series. The base
 * every comparison uses is then the base commit with them applied, so what
 * they change is never blamed on the series.
 */
import { createHash } from 'node:crypto';
import { parseMbox } from './mbox.ts';
import { seriesMbox } from './series/assemble.ts';
import { classifyMessages } from './series/classify.ts';
import type { Series } from './series/model.ts';
import { prerequisiteSeries } from './series/prerequisites.ts';

/** What a job applied on its base before the series. */
export interface PrerequisitesApplied {
  /** In apply order (a cover letter is never applied, so never listed). */
  patches: Array<{ title: string; messageId: string }>;
  /** sha256 (hex) of the patches as applied: the mboxrd `git am` reads (prerequisitesMbox). */
  hash: string;
}

/**
 * The bytes `git am` reads, the same for the base and the series sandbox:
 * the patches as an mboxrd, each character one byte (latin1, as the series).
 */
export function prerequisitesMbox(prerequisites: Series): Buffer {
  return Buffer.from(seriesMbox(prerequisites), 'latin1');
}

export function prerequisitesApplied(prerequisites: Series): PrerequisitesApplied {
  return {
    patches: prerequisites.patches.map((p) => ({ title: p.subject.title, messageId: p.message.messageId })),
    hash: createHash('sha256').update(prerequisitesMbox(prerequisites)).digest('hex'),
  };
}

/**
 * The `baseCommit` part of a base-run cache key (runners/executor/base-runs.ts):
 * the commit alone for a plain base; with prerequisites, the commit and the
 * hash of exactly what was applied on it, so the plain base's runs and those
 * of base + prerequisites (or of other prerequisites) never stand for each other.
 */
export function baseKeyCommit(baseCommit: string, prerequisites: PrerequisitesApplied | null): string {
  return prerequisites === null ? baseCommit : `${baseCommit}+prerequisites:${prerequisites.hash}`;
}

/** "1 prerequisite patch", "2 prerequisite patches". */
export const prerequisitePatches = (n: number): string => `${n} prerequisite patch${n === 1 ? '' : 'es'}`;

/** What the base kernel was, for people: "0dfbac4f4be0", or "0dfbac4f4be0 + 2 prerequisite patches". */
export function describeBase(commit: string, patches: number): string {
  const short = commit.slice(0, 12);
  return patches > 0 ? `${short} + ${prerequisitePatches(patches)}` : short;
}

/**
 * One line on the prerequisites a result records, for the CLI and the job
 * page: null when there were none (older results lack the field: none).
 */
export function prerequisitesLine(prerequisites: PrerequisitesApplied | null | undefined): string | null {
  if (prerequisites === null || prerequisites === undefined || prerequisites.patches.length === 0) return null;
  const shown = prerequisites.patches.slice(0, 5).map((p) => `"${p.title}" <${p.messageId}>`);
  const more = prerequisites.patches.length > shown.length ? `, +${prerequisites.patches.length - shown.length} more` : '';
  return `${prerequisitePatches(prerequisites.patches.length)} on the base before the series (sha256 ${prerequisites.hash.slice(0, 12)}): ${shown.join(', ')}${more}`;
}

/**
 * The prerequisites in an mbox a person gives (`patchbay run --prerequisites
 * FILE`): its patch mails in file order, each one patch whatever its
 * subject's counter says (they may come from several series), numbered 1..N
 * as `git am` counts them (prerequisiteSeries, as the lore watcher reads
 * them). A cover letter, and anything else that is not a patch mail, is left
 * out: it is never applied. Throws PatchbayError as prerequisiteSeries does
 * (SERIES_NO_PATCHES, SERIES_NO_DIFF, PATCH_BINARY, ...).
 */
export function prerequisitesFromMbox(mbox: string): Series {
  return prerequisiteSeries(classifyMessages(parseMbox(mbox)).filter((n) => n.kind === 'patch').map((n) => n.msg));
}

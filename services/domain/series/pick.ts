/**
 * Step 3: which revision a pile stands for. The highest version with a
 * patch (or the one asked for); b4's get_latest_revision takes the latest
 * by its first patch's date instead, which a late RESEND of an old revision
 * would win, so the date only decides between series of one version.
 */
import { PatchbayError } from '../errors.ts';
import type { Revision } from './model.ts';
import { byId, describe, time } from './util.ts';

export interface PickedRevision {
  revision: Revision;
  /** What else the pile holds, for Series.problems. */
  problems: string[];
}

/** Distinct counters a revision's patch mails carry. */
function counted(r: Revision): number {
  return new Set(r.patches.map((p) => p.counter)).size;
}

/** b4's submission_date: the date of the revision's first patch. */
function submitted(r: Revision): number {
  let first = r.patches[0];
  for (const p of r.patches) if (first === undefined || p.counter < first.counter) first = p;
  return first === undefined ? -Infinity : time(first, -Infinity);
}

/**
 * Among the revisions with at least one patch: opts.version, else the
 * highest. Among series of that version: one that starts a thread of its
 * own (not one posted in reply into another's), then the one with more
 * patches, then the newest, then the first by Message-ID. Throws
 * PatchbayError SERIES_NO_PATCHES when no revision fits.
 */
export function pickRevision(revisions: readonly Revision[], opts: { version?: number } = {}): PickedRevision {
  const withPatches = revisions.filter((r) => r.patches.length > 0);
  const versions = [...new Set(withPatches.map((r) => r.version))].sort((a, b) => a - b);
  const version = opts.version ?? versions[versions.length - 1];
  if (version === undefined) {
    throw new PatchbayError('SERIES_NO_PATCHES', 'No patches in the mail.', { details: { versions } });
  }
  if (!versions.includes(version)) {
    throw new PatchbayError(
      'SERIES_NO_PATCHES',
      `No patches of v${version}; the mail holds ${versions.map((v) => `v${v}`).join(', ')}.`,
      { details: { version, versions } },
    );
  }
  const candidates = withPatches
    .filter((r) => r.version === version)
    .sort(
      (a, b) =>
        Number(b.isThreadRoot) - Number(a.isThreadRoot) ||
        counted(b) - counted(a) ||
        submitted(b) - submitted(a) ||
        byId(a.head.msg.messageId, b.head.msg.messageId),
    );
  const revision = candidates[0];
  if (revision === undefined) throw new Error('unreachable: the version has a revision');
  const problems: string[] = [];
  const others = versions.filter((v) => v !== version);
  if (others.length > 0) {
    const list = others.map((v) => `v${v}`).join(', ');
    const asked = opts.version === undefined ? '' : ' as asked';
    problems.push(`${list} also present; took v${version}${asked}`);
  }
  if (candidates.length > 1) {
    const rest = candidates.slice(1).map((r) => describe(r.head));
    problems.push(`${rest.length} other v${version} series also present (${rest.join(', ')}); took the one of ${describe(revision.head)}`);
  }
  return { revision, problems };
}

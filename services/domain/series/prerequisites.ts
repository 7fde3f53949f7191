/**
 * Prerequisite patches as b4 shazam applies them: the patches a series'
 * `prerequisite-patch-id:` lines (or the series a `prerequisite-message-id:`
 * names) stand for, applied on the base before the series, in the order the
 * series lists them. They may come from several series, so their subject
 * counters mean nothing here: each message is one patch, numbered 1..N in
 * the order given. The same refusals as for a series hold (no diff, binary,
 * a path outside the tree): a prerequisite is mail from the list too.
 */
import { PatchbayError } from '../errors.ts';
import type { MailMessage } from '../mbox.ts';
import { parseTrailers } from '../patch.ts';
import { refusal, seriesIdentity } from './assemble.ts';
import { classifyMessages } from './classify.ts';
import { SERIES_MAX_PATCHES, type Series } from './model.ts';
import { metadata } from './util.ts';

/** A Series of the given patch mails, in order; throws PatchbayError (SERIES_NO_PATCHES, SERIES_TOO_LARGE, SERIES_NO_DIFF, PATCH_BINARY, PATCH_PATH_ESCAPES). */
export function prerequisiteSeries(messages: readonly MailMessage[]): Series {
  if (messages.length === 0) throw new PatchbayError('SERIES_NO_PATCHES', 'No prerequisite patches were given.');
  if (messages.length > SERIES_MAX_PATCHES) {
    throw new PatchbayError('SERIES_TOO_LARGE', `${messages.length} prerequisite patches; patchbay takes at most ${SERIES_MAX_PATCHES}.`, {
      details: { mails: messages.length, limit: SERIES_MAX_PATCHES },
    });
  }
  const nodes = classifyMessages(messages);
  const total = nodes.length;
  const patches = nodes.map((n, i) => ({ counter: i + 1, message: n.msg, subject: n.subj, files: n.files, trailers: parseTrailers(n.msg.body) }));
  const refused = refusal(patches, total);
  if (refused !== null) throw refused;
  const first = nodes[0];
  if (first === undefined) throw new PatchbayError('SERIES_NO_PATCHES', 'No prerequisite patches were given.');
  const meta = metadata(first.msg.body);
  const series: Series = {
    title: first.subj.title,
    version: first.subj.version,
    total,
    isRfc: nodes.some((n) => n.subj.isRfc),
    isResend: false,
    identity: '',
    cover: null,
    patches,
    baseCommit: meta.baseCommit,
    changeId: null,
    prerequisitePatchIds: [],
    treeTags: [...new Set(nodes.flatMap((n) => n.subj.treeTags))],
    rootMessageId: first.msg.messageId,
    problems: nodes.length === messages.length ? [] : [`${messages.length - nodes.length} repeated message(s) taken once`],
  };
  series.identity = seriesIdentity(series);
  return series;
}

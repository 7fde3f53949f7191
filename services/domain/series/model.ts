/**
 * The shapes the series steps pass on (classify, group, pick, check,
 * gather), the Series they end in, and the limits they keep.
 */
import type { MailMessage } from '../mbox.ts';
import type { FileChange, Trailer } from '../patch.ts';
import type { SubjectInfo } from '../subject.ts';

export interface SeriesPatch {
  counter: number;
  message: MailMessage;
  subject: SubjectInfo;
  files: FileChange[];
  /** The patch's own trailers, then those collected from replies to it and to the cover letter. */
  trailers: Trailer[];
}

export interface Series {
  title: string;
  version: number;
  total: number;
  isRfc: boolean;
  /** The cover letter or a patch is marked RESEND ("[PATCH RESEND v2 1/3]", "[RESEND PATCH]"): the same revision, sent again. */
  isResend: boolean;
  /** seriesIdentity(): what v1, v2, v3 ... of one series share. */
  identity: string;
  cover: MailMessage | null;
  /** Ordered 1..total. */
  patches: SeriesPatch[];
  /** "base-commit: <sha>" in the cover letter, else in the first patch. */
  baseCommit: string | null;
  /** "change-id: ..." (b4 prep). */
  changeId: string | null;
  /** "prerequisite-patch-id: ..." lines. */
  prerequisitePatchIds: string[];
  treeTags: string[];
  /** The cover letter's Message-ID, else the first patch's: the thread a report replies to. */
  rootMessageId: string;
  /** Non-fatal notes for the person who reads the result. */
  problems: string[];
}

/**
 * How many messages assembleSeries reads: a lore thread of a big series with
 * every revision and its review holds hundreds; each message costs a parse of
 * its subject, diff and trailers. listRevisions reads this many and no more.
 */
export const SERIES_MAX_MESSAGES = 10_000;
/**
 * How many patches a series may have (and patch mails its revision): the
 * largest series sent to the kernel's lists hold a few hundred. Past it
 * assembleSeries throws SERIES_TOO_LARGE.
 */
export const SERIES_MAX_PATCHES = 1000;
/**
 * How many trailers replies may add to one patch (its own are not counted):
 * a patch gathers a few dozen at most, and a reply to the cover letter gives
 * its trailers to every patch. Past it they are ignored, with a problem.
 */
export const SERIES_MAX_REPLY_TRAILERS = 100;
/**
 * How far up its thread a patch of a partial reroll is followed to find the
 * older patch with its counter (b4 follows In-Reply-To without a bound; a
 * reroll is sent in reply to that patch or to a reply to it, a few levels).
 */
export const SERIES_MAX_REROLL_DEPTH = 64;
/** How many partial rerolls of partial rerolls are followed back (v5 of v4 of v3 ...). */
export const SERIES_MAX_REROLL_CHAIN = 16;

export type NodeKind = 'patch' | 'cover' | 'reply' | 'other';

/** One message of the pile, as classifyMessages reads it. */
export interface MessageNode {
  msg: MailMessage;
  subj: SubjectInfo;
  files: FileChange[];
  kind: NodeKind;
  /** The revision: the subject's, or (b4) the one of the cover letter or patch 1 it replies to. */
  version: number;
  /** The subject names no revision (b4's revision_inferred). */
  versionInferred: boolean;
  /** 1 for a patch without a counter ("[PATCH] x"), 0 for a cover letter. */
  counter: number;
  /** The subject has no N/M (b4's counters_inferred). */
  counterInferred: boolean;
  /** N of N/M, grown to the counter for "[PATCH 6/5]" (b4). */
  total: number;
  /** A "N files changed, ..." line: what marks a cover letter (b4's has_diffstat). */
  hasDiffstat: boolean;
  /**
   * The message this one answers, when it is in the pile: In-Reply-To (only
   * it, when the header is there), else the last of its References that is
   * here; never itself.
   */
  parent: MessageNode | null;
}

/** Every revision of every series in the pile, as groupRevisions finds them. */
export interface Revision {
  version: number;
  /**
   * What the grouping knew of the series: seriesIdentity's key from the
   * message the revision starts with (for a reroll of which only some
   * patches were sent: "reroll of " and the older revision's).
   */
  key: string;
  /** The message its thread starts with: the cover letter, else the first patch. */
  head: MessageNode;
  /** The head answers nothing in the pile: the revision is a thread of its own. */
  isThreadRoot: boolean;
  /** Its "[PATCH 0/N]" cover letters, in pile order. */
  covers: MessageNode[];
  /** Messages its patches reply to that may be a cover letter without 0/N (b4: a diffstat, or the author's own thread root). */
  nakedCovers: MessageNode[];
  /** Every patch mail of the revision, the same counter sent twice included, in pile order. */
  patches: MessageNode[];
  /** An older revision its thread hangs from (sent in reply to it): where a partial reroll's missing patches come from. */
  repliesTo: Revision | null;
  /**
   * The messages its threads were sent in reply to, up to the first patch or
   * cover letter of another revision (that one included): what ties it to
   * the revision it hangs from.
   */
  anchors: MessageNode[];
}

/** One patch of a revision as checkCompleteness takes it. */
export interface PatchChoice {
  counter: number;
  node: MessageNode;
  /** The revision it was sent in: this one, or an older one a partial reroll took it from. */
  fromVersion: number;
}

export interface Completeness {
  revision: Revision;
  version: number;
  total: number;
  /** One message per counter present, ascending. */
  patches: PatchChoice[];
  present: number[];
  missing: number[];
  complete: boolean;
  cover: MessageNode | null;
  /** The message whose subject names the series: the cover letter, else patch 1 (for a partial reroll, the older revision's, as b4 does). */
  head: MessageNode;
  /** The older revision a partial reroll took patches (or its cover letter) from (b4's partial_reroll). */
  rerollFrom: Revision | null;
  /**
   * What a partial reroll was rebuilt from: each of its patches' thread up to
   * the older message with its counter, and the older revision's messages
   * and anchors (for a reroll of a reroll, the older ones' too).
   */
  evidence: MessageNode[];
  /** Message-ID of every patch mail that stands for a counter taken (duplicates too): replies to them give trailers. */
  aliases: Map<string, number>;
  /** Non-fatal notes, in the order assembleSeries reports them. */
  problems: string[];
  /** Patch mails of the revision, and its largest N, for the limits. */
  mails: number;
  largest: number;
}

/** What a watcher needs to decide about one revision of one series in a pile of mail. */
export interface RevisionSummary {
  identity: string;
  version: number;
  isRfc: boolean;
  isResend: boolean;
  title: string;
  author: { name: string; email: string };
  /** The cover letter's Message-ID, else patch 1's (else the first patch present). */
  rootMessageId: string;
  total: number;
  /** Counters present (a partial reroll's taken from the older revision included). */
  present: number[];
  missing: number[];
  complete: boolean;
  /**
   * The messages that make the revision, oldest first: its cover letters,
   * patches (a partial reroll's older ones too) and their replies, and the
   * messages its threads were sent in reply to (up to the older revision's
   * patch or cover letter): assembleSeries(these, { version }) builds it.
   */
  messageIds: string[];
  newestDate: Date | null;
  treeTags: string[];
  changeId: string | null;
  /** Why it is not complete, or what else is wrong with it (a refused patch, a cut pile); null when nothing is. */
  problem: string | null;
}

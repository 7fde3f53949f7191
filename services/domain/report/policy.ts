/**
 * Whether a verdict is mailed, and to whom: pure rules over the per-inbox
 * policy (deploy/report-policy.json, validated in services/catalog) and
 * the thread's own headers. Recipients come from the mail the report
 * answers, never from an API caller.
 */
import type { Status } from '../status.ts';

export const REPORT_MODES = ['dry-run', 'author', 'author+list'] as const;
/**
 * dry-run: the mail is composed as for author+list and written to the
 * outbox folder, never sent; author: sent to the series' author alone;
 * author+list: to the author, copied to everyone the posted mail was
 * addressed to (its To and Cc, the lists among them), as a reply-all.
 */
export type ReportMode = (typeof REPORT_MODES)[number];

export const REPORT_RESULTS = ['failures', 'all'] as const;
/** failures: FAIL only (and a PASS that overturns a mailed FAIL); all: PASS and FAIL. */
export type ReportResults = (typeof REPORT_RESULTS)[number];

export interface InboxPolicy {
  mode: ReportMode;
  results: ReportResults;
  /** Addresses whose `patchbay:` commands are obeyed in this inbox's threads, besides the series' author. */
  maintainers: string[];
  /** Addresses and list addresses never written to from this inbox's threads (on top of the global list). */
  optOut: string[];
}

export interface ReportPolicy {
  /** For an inbox the file does not name. */
  default: InboxPolicy;
  /** By inbox URL (as the watcher's PATCHBAY_LORE_INBOXES names it, ending in '/'). */
  inboxes: Readonly<Record<string, InboxPolicy>>;
  /** Never written to, whatever the inbox. */
  optOut: string[];
}

/** The verdicts a report may carry: evidence either way. MISS, ERROR, SKIP and cancellations are never mailed. */
export const MAILED_VERDICTS: ReadonlySet<Status> = new Set<Status>(['PASS', 'FAIL']);

export function inboxPolicy(policy: ReportPolicy, inbox: string): InboxPolicy {
  return policy.inboxes[inbox] ?? policy.inboxes[inbox.endsWith('/') ? inbox : `${inbox}/`] ?? policy.default;
}

export type ReportDecision =
  | { mail: true; reason: string }
  | { mail: false; reason: string };

/**
 * Whether this verdict of a revision gets a report. `lastReported` is the
 * verdict of the revision's newest report planned before (null: none): a
 * later run of the same revision mails only when its verdict differs.
 */
export function decideReport(input: {
  status: Status | 'cancelled' | 'queued' | 'running';
  /** The series came from a mailing list (it has a thread to answer). */
  hasThread: boolean;
  policy: InboxPolicy;
  lastReported: Status | null;
}): ReportDecision {
  const { status, policy, lastReported } = input;
  if (!input.hasThread) return { mail: false, reason: 'the series was not posted to a list: there is no thread to answer' };
  if (status !== 'PASS' && status !== 'FAIL') {
    return { mail: false, reason: `${status} is not mailed: only evidence-backed verdicts (PASS, FAIL) are` };
  }
  if (lastReported === status) return { mail: false, reason: `this revision's ${status} was reported already` };
  if (status === 'PASS' && policy.results === 'failures' && lastReported !== 'FAIL') {
    return { mail: false, reason: 'the inbox is reported on failures only' };
  }
  return { mail: true, reason: lastReported === null ? `first ${status} of this revision` : `the verdict changed from ${lastReported} to ${status}` };
}

export interface Mailbox {
  name: string;
  email: string;
}

export interface Recipients {
  to: Mailbox[];
  cc: Mailbox[];
  /** Addresses left out by an opt-out, for the record. */
  optedOut: string[];
}

/** At most this many addresses on a report: a thread Cc'd to a hundred people does not make us a mass mailer. */
export const MAX_RECIPIENTS = 50;

const canonical = (email: string): string => email.trim().toLowerCase();

/**
 * Who a report goes to, from the answered mail's own headers: its author
 * (From) as To; for author+list and dry-run, its To and Cc as Cc. The
 * robot itself, duplicates, opted-out addresses and anything that is not
 * a plain address are dropped; at most MAX_RECIPIENTS.
 */
export function reportRecipients(input: {
  mode: ReportMode;
  from: Mailbox;
  to: readonly Mailbox[];
  cc: readonly Mailbox[];
  robot: string;
  optOut: readonly string[];
}): Recipients {
  const blocked = new Set(input.optOut.map(canonical));
  const seen = new Set<string>([canonical(input.robot)]);
  const optedOut: string[] = [];
  const take = (list: readonly Mailbox[], into: Mailbox[]): void => {
    for (const m of list) {
      const email = canonical(m.email);
      if (!PLAIN_ADDRESS.test(email) || seen.has(email)) continue;
      seen.add(email);
      if (blocked.has(email)) {
        optedOut.push(email);
        continue;
      }
      if (into.length + (into === to ? cc.length : to.length) >= MAX_RECIPIENTS) continue;
      into.push({ name: cleanName(m.name), email });
    }
  };
  const to: Mailbox[] = [];
  const cc: Mailbox[] = [];
  take([input.from], to);
  if (input.mode !== 'author') take([...input.to, ...input.cc], cc);
  return { to, cc, optedOut };
}

/** local@domain with no spaces, brackets, quotes or commas: what an envelope recipient may be. */
const PLAIN_ADDRESS = /^[^\s<>"(),;:@\\]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/;

function cleanName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\u0000-\u001f\u007f]/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 100);
}

export function isPlainAddress(email: string): boolean {
  return PLAIN_ADDRESS.test(canonical(email));
}

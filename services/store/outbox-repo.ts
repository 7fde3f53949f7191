/**
 * The outbox: mail reports and acknowledgements, exactly once.
 *
 * A result report is planned (`planResult`) inside the transaction that
 * records the job's verdict, one row per (revision, nth report) unique by
 * its key: a retried job or a re-run with the same verdict finds the
 * revision's last report and plans nothing. The reporter then claims a due
 * row (pending -> sending, with a claim that expires), composes it once
 * (the bytes are kept: every later try sends the same message, with the
 * same Message-ID), sends it, and marks it sent. A row still `sending`
 * after its claim expired is in doubt: its sender died between claiming
 * and marking (services/reporter/README.md says how that is settled).
 */
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { PatchbayError } from '../domain/errors.ts';
import { parseMessage } from '../domain/mbox.ts';
import { type InboxPolicy, type ReportPolicy, decideReport, inboxPolicy, reportRecipients, type Recipients } from '../domain/report/policy.ts';
import { threadTarget, type ThreadTarget } from '../domain/report/thread.ts';
import type { Status } from '../domain/status.ts';
import type { Database, OutboxStatus, OutboxTable } from './schema.ts';
import { afterCursor, checkLimit, cleanText, decodeCursor, guard, jsonb, newId, toBuffer, toPage, type Page } from './util.ts';

export interface OutboxEntry {
  id: string;
  key: string;
  kind: 'result' | 'ack';
  /** The revision's root Message-ID. */
  revision: string;
  seriesId: string;
  jobId: string | null;
  verdict: Status | null;
  inbox: string | null;
  mode: 'dry-run' | 'author' | 'author+list';
  messageId: string;
  inReplyTo: string;
  references: string[];
  subject: string;
  recipients: Recipients;
  body: string | null;
  status: OutboxStatus;
  /** Why it was planned (or skipped). */
  reason: string;
  attempts: number;
  nextAttemptAt: Date;
  claimedBy: string | null;
  claimedUntil: Date | null;
  lastError: string | null;
  /** Whether the message was composed already (its bytes are kept). */
  composed: boolean;
  sentAt: Date | null;
  sentVia: 'smtp' | 'outbox-folder' | 'archive' | 'by-hand' | null;
  smtpResponse: string | null;
  createdAt: Date;
}

/** What planning needs beyond the database: the policy and who the robot is. */
export interface ReportPlanning {
  policy: ReportPolicy;
  /** The robot's own address: never a recipient. */
  robot: string;
  /** The domain of the reports' Message-IDs. */
  messageIdDomain: string;
}

export interface ListOutboxOptions {
  limit: number;
  cursor?: string;
  status?: OutboxStatus;
  jobId?: string;
  seriesId?: string;
}

export const RESULT_KEY = (revision: string, n: number): string => `result:${revision}:${n}`;
export const ACK_KEY = (commandMessageId: string): string => `ack:${commandMessageId}`;

/** A report's Message-ID: its row id under the configured domain. */
export function reportMessageId(rowId: string, domain: string): string {
  return `patchbay-${rowId}@${domain}`;
}

const CURSOR_TS = sql<string>`to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
const ENTRY_COLUMNS = [
  'id', 'key', 'kind', 'revision', 'series_id', 'job_id', 'verdict', 'inbox', 'mode', 'message_id', 'in_reply_to', 'references', 'subject',
  'recipients', 'body', 'status', 'reason', 'attempts', 'next_attempt_at', 'claimed_by', 'claimed_until', 'last_error', 'sent_at', 'sent_via',
  'smtp_response', 'created_at',
] as const;
type EntryRow = Omit<Selectable<OutboxTable>, 'raw'> & { composed: boolean };
const COMPOSED = sql<boolean>`raw is not null`.as('composed');

/** The mail a revision's report answers: its cover letter, else its first patch. */
export async function replyTargetOf(db: Kysely<Database>, seriesId: string): Promise<ThreadTarget | null> {
  const row = await db.selectFrom('patches').select(['raw', 'counter']).where('series_id', '=', seriesId).where('counter', 'in', [0, 1])
    .orderBy('counter', 'asc').limit(1).executeTakeFirst();
  return row === undefined ? null : threadTarget(parseMessage(toBuffer(row.raw).toString('latin1')));
}

export class OutboxRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /**
   * In the transaction that records job `jobId`'s verdict: the report it
   * earns, if any (decideReport), planned once per revision and verdict.
   * Returns the row planned, or null with nothing written.
   */
  static async planResult(trx: Transaction<Database>, jobId: string, status: Status, planning: ReportPlanning): Promise<OutboxEntry | null> {
    const job = await trx.selectFrom('jobs').select(['series_id']).where('id', '=', jobId).executeTakeFirst();
    if (job === undefined) return null;
    const series = await trx.selectFrom('series').select(['inbox_url', 'root_message_id', 'source']).where('id', '=', job.series_id).executeTakeFirst();
    if (series === undefined) return null;
    const hasThread = series.inbox_url !== null && series.source !== 'upload';
    const inbox = series.inbox_url;
    const policy = inboxPolicy(planning.policy, inbox ?? '');
    const revision = series.root_message_id;
    const previous = await trx.selectFrom('outbox').select(['verdict']).where('revision', '=', revision).where('kind', '=', 'result')
      .orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
    const decision = decideReport({ status, hasThread, policy, lastReported: (previous[0]?.verdict ?? null) as Status | null });
    if (!decision.mail || inbox === null) return null;
    const target = await replyTargetOf(trx, job.series_id);
    if (target === null) return null;
    return planReply(trx, {
      key: RESULT_KEY(revision, previous.length + 1), kind: 'result', revision, seriesId: job.series_id, jobId, verdict: status, inbox,
      target, body: null, reason: decision.reason, who: 'the author',
    }, policy, planning);
  }

  /**
   * In the transaction that records a reply command: its acknowledgement,
   * a reply to the command's mail (`target`), To: its sender, Cc: per the
   * inbox's mode (its To and Cc, or nobody for author), with `body` as its
   * text. Once per command (ACK_KEY). Returns the row planned, or null
   * when it was planned before.
   */
  static async planAck(trx: Transaction<Database>, ack: {
    /** The command mail's Message-ID. */
    commandMessageId: string;
    target: ThreadTarget;
    seriesId: string;
    jobId: string | null;
    /** The inbox whose policy applies (the series'). */
    inbox: string | null;
    body: string;
    reason: string;
  }, planning: ReportPlanning): Promise<OutboxEntry | null> {
    const series = await trx.selectFrom('series').select(['root_message_id']).where('id', '=', ack.seriesId).executeTakeFirst();
    if (series === undefined) return null;
    const policy = inboxPolicy(planning.policy, ack.inbox ?? '');
    return planReply(trx, {
      key: ACK_KEY(ack.commandMessageId), kind: 'ack', revision: series.root_message_id, seriesId: ack.seriesId, jobId: ack.jobId, verdict: null,
      inbox: ack.inbox, target: ack.target, body: cleanText(ack.body), reason: ack.reason, who: 'the command\'s sender',
    }, policy, planning);
  }

  async get(id: string): Promise<OutboxEntry | null> {
    const row = await guard('could not read the outbox', () => this.#db.selectFrom('outbox').select(ENTRY_COLUMNS).select(COMPOSED).where('id', '=', id).executeTakeFirst());
    return row === undefined ? null : toEntry(row);
  }

  /** The composed message, as sent (null until composed). */
  async raw(id: string): Promise<Buffer | null> {
    const row = await guard('could not read the outbox', () => this.#db.selectFrom('outbox').select('raw').where('id', '=', id).executeTakeFirst());
    return row?.raw == null ? null : toBuffer(row.raw);
  }

  /** Newest first. */
  async list(opts: ListOutboxOptions): Promise<Page<OutboxEntry>> {
    const limit = checkLimit(opts.limit);
    const after = opts.cursor === undefined ? null : decodeCursor(opts.cursor, 'm');
    const rows = await guard('could not list the outbox', () => {
      let q = this.#db.selectFrom('outbox').select(ENTRY_COLUMNS).select(COMPOSED).select(CURSOR_TS.as('cursor_ts'));
      if (after !== null) q = q.where(afterCursor(after));
      if (opts.status !== undefined) q = q.where('status', '=', opts.status);
      if (opts.jobId !== undefined) q = q.where('job_id', '=', opts.jobId);
      if (opts.seriesId !== undefined) q = q.where('series_id', '=', opts.seriesId);
      return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
    });
    return toPage(rows, limit, toEntry);
  }

  /** Counts by status, for metrics and the dashboard. */
  async counts(): Promise<Partial<Record<OutboxStatus, number>>> {
    const rows = await guard('could not count the outbox', () =>
      this.#db.selectFrom('outbox').select(['status', sql<string>`count(*)`.as('n')]).groupBy('status').execute());
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  /**
   * Claims the oldest due row for `holder` (pending, its time come): it is
   * `sending` until `claimSeconds` from now. Rows locked by another
   * claimer are skipped. Null when nothing is due.
   */
  async claim(holder: string, claimSeconds: number): Promise<OutboxEntry | null> {
    const row = await guard('could not claim a report', () => this.#db.transaction().execute(async (trx) => {
      const due = await trx.selectFrom('outbox').select('id').where('status', '=', 'pending').where('next_attempt_at', '<=', sql<Date>`now()`)
        .orderBy('next_attempt_at', 'asc').orderBy('id', 'asc').limit(1).forUpdate().skipLocked().executeTakeFirst();
      if (due === undefined) return undefined;
      return trx.updateTable('outbox').set({
        status: 'sending',
        claimed_by: cleanText(holder),
        claimed_until: sql<Date>`now() + make_interval(secs => ${claimSeconds})`,
        attempts: sql<number>`attempts + 1`,
      }).where('id', '=', due.id).returning(ENTRY_COLUMNS).returning(COMPOSED).executeTakeFirst();
    }));
    return row === undefined ? null : toEntry(row);
  }

  /** Keeps the composed bytes (first claim only: a row composed before keeps its own). */
  async setRaw(id: string, holder: string, raw: Buffer): Promise<Buffer> {
    return guard('could not keep the composed report', async () => {
      await this.#db.updateTable('outbox').set({ raw }).where('id', '=', id).where('claimed_by', '=', holder).where('raw', 'is', null).execute();
      const row = await this.#db.selectFrom('outbox').select('raw').where('id', '=', id).executeTakeFirst();
      if (row?.raw == null) throw new PatchbayError('OUTBOX_CLAIM_LOST', `report ${id}: its claim was lost before it was composed`);
      return toBuffer(row.raw);
    });
  }

  /** sending -> sent, only by the holder of the claim. False when the claim was lost (nothing changed). */
  async markSent(id: string, holder: string, via: 'smtp' | 'outbox-folder', response: string): Promise<boolean> {
    const r = await guard('could not mark the report sent', () => this.#db.updateTable('outbox').set({
      status: 'sent', sent_at: sql<Date>`now()`, sent_via: via, smtp_response: cleanText(response.slice(0, 1000)), last_error: null, claimed_until: null,
    }).where('id', '=', id).where('status', '=', 'sending').where('claimed_by', '=', holder).executeTakeFirst());
    return r.numUpdatedRows > 0n;
  }

  /** A try failed: pending again at `next`, or failed for good. Only by the holder of the claim. */
  async tryFailed(id: string, holder: string, error: string, next: Date | null): Promise<void> {
    await guard('could not record the failed try', () => this.#db.updateTable('outbox').set({
      status: next === null ? 'failed' : 'pending',
      last_error: cleanText(error.slice(0, 2000)),
      next_attempt_at: next ?? sql<Date>`now()`,
      claimed_until: null,
    }).where('id', '=', id).where('status', '=', 'sending').where('claimed_by', '=', holder).execute());
  }

  /** Rows whose claim expired while sending: their sender died between claiming and marking. */
  async inDoubt(limit = 20): Promise<OutboxEntry[]> {
    const rows = await guard('could not list the reports in doubt', () => this.#db.selectFrom('outbox').select(ENTRY_COLUMNS).select(COMPOSED)
      .where('status', '=', 'sending').where('claimed_until', '<', sql<Date>`now()`).orderBy('claimed_until', 'asc').limit(limit).execute());
    return rows.map(toEntry);
  }

  /**
   * Settles a row in doubt (its claim expired): sent (found where it was
   * delivered), back to pending (it was not), or held for an operator (no
   * way to tell). Only while it is still in doubt; false otherwise.
   */
  async settle(id: string, outcome: { status: 'sent'; via: 'archive' | 'outbox-folder'; detail: string } | { status: 'pending' | 'held'; detail: string }): Promise<boolean> {
    const r = await guard('could not settle the report in doubt', () => this.#db.updateTable('outbox').set(outcome.status === 'sent'
      ? { status: 'sent', sent_at: sql<Date>`now()`, sent_via: outcome.via, smtp_response: cleanText(outcome.detail), claimed_until: null }
      : { status: outcome.status, last_error: cleanText(outcome.detail), claimed_until: null, next_attempt_at: sql<Date>`now()` })
      .where('id', '=', id).where('status', '=', 'sending').where('claimed_until', '<', sql<Date>`now()`).executeTakeFirst());
    return r.numUpdatedRows > 0n;
  }

  /** An operator's decision on a held or failed row: send it again (same bytes, same Message-ID), or record it as sent. */
  async resolveByHand(id: string, action: 'resend' | 'mark-sent', who: string): Promise<OutboxEntry> {
    const row = await guard('could not update the report', () => this.#db.updateTable('outbox').set(action === 'resend'
      ? { status: 'pending', next_attempt_at: sql<Date>`now()`, attempts: 0, last_error: cleanText(`resend asked by ${who}`) }
      : { status: 'sent', sent_at: sql<Date>`now()`, sent_via: 'by-hand', smtp_response: cleanText(`marked sent by ${who}`) })
      .where('id', '=', id).where('status', 'in', ['held', 'failed']).returning(ENTRY_COLUMNS).returning(COMPOSED).executeTakeFirst());
    if (row !== undefined) return toEntry(row);
    const current = await this.get(id);
    if (current === null) throw new PatchbayError('OUTBOX_NOT_FOUND', `There is no report ${id}.`, { details: { id } });
    throw new PatchbayError('OUTBOX_STATE_CONFLICT', `Report ${id} is ${current.status}: only a held or failed report can be resent or marked sent.`, { details: { id, status: current.status } });
  }
}

/**
 * One planned reply (a result report or an acknowledgement) to `target`,
 * To: its sender, Cc: per the inbox's mode, unique by `key`: null when a
 * row with that key exists. Skipped (kept, never sent) when its one To:
 * opted out or has no usable address.
 */
async function planReply(trx: Transaction<Database>, r: {
  key: string;
  kind: 'result' | 'ack';
  revision: string;
  seriesId: string;
  jobId: string | null;
  verdict: Status | null;
  inbox: string | null;
  target: ThreadTarget;
  body: string | null;
  reason: string;
  /** Who the To: is, for the reason of a skipped row. */
  who: string;
}, policy: InboxPolicy, planning: ReportPlanning): Promise<OutboxEntry | null> {
  const { target } = r;
  const recipients = reportRecipients({
    mode: policy.mode, from: target.from, to: target.to, cc: target.cc, robot: planning.robot, optOut: [...planning.policy.optOut, ...policy.optOut],
  });
  const id = newId('m');
  const skipped = recipients.to.length === 0;
  const inserted = await trx.insertInto('outbox').values({
    id,
    key: r.key,
    kind: r.kind,
    revision: r.revision,
    series_id: r.seriesId,
    job_id: r.jobId,
    verdict: r.verdict,
    inbox: r.inbox,
    mode: policy.mode,
    message_id: reportMessageId(id, planning.messageIdDomain),
    in_reply_to: target.messageId,
    references: jsonb(target.references),
    subject: cleanText(target.subject),
    recipients: jsonb(recipients),
    body: r.body,
    status: skipped ? 'skipped' : 'pending',
    reason: skipped ? `${r.reason}; not sent: ${r.who} (${target.from.email}) opted out or has no usable address` : r.reason,
  }).onConflict((oc) => oc.column('key').doNothing()).returning(ENTRY_COLUMNS).returning(COMPOSED).executeTakeFirst();
  return inserted === undefined ? null : toEntry(inserted);
}

function toEntry(r: EntryRow): OutboxEntry {
  return {
    id: r.id,
    key: r.key,
    kind: r.kind,
    revision: r.revision,
    seriesId: r.series_id,
    jobId: r.job_id,
    verdict: r.verdict as Status | null,
    inbox: r.inbox,
    mode: r.mode,
    messageId: r.message_id,
    inReplyTo: r.in_reply_to,
    references: r.references,
    subject: r.subject,
    recipients: r.recipients,
    body: r.body,
    status: r.status,
    reason: r.reason,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    claimedBy: r.claimed_by,
    claimedUntil: r.claimed_until,
    lastError: r.last_error,
    composed: r.composed,
    sentAt: r.sent_at,
    sentVia: r.sent_via as OutboxEntry['sentVia'],
    smtpResponse: r.smtp_response,
    createdAt: r.created_at,
  };
}

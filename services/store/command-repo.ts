/**
 * Reply commands read from threads (`patchbay: retest` ...), once each:
 * `report_commands` is keyed by the command mail's Message-ID, and a
 * command is recorded, with its acknowledgement's outbox row, in one
 * transaction after its action was done (idempotently), so a command
 * judged again (a later pass, a restart, a crash before recording) is
 * never acted on twice nor acknowledged twice.
 */
import type { Kysely, Selectable } from 'kysely';
import type { ThreadTarget } from '../domain/report/thread.ts';
import { OutboxRepo, type OutboxEntry, type ReportPlanning } from './outbox-repo.ts';
import type { Database, ReportCommandsTable } from './schema.ts';
import { cleanText, guard } from './util.ts';

export const COMMAND_OUTCOMES = ['done', 'refused', 'ignored'] as const;
/** done: acted on; refused: from someone who may, but it could not be done (the acknowledgement says why); ignored: from someone who may not. */
export type CommandOutcome = (typeof COMMAND_OUTCOMES)[number];

export interface ReportCommand {
  /** The command mail's Message-ID. */
  messageId: string;
  threadRoot: string;
  seriesId: string | null;
  fromEmail: string;
  command: 'retest' | 'base' | 'unrelated';
  /** The commit of `base`, as written; null for the others. */
  argument: string | null;
  outcome: CommandOutcome;
  /** What was done, or why not. */
  detail: string;
  /** The job queued (retest, base) or marked (unrelated). */
  jobId: string | null;
  createdAt: Date;
}

export type NewReportCommand = Omit<ReportCommand, 'createdAt'>;

/** The acknowledgement planned with a command (OutboxRepo.planAck). */
export interface CommandAck {
  target: ThreadTarget;
  inbox: string | null;
  body: string;
  reason: string;
  planning: ReportPlanning;
}

function toCommand(r: Selectable<ReportCommandsTable>): ReportCommand {
  return {
    messageId: r.message_id,
    threadRoot: r.thread_root,
    seriesId: r.series_id,
    fromEmail: r.from_email,
    command: r.command as ReportCommand['command'],
    argument: r.argument,
    outcome: r.outcome as CommandOutcome,
    detail: r.detail,
    jobId: r.job_id,
    createdAt: r.created_at,
  };
}

export class CommandRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Which of these Message-IDs are recorded commands already. */
  async recorded(messageIds: readonly string[]): Promise<Set<string>> {
    if (messageIds.length === 0) return new Set();
    return guard('could not read the reply commands', async () => {
      const out = new Set<string>();
      for (let i = 0; i < messageIds.length; i += 500) {
        const rows = await this.#db.selectFrom('report_commands').select('message_id').where('message_id', 'in', messageIds.slice(i, i + 500)).execute();
        for (const r of rows) out.add(r.message_id);
      }
      return out;
    });
  }

  async get(messageId: string): Promise<ReportCommand | null> {
    return guard('could not read a reply command', async () => {
      const r = await this.#db.selectFrom('report_commands').selectAll().where('message_id', '=', messageId).executeTakeFirst();
      return r === undefined ? null : toCommand(r);
    });
  }

  /** A thread's commands, oldest first. */
  async forThread(threadRoot: string): Promise<ReportCommand[]> {
    return guard('could not read the reply commands', async () =>
      (await this.#db.selectFrom('report_commands').selectAll().where('thread_root', '=', threadRoot)
        .orderBy('created_at').orderBy('message_id').execute()).map(toCommand));
  }

  /** A series' commands, oldest first. */
  async forSeries(seriesId: string): Promise<ReportCommand[]> {
    return guard('could not read the reply commands', async () =>
      (await this.#db.selectFrom('report_commands').selectAll().where('series_id', '=', seriesId)
        .orderBy('created_at').orderBy('message_id').execute()).map(toCommand));
  }

  /**
   * The series a reply is about: of `answered` (the mails it answers,
   * nearest first), the first that is a patch or cover letter of a stored
   * series, or one of our reports; `via` is that Message-ID. A mail stored
   * in more than one series (the same patches submitted twice with other
   * cover letters) names the newest. Null: none of ours.
   */
  async seriesOfReply(answered: readonly string[]): Promise<{ seriesId: string; via: string } | null> {
    const ids = [...new Set(answered)].slice(0, 100);
    if (ids.length === 0) return null;
    return guard('could not look up the series a reply answers', async () => {
      const patches = await this.#db.selectFrom('patches').innerJoin('series', 'series.id', 'patches.series_id')
        .select(['patches.message_id', 'patches.series_id']).where('patches.message_id', 'in', ids)
        .orderBy('series.created_at', 'desc').orderBy('series.id', 'desc').execute();
      const reports = await this.#db.selectFrom('outbox').select(['message_id', 'series_id']).where('message_id', 'in', ids).execute();
      const byId = new Map<string, string>();
      for (const r of [...patches, ...reports]) if (!byId.has(r.message_id)) byId.set(r.message_id, r.series_id);
      for (const id of ids) {
        const seriesId = byId.get(id);
        if (seriesId !== undefined) return { seriesId, via: id };
      }
      return null;
    });
  }

  /**
   * Records a command once, and with it (in the same transaction) its
   * acknowledgement when one is given. A command recorded before is left
   * as it was (created false) and nothing is planned.
   */
  async record(cmd: NewReportCommand, ack: CommandAck | null): Promise<{ command: ReportCommand; created: boolean; ack: OutboxEntry | null }> {
    return guard('could not record a reply command', () => this.#db.transaction().execute(async (trx) => {
      const inserted = await trx.insertInto('report_commands').values({
        message_id: cmd.messageId,
        thread_root: cmd.threadRoot,
        series_id: cmd.seriesId,
        from_email: cleanText(cmd.fromEmail),
        command: cmd.command,
        argument: cmd.argument === null ? null : cleanText(cmd.argument),
        outcome: cmd.outcome,
        detail: cleanText(cmd.detail),
        job_id: cmd.jobId,
      }).onConflict((oc) => oc.column('message_id').doNothing()).returningAll().executeTakeFirst();
      if (inserted === undefined) {
        const existing = await trx.selectFrom('report_commands').selectAll().where('message_id', '=', cmd.messageId).executeTakeFirstOrThrow();
        return { command: toCommand(existing), created: false, ack: null };
      }
      const planned = ack === null || cmd.seriesId === null ? null : await OutboxRepo.planAck(trx, {
        commandMessageId: cmd.messageId, target: ack.target, seriesId: cmd.seriesId, jobId: cmd.jobId, inbox: ack.inbox, body: ack.body, reason: ack.reason,
      }, ack.planning);
      return { command: toCommand(inserted), created: true, ack: planned };
    }));
  }
}

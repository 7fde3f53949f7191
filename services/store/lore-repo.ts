/**
 * The lore watcher's state: per-inbox cursors and poll records, the mail it
 * has seen (once per Message-ID, whichever inboxes carried it), threads with
 * mail still to judge, one decision per series revision, and the lease that
 * keeps a second watcher idle.
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, LoreDecisionKind, LoreDecisionsTable, LoreInboxesTable } from './schema.ts';
import { checkLimit, cleanText, decodeCursor, guard, jsonb, newId, toBuffer, toPage, type Page } from './util.ts';

/** The lease the polling watcher holds. */
export const WATCHER_LEASE = 'lore-watcher';

export interface LoreInboxStatus {
  url: string;
  cursorAt: Date | null;
  /** A poll that stopped part way: its lower bound (epoch seconds) and how many entries it had listed. */
  resumeSince: number | null;
  resumeOffset: number;
  lastPollAt: Date | null;
  lastOkAt: Date | null;
  lastError: string | null;
  lastErrorAt: Date | null;
  polls: number;
  pollErrors: number;
  messagesSeen: number;
  requests: number;
}

export interface StoredMail {
  messageId: string;
  threadRoot: string;
  subject: string;
  fromEmail: string;
  date: Date | null;
  /** The message as the inbox served it (binary). */
  raw: Buffer;
}

export interface LoreDecision {
  id: string;
  key: string;
  threadRoot: string;
  inbox: string;
  identity: string | null;
  version: number | null;
  title: string;
  author: string;
  rootMessageId: string;
  decision: LoreDecisionKind;
  reason: string;
  tree: string | null;
  base: string | null;
  baseRule: string | null;
  /** sha256 of the patches' diffs: the same patches re-sent have the same. */
  patchHash: string | null;
  seriesId: string | null;
  jobId: string | null;
  decidedAt: Date;
}

export type NewLoreDecision = Omit<LoreDecision, 'id' | 'decidedAt'>;

export interface PollRecord {
  ok: boolean;
  error: string | null;
  /** The next poll's lower bound, when this poll listed everything. */
  cursorAt: Date | null;
  messages: number;
  requests: number;
}

const CURSOR_TS = sql<string>`to_char(decided_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

function toInbox(r: Selectable<LoreInboxesTable>): LoreInboxStatus {
  return {
    url: r.url,
    cursorAt: r.cursor_at,
    resumeSince: r.resume_since === null ? null : Number(r.resume_since),
    resumeOffset: r.resume_offset,
    lastPollAt: r.last_poll_at,
    lastOkAt: r.last_ok_at,
    lastError: r.last_error,
    lastErrorAt: r.last_error_at,
    polls: r.polls,
    pollErrors: r.poll_errors,
    messagesSeen: r.messages_seen,
    requests: r.requests,
  };
}

function toDecision(r: Selectable<LoreDecisionsTable>): LoreDecision {
  return {
    id: r.id,
    key: r.key,
    threadRoot: r.thread_root,
    inbox: r.inbox,
    identity: r.identity,
    version: r.version,
    title: r.title,
    author: r.author,
    rootMessageId: r.root_message_id,
    decision: r.decision,
    reason: r.reason,
    tree: r.tree,
    base: r.base,
    baseRule: r.base_rule,
    patchHash: r.patch_hash,
    seriesId: r.series_id,
    jobId: r.job_id,
    decidedAt: r.decided_at,
  };
}

export class LoreRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async inboxes(): Promise<LoreInboxStatus[]> {
    return guard('could not read the watched inboxes', async () =>
      (await this.#db.selectFrom('lore_inboxes').selectAll().orderBy('url').execute()).map(toInbox));
  }

  async inbox(url: string): Promise<LoreInboxStatus> {
    return guard('could not read the inbox record', async () => {
      await this.#db.insertInto('lore_inboxes').values({ url }).onConflict((oc) => oc.column('url').doNothing()).execute();
      return toInbox(await this.#db.selectFrom('lore_inboxes').selectAll().where('url', '=', url).executeTakeFirstOrThrow());
    });
  }

  async recordPoll(url: string, p: PollRecord): Promise<void> {
    await guard('could not record the poll', async () => {
      await this.#db
        .updateTable('lore_inboxes')
        .set((eb) => ({
          last_poll_at: sql`now()`,
          polls: eb('polls', '+', 1),
          messages_seen: eb('messages_seen', '+', p.messages),
          requests: eb('requests', '+', p.requests),
          ...(p.ok ? { last_ok_at: sql`now()` } : { last_error: cleanText(p.error ?? 'failed'), last_error_at: sql`now()`, poll_errors: eb('poll_errors', '+', 1) }),
          ...(p.cursorAt !== null ? { cursor_at: p.cursorAt, resume_since: null, resume_offset: 0 } : {}),
        }))
        .where('url', '=', url)
        .execute();
    });
  }

  /** How far this poll has listed (and stored) for its lower bound `since`. */
  async recordProgress(url: string, since: number, offset: number): Promise<void> {
    await guard('could not record the poll', async () => {
      await this.#db.updateTable('lore_inboxes').set({ resume_since: since, resume_offset: offset }).where('url', '=', url).execute();
    });
  }

  /** Stored messages this inbox also carries (a cross-post): one update for those that lack it, nothing for the rest. */
  async addInbox(inbox: string, messageIds: readonly string[]): Promise<void> {
    if (messageIds.length === 0) return;
    await guard('could not store mail', async () => {
      await this.#db.updateTable('lore_messages')
        .set({ inboxes: sql`inboxes || ${jsonb([inbox])}::jsonb` })
        .where('message_id', 'in', [...messageIds])
        .where(sql<boolean>`not (inboxes ? ${inbox})`)
        .execute();
    });
  }

  /** Which of these Message-IDs are stored already. */
  async seen(messageIds: readonly string[]): Promise<Set<string>> {
    if (messageIds.length === 0) return new Set();
    return guard('could not read the seen mail', async () => {
      const out = new Set<string>();
      for (let i = 0; i < messageIds.length; i += 500) {
        const rows = await this.#db.selectFrom('lore_messages').select('message_id').where('message_id', 'in', messageIds.slice(i, i + 500)).execute();
        for (const r of rows) out.add(r.message_id);
      }
      return out;
    });
  }

  /** The thread each of these stored messages is in. */
  async threadRoots(messageIds: readonly string[]): Promise<Map<string, string>> {
    if (messageIds.length === 0) return new Map();
    return guard('could not read threads', async () => {
      const out = new Map<string, string>();
      for (let i = 0; i < messageIds.length; i += 500) {
        const rows = await this.#db.selectFrom('lore_messages').select(['message_id', 'thread_root']).where('message_id', 'in', messageIds.slice(i, i + 500)).execute();
        for (const r of rows) out.set(r.message_id, r.thread_root);
      }
      return out;
    });
  }

  /**
   * Stores mail from an inbox, in one transaction: a message already stored
   * (a cross-post, an overlap) only gains the inbox; each thread with new
   * mail is marked to be judged. Returns how many messages were new.
   */
  async addMail(inbox: string, mail: readonly StoredMail[]): Promise<number> {
    if (mail.length === 0) return 0;
    return guard('could not store mail', () => this.#db.transaction().execute(async (trx) => {
      let added = 0;
      const roots = new Set<string>();
      for (const m of mail) {
        const inserted = await trx
          .insertInto('lore_messages')
          .values({
            message_id: m.messageId,
            thread_root: m.threadRoot,
            inboxes: jsonb([inbox]),
            subject: cleanText(m.subject),
            from_email: cleanText(m.fromEmail),
            date: m.date !== null && Number.isFinite(m.date.getTime()) ? m.date : null,
            raw: m.raw,
          })
          .onConflict((oc) => oc.column('message_id').doUpdateSet({
            inboxes: sql`case when lore_messages.inboxes ? ${inbox} then lore_messages.inboxes else lore_messages.inboxes || ${jsonb([inbox])}::jsonb end`,
          }))
          .returning(sql<boolean>`(xmax = 0)`.as('inserted'))
          .executeTakeFirst();
        if (inserted?.inserted === true) {
          added++;
          roots.add(m.threadRoot);
        }
      }
      for (const root of roots) {
        await trx
          .insertInto('lore_threads')
          .values({ root, inbox })
          .onConflict((oc) => oc.column('root').doUpdateSet({ dirty: true, last_mail_at: sql`now()` }))
          .execute();
      }
      return added;
    }));
  }

  /** Threads with mail to judge, oldest mail first, by pages (after: the last of the page before). */
  async dirtyThreads(limit: number, after?: { lastMailAt: Date; root: string }): Promise<Array<{ root: string; inbox: string; fetched: boolean; firstSeenAt: Date; lastMailAt: Date }>> {
    return guard('could not list threads', async () =>
      (await this.#db.selectFrom('lore_threads').selectAll().where('dirty', '=', true)
        // Keyed to the millisecond, as a Date carries it back.
        .$if(after !== undefined, (q) => q.where(sql<boolean>`(date_trunc('milliseconds', last_mail_at), root) > (${after?.lastMailAt ?? new Date(0)}::timestamptz, ${after?.root ?? ''})`))
        .orderBy(sql`date_trunc('milliseconds', last_mail_at)`).orderBy('root').limit(limit).execute())
        .map((r) => ({ root: r.root, inbox: r.inbox, fetched: r.fetched, firstSeenAt: r.first_seen_at, lastMailAt: r.last_mail_at })));
  }

  /** The raw mail of a thread, at most `limit` messages, oldest first. */
  /**
   * The raw mail of a thread, oldest first: at most `limit` messages and,
   * past `maxBytes` in all, no more (sizes are read first, so a thread of
   * huge mails is never all in memory).
   */
  async threadMail(root: string, limit: number, maxBytes = Number.MAX_SAFE_INTEGER): Promise<Array<{ messageId: string; raw: Buffer; inboxes: string[] }>> {
    return guard('could not read a thread', async () => {
      const sizes = await this.#db.selectFrom('lore_messages').select(['message_id', sql<number | string>`octet_length(raw)`.as('size')]).where('thread_root', '=', root)
        .orderBy('first_seen_at').orderBy('message_id').limit(limit).execute();
      const ids: string[] = [];
      let total = 0;
      for (const r of sizes) {
        total += Number(r.size);
        if (total > maxBytes) break;
        ids.push(r.message_id);
      }
      if (ids.length === 0) return [];
      const rows = await this.#db.selectFrom('lore_messages').select(['message_id', 'raw', 'inboxes']).where('message_id', 'in', ids)
        .orderBy('first_seen_at').orderBy('message_id').execute();
      return rows.map((r) => ({ messageId: r.message_id, raw: toBuffer(r.raw), inboxes: r.inboxes }));
    });
  }

  /**
   * Forgets what the watcher no longer needs, older than `before`: the mail
   * of threads with nothing left to judge, those threads, and the
   * decisions on threads without patches. Series decisions (the revision
   * links) stay. A late reply to a forgotten thread starts it again (and a
   * patch in it has the thread fetched anew). Returns what was removed.
   */
  async prune(before: Date): Promise<{ messages: number; threads: number; decisions: number }> {
    return guard('could not prune the watcher\'s mail', () => this.#db.transaction().execute(async (trx) => {
      const old = trx.selectFrom('lore_threads').select('root').where('dirty', '=', false).where('last_mail_at', '<', before);
      const messages = await trx.deleteFrom('lore_messages').where('thread_root', 'in', old).where('first_seen_at', '<', before).executeTakeFirst();
      const threads = await trx.deleteFrom('lore_threads').where('dirty', '=', false).where('last_mail_at', '<', before)
        .where((eb) => eb.not(eb.exists(eb.selectFrom('lore_messages').select('message_id').whereRef('lore_messages.thread_root', '=', 'lore_threads.root'))))
        .executeTakeFirst();
      const decisions = await trx.deleteFrom('lore_decisions').where('decision', '=', 'no-patches').where('decided_at', '<', before).executeTakeFirst();
      return { messages: Number(messages.numDeletedRows), threads: Number(threads.numDeletedRows), decisions: Number(decisions.numDeletedRows) };
    }));
  }

  async markThread(root: string, state: { dirty?: boolean; fetched?: boolean }): Promise<void> {
    await guard('could not update a thread', async () => {
      await this.#db.updateTable('lore_threads').set({
        ...(state.dirty !== undefined ? { dirty: state.dirty } : {}),
        ...(state.fetched !== undefined ? { fetched: state.fetched } : {}),
      }).where('root', '=', root).execute();
    });
  }

  async decisionByKey(key: string): Promise<LoreDecision | null> {
    return guard('could not read a decision', async () => {
      const r = await this.#db.selectFrom('lore_decisions').selectAll().where('key', '=', key).executeTakeFirst();
      return r === undefined ? null : toDecision(r);
    });
  }

  /** The queued decision that made a series, if the watcher made it. */
  async decisionBySeries(seriesId: string): Promise<LoreDecision | null> {
    return guard('could not read a decision', async () => {
      const row = await this.#db.selectFrom('lore_decisions').selectAll().where('series_id', '=', seriesId).where('decision', '=', 'queued')
        .orderBy('decided_at', 'asc').limit(1).executeTakeFirst();
      return row === undefined ? null : toDecision(row);
    });
  }

  /** Whether the watcher queued a series from this thread (its replies may hold commands for it). */
  async threadQueued(threadRoot: string): Promise<boolean> {
    return guard('could not read a decision', async () => {
      const r = await this.#db.selectFrom('lore_decisions').select('id').where('thread_root', '=', threadRoot).where('decision', '=', 'queued')
        .where('series_id', 'is not', null).limit(1).executeTakeFirst();
      return r !== undefined;
    });
  }

  /** Which decided revision, if any, queued this job. */
  async decisionByJob(jobId: string): Promise<LoreDecision | null> {
    return guard('could not read a decision', async () => {
      const r = await this.#db.selectFrom('lore_decisions').selectAll().where('job_id', '=', jobId).where('decision', '=', 'queued').executeTakeFirst();
      return r === undefined ? null : toDecision(r);
    });
  }

  /** The revision that queued these patches (by patchHash) on this tree and base, if any. */
  async queuedWithPatches(patchHash: string, tree: string, base: string): Promise<LoreDecision | null> {
    return guard('could not read a decision', async () => {
      const r = await this.#db.selectFrom('lore_decisions').selectAll().where('patch_hash', '=', patchHash)
        .where('tree', '=', tree).where('base', '=', base).where('decision', '=', 'queued').orderBy('decided_at').executeTakeFirst();
      return r === undefined ? null : toDecision(r);
    });
  }

  /** Records a decision once per key; a second writer gets the first one back (created false). */
  async decide(d: NewLoreDecision): Promise<{ decision: LoreDecision; created: boolean }> {
    return guard('could not record a decision', async () => {
      const inserted = await this.#db.insertInto('lore_decisions').values({
        id: newId('d'),
        key: cleanText(d.key),
        thread_root: d.threadRoot,
        inbox: d.inbox,
        identity: d.identity === null ? null : cleanText(d.identity),
        version: d.version,
        title: cleanText(d.title),
        author: cleanText(d.author),
        root_message_id: d.rootMessageId,
        decision: d.decision,
        reason: cleanText(d.reason),
        tree: d.tree,
        base: d.base,
        base_rule: d.baseRule,
        patch_hash: d.patchHash,
        series_id: d.seriesId,
        job_id: d.jobId,
      }).onConflict((oc) => oc.column('key').doNothing()).returningAll().executeTakeFirst();
      if (inserted !== undefined) return { decision: toDecision(inserted), created: true };
      const existing = await this.#db.selectFrom('lore_decisions').selectAll().where('key', '=', d.key).executeTakeFirstOrThrow();
      return { decision: toDecision(existing), created: false };
    });
  }

  /** Recent decisions, newest first, paged. */
  async decisions(opts: { limit: number; cursor?: string; decision?: LoreDecisionKind; exclude?: readonly LoreDecisionKind[] }): Promise<Page<LoreDecision>> {
    const limit = checkLimit(opts.limit);
    const after = opts.cursor === undefined ? null : decodeCursor(opts.cursor, 'd');
    return guard('could not list decisions', async () => {
      let q = this.#db.selectFrom('lore_decisions').selectAll().select(CURSOR_TS.as('cursor_ts'));
      if (opts.decision !== undefined) q = q.where('decision', '=', opts.decision);
      if (opts.exclude !== undefined && opts.exclude.length > 0) q = q.where('decision', 'not in', [...opts.exclude]);
      if (after !== null) q = q.where(sql<boolean>`(decided_at, id) < (${after.createdAt}::timestamptz, ${after.id})`);
      const rows = await q.orderBy('decided_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
      return toPage(rows, limit, toDecision);
    });
  }

  /** Every decided revision of a series (by identity), oldest version first: the v1 -> v2 -> v3 links. */
  async revisions(identity: string): Promise<LoreDecision[]> {
    return guard('could not list revisions', async () =>
      (await this.#db.selectFrom('lore_decisions').selectAll().where('identity', '=', identity)
        .orderBy('version').orderBy('decided_at').execute()).map(toDecision));
  }

  /** Counters for /metrics. */
  async counts(): Promise<{ polls: number; pollErrors: number; messages: number; requests: number; decisions: Record<string, number> }> {
    return guard('could not count', async () => {
      const t = await this.#db.selectFrom('lore_inboxes').select([
        sql<string>`coalesce(sum(polls), 0)`.as('polls'),
        sql<string>`coalesce(sum(poll_errors), 0)`.as('errors'),
        sql<string>`coalesce(sum(messages_seen), 0)`.as('messages'),
        sql<string>`coalesce(sum(requests), 0)`.as('requests'),
      ]).executeTakeFirstOrThrow();
      const rows = await this.#db.selectFrom('lore_decisions').select(['decision', sql<string>`count(*)`.as('n')]).groupBy('decision').execute();
      return {
        polls: Number(t.polls),
        pollErrors: Number(t.errors),
        messages: Number(t.messages),
        requests: Number(t.requests),
        decisions: Object.fromEntries(rows.map((r) => [r.decision, Number(r.n)])),
      };
    });
  }

  /**
   * Takes or renews the named lease for holder until now + ttlMs; false when
   * another holder's lease has not expired. The database's clock decides.
   */
  async lease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    return guard('could not take the lease', async () => {
      const until = sql<Date>`now() + make_interval(secs => ${ttlMs / 1000})`;
      const r = await this.#db.insertInto('lore_lease').values({ name, holder, expires_at: until })
        .onConflict((oc) => oc.column('name').doUpdateSet({ holder, expires_at: until })
          .where((eb) => eb.or([eb('lore_lease.holder', '=', holder), eb('lore_lease.expires_at', '<', sql<Date>`now()`)])))
        .returning('holder').executeTakeFirst();
      return r?.holder === holder;
    });
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await guard('could not release the lease', async () => {
      await this.#db.deleteFrom('lore_lease').where('name', '=', name).where('holder', '=', holder).execute();
    });
  }

  async leaseHolder(name: string): Promise<{ holder: string; expiresAt: Date } | null> {
    return guard('could not read the lease', async () => {
      const r = await this.#db.selectFrom('lore_lease').selectAll().where('name', '=', name).where('expires_at', '>', sql<Date>`now()`).executeTakeFirst();
      return r === undefined ? null : { holder: r.holder, expiresAt: r.expires_at };
    });
  }
}

/**
 * 0005: the lore watcher's state (issue 12). Per inbox, the received-time
 * cursor and the poll record; every message seen, once, whichever inboxes
 * carried it; threads with new mail still to judge; one decision per series
 * revision (or per thread without patches), unique by its key, so a revision
 * is queued at most once across restarts, re-posts and cross-posts; and a
 * lease so that one watcher polls at a time.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('lore_inboxes')
    .addColumn('url', 'text', (c) => c.primaryKey())
    // Messages received (public-inbox's rt:) at or after this are listed next poll, less the overlap margin.
    .addColumn('cursor_at', 'timestamptz')
    // How far a poll that stopped part way got, for the same lower bound (epoch seconds): the next resumes there.
    .addColumn('resume_since', 'bigint')
    .addColumn('resume_offset', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_poll_at', 'timestamptz')
    .addColumn('last_ok_at', 'timestamptz')
    .addColumn('last_error', 'text')
    .addColumn('last_error_at', 'timestamptz')
    .addColumn('polls', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('poll_errors', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('messages_seen', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('requests', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable('lore_messages')
    .addColumn('message_id', 'text', (c) => c.primaryKey())
    .addColumn('thread_root', 'text', (c) => c.notNull())
    .addColumn('inboxes', 'jsonb', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('from_email', 'text', (c) => c.notNull())
    .addColumn('date', 'timestamptz')
    .addColumn('raw', 'bytea', (c) => c.notNull())
    .addColumn('first_seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('lore_messages_thread_idx').on('lore_messages').column('thread_root').execute();

  await db.schema
    .createTable('lore_threads')
    .addColumn('root', 'text', (c) => c.primaryKey())
    .addColumn('inbox', 'text', (c) => c.notNull())
    // New mail not yet judged, or a revision still waiting for its patches.
    .addColumn('dirty', 'boolean', (c) => c.notNull().defaultTo(true))
    // The whole thread was fetched once (its root predates the watcher).
    .addColumn('fetched', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('first_seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_mail_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('lore_threads_dirty_idx').on('lore_threads').column('dirty').execute();

  await db.schema
    .createTable('lore_decisions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    // "rev:<identity>\0v<version>" for a revision, "thread:<root>" for a thread without patches.
    .addColumn('key', 'text', (c) => c.notNull().unique())
    .addColumn('thread_root', 'text', (c) => c.notNull())
    .addColumn('inbox', 'text', (c) => c.notNull())
    .addColumn('identity', 'text')
    .addColumn('version', 'integer')
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('author', 'text', (c) => c.notNull())
    .addColumn('root_message_id', 'text', (c) => c.notNull())
    .addColumn('decision', 'text', (c) => c.notNull().check(sql`decision in ('queued', 'duplicate', 'not-relevant', 'incomplete', 'no-base', 'invalid', 'no-patches')`))
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('tree', 'text')
    .addColumn('base', 'text')
    .addColumn('base_rule', 'text')
    // sha256 of the patches' diffs (not their mail): a RESEND of the same patches has the same.
    .addColumn('patch_hash', 'text')
    .addColumn('series_id', 'text', (c) => c.references('series.id').onDelete('set null'))
    .addColumn('job_id', 'text', (c) => c.references('jobs.id').onDelete('set null'))
    .addColumn('decided_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('lore_decisions_decided_idx').on('lore_decisions').columns(['decided_at desc', 'id desc']).execute();
  await db.schema.createIndex('lore_decisions_patch_hash_idx').on('lore_decisions').column('patch_hash').execute();
  await db.schema.createIndex('lore_decisions_identity_idx').on('lore_decisions').columns(['identity', 'version']).execute();

  await db.schema
    .createTable('lore_lease')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();

  // Which rule picked a job's base (issue 12): reports name it.
  await db.schema.alterTable('jobs').addColumn('base_rule', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('jobs').dropColumn('base_rule').execute();
  for (const t of ['lore_lease', 'lore_decisions', 'lore_threads', 'lore_messages', 'lore_inboxes']) {
    await db.schema.dropTable(t).execute();
  }
}

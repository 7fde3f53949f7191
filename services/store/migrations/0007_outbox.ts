/**
 * 0007: mail reports (issue 13). The outbox: one row per report, unique by
 * its key (a series revision's nth result report, or the acknowledgement
 * of one reply command), written in the transaction that records the
 * verdict, then claimed, sent and marked by the reporter. And the reply
 * commands read from threads, once each by their Message-ID.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('outbox')
    .addColumn('id', 'text', (c) => c.primaryKey())
    // "result:<revision root Message-ID>:<n>" or "ack:<command Message-ID>".
    .addColumn('key', 'text', (c) => c.notNull().unique())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('result', 'ack')`))
    // The revision the report is about: the Message-ID of its thread's root mail (cover letter, else patch 1).
    .addColumn('revision', 'text', (c) => c.notNull())
    .addColumn('series_id', 'text', (c) => c.notNull().references('series.id').onDelete('cascade'))
    .addColumn('job_id', 'text', (c) => c.references('jobs.id').onDelete('set null'))
    .addColumn('verdict', 'text')
    .addColumn('inbox', 'text')
    .addColumn('mode', 'text', (c) => c.notNull().check(sql`mode in ('dry-run', 'author', 'author+list')`))
    .addColumn('message_id', 'text', (c) => c.notNull().unique())
    .addColumn('in_reply_to', 'text', (c) => c.notNull())
    .addColumn('references', 'jsonb', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('recipients', 'jsonb', (c) => c.notNull())
    // For an acknowledgement: its text (a result report is rendered from the job when first sent).
    .addColumn('body', 'text')
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'sending', 'sent', 'failed', 'held', 'skipped')`))
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('claimed_by', 'text')
    .addColumn('claimed_until', 'timestamptz')
    .addColumn('last_error', 'text')
    // The message as composed at its first claim: every later try sends these bytes.
    .addColumn('raw', 'bytea')
    .addColumn('sent_at', 'timestamptz')
    // smtp (the relay accepted it), outbox-folder (dry run), archive (found in the list's archive after its sender died).
    .addColumn('sent_via', 'text')
    .addColumn('smtp_response', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('outbox_due_idx').on('outbox').columns(['status', 'next_attempt_at']).execute();
  await db.schema.createIndex('outbox_revision_idx').on('outbox').columns(['revision', 'kind', 'created_at']).execute();
  await db.schema.createIndex('outbox_job_idx').on('outbox').column('job_id').execute();
  await db.schema.createIndex('outbox_created_idx').on('outbox').columns(['created_at desc', 'id desc']).execute();

  await db.schema
    .createTable('report_commands')
    .addColumn('message_id', 'text', (c) => c.primaryKey())
    .addColumn('thread_root', 'text', (c) => c.notNull())
    .addColumn('series_id', 'text', (c) => c.references('series.id').onDelete('cascade'))
    .addColumn('from_email', 'text', (c) => c.notNull())
    // retest, base, unrelated
    .addColumn('command', 'text', (c) => c.notNull())
    .addColumn('argument', 'text')
    // done, refused (with the reason), ignored (not someone who may command).
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text', (c) => c.references('jobs.id').onDelete('set null'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('report_commands_series_idx').on('report_commands').column('series_id').execute();

  // A failure a maintainer or the author said the series did not cause ("patchbay: unrelated").
  await db.schema.alterTable('jobs').addColumn('unrelated_by', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('jobs').dropColumn('unrelated_by').execute();
  await db.schema.dropTable('report_commands').execute();
  await db.schema.dropTable('outbox').execute();
}

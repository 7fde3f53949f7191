/**
 * 0008: lab runners (issue 14). Runners registered with a one-time token,
 * each with its own credential (stored hashed), labels and capacity; leases,
 * one per attempt a runner holds, with an expiry it renews; and on jobs: the
 * pool that runs them (the in-cluster queue or lab runners), what a runner
 * must have to take one, its current lease, when it may next be taken (a
 * retry's backoff) and whether a cancel was asked for while it ran.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('runners')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('credential_hash', 'text', (c) => c.notNull().unique())
    // A rotated credential not yet used: both are good until the new one is.
    .addColumn('next_credential_hash', 'text', (c) => c.unique())
    .addColumn('labels', 'jsonb', (c) => c.notNull())
    .addColumn('capacity', 'integer', (c) => c.notNull().check(sql`capacity between 1 and 64`))
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('active').check(sql`state in ('active', 'draining', 'revoked')`))
    .addColumn('version', 'text')
    .addColumn('warm_bases', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('registered_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_seen_at', 'timestamptz')
    .addColumn('rotated_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('jobs_done', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  // A name is taken while its runner is not revoked.
  await sql`create unique index runners_live_name_idx on runners (name) where state <> 'revoked'`.execute(db);

  await db.schema
    .createTable('runner_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('hash', 'text', (c) => c.notNull().unique())
    .addColumn('note', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('used_by', 'text', (c) => c.references('runners.id').onDelete('set null'))
    .execute();

  await db.schema
    .createTable('leases')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
    .addColumn('runner_id', 'text', (c) => c.notNull().references('runners.id').onDelete('cascade'))
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    // No renewal past this: a runner cannot hold a job for ever.
    .addColumn('deadline_at', 'timestamptz', (c) => c.notNull())
    .addColumn('ended_at', 'timestamptz')
    .addColumn('outcome', 'text', (c) => c.check(sql`outcome in ('result', 'retry', 'released', 'cancelled', 'lapsed', 'lost', 'revoked')`))
    .addColumn('log_bytes', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('leases_job_idx').on('leases').column('job_id').execute();
  await sql`create index leases_open_idx on leases (expires_at) where ended_at is null`.execute(db);
  await sql`create index leases_runner_open_idx on leases (runner_id) where ended_at is null`.execute(db);

  await db.schema
    .alterTable('jobs')
    .addColumn('pool', 'text', (c) => c.notNull().defaultTo('queue').check(sql`pool in ('queue', 'runners')`))
    .addColumn('requires', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('lease_id', 'text')
    .addColumn('not_before', 'timestamptz')
    .addColumn('cancel_requested_at', 'timestamptz')
    .execute();
  await sql`create index jobs_runner_queue_idx on jobs (created_at) where pool = 'runners' and status = 'queued'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index jobs_runner_queue_idx`.execute(db);
  await db.schema.alterTable('jobs').dropColumn('pool').dropColumn('requires').dropColumn('lease_id').dropColumn('not_before').dropColumn('cancel_requested_at').execute();
  await db.schema.dropTable('leases').execute();
  await db.schema.dropTable('runner_tokens').execute();
  await db.schema.dropTable('runners').execute();
}

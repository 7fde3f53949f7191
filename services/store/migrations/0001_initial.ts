/**
 * 0001: series and their patches, jobs with their stage runs and per-test
 * results, API tokens. Never edit a migration that has shipped: add one.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('series')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('total', 'integer', (c) => c.notNull().check(sql`total >= 0`))
    .addColumn('is_rfc', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('root_message_id', 'text', (c) => c.notNull())
    .addColumn('change_id', 'text')
    .addColumn('base_commit', 'text')
    .addColumn('tree_tags', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('source', 'text', (c) => c.notNull().check(sql`source in ('upload', 'message-id', 'lore')`))
    .addColumn('inbox_url', 'text')
    .addColumn('content_hash', 'text', (c) => c.notNull().check(sql`content_hash ~ '^[0-9a-f]{64}$'`))
    .addColumn('submitted_by', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // The list, newest first, paged by (created_at, id).
  await db.schema.createIndex('series_created_idx').on('series').columns(['created_at desc', 'id desc']).execute();
  await db.schema.createIndex('series_content_hash_idx').on('series').column('content_hash').execute();
  // list({ tree }): tree_tags @> '["tree"]'.
  await db.schema.createIndex('series_tree_tags_idx').on('series').using('gin').column('tree_tags').execute();

  await db.schema
    .createTable('patches')
    .addColumn('series_id', 'text', (c) => c.notNull().references('series.id').onDelete('cascade'))
    .addColumn('counter', 'integer', (c) => c.notNull().check(sql`counter >= 0`))
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('author_name', 'text', (c) => c.notNull())
    .addColumn('author_email', 'text', (c) => c.notNull())
    .addColumn('files', 'jsonb', (c) => c.notNull())
    .addColumn('trailers', 'jsonb', (c) => c.notNull())
    .addColumn('raw', 'bytea', (c) => c.notNull())
    .addPrimaryKeyConstraint('patches_pkey', ['series_id', 'counter'])
    .execute();
  // "Have we seen this mail?" (the lore watcher).
  await db.schema.createIndex('patches_message_id_idx').on('patches').column('message_id').execute();

  await db.schema
    .createTable('jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('series_id', 'text', (c) => c.notNull().references('series.id').onDelete('cascade'))
    .addColumn('tree', 'text', (c) => c.notNull())
    .addColumn('base', 'text')
    .addColumn('suites', 'jsonb', (c) => c.notNull())
    .addColumn('idempotency_key', 'text', (c) => c.notNull().unique())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('queued', 'running', 'PASS', 'FAIL', 'ERROR', 'MISS', 'SKIP', 'cancelled')`),
    )
    .addColumn('stage', 'text')
    .addColumn('summary', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('worker', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('started_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .addColumn('deadline_at', 'timestamptz')
    .addColumn('base_commit', 'text')
    .addColumn('head_commit', 'text')
    .addColumn('accel', 'text')
    .addColumn('build_mode', 'text')
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('artifacts_dir', 'text')
    .addColumn('result', 'jsonb')
    .execute();
  // list() with no filter, by status, by series, by tree: newest first, paged by (created_at, id).
  await db.schema.createIndex('jobs_created_idx').on('jobs').columns(['created_at desc', 'id desc']).execute();
  await db.schema.createIndex('jobs_status_idx').on('jobs').columns(['status', 'created_at desc', 'id desc']).execute();
  await db.schema.createIndex('jobs_series_idx').on('jobs').columns(['series_id', 'created_at desc', 'id desc']).execute();
  await db.schema.createIndex('jobs_tree_idx').on('jobs').columns(['tree', 'created_at desc', 'id desc']).execute();

  await db.schema
    .createTable('stage_runs')
    .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .addColumn('summary', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('stage_runs_pkey', ['job_id', 'seq'])
    .execute();

  await db.schema
    .createTable('test_results')
    .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
    .addColumn('suite', 'text', (c) => c.notNull())
    .addColumn('test', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('test_results_pkey', ['job_id', 'suite', 'test'])
    .execute();

  await db.schema
    .createTable('tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('hash', 'text', (c) => c.notNull().unique().check(sql`hash ~ '^[0-9a-f]{64}$'`))
    .addColumn('scopes', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_used_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['tokens', 'test_results', 'stage_runs', 'jobs', 'patches', 'series']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}

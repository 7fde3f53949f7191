/**
 * A job may apply prerequisite patches before its series (b4's
 * prerequisite-patch-id / prerequisite-message-id): they are stored as a
 * series of their own, which the job names. A series a job names as its
 * prerequisites is not removed while that job exists.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('jobs').addColumn('prerequisites_id', 'text', (c) => c.references('series.id').onDelete('restrict')).execute();
  await db.schema.createIndex('jobs_prerequisites_id_idx').on('jobs').column('prerequisites_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('jobs_prerequisites_id_idx').execute();
  await db.schema.alterTable('jobs').dropColumn('prerequisites_id').execute();
}

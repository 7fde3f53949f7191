/**
 * Who submitted each job (a token id; null for the CLI and the watcher):
 * only they, or an admin, may cancel it, and a token's queued and running
 * jobs are counted against its cap. Jobs recorded before this have none.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('jobs').addColumn('submitted_by', 'text').execute();
  await db.schema.createIndex('jobs_submitted_by_status_idx').on('jobs').columns(['submitted_by', 'status']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('jobs_submitted_by_status_idx').execute();
  await db.schema.alterTable('jobs').dropColumn('submitted_by').execute();
}

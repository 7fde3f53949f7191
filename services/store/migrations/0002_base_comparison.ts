/**
 * Each test result's comparison with the base kernel: the base's status,
 * the classification, and fails:runs on both kernels after re-runs.
 * Rows recorded before this migration are "no-base" with one series run.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('test_results')
    .addColumn('base_status', 'text')
    .addColumn('comparison', 'text', (c) =>
      c
        .notNull()
        .defaultTo('no-base')
        .check(sql`comparison in ('new-failure', 'pre-existing', 'fixed', 'flaky', 'unchanged', 'no-base')`),
    )
    .addColumn('series_fails', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('series_runs', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('base_fails', 'integer')
    .addColumn('base_runs', 'integer')
    .execute();
  await sql`update test_results set series_fails = 1 where status in ('FAIL', 'ERROR')`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('test_results')
    .dropColumn('base_status')
    .dropColumn('comparison')
    .dropColumn('series_fails')
    .dropColumn('series_runs')
    .dropColumn('base_fails')
    .dropColumn('base_runs')
    .execute();
}

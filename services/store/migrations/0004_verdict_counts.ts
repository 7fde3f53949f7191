/**
 * Verdicts on counted evidence (issue 11): a test's skipped and missing
 * runs on each kernel beside fails:runs, and the comparisons that came with
 * them (now-skips, now-missing, unconfirmed). Rows recorded before this
 * migration have no skipped or missing runs.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table test_results drop constraint if exists test_results_comparison_check`.execute(db);
  await sql`alter table test_results add constraint test_results_comparison_check check (comparison in ('new-failure', 'now-skips', 'now-missing', 'unconfirmed', 'pre-existing', 'fixed', 'flaky', 'unchanged', 'no-base'))`.execute(db);
  await db.schema
    .alterTable('test_results')
    .addColumn('series_skips', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('series_missing', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('base_skips', 'integer')
    .addColumn('base_missing', 'integer')
    .execute();
  await sql`update test_results set series_skips = series_runs where status = 'SKIP'`.execute(db);
  await sql`update test_results set base_skips = 0, base_missing = 0 where base_runs is not null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('test_results')
    .dropColumn('series_skips')
    .dropColumn('series_missing')
    .dropColumn('base_skips')
    .dropColumn('base_missing')
    .execute();
  await sql`alter table test_results drop constraint if exists test_results_comparison_check`.execute(db);
  await sql`alter table test_results add constraint test_results_comparison_check check (comparison in ('new-failure', 'pre-existing', 'fixed', 'flaky', 'unchanged', 'no-base'))`.execute(db);
}

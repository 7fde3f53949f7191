/**
 * Every migration, in order, named NNNN_name. They are listed here in code
 * (not found on disk by a glob) so that a bundled or relocated build runs
 * exactly these. To add one: write NNNN_name.ts beside this file with up()
 * (and down()), then add it below. Kysely runs them in name order and
 * records each in kysely_migration.
 */
import type { Migration } from 'kysely';
import * as m0001 from './0001_initial.ts';
import * as m0002 from './0002_base_comparison.ts';
import * as m0003 from './0003_job_submitter.ts';
import * as m0004 from './0004_verdict_counts.ts';
import * as m0005 from './0005_lore_watcher.ts';
import * as m0006 from './0006_job_prerequisites.ts';
import * as m0007 from './0007_outbox.ts';
import * as m0008 from './0008_runners.ts';

export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001_initial': m0001,
  '0002_base_comparison': m0002,
  '0003_job_submitter': m0003,
  '0004_verdict_counts': m0004,
  '0005_lore_watcher': m0005,
  '0006_job_prerequisites': m0006,
  '0007_outbox': m0007,
  '0008_runners': m0008,
};

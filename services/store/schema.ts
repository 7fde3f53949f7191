/**
 * The tables as Kysely sees them (what migrations/ builds). Column names are
 * the SQL ones; the repositories map rows to camelCase records.
 *
 * jsonb columns are written as JSON text (util.jsonb) and read back parsed;
 * bytea is written as a Buffer and read back as a Buffer (node-postgres) or
 * a Uint8Array (PGlite).
 */
import type { ColumnType, Generated } from 'kysely';
import type { JobRequirements, RunnerLabels, WarmBaseHeld } from '../domain/runners.ts';
import type { Status } from '../domain/status.ts';

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type GeneratedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json<T> = ColumnType<T, string, string>;
type Bytes = ColumnType<Uint8Array, Uint8Array, Uint8Array>;

export const SERIES_SOURCES = ['upload', 'message-id', 'lore'] as const;
export type SeriesSource = (typeof SERIES_SOURCES)[number];

/** A job's lifecycle: queued, running, then a verdict (PASS ... SKIP) or cancelled. */
export const JOB_STATUSES = ['queued', 'running', 'PASS', 'FAIL', 'ERROR', 'MISS', 'SKIP', 'cancelled'] as const;
export type JobStatus = 'queued' | 'running' | Status | 'cancelled';

export const TOKEN_SCOPES = ['submit', 'read', 'admin'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

export interface SeriesTable {
  id: string;
  title: string;
  version: number;
  total: number;
  is_rfc: boolean;
  root_message_id: string;
  change_id: string | null;
  base_commit: string | null;
  tree_tags: Json<string[]>;
  source: SeriesSource;
  inbox_url: string | null;
  content_hash: string;
  submitted_by: string | null;
  created_at: GeneratedTimestamp;
}

export interface PatchesTable {
  series_id: string;
  /** 1..total; 0 is the cover letter. */
  counter: number;
  subject: string;
  message_id: string;
  author_name: string;
  author_email: string;
  files: Json<unknown[]>;
  trailers: Json<unknown[]>;
  raw: Bytes;
}

export interface JobsTable {
  id: string;
  series_id: string;
  tree: string;
  base: string | null;
  suites: Json<string[]>;
  idempotency_key: string;
  status: JobStatus;
  stage: string | null;
  summary: Generated<string>;
  attempts: Generated<number>;
  worker: string | null;
  created_at: GeneratedTimestamp;
  started_at: Timestamp | null;
  finished_at: Timestamp | null;
  deadline_at: Timestamp | null;
  base_commit: string | null;
  head_commit: string | null;
  accel: string | null;
  build_mode: string | null;
  error_code: string | null;
  error_message: string | null;
  artifacts_dir: string | null;
  result: Json<unknown> | null;
  /** The token that asked for the job; null: the CLI or the watcher. */
  submitted_by: string | null;
  /** The rule that picked the base (services/intake/base.ts); null: decided by the executor. */
  base_rule: Generated<string | null>;
  /** The series of prerequisite patches applied before the job's series; null: none. */
  prerequisites_id: Generated<string | null>;
  /** Who said its failure is not the series' doing (`patchbay: unrelated`); null: nobody. */
  unrelated_by: Generated<string | null>;
  /** Who runs it: the in-cluster queue (BullMQ workers) or lab runners (leases over the API). */
  pool: Generated<JobPool>;
  /** What a lab runner must have to take it (services/domain/runners.ts). */
  requires: ColumnType<JobRequirements, string | undefined, string>;
  /** The runner lease it runs under; null when no runner holds it. */
  lease_id: Generated<string | null>;
  /** A retry's backoff: no runner takes it before this. */
  not_before: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** A cancel asked for while a runner held it: the runner is told at its next heartbeat. */
  cancel_requested_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export const JOB_POOLS = ['queue', 'runners'] as const;
export type JobPool = (typeof JOB_POOLS)[number];

export const RUNNER_STATES = ['active', 'draining', 'revoked'] as const;
export type RunnerState = (typeof RUNNER_STATES)[number];

export interface RunnersTable {
  id: string;
  name: string;
  credential_hash: string;
  next_credential_hash: string | null;
  labels: Json<RunnerLabels>;
  capacity: number;
  state: Generated<RunnerState>;
  version: string | null;
  warm_bases: ColumnType<WarmBaseHeld[], string | undefined, string>;
  registered_at: GeneratedTimestamp;
  last_seen_at: Timestamp | null;
  rotated_at: Timestamp | null;
  revoked_at: Timestamp | null;
  jobs_done: Generated<number>;
  failures: Generated<number>;
}

export interface RunnerTokensTable {
  id: string;
  hash: string;
  note: string;
  created_at: GeneratedTimestamp;
  expires_at: Timestamp;
  used_at: Timestamp | null;
  used_by: string | null;
}

export const LEASE_OUTCOMES = ['result', 'retry', 'released', 'cancelled', 'lapsed', 'lost', 'revoked'] as const;
export type LeaseOutcome = (typeof LEASE_OUTCOMES)[number];

export interface LeasesTable {
  id: string;
  job_id: string;
  runner_id: string;
  attempt: number;
  created_at: GeneratedTimestamp;
  expires_at: Timestamp;
  deadline_at: Timestamp;
  ended_at: Timestamp | null;
  outcome: LeaseOutcome | null;
  log_bytes: Generated<number>;
}

export interface StageRunsTable {
  job_id: string;
  seq: number;
  stage: string;
  status: string;
  duration_ms: number;
  summary: string;
}

export interface TestResultsTable {
  job_id: string;
  suite: string;
  test: string;
  status: string;
  detail: string;
  base_status: string | null;
  comparison: string;
  series_fails: number;
  series_runs: number;
  series_skips: number;
  series_missing: number;
  base_fails: number | null;
  base_runs: number | null;
  base_skips: number | null;
  base_missing: number | null;
}

export interface TokensTable {
  id: string;
  name: string;
  hash: string;
  scopes: Json<TokenScope[]>;
  created_at: GeneratedTimestamp;
  last_used_at: Timestamp | null;
  revoked_at: Timestamp | null;
}

export const LORE_DECISIONS = ['queued', 'duplicate', 'not-relevant', 'incomplete', 'no-base', 'invalid', 'no-patches'] as const;
export type LoreDecisionKind = (typeof LORE_DECISIONS)[number];

export interface LoreInboxesTable {
  url: string;
  cursor_at: Timestamp | null;
  resume_since: ColumnType<string | null, number | null, number | null>;
  resume_offset: Generated<number>;
  last_poll_at: Timestamp | null;
  last_ok_at: Timestamp | null;
  last_error: string | null;
  last_error_at: Timestamp | null;
  polls: Generated<number>;
  poll_errors: Generated<number>;
  messages_seen: Generated<number>;
  requests: Generated<number>;
}

export interface LoreMessagesTable {
  message_id: string;
  thread_root: string;
  inboxes: Json<string[]>;
  subject: string;
  from_email: string;
  date: Timestamp | null;
  raw: Bytes;
  first_seen_at: GeneratedTimestamp;
}

export interface LoreThreadsTable {
  root: string;
  inbox: string;
  dirty: Generated<boolean>;
  fetched: Generated<boolean>;
  first_seen_at: GeneratedTimestamp;
  last_mail_at: GeneratedTimestamp;
}

export interface LoreDecisionsTable {
  id: string;
  key: string;
  thread_root: string;
  inbox: string;
  identity: string | null;
  version: number | null;
  title: string;
  author: string;
  root_message_id: string;
  decision: LoreDecisionKind;
  reason: string;
  tree: string | null;
  base: string | null;
  base_rule: string | null;
  patch_hash: string | null;
  series_id: string | null;
  job_id: string | null;
  decided_at: GeneratedTimestamp;
}

export interface LoreLeaseTable {
  name: string;
  holder: string;
  expires_at: Timestamp;
}

export const OUTBOX_STATUSES = ['pending', 'sending', 'sent', 'failed', 'held', 'skipped'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

export interface OutboxTable {
  id: string;
  key: string;
  kind: 'result' | 'ack';
  revision: string;
  series_id: string;
  job_id: string | null;
  verdict: string | null;
  inbox: string | null;
  mode: 'dry-run' | 'author' | 'author+list';
  message_id: string;
  in_reply_to: string;
  references: Json<string[]>;
  subject: string;
  recipients: Json<{ to: Array<{ name: string; email: string }>; cc: Array<{ name: string; email: string }>; optedOut: string[] }>;
  body: string | null;
  status: OutboxStatus;
  reason: string;
  attempts: Generated<number>;
  next_attempt_at: GeneratedTimestamp;
  claimed_by: string | null;
  claimed_until: Timestamp | null;
  last_error: string | null;
  raw: Bytes | null;
  sent_at: Timestamp | null;
  sent_via: string | null;
  smtp_response: string | null;
  created_at: GeneratedTimestamp;
}

export interface ReportCommandsTable {
  message_id: string;
  thread_root: string;
  series_id: string | null;
  from_email: string;
  command: string;
  argument: string | null;
  outcome: string;
  detail: string;
  job_id: string | null;
  created_at: GeneratedTimestamp;
}

export interface Database {
  series: SeriesTable;
  patches: PatchesTable;
  jobs: JobsTable;
  stage_runs: StageRunsTable;
  test_results: TestResultsTable;
  tokens: TokensTable;
  lore_inboxes: LoreInboxesTable;
  lore_messages: LoreMessagesTable;
  lore_threads: LoreThreadsTable;
  lore_decisions: LoreDecisionsTable;
  lore_lease: LoreLeaseTable;
  outbox: OutboxTable;
  report_commands: ReportCommandsTable;
  runners: RunnersTable;
  runner_tokens: RunnerTokensTable;
  leases: LeasesTable;
}

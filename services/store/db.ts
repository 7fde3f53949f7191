/**
 * The durable state of the service. One code path for two backends:
 * PostgreSQL (a pg Pool) when a DATABASE_URL is configured, else PGlite,
 * PostgreSQL embedded in this process with its files under
 * `${dataDir}/pglite`. Both run the same Kysely queries and the same
 * migrations, which are applied when the store opens.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, Migrator, PostgresDialect, type Dialect, type MigrationProvider } from 'kysely';
import pg from 'pg';
import { PatchbayError, errorMessage } from '../domain/errors.ts';
import { processAlive } from '../platform/process.ts';
import { CommandRepo } from './command-repo.ts';
import { JobRepo } from './job-repo.ts';
import { RunnerRepo } from './runner-repo.ts';
import { LoreRepo } from './lore-repo.ts';
import { OutboxRepo } from './outbox-repo.ts';
import { MIGRATIONS } from './migrations/index.ts';
import { PGliteDialect } from './pglite-dialect.ts';
import type { Database } from './schema.ts';
import { SeriesRepo } from './series-repo.ts';
import { TokenRepo } from './token-repo.ts';
import { storeError } from './util.ts';

export type { Database, JobPool, JobStatus, RunnerState, SeriesSource, TokenScope } from './schema.ts';
export { JOB_STATUSES, SERIES_SOURCES, TOKEN_SCOPES } from './schema.ts';
export { JobRepo, jobIdempotencyKey, type CreateJobInput, type Job, type JobWithResult, type ListJobsOptions } from './job-repo.ts';
export {
  SeriesRepo,
  seriesContentHash,
  type CreateSeriesInput,
  type ListSeriesOptions,
  type SeriesRecord,
  type StoredPatch,
} from './series-repo.ts';
export { TokenRepo, hashSecret, type Token } from './token-repo.ts';
export { OutboxRepo, RESULT_KEY, ACK_KEY, reportMessageId, replyTargetOf, type OutboxEntry, type ReportPlanning, type ListOutboxOptions } from './outbox-repo.ts';
export { CommandRepo, COMMAND_OUTCOMES, type CommandAck, type CommandOutcome, type NewReportCommand, type ReportCommand } from './command-repo.ts';
export { LoreRepo, type LoreDecision, type LoreInboxStatus, type NewLoreDecision, type StoredMail } from './lore-repo.ts';
export { RunnerRepo, leaseLapsedResult, type HeartbeatAnswer, type Lease, type LeasePolicy, type Runner, type RunnerWithLeases } from './runner-repo.ts';
export type { Page } from './util.ts';

export interface OpenDatabaseOptions {
  /** postgresql://... (Config.databaseUrl); null: embedded PGlite. */
  databaseUrl: string | null;
  /** Where PGlite keeps its files (`${dataDir}/pglite`); unused with a databaseUrl. */
  dataDir: string;
  /** pg Pool size (PostgreSQL only). Default 10. */
  poolSize?: number;
}

export interface Store {
  readonly backend: 'pglite' | 'postgres';
  readonly series: SeriesRepo;
  readonly jobs: JobRepo;
  readonly tokens: TokenRepo;
  /** The lore watcher's cursors, mail, threads and decisions. */
  readonly lore: LoreRepo;
  /** Mail reports and acknowledgements, and their sending. */
  readonly outbox: OutboxRepo;
  /** Reply commands read from threads (`patchbay: retest` ...), once each. */
  readonly commands: CommandRepo;
  /** Lab runners and the leases they hold on jobs. */
  readonly runners: RunnerRepo;
  /** For queries the repositories do not offer (tests, one-off tools). */
  readonly db: Kysely<Database>;
  /**
   * Waits for queries in flight and closes the connections or the embedded
   * database. Idempotent; gives up after timeoutMs (default 5000) with
   * STORE_CLOSE_TIMEOUT, the connections dropped regardless.
   */
  close(timeoutMs?: number): Promise<void>;
}

const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve({ ...MIGRATIONS }),
};

/** Applies every pending migration. Safe to call again, and from several processes at once (Kysely takes a lock). */
export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error !== undefined) {
    throw storeErrorWith('STORE_MIGRATION_FAILED', `migration ${failed?.migrationName ?? '(none)'} failed`, error);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

function storeErrorWith(code: string, what: string, e: unknown): PatchbayError {
  const base = storeError(e, what);
  return new PatchbayError(code, base.message, { cause: e, retryable: base.retryable, details: base.details });
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}


/**
 * PGlite's files must be opened by one process at a time: an owner file
 * holds the pid. Another live process gets DATABASE_IN_USE; a dead owner's
 * file is taken over.
 */
function claimPglite(dataDir: string): () => void {
  const owner = join(dataDir, 'pglite.owner');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(owner, String(process.pid), { flag: 'wx' });
      return () => { rmSync(owner, { force: true }); };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(owner, 'utf8'));
      if (pid !== process.pid && processAlive(pid)) {
        throw new PatchbayError('DATABASE_IN_USE', `the embedded database in ${dataDir} is open in process ${pid} (patchbay serve?); use its API, stop it, or set DATABASE_URL to share a PostgreSQL server`);
      }
      rmSync(owner, { force: true });
    }
  }
  throw new PatchbayError('DATABASE_IN_USE', `could not claim the embedded database in ${dataDir}`);
}

async function openPglite(dataDir: string): Promise<{ dialect: Dialect; close: () => Promise<void>; release: () => void }> {
  const dir = join(dataDir, 'pglite');
  let pglite: PGlite;
  await mkdir(dataDir, { recursive: true });
  const release = claimPglite(dataDir);
  try {
    await mkdir(dir, { recursive: true });
    pglite = await PGlite.create(dir);
  } catch (e) {
    release();
    throw new PatchbayError('STORE_UNAVAILABLE', `could not open the embedded database in ${dir}: ${errorMessage(e)}`, {
      cause: e,
      details: { dataDir: dir },
    });
  }
  return {
    dialect: new PGliteDialect(pglite),
    // What Kysely's destroy() leaves behind after a timeout.
    close: async () => {
      if (!pglite.closed) await pglite.close();
    },
    release,
  };
}

function openPostgres(url: string, poolSize: number): { dialect: Dialect; close: () => Promise<void> } {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 10_000 });
  // An idle client whose server went away: the pool drops it and the next query reconnects.
  pool.on('error', () => undefined);
  return {
    dialect: new PostgresDialect({ pool }),
    close: async () => {
      if (!pool.ended) await pool.end();
    },
  };
}

export async function openDatabase(opts: OpenDatabaseOptions): Promise<Store> {
  const backend = opts.databaseUrl === null ? 'pglite' : 'postgres';
  const opened = opts.databaseUrl === null ? await openPglite(opts.dataDir) : { ...openPostgres(opts.databaseUrl, opts.poolSize ?? 10), release: () => undefined };
  const { dialect, close: forceClose, release } = opened;
  const db = new Kysely<Database>({ dialect });

  let closing: Promise<void> | null = null;
  const close = (timeoutMs = 5000): Promise<void> => {
    closing ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => {
          resolve('timeout');
        }, timeoutMs);
        timer.unref();
      });
      try {
        const outcome = await Promise.race([db.destroy().then(() => 'closed' as const), timedOut]);
        if (outcome === 'timeout') {
          void forceClose().catch(() => undefined);
          throw new PatchbayError('STORE_CLOSE_TIMEOUT', `the ${backend} store did not close within ${timeoutMs} ms`);
        }
      } finally {
        clearTimeout(timer);
        release();
      }
    })();
    return closing;
  };

  try {
    await migrateToLatest(db);
  } catch (e) {
    await close().catch(() => undefined);
    if (e instanceof PatchbayError && backend === 'postgres' && opts.databaseUrl !== null) {
      throw new PatchbayError(e.code, `${e.message} (database ${redact(opts.databaseUrl)})`, {
        cause: e,
        retryable: e.retryable,
        details: e.details,
      });
    }
    throw e;
  }

  const jobs = new JobRepo(db);
  return {
    backend,
    series: new SeriesRepo(db),
    jobs,
    runners: new RunnerRepo(db, jobs),
    tokens: new TokenRepo(db),
    lore: new LoreRepo(db),
    outbox: new OutboxRepo(db),
    commands: new CommandRepo(db),
    db,
    close,
  };
}

/**
 * Lab runners: the registry (one-time registration tokens, credentials
 * stored as sha256, labels, capacity, state), and leases: a runner takes a
 * job by opening a lease on it, renews it, and ends it with a result, a
 * retry, a hand-back or a cancel. A lease that is not renewed lapses and its
 * job runs again as a new attempt; anything sent under an ended or expired
 * lease is refused (LEASE_STALE). The database is the record: an API
 * process restart loses no lease.
 */
import { randomBytes } from 'node:crypto';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { PatchbayError } from '../domain/errors.ts';
import { blankResult, type JobResult } from '../domain/job.ts';
import {
  COMMIT_RE, pickJob, retryDelayMs,
  type PeerRunner, type QueuedJob, type RunnerLabels, type WarmBaseHeld,
} from '../domain/runners.ts';
import type { Job, JobRepo } from './job-repo.ts';
import type { Database, LeaseOutcome, RunnerState, RunnersTable } from './schema.ts';
import { hashSecret } from './token-repo.ts';
import { cleanText, guard, jsonb, newId, sqlState } from './util.ts';

export interface Runner {
  id: string;
  name: string;
  labels: RunnerLabels;
  capacity: number;
  state: RunnerState;
  version: string | null;
  warmBases: WarmBaseHeld[];
  registeredAt: Date;
  lastSeenAt: Date | null;
  rotatedAt: Date | null;
  revokedAt: Date | null;
  jobsDone: number;
  failures: number;
}

/** A runner with the jobs it holds now. */
export interface RunnerWithLeases extends Runner {
  leases: Array<{ id: string; jobId: string; attempt: number; createdAt: Date; expiresAt: Date }>;
}

export interface Lease {
  id: string;
  jobId: string;
  runnerId: string;
  attempt: number;
  createdAt: Date;
  expiresAt: Date;
  deadlineAt: Date;
}

/** How leases behave: configuration (services/config, `runners`). */
export interface LeasePolicy {
  /** A lease lasts this long past its last renewal. */
  leaseSeconds: number;
  /** No lease is renewed past this long after it opened (the job's deadline and a margin). */
  maxLeaseSeconds: number;
  /** Attempts a job gets (as the in-cluster queue's). */
  maxAttempts: number;
  /** The first retry's backoff; it doubles. */
  retryBackoffMs: number;
  /** A job another live runner holds the warm base of is left to it this long. */
  affinityWaitSeconds: number;
}

export type HeartbeatAnswer = 'ok' | 'cancel' | 'stale';

/** What a runner must send to prove it: "pbr_" and 43 base64url characters. */
const CREDENTIAL_RE = /^pbr_[A-Za-z0-9_-]{43}$/;
const REGISTRATION_RE = /^pbrt_[A-Za-z0-9_-]{43}$/;

const sha256 = hashSecret;

function toRunner(r: Selectable<RunnersTable>): Runner {
  return {
    id: r.id,
    name: r.name,
    labels: r.labels,
    capacity: r.capacity,
    state: r.state,
    version: r.version,
    warmBases: r.warm_bases,
    registeredAt: r.registered_at,
    lastSeenAt: r.last_seen_at,
    rotatedAt: r.rotated_at,
    revokedAt: r.revoked_at,
    jobsDone: r.jobs_done,
    failures: r.failures,
  };
}

function stale(leaseId: string, why: string): PatchbayError {
  return new PatchbayError('LEASE_STALE', `lease ${leaseId} is not current: ${why}`, { details: { leaseId } });
}

/** The result recorded when a job's last attempt ended without one (its runner vanished). */
export function leaseLapsedResult(job: Pick<Job, 'id' | 'tree' | 'suites'>, message: string): JobResult {
  return blankResult({
    jobId: job.id, tree: { name: job.tree, ref: '' }, series: null, suites: job.suites, startedAt: new Date().toISOString(),
    stage: 'setup', summary: message, error: { code: 'LEASE_LAPSED', message },
  });
}

export class RunnerRepo {
  readonly #db: Kysely<Database>;
  readonly #jobs: JobRepo;

  constructor(db: Kysely<Database>, jobs: JobRepo) {
    this.#db = db;
    this.#jobs = jobs;
  }

  // ---- registry ----------------------------------------------------------

  /** A one-time registration token, shown here and never again. */
  async createToken(note: string, ttlSeconds: number): Promise<{ id: string; secret: string; expiresAt: Date }> {
    const secret = `pbrt_${randomBytes(32).toString('base64url')}`;
    const id = newId('g');
    const row = await guard('could not create the registration token', () =>
      this.#db.insertInto('runner_tokens')
        .values({ id, hash: sha256(secret), note: cleanText(note.slice(0, 200)), expires_at: sql<Date>`now() + make_interval(secs => ${ttlSeconds})` })
        .returning('expires_at').executeTakeFirstOrThrow());
    return { id, secret, expiresAt: row.expires_at };
  }

  /**
   * Spends a registration token on a new runner, which gets its own
   * credential (returned here only). RUNNER_TOKEN_INVALID for a token that
   * is unknown, used or expired; RUNNER_NAME_TAKEN when a runner that is not
   * revoked has the name.
   */
  async register(input: { token: string; name: string; labels: RunnerLabels; capacity: number; version: string | null }): Promise<{ runner: Runner; credential: string }> {
    if (!REGISTRATION_RE.test(input.token)) throw new PatchbayError('RUNNER_TOKEN_INVALID', 'the registration token is malformed');
    const credential = `pbr_${randomBytes(32).toString('base64url')}`;
    return guard('could not register the runner', () => this.#db.transaction().execute(async (trx) => {
      const token = await trx.selectFrom('runner_tokens').select(['id']).where('hash', '=', sha256(input.token))
        .where('used_at', 'is', null).where('expires_at', '>', sql<Date>`now()`).forUpdate().executeTakeFirst();
      if (token === undefined) throw new PatchbayError('RUNNER_TOKEN_INVALID', 'the registration token is unknown, used or expired; ask an admin for a new one');
      const id = newId('r');
      let row: Selectable<RunnersTable>;
      try {
        row = await trx.insertInto('runners').values({
          id, name: input.name, credential_hash: sha256(credential), labels: jsonb(input.labels), capacity: input.capacity,
          version: input.version, last_seen_at: sql<Date>`now()`,
        }).returningAll().executeTakeFirstOrThrow();
      } catch (e) {
        if (sqlState(e) === '23505') throw new PatchbayError('RUNNER_NAME_TAKEN', `a runner named "${input.name}" is registered; revoke it first or pick another name`, { cause: e });
        throw e;
      }
      await trx.updateTable('runner_tokens').set({ used_at: sql<Date>`now()`, used_by: id }).where('id', '=', token.id).execute();
      return { runner: toRunner(row), credential };
    }));
  }

  /**
   * The runner a credential belongs to; it is seen now. A rotated
   * credential's successor, used for the first time, replaces it.
   * RUNNER_AUTH_INVALID when unknown; RUNNER_REVOKED when revoked.
   */
  async authenticate(credential: string): Promise<Runner> {
    if (!CREDENTIAL_RE.test(credential)) throw new PatchbayError('RUNNER_AUTH_INVALID', 'the runner credential is malformed');
    const hash = sha256(credential);
    const row = await guard('could not check the runner credential', async () => {
      const found = await this.#db.selectFrom('runners').selectAll()
        .where((eb) => eb.or([eb('credential_hash', '=', hash), eb('next_credential_hash', '=', hash)])).executeTakeFirst();
      if (found === undefined || found.state === 'revoked') return found;
      const promote = found.next_credential_hash === hash;
      return this.#db.updateTable('runners')
        .set({
          last_seen_at: sql<Date>`now()`,
          ...(promote ? { credential_hash: hash, next_credential_hash: null } : {}),
        })
        .where('id', '=', found.id).returningAll().executeTakeFirstOrThrow();
    });
    if (row === undefined) throw new PatchbayError('RUNNER_AUTH_INVALID', 'the runner credential is unknown');
    if (row.state === 'revoked') throw new PatchbayError('RUNNER_REVOKED', `runner ${row.name} was revoked; an admin must register it again`);
    return toRunner(row);
  }

  /** A new credential; the current one stays good until the new one is first used. */
  async rotate(runnerId: string): Promise<string> {
    const credential = `pbr_${randomBytes(32).toString('base64url')}`;
    await guard('could not rotate the credential', () => this.#db.updateTable('runners')
      .set({ next_credential_hash: sha256(credential), rotated_at: sql<Date>`now()` })
      .where('id', '=', runnerId).where('state', '<>', 'revoked').execute());
    return credential;
  }

  async get(idOrName: string): Promise<Runner | null> {
    const row = await guard('could not read the runner', () => this.#db.selectFrom('runners').selectAll()
      .where((eb) => eb.or([eb('id', '=', idOrName), eb.and([eb('name', '=', idOrName), eb('state', '<>', 'revoked')])]))
      .orderBy('registered_at', 'desc').executeTakeFirst());
    return row === undefined ? null : toRunner(row);
  }

  /** Every runner (revoked ones last), with the leases each holds. */
  async list(): Promise<RunnerWithLeases[]> {
    return guard('could not list the runners', async () => {
      const rows = await this.#db.selectFrom('runners').selectAll()
        .orderBy(sql`state = 'revoked'`).orderBy('name').execute();
      const open = await this.#db.selectFrom('leases').select(['id', 'job_id', 'runner_id', 'attempt', 'created_at', 'expires_at'])
        .where('ended_at', 'is', null).orderBy('created_at').execute();
      return rows.map((r) => ({
        ...toRunner(r),
        leases: open.filter((l) => l.runner_id === r.id).map((l) => ({ id: l.id, jobId: l.job_id, attempt: l.attempt, createdAt: l.created_at, expiresAt: l.expires_at })),
      }));
    });
  }

  /** What a runner declares each time it starts or reports (labels, capacity, version, warm bases). */
  async declare(runnerId: string, d: { labels?: RunnerLabels; capacity?: number; version?: string | null; warmBases?: WarmBaseHeld[] }): Promise<void> {
    await guard('could not update the runner', () => this.#db.updateTable('runners').set({
      ...(d.labels !== undefined ? { labels: jsonb(d.labels) } : {}),
      ...(d.capacity !== undefined ? { capacity: d.capacity } : {}),
      ...(d.version !== undefined ? { version: d.version } : {}),
      ...(d.warmBases !== undefined ? { warm_bases: jsonb(d.warmBases) } : {}),
      last_seen_at: sql<Date>`now()`,
    }).where('id', '=', runnerId).execute());
  }

  /** active <-> draining (a draining runner finishes what it holds and takes nothing new). */
  async setState(runnerId: string, state: 'active' | 'draining'): Promise<Runner> {
    const row = await guard('could not change the runner', () => this.#db.updateTable('runners').set({ state })
      .where('id', '=', runnerId).where('state', '<>', 'revoked').returningAll().executeTakeFirst());
    if (row === undefined) throw new PatchbayError('RUNNER_UNKNOWN', `no runner ${runnerId} that is not revoked`);
    return toRunner(row);
  }

  /** Revoked for good: its credential is refused, and every job it holds runs again elsewhere at once. */
  async revoke(runnerId: string): Promise<{ runner: Runner; requeued: string[] }> {
    return guard('could not revoke the runner', () => this.#db.transaction().execute(async (trx) => {
      const row = await trx.updateTable('runners').set({ state: 'revoked', revoked_at: sql<Date>`coalesce(revoked_at, now())`, next_credential_hash: null })
        .where('id', '=', runnerId).returningAll().executeTakeFirst();
      if (row === undefined) throw new PatchbayError('RUNNER_UNKNOWN', `no runner ${runnerId}`);
      const open = await trx.selectFrom('leases').select('id').where('runner_id', '=', runnerId).where('ended_at', 'is', null).execute();
      const requeued: string[] = [];
      for (const l of open) {
        const jobId = await this.#endAndRequeue(trx, l.id, 'revoked', { spendAttempt: false, backoffMs: 0 });
        if (jobId !== null) requeued.push(jobId);
      }
      return { runner: toRunner(row), requeued };
    }));
  }

  // ---- leases ------------------------------------------------------------

  /**
   * Ends the runner's open leases that it does not list (it restarted and
   * lost them): their jobs run again at once, as a new attempt.
   */
  async forgetLost(runnerId: string, kept: readonly string[], policy: LeasePolicy): Promise<string[]> {
    return guard('could not release lost leases', () => this.#db.transaction().execute(async (trx) => {
      let q = trx.selectFrom('leases').select('id').where('runner_id', '=', runnerId).where('ended_at', 'is', null);
      if (kept.length > 0) q = q.where('id', 'not in', [...kept]);
      const lost = await q.execute();
      const jobs: string[] = [];
      for (const l of lost) {
        const jobId = await this.#lapse(trx, l.id, 'lost', policy, 'its runner restarted and no longer holds it');
        if (jobId !== null) jobs.push(jobId);
      }
      return jobs;
    }));
  }

  /**
   * Opens a lease for this runner on the first queued job it may take (see
   * pickJob), or returns null. One job per call; none past its capacity or
   * while it is not active.
   */
  async claim(runnerId: string, policy: LeasePolicy): Promise<{ lease: Lease; job: Job; warm: boolean } | null> {
    return guard('could not claim a job', () => this.#db.transaction().execute(async (trx) => {
      // Locked: a runner's concurrent claims are counted against its capacity one after another.
      const me = await trx.selectFrom('runners').selectAll().where('id', '=', runnerId).forUpdate().executeTakeFirst();
      if (me === undefined || me.state !== 'active' || me.labels.trees.length === 0) return null;
      const held = await trx.selectFrom('leases').select(sql<number>`count(*)::int`.as('n'))
        .where('runner_id', '=', runnerId).where('ended_at', 'is', null).executeTakeFirstOrThrow();
      if (held.n >= me.capacity) return null;
      const rows = await trx.selectFrom('jobs').innerJoin('series', 'series.id', 'jobs.series_id')
        .select(['jobs.id', 'jobs.tree', 'jobs.base', 'series.base_commit', 'jobs.requires',
          sql<number>`extract(epoch from now() - jobs.created_at)::float8`.as('waited')])
        .where('jobs.pool', '=', 'runners').where('jobs.status', '=', 'queued').where('jobs.lease_id', 'is', null)
        // Jobs on trees it does not mirror, or needing KVM it lacks, must not fill the 200 read and hide one it can take.
        .where('jobs.tree', 'in', me.labels.trees)
        .where(sql<boolean>`(${me.labels.kvm} or not (jobs.requires @> '{"kvm": true}'::jsonb))`)
        .where((eb) => eb.or([eb('jobs.not_before', 'is', null), eb('jobs.not_before', '<=', sql<Date>`now()`)]))
        .orderBy('jobs.created_at').orderBy('jobs.id').limit(200)
        .forUpdate('jobs').skipLocked().execute();
      if (rows.length === 0) return null;
      const queue: QueuedJob[] = rows.map((r) => {
        const base = r.base !== null && COMMIT_RE.test(r.base) ? r.base : r.base === null && r.base_commit !== null && COMMIT_RE.test(r.base_commit) ? r.base_commit : null;
        return { id: r.id, tree: r.tree, baseCommit: base, requires: r.requires, waitedSeconds: r.waited };
      });
      const peerRows = await trx.selectFrom('runners').selectAll()
        .where('state', '=', 'active').where('id', '<>', runnerId)
        .where('last_seen_at', '>', sql<Date>`now() - make_interval(secs => ${2 * policy.leaseSeconds})`).execute();
      const peerLoad = await trx.selectFrom('leases').select(['runner_id', sql<number>`count(*)::int`.as('n')])
        .where('ended_at', 'is', null).groupBy('runner_id').execute();
      const peers: PeerRunner[] = peerRows.map((p) => ({
        labels: p.labels, warmBases: p.warm_bases,
        freeSlots: p.capacity - (peerLoad.find((l) => l.runner_id === p.id)?.n ?? 0),
      }));
      const picked = pickJob({ labels: me.labels, warmBases: me.warm_bases }, queue, peers, policy.affinityWaitSeconds);
      if (picked === null) return null;
      const leaseId = newId('l');
      const jobRow = await trx.updateTable('jobs').set({
        status: 'running', lease_id: leaseId, worker: cleanText(`runner ${me.name}`),
        attempts: sql<number>`attempts + 1`, started_at: sql<Date>`coalesce(started_at, now())`, not_before: null,
      }).where('id', '=', picked.job.id).where('status', '=', 'queued').where('lease_id', 'is', null)
        .returningAll().executeTakeFirst();
      if (jobRow === undefined) return null;
      const lease = await trx.insertInto('leases').values({
        id: leaseId, job_id: jobRow.id, runner_id: runnerId, attempt: jobRow.attempts,
        expires_at: sql<Date>`now() + make_interval(secs => ${policy.leaseSeconds})`,
        deadline_at: sql<Date>`now() + make_interval(secs => ${policy.maxLeaseSeconds})`,
      }).returningAll().executeTakeFirstOrThrow();
      const job = await this.#jobs.get(jobRow.id, trx);
      if (job === null) return null;
      return {
        lease: { id: lease.id, jobId: lease.job_id, runnerId, attempt: lease.attempt, createdAt: lease.created_at, expiresAt: lease.expires_at, deadlineAt: lease.deadline_at },
        job, warm: picked.warm,
      };
    }));
  }

  /**
   * Renews the runner's leases it names: 'ok' (renewed), 'cancel' (renewed;
   * the job is to be cancelled), 'stale' (ended, expired, past its deadline
   * or not this runner's: stop the job and send nothing more for it).
   */
  async heartbeat(runnerId: string, leaseIds: readonly string[], policy: LeasePolicy): Promise<Record<string, HeartbeatAnswer>> {
    const answers: Record<string, HeartbeatAnswer> = {};
    if (leaseIds.length === 0) return answers;
    await guard('could not renew the leases', async () => {
      const renewed = await this.#db.updateTable('leases')
        .set({ expires_at: sql<Date>`least(deadline_at, now() + make_interval(secs => ${policy.leaseSeconds}))` })
        .where('id', 'in', [...leaseIds]).where('runner_id', '=', runnerId).where('ended_at', 'is', null)
        .where('expires_at', '>', sql<Date>`now()`).where('deadline_at', '>', sql<Date>`now()`)
        .returning(['id', 'job_id']).execute();
      const jobs = renewed.length === 0 ? [] : await this.#db.selectFrom('jobs').select(['id', 'cancel_requested_at'])
        .where('id', 'in', renewed.map((r) => r.job_id)).execute();
      for (const id of leaseIds) answers[id] = 'stale';
      for (const r of renewed) answers[r.id] = jobs.find((j) => j.id === r.job_id)?.cancel_requested_at != null ? 'cancel' : 'ok';
    });
    return answers;
  }

  /** The lease if it is this runner's and current; LEASE_STALE otherwise. */
  async current(runnerId: string, leaseId: string, db: Kysely<Database> = this.#db): Promise<Lease> {
    const l = await guard('could not read the lease', () => db.selectFrom('leases').selectAll()
      .select(sql<boolean>`ended_at is null and expires_at > now() and deadline_at > now()`.as('live'))
      .where('id', '=', leaseId).where('runner_id', '=', runnerId).executeTakeFirst());
    if (l === undefined) throw stale(leaseId, 'no such lease for this runner');
    if (!l.live) throw stale(leaseId, l.ended_at !== null ? `it ended (${l.outcome ?? 'ended'})` : 'it expired');
    return { id: l.id, jobId: l.job_id, runnerId: l.runner_id, attempt: l.attempt, createdAt: l.created_at, expiresAt: l.expires_at, deadlineAt: l.deadline_at };
  }

  /**
   * Counts `bytes` more of the lease's log against `limit`: how many of them
   * fit (0: none), and `cut` on the call that fills it to the limit (the one
   * time a marker is due).
   */
  async takeLogBytes(runnerId: string, leaseId: string, bytes: number, limit: number): Promise<{ fits: number; cut: boolean }> {
    return guard('could not count the log', () => this.#db.transaction().execute(async (trx) => {
      await this.current(runnerId, leaseId, trx);
      const row = await trx.selectFrom('leases').select('log_bytes').where('id', '=', leaseId).forUpdate().executeTakeFirstOrThrow();
      const fits = Math.max(0, Math.min(bytes, limit - row.log_bytes));
      if (fits > 0) await trx.updateTable('leases').set({ log_bytes: row.log_bytes + fits }).where('id', '=', leaseId).execute();
      // The call that fills the log to its limit is the one that says so, once.
      return { fits, cut: fits > 0 && row.log_bytes + fits >= limit };
    }));
  }

  /**
   * Records an attempt's result under its lease, atomically with ending the
   * lease: LEASE_STALE (and nothing recorded) when the lease is not current.
   * `onRecorded` runs in the same transaction (the mail report's planning).
   */
  async finishWithResult(runnerId: string, leaseId: string, result: JobResult,
    onRecorded?: (trx: Transaction<Database>, job: Job) => Promise<unknown>): Promise<Job> {
    const lease = await this.current(runnerId, leaseId);
    return this.#jobs.recordResult(lease.jobId, result, {
      onRecorded: async (trx, job) => {
        await this.#endCurrent(trx, runnerId, leaseId, 'result');
        await trx.updateTable('jobs').set({ lease_id: null }).where('id', '=', lease.jobId).execute();
        await trx.updateTable('runners').set({ jobs_done: sql<number>`jobs_done + 1` }).where('id', '=', runnerId).execute();
        if (onRecorded !== undefined) await onRecorded(trx, job);
      },
    });
  }

  /**
   * Ends the lease without a verdict: `retry` (infrastructure trouble; the
   * job runs again after a backoff, an attempt spent), `released` (the
   * runner is stopping; the job goes back at once, no attempt spent) or
   * `cancelled` (a cancel it was told of; the job is cancelled).
   */
  async finishWithout(runnerId: string, leaseId: string, outcome: 'retry' | 'released' | 'cancelled', policy: LeasePolicy): Promise<Job> {
    return guard('could not end the lease', () => this.#db.transaction().execute(async (trx) => {
      const lease = await this.current(runnerId, leaseId, trx);
      const locked = await trx.selectFrom('jobs').select('cancel_requested_at').where('id', '=', lease.jobId).forUpdate().executeTakeFirst();
      await this.#endCurrent(trx, runnerId, leaseId, outcome);
      // A cancel asked for while it ran wins over a retry or a hand-back (as in #endAndRequeue).
      if (outcome === 'cancelled' || locked?.cancel_requested_at != null) {
        await trx.updateTable('jobs').set({ lease_id: null }).where('id', '=', lease.jobId).execute();
        const job = await this.#jobs.markCancelled(lease.jobId, trx);
        return job;
      }
      if (outcome === 'retry') await trx.updateTable('runners').set({ failures: sql<number>`failures + 1` }).where('id', '=', runnerId).execute();
      await this.#requeue(trx, lease.jobId, { spendAttempt: outcome === 'retry', backoffMs: outcome === 'retry' ? retryDelayMs(lease.attempt, policy.retryBackoffMs) : 0 });
      const job = await this.#jobs.get(lease.jobId, trx);
      if (job === null) throw new PatchbayError('JOB_UNKNOWN', `job ${lease.jobId} is gone`);
      return job;
    }));
  }

  /**
   * Lapses every lease not renewed in time (or past its deadline): its job
   * runs again as a new attempt, is cancelled when that was asked, or is
   * recorded MISS (LEASE_LAPSED) when its attempts are spent. Returns the
   * jobs touched. Any API process may run it; each lease lapses once.
   */
  async sweep(policy: LeasePolicy, onRecorded?: (trx: Transaction<Database>, job: Job) => Promise<unknown>): Promise<Array<{ jobId: string; leaseId: string; became: string }>> {
    const expired = await guard('could not look for lapsed leases', () => this.#db.selectFrom('leases').select(['id', 'runner_id'])
      .where('ended_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', '<=', sql<Date>`now()`), eb('deadline_at', '<=', sql<Date>`now()`)]))
      .limit(100).execute());
    const out: Array<{ jobId: string; leaseId: string; became: string }> = [];
    for (const l of expired) {
      const r = await guard('could not lapse the lease', () => this.#db.transaction().execute(async (trx) => {
        const jobId = await this.#lapse(trx, l.id, 'lapsed', policy, 'its runner stopped renewing the lease', onRecorded);
        if (jobId === null) return null;
        const job = await trx.selectFrom('jobs').select('status').where('id', '=', jobId).executeTakeFirstOrThrow();
        return { jobId, leaseId: l.id, became: job.status };
      }));
      if (r !== null) out.push(r);
    }
    return out;
  }

  /**
   * Cancels a job of the runners' pool: at once when no runner holds it,
   * else asks its runner (told at its next heartbeat). 'cancelled' or
   * 'cancelling'; JOB_FINISHED when it already ended.
   */
  async requestCancel(jobId: string): Promise<'cancelled' | 'cancelling'> {
    return guard('could not cancel the job', () => this.#db.transaction().execute(async (trx) => {
      const job = await trx.selectFrom('jobs').select(['status', 'lease_id']).where('id', '=', jobId).forUpdate().executeTakeFirst();
      if (job === undefined) throw new PatchbayError('JOB_UNKNOWN', `no job ${jobId}`);
      if (job.status !== 'queued' && job.status !== 'running') throw new PatchbayError('JOB_FINISHED', `job ${jobId} already finished (${job.status})`);
      if (job.lease_id === null) {
        await this.#jobs.markCancelled(jobId, trx);
        return 'cancelled';
      }
      await trx.updateTable('jobs').set({ cancel_requested_at: sql<Date>`coalesce(cancel_requested_at, now())` }).where('id', '=', jobId).execute();
      return 'cancelling';
    }));
  }

  // ---- inside transactions -------------------------------------------------

  async #endCurrent(trx: Transaction<Database>, runnerId: string, leaseId: string, outcome: LeaseOutcome): Promise<void> {
    const ended = await trx.updateTable('leases').set({ ended_at: sql<Date>`now()`, outcome })
      .where('id', '=', leaseId).where('runner_id', '=', runnerId).where('ended_at', 'is', null)
      .where('expires_at', '>', sql<Date>`now()`).where('deadline_at', '>', sql<Date>`now()`)
      .returning('job_id').executeTakeFirst();
    if (ended === undefined) throw stale(leaseId, 'it ended or expired meanwhile');
    const job = await trx.selectFrom('jobs').select('lease_id').where('id', '=', ended.job_id).executeTakeFirstOrThrow();
    if (job.lease_id !== leaseId) throw stale(leaseId, 'the job is under another lease');
  }

  /** Ends an open lease (whatever its expiry) and puts its job back; the job id, or null if the lease had ended. */
  async #endAndRequeue(trx: Transaction<Database>, leaseId: string, outcome: LeaseOutcome, how: { spendAttempt: boolean; backoffMs: number }): Promise<string | null> {
    const ended = await trx.updateTable('leases').set({ ended_at: sql<Date>`now()`, outcome })
      .where('id', '=', leaseId).where('ended_at', 'is', null).returning('job_id').executeTakeFirst();
    if (ended === undefined) return null;
    const job = await trx.selectFrom('jobs').select(['lease_id', 'cancel_requested_at']).where('id', '=', ended.job_id).forUpdate().executeTakeFirstOrThrow();
    if (job.lease_id !== leaseId) return null;
    if (job.cancel_requested_at !== null) {
      await trx.updateTable('jobs').set({ lease_id: null }).where('id', '=', ended.job_id).execute();
      await this.#jobs.markCancelled(ended.job_id, trx);
      return ended.job_id;
    }
    await this.#requeue(trx, ended.job_id, how);
    return ended.job_id;
  }

  /** A lease that ended without its runner's word: the job runs again, or is recorded MISS when its attempts are spent. */
  async #lapse(trx: Transaction<Database>, leaseId: string, outcome: 'lapsed' | 'lost', policy: LeasePolicy, why: string,
    onRecorded?: (trx: Transaction<Database>, job: Job) => Promise<unknown>): Promise<string | null> {
    const lease = await trx.selectFrom('leases').select(['job_id', 'runner_id', 'attempt']).where('id', '=', leaseId).where('ended_at', 'is', null).forUpdate().executeTakeFirst();
    if (lease === undefined) return null;
    await trx.updateTable('runners').set({ failures: sql<number>`failures + 1` }).where('id', '=', lease.runner_id).execute();
    const job = await trx.selectFrom('jobs').select(['attempts', 'lease_id', 'cancel_requested_at']).where('id', '=', lease.job_id).forUpdate().executeTakeFirstOrThrow();
    if (job.lease_id !== leaseId || job.cancel_requested_at !== null || job.attempts < policy.maxAttempts) {
      return this.#endAndRequeue(trx, leaseId, outcome, { spendAttempt: true, backoffMs: 0 });
    }
    await trx.updateTable('leases').set({ ended_at: sql<Date>`now()`, outcome }).where('id', '=', leaseId).execute();
    await trx.updateTable('jobs').set({ lease_id: null }).where('id', '=', lease.job_id).execute();
    const record = await this.#jobs.get(lease.job_id, trx);
    if (record === null) return null;
    await this.#jobs.recordResult(lease.job_id, leaseLapsedResult(record, `the last of ${policy.maxAttempts} attempts ended without a result: ${why}`), { trx, ...(onRecorded !== undefined ? { onRecorded } : {}) });
    return lease.job_id;
  }

  async #requeue(trx: Transaction<Database>, jobId: string, how: { spendAttempt: boolean; backoffMs: number }): Promise<void> {
    await trx.updateTable('jobs').set({
      status: 'queued', lease_id: null, worker: null,
      ...(how.spendAttempt ? {} : { attempts: sql<number>`greatest(0, attempts - 1)` }),
      not_before: how.backoffMs > 0 ? sql<Date>`now() + make_interval(secs => ${how.backoffMs / 1000})` : null,
    }).where('id', '=', jobId).where('status', 'in', ['queued', 'running']).execute();
  }
}

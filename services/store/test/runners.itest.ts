/**
 * Lab runners in the store (runner-repo.ts) against both backends, as
 * store.itest.ts: PGlite in a fresh temp dir and a real PostgreSQL server
 * started for the test. Every test works on a tree of its own, so the
 * runners one test registers never see another test's jobs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { PatchbayError } from '../../domain/errors.ts';
import type { JobResult } from '../../domain/job.ts';
import { parseMessage } from '../../domain/mbox.ts';
import type { JobRequirements, RunnerLabels } from '../../domain/runners.ts';
import { assembleSeries, type Series } from '../../domain/series.ts';
import { jobIdempotencyKey, leaseLapsedResult, openDatabase, seriesContentHash, type Job, type LeasePolicy, type Runner, type Store } from '../db.ts';
import { startPostgres } from './postgres-server.ts';

/** The base-commit trailer of every series made here. */
const BASE = '0123456789abcdef0123456789abcdef01234567';
const OTHER_BASE = 'fedcba9876543210fedcba9876543210fedcba98';

const POLICY: LeasePolicy = { leaseSeconds: 30, maxLeaseSeconds: 3600, maxAttempts: 3, retryBackoffMs: 60_000, affinityWaitSeconds: 600 };

function unique(): string {
  return randomBytes(6).toString('hex');
}

function mail(headers: Record<string, string>, body: string): string {
  return `${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${body}`;
}

/** A one-patch series with a cover letter naming BASE; `tag` makes it unique. */
function makeSeries(tag: string): Series {
  const cover = mail(
    { From: 'Ann Author <ann@example.org>', Subject: `[PATCH 0/1] io_uring: ${tag}`, 'Message-ID': `<cover-${tag}@example.org>`, Date: 'Thu, 8 Jan 2026 11:18:17 -0800' },
    `Cover letter for ${tag}.\n\nbase-commit: ${BASE}\n`,
  );
  const patch = mail(
    {
      From: 'Ann Author <ann@example.org>',
      Subject: `[PATCH 1/1] io_uring: ${tag}`,
      'Message-ID': `<p1-${tag}@example.org>`,
      'In-Reply-To': `<cover-${tag}@example.org>`,
      Date: 'Thu, 8 Jan 2026 11:18:17 -0800',
    },
    [
      'One step.',
      '',
      'Signed-off-by: Ann Author <ann@example.org>',
      '---',
      ' io_uring/kbuf.c | 1 +',
      '',
      'diff --git a/io_uring/kbuf.c b/io_uring/kbuf.c',
      '--- a/io_uring/kbuf.c',
      '+++ b/io_uring/kbuf.c',
      '@@ -1,1 +1,2 @@',
      ' int x;',
      `+int step_${tag.replace(/\W/g, '_')};`,
      '',
    ].join('\n'),
  );
  return assembleSeries([cover, patch].map(parseMessage));
}

async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PatchbayError, `expected a PatchbayError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

function labels(tree: string, over: Partial<RunnerLabels> = {}): RunnerLabels {
  return { arch: 'x86_64', kvm: true, cores: 8, memoryMb: 16384, trees: [tree], extra: {}, ...over };
}

interface Backend {
  open(): Promise<Store>;
  cleanup(): Promise<void>;
}

function runnerSuite(name: string, setup: () => Promise<Backend>, opts: { raceRounds: number }): void {
  describe(name, () => {
    let backend: Backend;
    let store: Store;

    before(async () => {
      backend = await setup();
      store = await backend.open();
    });

    after(async () => {
      await store.close();
      await backend.cleanup();
    });

    async function registerRunner(tree: string, over: { labels?: Partial<RunnerLabels>; capacity?: number; name?: string } = {}): Promise<{ runner: Runner; credential: string }> {
      const token = await store.runners.createToken('test', 3600);
      return store.runners.register({
        token: token.secret,
        name: over.name ?? `r-${unique()}`,
        labels: labels(tree, over.labels),
        capacity: over.capacity ?? 4,
        version: '0.0.0-test',
      });
    }

    let seriesId: string | null = null;
    async function aSeries(): Promise<string> {
      if (seriesId !== null) return seriesId;
      const series = makeSeries(unique());
      const s = await store.series.create({ series, source: 'upload', inboxUrl: null, submittedBy: null, contentHash: seriesContentHash(series) });
      seriesId = s.id;
      return s.id;
    }

    /** A job for the runners' pool on `tree`; its base is the series' trailer (BASE) unless `base` is given. */
    async function makeJob(tree: string, o: { requires?: JobRequirements; base?: string | null } = {}): Promise<Job> {
      const { job, created } = await store.jobs.createOrGet({
        seriesId: await aSeries(),
        tree,
        base: o.base ?? null,
        suites: ['kbuf'],
        idempotencyKey: jobIdempotencyKey({ contentHash: unique(), tree, base: o.base ?? null, suites: ['kbuf'] }),
        deadlineAt: null,
        submittedBy: null,
        activeCap: null,
        pool: 'runners',
        requires: o.requires ?? {},
      });
      assert.equal(created, true);
      assert.equal(job.pool, 'runners');
      return job;
    }

    async function jobRow(id: string): Promise<{ status: string; attempts: number; lease_id: string | null; not_before: Date | null; error_code: string | null; cancel_requested_at: Date | null }> {
      return store.db.selectFrom('jobs').select(['status', 'attempts', 'lease_id', 'not_before', 'error_code', 'cancel_requested_at'])
        .where('id', '=', id).executeTakeFirstOrThrow();
    }

    async function leaseRow(id: string): Promise<{ ended_at: Date | null; outcome: string | null; expires_at: Date; attempt: number }> {
      return store.db.selectFrom('leases').select(['ended_at', 'outcome', 'expires_at', 'attempt']).where('id', '=', id).executeTakeFirstOrThrow();
    }

    async function openLeases(runnerId: string): Promise<string[]> {
      const rows = await store.db.selectFrom('leases').select('job_id').where('runner_id', '=', runnerId).where('ended_at', 'is', null).orderBy('created_at').execute();
      return rows.map((r) => r.job_id);
    }

    async function claimId(runnerId: string, policy: LeasePolicy = POLICY): Promise<string | null> {
      return (await store.runners.claim(runnerId, policy))?.job.id ?? null;
    }

    function passResult(job: Job): JobResult {
      return {
        ...leaseLapsedResult(job, 'unused'),
        status: 'PASS',
        stage: null,
        summary: '1 PASS',
        error: null,
        results: [{
          suite: 'kbuf', test: 'buf-ring', status: 'PASS', detail: '', baseStatus: 'PASS', comparison: 'unchanged',
          seriesRuns: { runs: 1, fails: 0, skips: 0, missing: 0 }, baseRuns: { runs: 1, fails: 0, skips: 0, missing: 0 },
        }],
        durationMs: 1000,
      };
    }

    async function resultRows(jobId: string): Promise<number> {
      const rows = await store.db.selectFrom('test_results').select('test').where('job_id', '=', jobId).execute();
      return rows.length;
    }

    // ---- registry ----------------------------------------------------------

    test('a registration token registers one runner, once, and not after it expires; secrets are stored hashed', async () => {
      const tree = `t-${unique()}`;
      const token = await store.runners.createToken('lab A', 3600);
      assert.match(token.secret, /^pbrt_[A-Za-z0-9_-]{43}$/);
      assert.ok(token.expiresAt.getTime() > Date.now() + 3500_000);
      const name = `r-${unique()}`;
      const { runner, credential } = await store.runners.register({ token: token.secret, name, labels: labels(tree), capacity: 2, version: '1.0' });
      assert.match(runner.id, /^r-[0-9a-z]{20}$/);
      assert.match(credential, /^pbr_[A-Za-z0-9_-]{43}$/);
      assert.equal(runner.name, name);
      assert.equal(runner.state, 'active');
      assert.equal(runner.capacity, 2);
      assert.deepEqual(runner.labels, labels(tree));
      assert.deepEqual(runner.warmBases, []);
      assert.ok(runner.lastSeenAt instanceof Date);
      assert.equal((await store.runners.authenticate(credential)).id, runner.id);

      // Spent: not again, not even for another name.
      await rejectsWithCode(store.runners.register({ token: token.secret, name: `r-${unique()}`, labels: labels(tree), capacity: 1, version: null }), 'RUNNER_TOKEN_INVALID');
      // Malformed and unknown.
      await rejectsWithCode(store.runners.register({ token: 'pbrt_short', name: `r-${unique()}`, labels: labels(tree), capacity: 1, version: null }), 'RUNNER_TOKEN_INVALID');
      await rejectsWithCode(store.runners.register({ token: `pbrt_${randomBytes(32).toString('base64url')}`, name: `r-${unique()}`, labels: labels(tree), capacity: 1, version: null }), 'RUNNER_TOKEN_INVALID');

      // Expired: good for a second, then refused.
      const brief = await store.runners.createToken('brief', 1);
      assert.ok(brief.expiresAt.getTime() < Date.now() + 5000);
      await sleep(1300);
      await rejectsWithCode(store.runners.register({ token: brief.secret, name: `r-${unique()}`, labels: labels(tree), capacity: 1, version: null }), 'RUNNER_TOKEN_INVALID');

      // Neither secret is in the database.
      const tokens = await sql<{ row: string }>`select row_to_json(t)::text as row from runner_tokens t`.execute(store.db);
      const runners = await sql<{ row: string }>`select row_to_json(r)::text as row from runners r`.execute(store.db);
      for (const { row } of [...tokens.rows, ...runners.rows]) {
        for (const secret of [token.secret, brief.secret, credential]) {
          assert.ok(!row.includes(secret.slice(secret.indexOf('_') + 1)), 'a row holds a secret');
        }
      }
      const spent = await store.db.selectFrom('runner_tokens').select(['used_at', 'used_by']).where('id', '=', token.id).executeTakeFirstOrThrow();
      assert.ok(spent.used_at instanceof Date);
      assert.equal(spent.used_by, runner.id);
    });

    test('RUNNER_NAME_TAKEN keeps the token good; a revoked runner\'s name can be registered again', async () => {
      const tree = `t-${unique()}`;
      const name = `r-${unique()}`;
      const first = await registerRunner(tree, { name });
      const token = await store.runners.createToken('second', 3600);
      await rejectsWithCode(store.runners.register({ token: token.secret, name, labels: labels(tree), capacity: 1, version: null }), 'RUNNER_NAME_TAKEN');
      // The failed registration did not spend the token.
      const other = await store.runners.register({ token: token.secret, name: `r-${unique()}`, labels: labels(tree), capacity: 1, version: null });
      assert.notEqual(other.runner.id, first.runner.id);

      await store.runners.revoke(first.runner.id);
      const again = await registerRunner(tree, { name });
      assert.notEqual(again.runner.id, first.runner.id);
      assert.equal(again.runner.name, name);
      assert.equal((await store.runners.get(name))?.id, again.runner.id);
      assert.equal((await store.runners.get(first.runner.id))?.state, 'revoked');
      await rejectsWithCode(store.runners.authenticate(first.credential), 'RUNNER_REVOKED');
      assert.equal((await store.runners.authenticate(again.credential)).id, again.runner.id);
      // And while the new one lives, the name is taken again.
      await rejectsWithCode(registerRunner(tree, { name }), 'RUNNER_NAME_TAKEN');
    });

    test('authenticate: unknown or malformed -> RUNNER_AUTH_INVALID; revoked -> RUNNER_REVOKED; a good one is seen now', async () => {
      const tree = `t-${unique()}`;
      const { runner, credential } = await registerRunner(tree);
      await rejectsWithCode(store.runners.authenticate(`pbr_${randomBytes(32).toString('base64url')}`), 'RUNNER_AUTH_INVALID');
      await rejectsWithCode(store.runners.authenticate('pbr_x'), 'RUNNER_AUTH_INVALID');
      await rejectsWithCode(store.runners.authenticate(''), 'RUNNER_AUTH_INVALID');
      await store.db.updateTable('runners').set({ last_seen_at: sql<Date>`now() - interval '1 hour'` }).where('id', '=', runner.id).execute();
      const seen = await store.runners.authenticate(credential);
      assert.equal(seen.id, runner.id);
      assert.ok(seen.lastSeenAt !== null && seen.lastSeenAt.getTime() > Date.now() - 60_000, 'last_seen_at moved to now');
      // Draining still authenticates.
      await store.runners.setState(runner.id, 'draining');
      assert.equal((await store.runners.authenticate(credential)).state, 'draining');
      const { runner: revoked } = await store.runners.revoke(runner.id);
      assert.equal(revoked.state, 'revoked');
      assert.ok(revoked.revokedAt instanceof Date);
      await rejectsWithCode(store.runners.authenticate(credential), 'RUNNER_REVOKED');
      await rejectsWithCode(store.runners.setState(runner.id, 'active'), 'RUNNER_UNKNOWN');
    });

    test('rotate: the old and the new credential both work until the new one is used, then the old is refused', async () => {
      const tree = `t-${unique()}`;
      const { runner, credential: old } = await registerRunner(tree);
      const next = await store.runners.rotate(runner.id);
      assert.match(next, /^pbr_[A-Za-z0-9_-]{43}$/);
      assert.notEqual(next, old);
      assert.equal((await store.runners.authenticate(old)).id, runner.id);
      assert.equal((await store.runners.authenticate(old)).id, runner.id, 'the old one, again, before the new is used');
      const rotated = await store.runners.get(runner.id);
      assert.ok(rotated?.rotatedAt instanceof Date);
      assert.equal((await store.runners.authenticate(next)).id, runner.id);
      await rejectsWithCode(store.runners.authenticate(old), 'RUNNER_AUTH_INVALID');
      assert.equal((await store.runners.authenticate(next)).id, runner.id, 'the new one keeps working');

      // Rotated again and revoked before the new one is used: neither works.
      const third = await store.runners.rotate(runner.id);
      await store.runners.revoke(runner.id);
      await rejectsWithCode(store.runners.authenticate(next), 'RUNNER_REVOKED');
      await rejectsWithCode(store.runners.authenticate(third), 'RUNNER_AUTH_INVALID');
    });

    // ---- claim ---------------------------------------------------------------

    test('claim matches labels: the tree must be mirrored, KVM goes only where there is KVM, cores, memory and extra labels', async () => {
      const tree = `t-${unique()}`;
      const needsKvm = await makeJob(tree, { requires: { kvm: true } });
      const plain = await makeJob(tree);
      const big = await makeJob(tree, { requires: { minCores: 32, minMemoryMb: 65536 } });
      const lab = await makeJob(tree, { requires: { labels: { lab: 'fsdevel' }, arch: 'x86_64' } });

      const elsewhere = await registerRunner(`t-${unique()}`);
      assert.equal(await store.runners.claim(elsewhere.runner.id, POLICY), null, 'a runner that does not mirror the tree gets nothing');

      const tcg = await registerRunner(tree, { labels: { kvm: false } });
      const first = await store.runners.claim(tcg.runner.id, POLICY);
      assert.equal(first?.job.id, plain.id, 'the runner without KVM passes over the KVM job');
      assert.equal(first.job.status, 'running');
      assert.equal(first.job.attempts, 1);
      assert.equal(first.lease.attempt, 1);
      assert.equal(first.warm, false);
      assert.equal(await claimId(tcg.runner.id), null, 'nothing else it may take');
      assert.equal((await jobRow(needsKvm.id)).status, 'queued');

      const small = await registerRunner(tree, { labels: { cores: 16, memoryMb: 65536, extra: { lab: 'fsdevel' } } });
      assert.equal(await claimId(small.runner.id), needsKvm.id);
      assert.equal(await claimId(small.runner.id), lab.id, 'too few cores for the big one; the lab label matches');
      assert.equal(await claimId(small.runner.id), null);

      const huge = await registerRunner(tree, { labels: { cores: 32, memoryMb: 65535 } });
      assert.equal(await claimId(huge.runner.id), null, 'one MB short');
      await store.runners.declare(huge.runner.id, { labels: labels(tree, { cores: 32, memoryMb: 65536 }) });
      assert.equal(await claimId(huge.runner.id), big.id, 'after it declares more memory');
    });

    test('claim: capacity, queue order, draining', async () => {
      const tree = `t-${unique()}`;
      const jobs = [await makeJob(tree), await makeJob(tree), await makeJob(tree)];
      const { runner } = await registerRunner(tree, { capacity: 2 });
      assert.equal(await claimId(runner.id), jobs[0]?.id);
      assert.equal(await claimId(runner.id), jobs[1]?.id);
      assert.equal(await store.runners.claim(runner.id, POLICY), null, 'at capacity');
      assert.deepEqual(await openLeases(runner.id), [jobs[0]?.id, jobs[1]?.id]);

      const listed = (await store.runners.list()).find((r) => r.id === runner.id);
      assert.deepEqual(listed?.leases.map((l) => l.jobId), [jobs[0]?.id, jobs[1]?.id]);

      // A slot frees: the next in the queue.
      const [leaseId] = (await store.db.selectFrom('leases').select('id').where('job_id', '=', jobs[0]?.id ?? '').execute()).map((r) => r.id);
      assert.ok(leaseId !== undefined);
      await store.runners.finishWithout(runner.id, leaseId, 'released', POLICY);
      // Released goes back at once, and it is first in the queue again.
      assert.equal(await claimId(runner.id), jobs[0]?.id);
      assert.equal(await store.runners.claim(runner.id, POLICY), null);

      // Draining: takes nothing new, keeps what it holds.
      const other = await registerRunner(tree, { capacity: 4 });
      await store.runners.setState(other.runner.id, 'draining');
      assert.equal(await store.runners.claim(other.runner.id, POLICY), null);
      await store.runners.setState(other.runner.id, 'active');
      assert.equal(await claimId(other.runner.id), jobs[2]?.id);
    });

    test('claim: a retry waits out its backoff (not_before)', async () => {
      const tree = `t-${unique()}`;
      const job = await makeJob(tree);
      const { runner } = await registerRunner(tree);
      const first = await store.runners.claim(runner.id, POLICY);
      assert.equal(first?.job.id, job.id);
      await store.runners.finishWithout(runner.id, first.lease.id, 'retry', POLICY);
      const row = await jobRow(job.id);
      assert.equal(row.status, 'queued');
      assert.ok(row.not_before !== null && row.not_before.getTime() > Date.now() + 50_000, 'backoff about a minute');
      assert.equal(await store.runners.claim(runner.id, POLICY), null, 'not before its backoff');
      const other = await registerRunner(tree);
      assert.equal(await store.runners.claim(other.runner.id, POLICY), null, 'not for another runner either');
      await store.db.updateTable('jobs').set({ not_before: sql<Date>`now() - interval '1 second'` }).where('id', '=', job.id).execute();
      const second = await store.runners.claim(other.runner.id, POLICY);
      assert.equal(second?.job.id, job.id);
      assert.equal(second.lease.attempt, 2);
      assert.equal((await jobRow(job.id)).not_before, null);
    });

    test('claim: warm-base affinity leaves a job to the live runner that holds its base, until it goes stale or the wait passes', async () => {
      const tree = `t-${unique()}`;
      const a = await registerRunner(tree);
      const b = await registerRunner(tree, { capacity: 16 });
      await store.runners.declare(a.runner.id, { warmBases: [{ tree, commit: BASE }] });
      assert.deepEqual((await store.runners.get(a.runner.id))?.warmBases, [{ tree, commit: BASE }]);

      const held = await makeJob(tree); // its base: the series' trailer, BASE
      assert.equal(await store.runners.claim(b.runner.id, POLICY), null, 'left to A, which holds the base');
      // A job on another base is not held back, and is taken past the held one.
      const cold = await makeJob(tree, { base: OTHER_BASE });
      assert.equal(await claimId(b.runner.id), cold.id);
      // A job whose base is a ref (not a commit) has no affinity.
      const byRef = await makeJob(tree, { base: 'for-next' });
      assert.equal(await claimId(b.runner.id), byRef.id);
      assert.equal(await store.runners.claim(b.runner.id, POLICY), null);

      // A's last word older than two lease periods: not live, B takes it (cold).
      await store.db.updateTable('runners').set({ last_seen_at: sql<Date>`now() - make_interval(secs => ${2 * POLICY.leaseSeconds + 5})` }).where('id', '=', a.runner.id).execute();
      const taken = await store.runners.claim(b.runner.id, POLICY);
      assert.equal(taken?.job.id, held.id);
      assert.equal(taken.warm, false);

      // A seen again: a new job on its base is left to it; A takes it warm.
      await store.runners.authenticate(a.credential);
      const next = await makeJob(tree, { base: BASE });
      assert.equal(await store.runners.claim(b.runner.id, POLICY), null);
      const warm = await store.runners.claim(a.runner.id, POLICY);
      assert.equal(warm?.job.id, next.id);
      assert.equal(warm.warm, true);

      // Past the wait, anyone able takes it.
      const late = await makeJob(tree);
      assert.equal(await store.runners.claim(b.runner.id, POLICY), null);
      await store.db.updateTable('jobs').set({ created_at: sql<Date>`now() - make_interval(secs => ${POLICY.affinityWaitSeconds + 1})` }).where('id', '=', late.id).execute();
      assert.equal(await claimId(b.runner.id), late.id);

      // A draining holder does not hold a job back.
      const whileDraining = await makeJob(tree);
      await store.runners.setState(a.runner.id, 'draining');
      assert.equal(await claimId(b.runner.id), whileDraining.id);
      await store.runners.setState(a.runner.id, 'active');

      // A holder that could not take the job (no KVM) does not hold it back.
      await store.runners.declare(a.runner.id, { labels: labels(tree, { kvm: false }) });
      const kvmJob = await makeJob(tree, { requires: { kvm: true } });
      assert.equal(await claimId(b.runner.id), kvmJob.id);
    });

    // ---- heartbeat, finish -----------------------------------------------------

    test('heartbeat: ok renews; cancel after requestCancel; stale for another runner\'s lease, an unknown one, and after expiry', async () => {
      const tree = `t-${unique()}`;
      const job = await makeJob(tree);
      const { runner } = await registerRunner(tree);
      const other = await registerRunner(tree);
      assert.deepEqual(await store.runners.heartbeat(runner.id, [], POLICY), {});
      const c = await store.runners.claim(runner.id, POLICY);
      assert.ok(c !== null);
      await store.db.updateTable('leases').set({ expires_at: sql<Date>`now() + interval '5 seconds'` }).where('id', '=', c.lease.id).execute();
      assert.deepEqual(await store.runners.heartbeat(runner.id, [c.lease.id, 'l-unknown'], POLICY), { [c.lease.id]: 'ok', 'l-unknown': 'stale' });
      assert.ok((await leaseRow(c.lease.id)).expires_at.getTime() > Date.now() + 25_000, 'renewed by a lease period');
      assert.deepEqual(await store.runners.heartbeat(other.runner.id, [c.lease.id], POLICY), { [c.lease.id]: 'stale' }, 'not its lease');
      assert.equal((await leaseRow(c.lease.id)).ended_at, null, 'another runner\'s heartbeat changes nothing');

      assert.equal(await store.runners.requestCancel(job.id), 'cancelling');
      assert.equal((await jobRow(job.id)).status, 'running');
      assert.deepEqual(await store.runners.heartbeat(runner.id, [c.lease.id], POLICY), { [c.lease.id]: 'cancel' });
      const cancelled = await store.runners.finishWithout(runner.id, c.lease.id, 'cancelled', POLICY);
      assert.equal(cancelled.status, 'cancelled');
      assert.deepEqual(await store.runners.heartbeat(runner.id, [c.lease.id], POLICY), { [c.lease.id]: 'stale' }, 'ended');

      // Expiry: a one-second lease not renewed.
      const short = { ...POLICY, leaseSeconds: 1 };
      await makeJob(tree);
      const d = await store.runners.claim(runner.id, short);
      assert.ok(d !== null);
      assert.deepEqual(await store.runners.heartbeat(runner.id, [d.lease.id], short), { [d.lease.id]: 'ok' });
      await sleep(1500);
      assert.deepEqual(await store.runners.heartbeat(runner.id, [d.lease.id], short), { [d.lease.id]: 'stale' });
      await rejectsWithCode(store.runners.current(runner.id, d.lease.id), 'LEASE_STALE');

      // Past its deadline no renewal holds it.
      const capped = { ...POLICY, maxLeaseSeconds: 1 };
      await makeJob(tree);
      const e = await store.runners.claim(runner.id, capped);
      assert.ok(e !== null);
      await sleep(1200);
      assert.deepEqual(await store.runners.heartbeat(runner.id, [e.lease.id], capped), { [e.lease.id]: 'stale' });
    });

    test('finishWithResult records the result and ends the lease; under a stale lease it throws LEASE_STALE and records nothing', async () => {
      const tree = `t-${unique()}`;
      const job = await makeJob(tree);
      const { runner } = await registerRunner(tree);
      const other = await registerRunner(tree);
      const c = await store.runners.claim(runner.id, POLICY);
      assert.ok(c !== null);
      await rejectsWithCode(store.runners.finishWithResult(other.runner.id, c.lease.id, passResult(c.job)), 'LEASE_STALE');
      assert.equal((await jobRow(job.id)).status, 'running');

      let hookRan = false;
      const done = await store.runners.finishWithResult(runner.id, c.lease.id, passResult(c.job), async () => {
        hookRan = true;
        await Promise.resolve();
      });
      assert.equal(hookRan, true);
      assert.equal(done.status, 'PASS');
      const stored = await store.jobs.get(job.id);
      assert.equal(stored?.status, 'PASS');
      assert.equal(stored.result?.status, 'PASS');
      assert.equal(await resultRows(job.id), 1);
      const lease = await leaseRow(c.lease.id);
      assert.ok(lease.ended_at instanceof Date);
      assert.equal(lease.outcome, 'result');
      assert.equal((await jobRow(job.id)).lease_id, null);
      assert.equal((await store.runners.get(runner.id))?.jobsDone, 1);
      assert.deepEqual(await openLeases(runner.id), []);
      // Ended: a second result is refused.
      await rejectsWithCode(store.runners.finishWithResult(runner.id, c.lease.id, { ...passResult(c.job), status: 'FAIL' }), 'LEASE_STALE');
      assert.equal((await store.jobs.get(job.id))?.status, 'PASS');

      // Expired: refused, nothing recorded, the job still running under it until the sweep.
      const short = { ...POLICY, leaseSeconds: 1 };
      const late = await makeJob(tree);
      const d = await store.runners.claim(runner.id, short);
      assert.equal(d?.job.id, late.id);
      await sleep(1500);
      await rejectsWithCode(store.runners.finishWithResult(runner.id, d.lease.id, passResult(d.job)), 'LEASE_STALE');
      await rejectsWithCode(store.runners.takeLogBytes(runner.id, d.lease.id, 10, 1000), 'LEASE_STALE');
      await rejectsWithCode(store.runners.finishWithout(runner.id, d.lease.id, 'retry', short), 'LEASE_STALE');
      const unrecorded = await store.jobs.get(late.id);
      assert.equal(unrecorded?.status, 'running');
      assert.equal(unrecorded.result, null);
      assert.equal(await resultRows(late.id), 0);
      assert.equal((await store.runners.get(runner.id))?.jobsDone, 1);

      // Swept and taken by another runner: the old lease's result is still refused.
      const swept = (await store.runners.sweep(short)).filter((s) => s.jobId === late.id);
      assert.deepEqual(swept.map((s) => s.became), ['queued']);
      const e = await store.runners.claim(other.runner.id, POLICY);
      assert.equal(e?.job.id, late.id);
      await rejectsWithCode(store.runners.finishWithResult(runner.id, d.lease.id, passResult(d.job)), 'LEASE_STALE');
      assert.equal((await store.jobs.get(late.id))?.result, null);
      await store.runners.finishWithResult(other.runner.id, e.lease.id, passResult(e.job));
      assert.equal((await store.jobs.get(late.id))?.status, 'PASS');
    });

    test('finishWithout: retry spends an attempt and backs off; released does not and is queued at once; cancelled cancels', async () => {
      const tree = `t-${unique()}`;
      const { runner } = await registerRunner(tree);

      const retried = await makeJob(tree);
      const a = await store.runners.claim(runner.id, POLICY);
      assert.equal(a?.job.id, retried.id);
      const t0 = Date.now();
      const after = await store.runners.finishWithout(runner.id, a.lease.id, 'retry', POLICY);
      assert.equal(after.status, 'queued');
      assert.equal(after.attempts, 1, 'the attempt is spent');
      const row = await jobRow(retried.id);
      assert.equal(row.lease_id, null);
      assert.ok(row.not_before !== null);
      assert.ok(Math.abs(row.not_before.getTime() - (t0 + POLICY.retryBackoffMs)) < 10_000, `not_before ${row.not_before.toISOString()} about a minute on`);
      assert.equal((await leaseRow(a.lease.id)).outcome, 'retry');
      assert.equal((await store.runners.get(runner.id))?.failures, 1);
      await rejectsWithCode(store.runners.finishWithout(runner.id, a.lease.id, 'retry', POLICY), 'LEASE_STALE');
      // The second retry's backoff doubles.
      await store.db.updateTable('jobs').set({ not_before: null }).where('id', '=', retried.id).execute();
      const a2 = await store.runners.claim(runner.id, POLICY);
      assert.equal(a2?.lease.attempt, 2);
      const t1 = Date.now();
      await store.runners.finishWithout(runner.id, a2.lease.id, 'retry', POLICY);
      const row2 = await jobRow(retried.id);
      assert.ok(row2.not_before !== null && Math.abs(row2.not_before.getTime() - (t1 + 2 * POLICY.retryBackoffMs)) < 10_000);
      assert.equal(row2.attempts, 2);
      await store.db.updateTable('jobs').set({ status: 'cancelled' }).where('id', '=', retried.id).execute();

      const released = await makeJob(tree);
      const b = await store.runners.claim(runner.id, POLICY);
      assert.equal(b?.job.id, released.id);
      const back = await store.runners.finishWithout(runner.id, b.lease.id, 'released', POLICY);
      assert.equal(back.status, 'queued');
      assert.equal(back.attempts, 0, 'no attempt spent');
      assert.equal((await jobRow(released.id)).not_before, null);
      assert.equal((await leaseRow(b.lease.id)).outcome, 'released');
      assert.equal((await store.runners.get(runner.id))?.failures, 2, 'a release is not a failure');
      const b2 = await store.runners.claim(runner.id, POLICY);
      assert.equal(b2?.job.id, released.id, 'queued at once');
      assert.equal(b2.lease.attempt, 1);

      const cancelled = await makeJob(tree);
      const c = await store.runners.claim(runner.id, POLICY);
      assert.equal(c?.job.id, cancelled.id);
      const gone = await store.runners.finishWithout(runner.id, c.lease.id, 'cancelled', POLICY);
      assert.equal(gone.status, 'cancelled');
      assert.equal((await leaseRow(c.lease.id)).outcome, 'cancelled');
      assert.equal((await jobRow(cancelled.id)).lease_id, null);
      await rejectsWithCode(store.jobs.recordResult(cancelled.id, passResult(c.job)), 'JOB_CANCELLED');
      assert.deepEqual(await openLeases(runner.id), [released.id]);
      assert.equal(await store.runners.claim(runner.id, { ...POLICY }), null);
    });

    // ---- sweep, forgetLost, revoke, cancel -----------------------------------

    test('sweep: a lapsed lease\'s job runs again as a new attempt; with its attempts spent it is recorded MISS (LEASE_LAPSED)', async () => {
      const tree = `t-${unique()}`;
      const { runner } = await registerRunner(tree);
      const other = await registerRunner(tree);

      // maxAttempts 3: queued again, at once.
      const short = { ...POLICY, leaseSeconds: 1 };
      const job = await makeJob(tree);
      const a = await store.runners.claim(runner.id, short);
      assert.equal(a?.job.id, job.id);
      assert.deepEqual((await store.runners.sweep(short)).filter((s) => s.jobId === job.id), [], 'not lapsed yet');
      await sleep(1500);
      const swept = (await store.runners.sweep(short)).filter((s) => s.jobId === job.id);
      assert.deepEqual(swept, [{ jobId: job.id, leaseId: a.lease.id, became: 'queued' }]);
      assert.deepEqual((await store.runners.sweep(short)).filter((s) => s.jobId === job.id), [], 'a lease lapses once');
      assert.equal((await leaseRow(a.lease.id)).outcome, 'lapsed');
      const row = await jobRow(job.id);
      assert.equal(row.status, 'queued');
      assert.equal(row.attempts, 1);
      assert.equal(row.lease_id, null);
      assert.equal(row.not_before, null);
      assert.equal((await store.runners.get(runner.id))?.failures, 1);
      const b = await store.runners.claim(other.runner.id, POLICY);
      assert.equal(b?.job.id, job.id);
      assert.equal(b.lease.attempt, 2);
      await store.runners.finishWithResult(other.runner.id, b.lease.id, passResult(b.job));

      // maxAttempts 1: the one attempt lapses -> MISS.
      const one = { ...short, maxAttempts: 1 };
      const last = await makeJob(tree);
      const c = await store.runners.claim(runner.id, one);
      assert.equal(c?.job.id, last.id);
      await sleep(1500);
      let recorded = false;
      const missed = (await store.runners.sweep(one, async (_trx, j) => {
        if (j.id === last.id) recorded = true;
        await Promise.resolve();
      })).filter((s) => s.jobId === last.id);
      assert.deepEqual(missed.map((s) => s.became), ['MISS']);
      assert.equal(recorded, true, 'onRecorded ran');
      const rec = await store.jobs.get(last.id);
      assert.equal(rec?.status, 'MISS');
      assert.equal(rec.errorCode, 'LEASE_LAPSED');
      assert.equal(rec.result?.error?.code, 'LEASE_LAPSED');
      assert.equal((await jobRow(last.id)).lease_id, null);
      assert.equal((await leaseRow(c.lease.id)).outcome, 'lapsed');

      // maxAttempts 2: queued after the first, MISS after the second.
      const two = { ...short, maxAttempts: 2 };
      const twice = await makeJob(tree);
      const d = await store.runners.claim(runner.id, two);
      assert.equal(d?.job.id, twice.id);
      await sleep(1500);
      assert.deepEqual((await store.runners.sweep(two)).filter((s) => s.jobId === twice.id).map((s) => s.became), ['queued']);
      const e = await store.runners.claim(other.runner.id, two);
      assert.equal(e?.job.id, twice.id);
      assert.equal(e.lease.attempt, 2);
      await sleep(1500);
      assert.deepEqual((await store.runners.sweep(two)).filter((s) => s.jobId === twice.id).map((s) => s.became), ['MISS']);
      assert.equal((await store.jobs.get(twice.id))?.errorCode, 'LEASE_LAPSED');

      // A lapsed lease whose job was asked to cancel: cancelled, not run again.
      const cancelMe = await makeJob(tree);
      const f = await store.runners.claim(runner.id, short);
      assert.equal(f?.job.id, cancelMe.id);
      assert.equal(await store.runners.requestCancel(cancelMe.id), 'cancelling');
      await sleep(1500);
      assert.deepEqual((await store.runners.sweep(short)).filter((s) => s.jobId === cancelMe.id).map((s) => s.became), ['cancelled']);
    });

    test('sweep: a lease past its deadline lapses even though it was renewed', async () => {
      const tree = `t-${unique()}`;
      const { runner } = await registerRunner(tree);
      const capped = { ...POLICY, maxLeaseSeconds: 1 };
      const job = await makeJob(tree);
      const a = await store.runners.claim(runner.id, capped);
      assert.equal(a?.job.id, job.id);
      assert.deepEqual(await store.runners.heartbeat(runner.id, [a.lease.id], capped), { [a.lease.id]: 'ok' });
      await sleep(1300);
      assert.deepEqual((await store.runners.sweep(capped)).filter((s) => s.jobId === job.id).map((s) => s.became), ['queued']);
    });

    test('forgetLost ends the leases the runner does not list; their jobs run again at once', async () => {
      const tree = `t-${unique()}`;
      const { runner } = await registerRunner(tree, { capacity: 3 });
      const j1 = await makeJob(tree);
      const j2 = await makeJob(tree);
      const a = await store.runners.claim(runner.id, POLICY);
      const b = await store.runners.claim(runner.id, POLICY);
      assert.equal(a?.job.id, j1.id);
      assert.equal(b?.job.id, j2.id);
      assert.deepEqual(await store.runners.forgetLost(runner.id, [a.lease.id], POLICY), [j2.id]);
      assert.equal((await leaseRow(b.lease.id)).outcome, 'lost');
      assert.equal((await leaseRow(a.lease.id)).ended_at, null);
      const row = await jobRow(j2.id);
      assert.equal(row.status, 'queued');
      assert.equal(row.attempts, 1, 'a new attempt');
      assert.equal(row.not_before, null);
      assert.deepEqual(await store.runners.heartbeat(runner.id, [a.lease.id, b.lease.id], POLICY), { [a.lease.id]: 'ok', [b.lease.id]: 'stale' });
      assert.deepEqual(await store.runners.forgetLost(runner.id, [a.lease.id, b.lease.id], POLICY), []);
      // An empty list forgets them all.
      const c = await store.runners.claim(runner.id, POLICY);
      assert.equal(c?.job.id, j2.id);
      assert.deepEqual((await store.runners.forgetLost(runner.id, [], POLICY)).sort(), [j1.id, j2.id].sort());
      assert.deepEqual(await openLeases(runner.id), []);
    });

    test('revoke requeues what the runner holds at once, without spending an attempt', async () => {
      const tree = `t-${unique()}`;
      const { runner, credential } = await registerRunner(tree);
      const other = await registerRunner(tree);
      const job = await makeJob(tree);
      const a = await store.runners.claim(runner.id, POLICY);
      assert.equal(a?.job.id, job.id);
      const { requeued } = await store.runners.revoke(runner.id);
      assert.deepEqual(requeued, [job.id]);
      const row = await jobRow(job.id);
      assert.equal(row.status, 'queued');
      assert.equal(row.attempts, 0);
      assert.equal(row.lease_id, null);
      assert.equal(row.not_before, null);
      assert.equal((await leaseRow(a.lease.id)).outcome, 'revoked');
      await rejectsWithCode(store.runners.authenticate(credential), 'RUNNER_REVOKED');
      assert.equal(await store.runners.claim(runner.id, POLICY), null, 'a revoked runner takes nothing');
      assert.deepEqual(await store.runners.heartbeat(runner.id, [a.lease.id], POLICY), { [a.lease.id]: 'stale' });
      await rejectsWithCode(store.runners.finishWithResult(runner.id, a.lease.id, passResult(a.job)), 'LEASE_STALE');
      const b = await store.runners.claim(other.runner.id, POLICY);
      assert.equal(b?.job.id, job.id);
      assert.equal(b.lease.attempt, 1);
      assert.deepEqual((await store.runners.revoke(runner.id)).requeued, [], 'revoking again');
      const listed = await store.runners.list();
      const mine = listed.filter((r) => r.id === runner.id || r.id === other.runner.id);
      assert.deepEqual(mine.map((r) => r.state), ['active', 'revoked'], 'revoked ones last');
    });

    test('requestCancel: a queued job is cancelled at once, a running one is asked; a finished one is JOB_FINISHED', async () => {
      const tree = `t-${unique()}`;
      const queued = await makeJob(tree);
      assert.equal(await store.runners.requestCancel(queued.id), 'cancelled');
      assert.equal((await jobRow(queued.id)).status, 'cancelled');
      await rejectsWithCode(store.runners.requestCancel(queued.id), 'JOB_FINISHED');
      await rejectsWithCode(store.runners.requestCancel('j-00000000000000000000'), 'JOB_UNKNOWN');

      const { runner } = await registerRunner(tree);
      assert.equal(await store.runners.claim(runner.id, POLICY), null, 'the cancelled job is not claimed');
      const running = await makeJob(tree);
      const a = await store.runners.claim(runner.id, POLICY);
      assert.equal(a?.job.id, running.id);
      assert.equal(await store.runners.requestCancel(running.id), 'cancelling');
      assert.equal(await store.runners.requestCancel(running.id), 'cancelling', 'asking twice');
      const row = await jobRow(running.id);
      assert.equal(row.status, 'running');
      assert.ok(row.cancel_requested_at instanceof Date);
      assert.equal((await store.jobs.get(running.id))?.cancelRequestedAt?.getTime(), row.cancel_requested_at.getTime());
      // A runner stopping releases it: it is cancelled, not queued again.
      const released = await store.runners.finishWithout(runner.id, a.lease.id, 'released', POLICY);
      assert.equal(released.status, 'cancelled', 'a cancel asked for is not lost when the lease ends another way');
    });

    test('takeLogBytes caps the log at the limit across calls', async () => {
      const tree = `t-${unique()}`;
      await makeJob(tree);
      const { runner } = await registerRunner(tree);
      const other = await registerRunner(tree);
      const a = await store.runners.claim(runner.id, POLICY);
      assert.ok(a !== null);
      assert.equal((await store.runners.takeLogBytes(runner.id, a.lease.id, 60, 100)).fits, 60);
      assert.equal((await store.runners.takeLogBytes(runner.id, a.lease.id, 60, 100)).fits, 40);
      assert.equal((await store.runners.takeLogBytes(runner.id, a.lease.id, 10, 100)).fits, 0);
      assert.equal((await store.runners.takeLogBytes(runner.id, a.lease.id, 0, 100)).fits, 0);
      const row = await store.db.selectFrom('leases').select('log_bytes').where('id', '=', a.lease.id).executeTakeFirstOrThrow();
      assert.equal(row.log_bytes, 100);
      await rejectsWithCode(store.runners.takeLogBytes(other.runner.id, a.lease.id, 10, 100), 'LEASE_STALE');
      // Concurrent calls never count past the limit together.
      await makeJob(tree);
      const b = await store.runners.claim(runner.id, POLICY);
      assert.ok(b !== null);
      const took = await Promise.all(Array.from({ length: 10 }, () => store.runners.takeLogBytes(runner.id, b.lease.id, 30, 200)));
      assert.equal(took.reduce((s, n) => s + n.fits, 0), 200);
      assert.equal(took.filter((n) => n.cut).length, 1, 'the cut is reported once');
    });

    // ---- concurrency -------------------------------------------------------------

    test('two runners claiming at once never get the same job', async () => {
      for (let round = 0; round < opts.raceRounds; round++) {
        const tree = `t-${unique()}`;
        const jobs = new Set<string>();
        for (let i = 0; i < 8; i++) jobs.add((await makeJob(tree)).id);
        const a = await registerRunner(tree, { capacity: 64 });
        const b = await registerRunner(tree, { capacity: 64 });
        const got: string[] = [];
        for (let i = 0; i < 40; i++) {
          const pair = await Promise.all([store.runners.claim(a.runner.id, POLICY), store.runners.claim(b.runner.id, POLICY), store.runners.claim(a.runner.id, POLICY)]);
          const ids = pair.flatMap((c) => (c === null ? [] : [c.job.id]));
          got.push(...ids);
          if (ids.length === 0) break;
        }
        assert.equal(new Set(got).size, got.length, `a job went out twice: ${got.join(' ')}`);
        assert.deepEqual(new Set(got), jobs, 'every job went out');
        const leases = await store.db.selectFrom('leases').select(['job_id']).where('job_id', 'in', [...jobs]).execute();
        assert.equal(leases.length, jobs.size, 'one lease per job');
        for (const id of jobs) assert.equal((await jobRow(id)).attempts, 1);
      }
    });

    test('one runner claiming at once never holds more than its capacity', async () => {
      for (let round = 0; round < opts.raceRounds; round++) {
        const tree = `t-${unique()}`;
        for (let i = 0; i < 4; i++) await makeJob(tree);
        const { runner } = await registerRunner(tree, { capacity: 1 });
        await Promise.all([1, 2, 3, 4].map(async (n) => {
          await sleep(n % 2);
          return store.runners.claim(runner.id, POLICY);
        }));
        assert.ok((await openLeases(runner.id)).length <= 1, `round ${round}: ${(await openLeases(runner.id)).length} leases at capacity 1`);
        await store.runners.revoke(runner.id);
        await store.db.updateTable('jobs').set({ status: 'cancelled' }).where('tree', '=', tree).execute();
      }
    });

    test('a long queue of jobs no runner here can take does not hide one it can', async () => {
      const blocked = `t-${unique()}`;
      const tree = `t-${unique()}`;
      const { runner } = await registerRunner(tree, { labels: { kvm: false } });
      const filler: string[] = [];
      // More than a claim reads at once: jobs on a tree it does not mirror, and jobs on its tree that need KVM.
      for (let i = 0; i < 110; i++) filler.push((await makeJob(blocked)).id);
      for (let i = 0; i < 110; i++) filler.push((await makeJob(tree, { requires: { kvm: true } })).id);
      try {
        const mine = await makeJob(tree);
        assert.equal(await claimId(runner.id), mine.id);
      } finally {
        await store.db.updateTable('jobs').set({ status: 'cancelled' }).where('id', 'in', filler).execute();
      }
    });
  });
}

runnerSuite('runners on PGlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pb-runners-'));
  return {
    open: () => openDatabase({ databaseUrl: null, dataDir: dir }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}, { raceRounds: 2 });

runnerSuite('runners on PostgreSQL', async () => {
  const server = await startPostgres();
  return {
    open: async () => {
      const store = await openDatabase({ databaseUrl: server.url, dataDir: join(tmpdir(), 'pb-unused') });
      assert.equal(store.backend, 'postgres');
      return store;
    },
    cleanup: () => server.stop(),
  };
}, { raceRounds: 10 });

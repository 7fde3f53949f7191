/**
 * Lab runners over HTTPS (services/protocol/runners.ts): registration,
 * claims (long poll), heartbeats, live logs, artifacts, results; and the
 * admin's side: registration tokens, the list, drain, resume, revoke.
 * Runners never reach Redis or the database: this is their only door.
 *
 * A runner may be compromised: every body is validated and capped, logs
 * are capped per attempt, artifacts are written by this process into a
 * folder it made (O_EXCL | O_NOFOLLOW), checked against their sha256, and
 * anything sent under a lease that is not current is refused (LEASE_STALE).
 * The plugin also sweeps lapsed leases, and stops doing so when it closes.
 */
import { createHash } from 'node:crypto';
import { constants, createWriteStream, mkdirSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Transaction } from 'kysely';
import { PatchbayError, errorMessage } from '../../domain/errors.ts';
import type { JobResult } from '../../domain/job.ts';
import { utf8Prefix } from '../../domain/limits.ts';
import { attemptOutcome } from '../../domain/runners.ts';
import {
  ARTIFACT_NAME_RE, ClaimRequest, HeartbeatReply, HeartbeatRequest, HelloReply, HelloRequest, LeasedJob, LogRequest,
  RegisterReply, RegisterRequest, ReleaseRequest, ResultReply, ResultRequest,
} from '../../protocol/runners.ts';
import type { JobLogs } from '../../queue/logs.ts';
import type { Database, Job, LeasePolicy, Runner, RunnerWithLeases, Store } from '../../store/db.ts';
import { ErrorBody } from '../schemas.ts';

export interface RunnerRoutesOptions {
  store: Store;
  logs: JobLogs;
  policy: LeasePolicy;
  heartbeatSeconds: number;
  claimWaitSeconds: number;
  registrationTtlSeconds: number;
  /** What one attempt may put on the job's log stream. */
  logLimitBytes: number;
  artifactLimitBytes: number;
  /** Where uploaded artifacts go: <resultsDir>/<job id>/<lease id>/<name>. */
  resultsDir: string;
  /** Plans the mail report a recorded verdict earns, in its transaction (null: reports off). */
  planReport: ((trx: Transaction<Database>, job: Job) => Promise<unknown>) | null;
  /** How often lapsed leases are looked for; default a quarter of the lease. */
  sweepIntervalMs?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    runner: Runner | null;
  }
  interface FastifyContextConfig {
    /** The route is a runner's: it needs a runner credential, not a token. */
    runner?: boolean;
  }
}

const LeaseParams = Type.Object({ id: Type.String({ pattern: '^l-[0-9a-z]{20}$' }) });
const RunnerParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
const RunnerView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  state: Type.String(),
  labels: Type.Object({}, { additionalProperties: true }),
  capacity: Type.Integer(),
  version: Type.Union([Type.String(), Type.Null()]),
  warmBases: Type.Array(Type.Object({ tree: Type.String(), commit: Type.String() })),
  registeredAt: Type.String(),
  lastSeenAt: Type.Union([Type.String(), Type.Null()]),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
  jobsDone: Type.Integer(),
  failures: Type.Integer(),
  leases: Type.Array(Type.Object({ id: Type.String(), jobId: Type.String(), attempt: Type.Integer(), since: Type.String(), expiresAt: Type.String() })),
});

export function runnerView(r: RunnerWithLeases) {
  return {
    id: r.id, name: r.name, state: r.state, labels: { ...r.labels }, capacity: r.capacity, version: r.version,
    warmBases: r.warmBases, registeredAt: r.registeredAt.toISOString(), lastSeenAt: r.lastSeenAt?.toISOString() ?? null,
    revokedAt: r.revokedAt?.toISOString() ?? null, jobsDone: r.jobsDone, failures: r.failures,
    leases: r.leases.map((l) => ({ id: l.id, jobId: l.jobId, attempt: l.attempt, since: l.createdAt.toISOString(), expiresAt: l.expiresAt.toISOString() })),
  };
}

/** Runners send many small requests (heartbeats, logs): their own, larger, per-address bucket. */
const RUNNER_RATE = { max: 6000, timeWindow: 60_000, keyGenerator: (r: FastifyRequest) => `runner:${r.ip}` };

const sleep = (ms: number, signal: AbortSignal): Promise<void> => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

export default function runnerRoutes(fastify: FastifyInstance, opts: RunnerRoutesOptions, done: (err?: Error) => void) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { store, policy } = opts;
  const closing = new AbortController();

  app.decorateRequest('runner', null);
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.runner !== true) return;
    const m = /^Bearer\s+(\S{1,200})$/i.exec(request.headers.authorization ?? '');
    if (!m?.[1]) throw new PatchbayError('RUNNER_AUTH_INVALID', 'a runner sends "Authorization: Bearer <runner credential>"');
    request.runner = await store.runners.authenticate(m[1]);
  });
  // Artifacts stream to disk; nothing else a runner sends is binary.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => { done(null, payload); });

  const me = (request: FastifyRequest): Runner => {
    if (request.runner === null) throw new PatchbayError('RUNNER_AUTH_INVALID', 'no runner credential');
    return request.runner;
  };
  const say = (jobId: string, text: string): Promise<unknown> =>
    opts.logs.append(jobId, { kind: 'log', stage: 'setup', text }).catch(() => undefined);

  // ---- the runner's side -------------------------------------------------

  app.post('/api/v1/runners/register', {
    schema: { summary: 'Register a lab runner with a one-time token', tags: ['runners'], body: RegisterRequest, response: { 201: RegisterReply, 400: ErrorBody, 401: ErrorBody, 409: ErrorBody } },
  }, async (request, reply) => {
    const b = request.body;
    const { runner, credential } = await store.runners.register({ token: b.token, name: b.name, labels: b.labels, capacity: b.capacity, version: b.version });
    request.log.info({ runnerId: runner.id, runner: runner.name }, 'runner registered');
    return reply.code(201).send({ id: runner.id, name: runner.name, credential });
  });

  app.post('/api/v1/runner/hello', {
    config: { runner: true, rateLimit: RUNNER_RATE },
    schema: { summary: 'A runner starts: what it has, and the leases it still holds', tags: ['runners'], body: HelloRequest, response: { 200: HelloReply, 401: ErrorBody } },
  }, async (request) => {
    const r = me(request);
    const b = request.body;
    await store.runners.declare(r.id, { labels: b.labels, capacity: b.capacity, version: b.version, warmBases: b.warmBases });
    const released = await store.runners.forgetLost(r.id, b.leases, policy);
    for (const jobId of released) await say(jobId, `patchbay: runner ${r.name} restarted without this job; it runs again\n`);
    request.log.info({ runnerId: r.id, runner: r.name, released }, 'runner hello');
    return {
      id: r.id, name: r.name, state: r.state === 'draining' ? 'draining' as const : 'active' as const,
      heartbeatSeconds: Math.max(1, Math.min(opts.heartbeatSeconds, Math.floor(policy.leaseSeconds / 3))),
      leaseSeconds: policy.leaseSeconds, logLimitBytes: opts.logLimitBytes, artifactLimitBytes: opts.artifactLimitBytes, released,
    };
  });

  app.post('/api/v1/runner/claim', {
    config: { runner: true, rateLimit: RUNNER_RATE },
    schema: { summary: 'Wait for a job this runner may take', tags: ['runners'], body: ClaimRequest, response: { 200: LeasedJob, 204: Type.Null(), 401: ErrorBody } },
  }, async (request, reply) => {
    const r = me(request);
    await store.runners.declare(r.id, { warmBases: request.body.warmBases });
    const until = Date.now() + Math.min(request.body.waitSeconds, opts.claimWaitSeconds) * 1000;
    const gone = new AbortController();
    request.raw.on('close', () => { gone.abort(); });
    for (;;) {
      const got = await store.runners.claim(r.id, policy);
      if (got !== null) {
        const { lease, job, warm } = got;
        await say(job.id, `patchbay: runner ${r.name} took the job (attempt ${lease.attempt}, lease ${lease.id}${warm ? ', it holds the warm base' : ''})\n`);
        request.log.info({ jobId: job.id, runner: r.name, leaseId: lease.id, attempt: lease.attempt }, 'runner took a job');
        return reply.code(200).send(await leasedJob(store, lease, job, warm));
      }
      if (Date.now() >= until || gone.signal.aborted || closing.signal.aborted) return reply.code(204).send(null);
      await sleep(1000, AbortSignal.any([gone.signal, closing.signal]));
    }
  });

  app.post('/api/v1/runner/heartbeat', {
    config: { runner: true, rateLimit: RUNNER_RATE },
    schema: { summary: 'Renew leases; hear of cancels and drains', tags: ['runners'], body: HeartbeatRequest, response: { 200: HeartbeatReply, 401: ErrorBody } },
  }, async (request) => {
    const r = me(request);
    if (request.body.warmBases !== undefined) await store.runners.declare(r.id, { warmBases: request.body.warmBases });
    const leases = await store.runners.heartbeat(r.id, request.body.leases, policy);
    return { leases, drain: r.state === 'draining' };
  });

  app.post('/api/v1/runner/leases/:id/log', {
    config: { runner: true, rateLimit: RUNNER_RATE },
    bodyLimit: 2 * 1024 * 1024,
    schema: { summary: "Append to the job's live log", tags: ['runners'], params: LeaseParams, body: LogRequest, response: { 204: Type.Null(), 401: ErrorBody, 409: ErrorBody } },
  }, async (request, reply) => {
    const r = me(request);
    const lease = await store.runners.current(r.id, request.params.id);
    const entries = request.body.entries;
    const bytes = entries.reduce((n, e) => n + (e.kind === 'log' ? Buffer.byteLength(e.text) : 0), 0);
    const { fits, cut } = bytes === 0 ? { fits: 0, cut: false } : await store.runners.takeLogBytes(r.id, lease.id, bytes, opts.logLimitBytes);
    let room = fits;
    for (const e of entries) {
      if (e.kind === 'log') {
        if (room <= 0) continue;
        const text = utf8Prefix(e.text, room);
        room -= Buffer.byteLength(text);
        await opts.logs.append(lease.jobId, { kind: 'log', stage: e.stage, text });
      } else {
        await opts.logs.append(lease.jobId, e);
      }
    }
    // Once per attempt, where the job's own output was first cut.
    if (cut) await opts.logs.append(lease.jobId, { kind: 'log', stage: 'setup', text: `\n[patchbay: the log of this attempt reached its limit of ${opts.logLimitBytes} bytes; the rest is not shown]\n` });
    return reply.code(204).send(null);
  });

  app.put('/api/v1/runner/leases/:id/artifacts/:name', {
    config: { runner: true, rateLimit: RUNNER_RATE },
    schema: {
      summary: 'Upload one artifact of the attempt (sha256 in X-Content-Sha256)', tags: ['runners'],
      params: Type.Object({ id: LeaseParams.properties.id, name: Type.String({ pattern: ARTIFACT_NAME_RE.source }) }),
      response: { 201: Type.Object({ name: Type.String(), bytes: Type.Integer(), sha256: Type.String() }), 400: ErrorBody, 401: ErrorBody, 409: ErrorBody, 413: ErrorBody },
    },
  }, async (request, reply) => {
    const r = me(request);
    // The body is a stream not yet read (the parser above passes it through): the lease is checked first.
    const lease = await store.runners.current(r.id, request.params.id);
    const want = String(request.headers['x-content-sha256'] ?? '');
    if (!/^[0-9a-f]{64}$/.test(want)) throw new PatchbayError('VALIDATION', 'send the artifact\'s sha256 (hex) in X-Content-Sha256');
    const declared = Number(request.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > opts.artifactLimitBytes) {
      throw new PatchbayError('BODY_TOO_LARGE', `an artifact may be ${opts.artifactLimitBytes} bytes; this one is ${declared}`);
    }
    const dir = leaseDir(opts.resultsDir, lease.jobId, lease.id);
    const path = join(dir, request.params.name);
    const fd = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o640).catch((e: unknown) => {
      throw new PatchbayError('ARTIFACT_EXISTS', `artifact ${request.params.name} was uploaded already under this lease`, { cause: e });
    });
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      const body = request.body as Readable;
      const out = createWriteStream('', { fd, flush: true });
      await pipeline(body, async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          bytes += chunk.length;
          if (bytes > opts.artifactLimitBytes) throw new PatchbayError('BODY_TOO_LARGE', `an artifact may be ${opts.artifactLimitBytes} bytes`);
          hash.update(chunk);
          yield chunk;
        }
      }, out);
    } catch (e) {
      await rm(path, { force: true });
      throw e instanceof PatchbayError ? e : new PatchbayError('ARTIFACT_UPLOAD_FAILED', `the upload of ${request.params.name} broke off: ${errorMessage(e)}`, { retryable: true });
    }
    const got = hash.digest('hex');
    if (got !== want) {
      await rm(path, { force: true });
      throw new PatchbayError('ARTIFACT_CHECKSUM', `artifact ${request.params.name}: sha256 ${got}, not ${want} as sent`);
    }
    return reply.code(201).send({ name: request.params.name, bytes, sha256: got });
  });

  app.post('/api/v1/runner/leases/:id/result', {
    config: { runner: true, rateLimit: RUNNER_RATE },
    bodyLimit: 16 * 1024 * 1024,
    schema: { summary: "The attempt's result", tags: ['runners'], params: LeaseParams, body: ResultRequest, response: { 200: ResultReply, 401: ErrorBody, 409: ErrorBody } },
  }, async (request) => {
    const r = me(request);
    const lease = await store.runners.current(r.id, request.params.id);
    const dir = leaseDir(opts.resultsDir, lease.jobId, lease.id);
    const kept = await verifiedArtifacts(dir, request.body.artifacts);
    const result: JobResult = {
      ...(request.body.result as unknown as JobResult),
      jobId: lease.jobId,
      artifactsDir: kept.length > 0 ? dir : null,
      artifacts: kept,
    };
    if (attemptOutcome(result, policy.maxAttempts - lease.attempt) === 'retry') {
      await store.runners.finishWithout(r.id, lease.id, 'retry', policy);
      await say(lease.jobId, `patchbay: attempt ${lease.attempt} on runner ${r.name} ended ${result.status} (${result.error?.code ?? 'MISS'}: ${result.summary}); it runs again\n`);
      request.log.warn({ jobId: lease.jobId, runner: r.name, code: result.error?.code }, 'infrastructure trouble on a runner; retrying');
      return { outcome: 'retry' as const, status: 'queued' };
    }
    await store.runners.finishWithResult(r.id, lease.id, result, opts.planReport ?? undefined);
    await opts.logs.append(lease.jobId, { kind: 'end', status: result.status }).catch(() => undefined);
    request.log.info({ jobId: lease.jobId, runner: r.name, status: result.status }, result.summary);
    return { outcome: 'recorded' as const, status: result.status };
  });

  app.post('/api/v1/runner/leases/:id/release', {
    config: { runner: true, rateLimit: RUNNER_RATE },
    schema: { summary: 'End the lease without a result', tags: ['runners'], params: LeaseParams, body: ReleaseRequest, response: { 200: Type.Object({ status: Type.String() }), 401: ErrorBody, 409: ErrorBody } },
  }, async (request) => {
    const r = me(request);
    const job = await store.runners.finishWithout(r.id, request.params.id, request.body.outcome, policy);
    const why = request.body.reason.replace(/[^\x20-\x7e]/g, ' ').slice(0, 500);
    if (job.status === 'cancelled') await opts.logs.append(job.id, { kind: 'end', status: 'cancelled' }).catch(() => undefined);
    else await say(job.id, `patchbay: runner ${r.name} gave the job back (${request.body.outcome}: ${why}); it runs again\n`);
    return { status: job.status };
  });

  app.post('/api/v1/runner/rotate', {
    config: { runner: true, rateLimit: RUNNER_RATE },
    schema: { summary: "A new credential (the current one works until the new one is first used)", tags: ['runners'], response: { 200: Type.Object({ credential: Type.String() }), 401: ErrorBody } },
  }, async (request) => ({ credential: await store.runners.rotate(me(request).id) }));

  // ---- the admin's side --------------------------------------------------

  app.post('/api/v1/runners/tokens', {
    config: { scope: 'admin' },
    schema: {
      summary: 'A one-time registration token for a new runner', tags: ['runners'],
      body: Type.Object({ note: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }),
      response: { 201: Type.Object({ id: Type.String(), token: Type.String(), expiresAt: Type.String() }), 401: ErrorBody, 403: ErrorBody },
    },
  }, async (request, reply) => {
    const t = await store.runners.createToken(request.body.note ?? `by ${request.caller.tokenName ?? 'an admin'}`, opts.registrationTtlSeconds);
    return reply.code(201).send({ id: t.id, token: t.secret, expiresAt: t.expiresAt.toISOString() });
  });

  app.get('/api/v1/runners', {
    config: { scope: 'read' },
    schema: { summary: 'Lab runners, their state and the jobs they hold', tags: ['runners'], response: { 200: Type.Object({ items: Type.Array(RunnerView) }) } },
  }, async () => ({ items: (await store.runners.list()).map(runnerView) }));

  for (const action of ['drain', 'resume', 'revoke'] as const) {
    app.post(`/api/v1/runners/:id/${action}`, {
      config: { scope: 'admin' },
      schema: { summary: `${action[0]?.toUpperCase()}${action.slice(1)} a runner`, tags: ['runners'], params: RunnerParams, response: { 200: RunnerView, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody } },
    }, async (request) => {
      const found = await store.runners.get(request.params.id);
      if (found === null) throw new PatchbayError('RUNNER_UNKNOWN', `no runner ${request.params.id}`);
      if (action === 'revoke') {
        const { requeued } = await store.runners.revoke(found.id);
        for (const jobId of requeued) await say(jobId, `patchbay: runner ${found.name} was revoked; the job runs again elsewhere\n`);
      } else {
        await store.runners.setState(found.id, action === 'drain' ? 'draining' : 'active');
      }
      request.log.info({ runnerId: found.id, runner: found.name, by: request.caller.tokenName }, `runner ${action}`);
      const view = (await store.runners.list()).find((x) => x.id === found.id);
      if (view === undefined) throw new PatchbayError('RUNNER_UNKNOWN', `no runner ${request.params.id}`);
      return runnerView(view);
    });
  }

  // ---- lapsed leases -----------------------------------------------------

  const sweep = async (): Promise<void> => {
    const touched = await store.runners.sweep(policy, opts.planReport ?? undefined);
    for (const t of touched) {
      await say(t.jobId, `patchbay: lease ${t.leaseId} lapsed (its runner stopped renewing it); the job is ${t.became === 'queued' ? 'queued again' : t.became}\n`);
      if (t.became !== 'queued') await opts.logs.append(t.jobId, { kind: 'end', status: t.became }).catch(() => undefined);
      app.log.warn({ jobId: t.jobId, leaseId: t.leaseId, became: t.became }, 'runner lease lapsed');
    }
  };
  let sweeping: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    sweeping = sweep().catch((e: unknown) => { app.log.error({ err: errorMessage(e) }, 'sweeping lapsed leases failed'); });
  }, opts.sweepIntervalMs ?? Math.max(500, (policy.leaseSeconds * 1000) / 4));
  timer.unref();
  app.addHook('onClose', async () => {
    closing.abort();
    clearInterval(timer);
    await sweeping;
  });
  done();
}

function leaseDir(resultsDir: string, jobId: string, leaseId: string): string {
  // Both names are ids this service made (checked by their routes' patterns).
  const dir = join(resultsDir, jobId, leaseId);
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  return dir;
}

/** The artifacts in the lease's folder whose sha256 is what the runner said; the rest are left out (and deleted). */
async function verifiedArtifacts(dir: string, claimed: Record<string, string>): Promise<string[]> {
  const kept: string[] = [];
  for (const [name, sha] of Object.entries(claimed)) {
    if (!ARTIFACT_NAME_RE.test(name)) continue;
    let fh;
    try {
      fh = await open(join(dir, name), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      continue;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) continue;
      const h = createHash('sha256');
      for await (const chunk of fh.createReadStream({ autoClose: false })) h.update(chunk as Buffer);
      if (h.digest('hex') === sha) kept.push(name);
    } finally {
      await fh.close();
    }
  }
  return kept.sort();
}

/** The job as the runner gets it: its mail, base64 (latin1 bytes as stored). */
async function leasedJob(store: Store, lease: { id: string; attempt: number; expiresAt: Date; deadlineAt: Date }, job: Job, warm: boolean) {
  const series = await store.series.get(job.seriesId);
  if (series === null) throw new PatchbayError('SERIES_MISSING', `job ${job.id}: its series is gone`);
  const [cover, patches] = await Promise.all([store.series.cover(job.seriesId), store.series.patches(job.seriesId)]);
  const messages = (cover ? [cover, ...patches] : patches).map((p) => Buffer.from(p.raw).toString('base64'));
  const pre = job.prerequisitesId === null ? null : await store.series.patches(job.prerequisitesId);
  return {
    lease: { id: lease.id, attempt: lease.attempt, expiresAt: lease.expiresAt.toISOString(), deadlineAt: lease.deadlineAt.toISOString() },
    job: {
      id: job.id, tree: job.tree, base: job.base, suites: job.suites,
      series: { version: series.version, baseCommit: series.baseCommit, messages },
      prerequisites: pre === null ? null : { messages: pre.map((p) => Buffer.from(p.raw).toString('base64')) },
    },
    warm,
  };
}

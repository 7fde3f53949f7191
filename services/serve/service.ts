/**
 * `patchbay serve`: the API, a worker, or both in one process, on the same
 * configuration. Builds every dependency from Config, and closes them in
 * order, each bounded: API (stop accepting), worker (finish or hand back),
 * queue, Redis, database.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { orphanAgeSeconds } from '../../runners/executor/docker.ts';
import { join } from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { runJob } from '../../runners/executor/pipeline.ts';
import buildApi from '../api/app.ts';
import { makeMetrics } from '../api/metrics.ts';
import type { ReadinessCheck } from '../api/routes/health.ts';
import { loadCatalogs } from '../catalog/load.ts';
import { makeExecutorDeps } from '../../runners/executor/deps.ts';
import { startGarbageCollector } from '../../runners/executor/gc.ts';
import type { Config } from '../config/config.ts';
import { PatchbayError, errorMessage } from '../domain/errors.ts';
import { Intake, patchIds } from '../intake/intake.ts';
import { fetchThreadMbox } from '../lore/inbox.ts';
import { LoreWatcher } from '../lore/watcher.ts';
import { mirrorGit, resolveBase } from '../intake/base.ts';
import { JobQueue } from '../queue/job-queue.ts';
import { JobLogs } from '../queue/logs.ts';
import { closeRedis, createRedis, pingRedis } from '../queue/redis.ts';
import { OutboxRepo, openDatabase, type Store } from '../store/db.ts';
import type { RunnerRoutesOptions } from '../api/routes/runners.ts';
import type { Status } from '../domain/status.ts';
import { JOB_RETRY } from '../queue/catalogue.ts';
import { makeProcessor } from '../worker/processor.ts';
import { workerStore } from '../worker/store-adapter.ts';
import { SeriesWorker, requestCancel } from '../worker/worker.ts';
import type { Reporter } from '../reporter/reporter.ts';
import { reportPlanning, startReporter } from '../reporter/service.ts';

export type Role = 'api' | 'worker' | 'lore' | 'reporter';

export interface Service {
  api: FastifyInstance | null;
  worker: SeriesWorker | null;
  /** The lore watcher, when this process runs the lore role. */
  lore: LoreWatcher | null;
  /** The reporter (outbox -> mail), when this process runs that role. */
  reporter: Reporter | null;
  store: Store;
  intake: Intake;
  /** The address the API listens on, when it runs. */
  url: string | null;
  close(): Promise<void>;
}

const HEARTBEAT_MS = 10_000;

function heartbeatKey(prefix: string, workerId: string): string {
  return `${prefix}:workers:${workerId}`;
}

/** Ready when some worker reported a reachable Docker engine in the last 30 s. */
async function dockerViaWorkers(redis: Redis, prefix: string): Promise<void> {
  const keys = await redis.keys(`${prefix}:workers:*`);
  const values = keys.length === 0 ? [] : await redis.mget(...keys);
  if (values.some((v) => v !== null && (JSON.parse(v) as { docker?: string }).docker === 'ok')) return;
  throw new Error(keys.length === 0 ? 'no worker has reported in the last 30 s' : 'no worker reaches a Docker engine');
}

/** With lab runners doing the work: ready when one that is not revoked was seen recently. */
async function runnerSeen(store: Store, withinSeconds: number): Promise<void> {
  const live = (await store.runners.list()).filter((r) => r.state !== 'revoked' && r.lastSeenAt !== null && Date.now() - r.lastSeenAt.getTime() < withinSeconds * 1000);
  if (live.length === 0) throw new Error(`no lab runner has been seen in the last ${withinSeconds} s`);
}

export async function startService(config: Config, opts: { roles: readonly Role[]; hostEnv: NodeJS.ProcessEnv; logger: Logger; port?: number }): Promise<Service> {
  const log = opts.logger;
  const catalogs = loadCatalogs(config);
  const store = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const redis = createRedis(config.redisUrl, 'main', (m) => { log.warn(m); });
  const closers: Array<() => Promise<void>> = [];
  try {
    await pingRedis(redis, 5000);
  } catch (e) {
    await closeRedis(redis);
    await store.close();
    throw e;
  }
  const queue = new JobQueue(redis, { prefix: config.queuePrefix });
  const logs = new JobLogs(redis, config.queuePrefix);
  const metrics = makeMetrics(queue, store.lore);
  const intake = new Intake({ store, queue, trees: catalogs.trees, suites: catalogs.suites, defaultSuites: 'by-paths', logger: log, dispatch: config.runners.dispatch });
  if (opts.roles.includes('api')) await ensureLocalToken(store, config.dataDir, log);
  const requeued = await intake.reconcile();
  if (requeued > 0) log.info({ requeued }, 'queued jobs re-enqueued');

  let worker: SeriesWorker | null = null;
  if (opts.roles.includes('worker')) {
    const workerId = `${hostname()}-${process.pid}`;
    const { deps, engine } = makeExecutorDeps(config, opts.hostEnv, log);
    // Warm bases, base runs and job folders, by age and disk budget (PATCHBAY_GC_*).
    const gc = startGarbageCollector({ images: engine }, config, log);
    closers.push(() => gc.close());
    const reaped = await engine.reapOrphans(orphanAgeSeconds(config)).catch(() => []);
    if (reaped.length > 0) log.warn({ reaped }, 'removed containers of runners that are gone');
    const processor = makeProcessor({
      // Each verdict plans its mail report in the transaction that records it.
      store: workerStore(store, reportPlanning(config)),
      trees: catalogs.trees,
      suites: catalogs.suites,
      kernelFragment: catalogs.kernelFragment,
      logs,
      logLimitBytes: config.job.logLimitBytes,
      logger: log,
      workerId,
      execute: async (input, onEvent, signal) => {
        const result = await runJob(input, deps, (e) => { metrics.observe.event(e); onEvent(e); }, signal);
        metrics.observe.result(result);
        return result;
      },
    });
    worker = new SeriesWorker(redis, processor, { prefix: config.queuePrefix, ...config.worker }, log);
    const beat = async (): Promise<void> => {
      let docker = 'ok';
      try { await engine.ping(); } catch (e) { docker = errorMessage(e); }
      await redis.set(heartbeatKey(config.queuePrefix, workerId), JSON.stringify({ docker, at: new Date().toISOString() }), 'EX', 30);
    };
    await beat().catch(() => undefined);
    const timer = setInterval(() => { beat().catch(() => undefined); }, HEARTBEAT_MS);
    timer.unref();
    const w = worker;
    closers.push(async () => {
      clearInterval(timer);
      await w.close();
      await redis.del(heartbeatKey(config.queuePrefix, workerId)).catch(() => 0);
    });
  }

  let lore: LoreWatcher | null = null;
  if (opts.roles.includes('lore')) {
    // A suite the catalogue lacks stops the watcher here, not each series it finds.
    if (config.lore.suites.length > 0) catalogs.suites.select(config.lore.suites);
    const git = mirrorGit(config.mirrorsDir);
    const watcher = new LoreWatcher({
      store, intake, trees: catalogs.trees, config: config.lore, logger: log,
      allow: config.api.inboxAllowlist, timeoutMs: config.api.inboxTimeoutMs, maxBytes: config.api.mboxLimitBytes,
      resolveBase: (series, prerequisites) => resolveBase(series, { trees: catalogs.trees, git, requestedTree: null, requestedBase: null, historyDepth: config.lore.baseHistoryDepth, prerequisites }),
      patchIds,
      // Reply commands (`patchbay: retest` ...) in the threads of queued series; off with reports.
      commands: { planning: reportPlanning(config), publicUrl: config.report.publicUrl, git },
    });
    lore = watcher;
    watcher.start();
    closers.unshift(async () => { await watcher.close(); });
  }

  let reporter: Reporter | null = null;
  if (opts.roles.includes('reporter')) {
    const r = startReporter(config, { store, catalogs, logger: log });
    reporter = r;
    closers.unshift(async () => { await r.close(); });
  }

  let api: FastifyInstance | null = null;
  let url: string | null = null;
  if (opts.roles.includes('api')) {
    const fastifyLogger: FastifyBaseLogger = log;
    const app: FastifyInstance = Fastify(apiServerOptions(config, fastifyLogger));
    api = app;
    const readiness: ReadinessCheck[] = [
      { name: 'database', check: async () => { await store.jobs.list({ limit: 1 }); } },
      { name: 'redis', check: () => pingRedis(redis) },
      config.runners.dispatch === 'runners'
        ? { name: 'runners', check: () => runnerSeen(store, 2 * config.runners.leaseSeconds) }
        : { name: 'docker', check: () => dockerViaWorkers(redis, config.queuePrefix) },
    ];
    await app.register(buildApi, {
      store, intake, queue, logs, registry: metrics.registry, readiness,
      cancelRunning: (jobId) => requestCancel(redis, config.queuePrefix, jobId),
      fetchThread: (inbox, messageId) => fetchThreadMbox(inbox, messageId, {
        allow: config.api.inboxAllowlist, timeoutMs: config.api.inboxTimeoutMs, maxBytes: config.api.mboxLimitBytes,
      }),
      anonymousRead: config.api.anonymousRead,
      mboxLimitBytes: config.api.mboxLimitBytes,
      rateLimitPerMinute: config.api.rateLimitPerMinute,
      sse: { maxTotal: config.api.sseMaxTotal, maxPerClient: config.api.sseMaxPerClient },
      activeJobsPerToken: config.api.activeJobsPerToken,
      runners: runnerRouteOptions(config),
    });
    url = await app.listen({ host: config.api.host, port: opts.port ?? config.api.port });
    closers.unshift(async () => { await app.close(); });
  }

  let closing: Promise<void> | null = null;
  return {
    api, worker, lore, reporter, store, intake, url,
    close() {
      closing ??= (async () => {
        for (const c of closers) {
          try { await c(); } catch (e) { log.error({ err: errorMessage(e) }, 'shutdown step failed'); }
        }
        await queue.close();
        await closeRedis(redis);
        await store.close().catch((e: unknown) => { log.error({ err: errorMessage(e) }, 'database close failed'); });
      })();
      return closing;
    },
  };
}

/**
 * fastify's own options for the API. X-Forwarded-For is believed only from
 * the proxies configuration names: otherwise any client could pick its own
 * address, and with it its rate-limit bucket.
 */
export function apiServerOptions(config: Config, logger: FastifyBaseLogger): FastifyServerOptions & { loggerInstance: FastifyBaseLogger } {
  return {
    loggerInstance: logger,
    bodyLimit: config.api.mboxLimitBytes,
    trustProxy: config.api.trustProxy.length > 0 ? [...config.api.trustProxy] : false,
    return503OnClosing: true,
  };
}

/** The API's side of lab runners, from configuration: leases, claims, uploads, and the reports recorded verdicts earn. */
export function runnerRouteOptions(config: Config): Omit<RunnerRoutesOptions, 'store' | 'logs'> {
  const r = config.runners;
  const planning = reportPlanning(config);
  return {
    policy: {
      leaseSeconds: r.leaseSeconds,
      // The job's own deadline (the executor's) and a margin for setup and uploads.
      maxLeaseSeconds: config.job.deadlineSeconds + 1800,
      maxAttempts: JOB_RETRY.attempts,
      retryBackoffMs: JOB_RETRY.backoffMs,
      affinityWaitSeconds: r.affinityWaitSeconds,
    },
    heartbeatSeconds: r.heartbeatSeconds,
    claimWaitSeconds: r.claimWaitSeconds,
    registrationTtlSeconds: r.registrationTtlSeconds,
    logLimitBytes: config.job.logLimitBytes,
    artifactLimitBytes: r.artifactLimitBytes,
    resultsDir: r.resultsDir,
    planReport: planning === null ? null : (trx, job) => OutboxRepo.planResult(trx, job.id, job.status as Status, planning),
  };
}

/** Where serve leaves the first admin token for local use (mode 0600). */
export function localTokenPath(dataDir: string): string {
  return join(dataDir, 'admin-token');
}

/**
 * A fresh installation has no tokens and so no way to submit: the API role
 * creates one admin token and leaves it in its data folder for the local CLI
 * (a worker does not, so split roles never race for it).
 */
async function ensureLocalToken(store: Store, dataDir: string, log: Logger): Promise<void> {
  if ((await store.tokens.list()).length > 0) return;
  const { token, secret } = await store.tokens.create('local-admin', ['admin']);
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(localTokenPath(dataDir), `${secret}\n`, { mode: 0o600 });
  log.info({ tokenId: token.id }, 'created the first admin token');
}

/**
 * The roles of `serve --role`: all (the default) is the API and a worker,
 * the reporter when reports are on (report.enabled), and the lore watcher
 * when configuration says to watch (lore.watch); a single role runs alone.
 */
export function parseRoles(role: string | undefined, config: Pick<Config, 'lore' | 'report'>): Role[] {
  if (role === undefined || role === 'all') {
    return [
      'api', 'worker',
      ...(config.lore.watch ? ['lore' as const] : []),
      ...(config.report.enabled ? ['reporter' as const] : []),
    ];
  }
  if (role === 'api' || role === 'worker' || role === 'lore' || role === 'reporter') return [role];
  throw new PatchbayError('USAGE', `--role must be api, worker, lore, reporter or all, not "${role}"`);
}

/**
 * The API plugin around a real Redis (a unique queue prefix per harness) and
 * a given store, with tokens of each scope; limits are per test.
 */
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import type { Registry } from 'prom-client';
import { loadCatalogs } from '../../catalog/load.ts';
import { loadConfig } from '../../config/config.ts';
import { Intake } from '../../intake/intake.ts';
import { JobQueue } from '../../queue/job-queue.ts';
import { JobLogs } from '../../queue/logs.ts';
import { pingRedis } from '../../queue/redis.ts';
import { apiServerOptions, runnerRouteOptions } from '../../serve/service.ts';
import type { Store } from '../../store/db.ts';
import buildApi, { type AppOptions } from '../app.ts';
import { makeMetrics } from '../metrics.ts';
import type { ReadinessCheck } from '../routes/health.ts';

export interface Harness {
  app: FastifyInstance;
  store: Store;
  queue: JobQueue;
  logs: JobLogs;
  prefix: string;
  tokens: { submit: string; read: string; admin: string };
  close(): Promise<void>;
}

export interface HarnessOptions extends Partial<Pick<AppOptions, 'anonymousRead' | 'mboxLimitBytes' | 'rateLimitPerMinute' | 'sse' | 'activeJobsPerToken' | 'fetchThread'>> {
  /** Environment for the fastify options (PATCHBAY_TRUST_PROXY...), as serve builds them. */
  env?: Record<string, string>;
  registry?: Registry;
  readiness?: ReadinessCheck[];
}

const logger: FastifyBaseLogger = pino({ level: 'silent' });

export async function apiHarness(redis: Redis, store: Store, opts: HarnessOptions = {}): Promise<Harness> {
  const config = loadConfig({ ...process.env, ...opts.env });
  const catalogs = loadCatalogs(config);
  const prefix = `test-${randomBytes(4).toString('hex')}`;
  const queue = new JobQueue(redis, { prefix });
  const logs = new JobLogs(redis, prefix);
  const intake = new Intake({ store, queue, trees: catalogs.trees, suites: catalogs.suites, defaultSuites: ['smoke'], logger: pino({ level: 'silent' }) });
  const mboxLimitBytes = opts.mboxLimitBytes ?? 1024 * 1024;
  const app: FastifyInstance = Fastify({ ...apiServerOptions(config, logger), bodyLimit: mboxLimitBytes });
  await app.register(buildApi, {
    store, intake, queue, logs,
    registry: opts.registry ?? makeMetrics(queue, store.lore).registry,
    readiness: opts.readiness ?? [
      { name: 'database', check: async () => { await store.jobs.list({ limit: 1 }); } },
      { name: 'redis', check: () => pingRedis(redis) },
      { name: 'docker', check: async () => { if ((await redis.get(`${prefix}:docker`)) !== 'ok') throw new Error('no worker has reported'); } },
    ],
    cancelRunning: async (jobId) => { await redis.publish(`${prefix}:cancel`, jobId); },
    fetchThread: opts.fetchThread ?? (() => Promise.reject(new Error('no inbox in this test'))),
    anonymousRead: opts.anonymousRead ?? true,
    mboxLimitBytes,
    rateLimitPerMinute: opts.rateLimitPerMinute ?? 10_000,
    sse: opts.sse ?? { maxTotal: 100, maxPerClient: 100 },
    activeJobsPerToken: opts.activeJobsPerToken ?? 1000,
    logPollMs: 50,
    runners: runnerRouteOptions(config),
  });
  await app.ready();
  const mk = async (scope: 'submit' | 'read' | 'admin') => (await store.tokens.create(`${scope}-${prefix}`, [scope])).secret;
  return {
    app, store, queue, logs, prefix,
    tokens: { submit: await mk('submit'), read: await mk('read'), admin: await mk('admin') },
    async close() {
      await app.close();
      await queue.queue.obliterate({ force: true });
      await queue.close();
    },
  };
}

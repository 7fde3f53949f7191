/**
 * The HTTP API as a fastify plugin: errors, auth, OpenAPI (/docs), routes.
 * Everything it uses arrives as options; it opens nothing and reads no
 * environment, so tests build it around their own store and queue and call
 * app.inject().
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import rateLimit from '@fastify/rate-limit';
import helmet from '@fastify/helmet';
import type { Intake } from '../intake/intake.ts';
import type { JobQueue } from '../queue/job-queue.ts';
import type { JobLogs } from '../queue/logs.ts';
import type { Store } from '../store/db.ts';
import auth, { rateLimitKey } from './plugins/auth.ts';
import { DOCS_CSP, PAGE_CSP } from './pages/csp.ts';
import errors from './plugins/errors.ts';
import pageRoutes from './pages/routes.ts';
import healthRoutes, { type ReadinessCheck } from './routes/health.ts';
import jobRoutes from './routes/jobs.ts';
import loreRoutes from './routes/lore.ts';
import outboxRoutes from './routes/outbox.ts';
import runnerRoutes, { type RunnerRoutesOptions } from './routes/runners.ts';
import seriesRoutes from './routes/series.ts';
import type { Registry } from 'prom-client';

export interface AppOptions {
  store: Store;
  intake: Intake;
  queue: JobQueue;
  logs: JobLogs;
  registry: Registry;
  readiness: readonly ReadinessCheck[];
  cancelRunning: (jobId: string) => Promise<void>;
  fetchThread: (inbox: string, messageId: string) => Promise<string>;
  anonymousRead: boolean;
  mboxLimitBytes: number;
  /** Requests per minute per token (else per address: anonymous callers and bad tokens alike). */
  rateLimitPerMinute: number;
  /** Live log streams open at once, in all and per client. */
  sse: { maxTotal: number; maxPerClient: number };
  /** Jobs a non-admin token may have queued or running. */
  activeJobsPerToken: number;
  logPollMs?: number;
  /** Lab runners' routes and lease sweeping (services/api/routes/runners.ts). */
  runners: Omit<RunnerRoutesOptions, 'store' | 'logs'>;
}

export default fp(async function patchbayApi(app: FastifyInstance, opts: AppOptions) {
  await app.register(errors);
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: PAGE_CSP },
    // No cross-origin page embeds or reads what the service serves.
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
  // After auth: the key is the token that was verified, else the peer address.
  await app.register(auth, { store: opts.store, anonymousRead: opts.anonymousRead });
  await app.register(rateLimit, {
    max: opts.rateLimitPerMinute,
    timeWindow: 60_000,
    keyGenerator: rateLimitKey,
    allowList: (request) => request.url === '/healthz' || request.url === '/readyz' || request.url === '/metrics',
    errorResponseBuilder: (_request, context) => ({
      statusCode: 429,
      code: 'RATE_LIMITED',
      message: `rate limit of ${context.max} requests a minute exceeded; retry in ${Math.ceil(context.ttl / 1000)} s`,
    }),
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'patchbay', description: 'Kernel CI for io_uring and FUSE patch series', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: DOCS_CSP });
  await app.register(seriesRoutes, { store: opts.store, intake: opts.intake, mboxLimitBytes: opts.mboxLimitBytes, fetchThread: opts.fetchThread, activeJobsPerToken: opts.activeJobsPerToken });
  await app.register(jobRoutes, { store: opts.store, queue: opts.queue, logs: opts.logs, cancelRunning: opts.cancelRunning, logPollMs: opts.logPollMs ?? 500, sse: opts.sse });
  await app.register(loreRoutes, { store: opts.store });
  await app.register(outboxRoutes, { store: opts.store });
  await app.register(runnerRoutes, { store: opts.store, logs: opts.logs, ...opts.runners });
  await app.register(pageRoutes, { store: opts.store });
  await app.register(healthRoutes, { checks: opts.readiness, registry: opts.registry, checkTimeoutMs: 2000 });
}, { name: 'patchbay-api' });

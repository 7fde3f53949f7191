/**
 * Liveness, readiness (each dependency checked, bounded in time) and
 * Prometheus metrics. They are public: a failing check says only "failed"
 * or "timeout"; what failed (addresses, ports, messages) goes to the log.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';
import { PatchbayError, errorMessage } from '../../domain/errors.ts';

export interface ReadinessCheck {
  name: string;
  check: () => Promise<void>;
}

export interface HealthRoutesOptions {
  checks: readonly ReadinessCheck[];
  registry: Registry;
  checkTimeoutMs: number;
}

class CheckTimeout extends Error {}

function bounded<T>(check: () => Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    check(),
    new Promise<T>((_, reject) => { timer = setTimeout(() => { reject(new CheckTimeout(`no answer in ${ms} ms`)); }, ms); }),
  ]).finally(() => { clearTimeout(timer); });
}

export default function healthRoutes(fastify: FastifyInstance, opts: HealthRoutesOptions, done: (err?: Error) => void): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get('/healthz', { schema: { summary: 'The process is up', tags: ['health'], response: { 200: Type.Object({ status: Type.Literal('ok') }) } } }, () => ({ status: 'ok' as const }));

  app.get('/readyz', {
    schema: {
      summary: 'Every dependency answers (database, Redis, a worker with a Docker engine)',
      tags: ['health'],
      response: { '2xx': Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) }), 503: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) }) },
    },
  }, async (request, reply) => {
    const results = await Promise.all(opts.checks.map(async (c) => {
      try {
        await bounded(c.check, opts.checkTimeoutMs);
        return [c.name, 'ok'] as const;
      } catch (e) {
        request.log.warn({ check: c.name, err: errorMessage(e) }, 'readiness check failed');
        return [c.name, e instanceof CheckTimeout ? 'timeout' : 'failed'] as const;
      }
    }));
    const ok = results.every(([, r]) => r === 'ok');
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', checks: Object.fromEntries(results) });
  });

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['health'] } }, async (request, reply) => {
    let text: string;
    try {
      // A scrape reads Redis; with Redis away it would wait for the reconnect.
      text = await bounded(() => opts.registry.metrics(), opts.checkTimeoutMs);
    } catch (e) {
      request.log.warn({ err: errorMessage(e) }, 'metrics collection failed');
      throw new PatchbayError('METRICS_UNAVAILABLE', 'the metrics could not be collected; try again later', { retryable: true });
    }
    return reply.type(opts.registry.contentType).send(text);
  });
  done();
}

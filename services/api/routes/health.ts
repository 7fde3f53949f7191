/** Liveness, readiness (each dependency checked, bounded in time) and Prometheus metrics. */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';
import { errorMessage } from '../../domain/errors.ts';

export interface ReadinessCheck {
  name: string;
  check: () => Promise<void>;
}

export interface HealthRoutesOptions {
  checks: readonly ReadinessCheck[];
  registry: Registry;
  checkTimeoutMs: number;
}

function bounded(check: () => Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    check(),
    new Promise<void>((_, reject) => { timer = setTimeout(() => { reject(new Error(`no answer in ${ms} ms`)); }, ms); }),
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
  }, async (_request, reply) => {
    const results = await Promise.all(opts.checks.map(async (c) => {
      try {
        await bounded(c.check, opts.checkTimeoutMs);
        return [c.name, 'ok'] as const;
      } catch (e) {
        return [c.name, errorMessage(e)] as const;
      }
    }));
    const ok = results.every(([, r]) => r === 'ok');
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', checks: Object.fromEntries(results) });
  });

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['health'] } }, async (_request, reply) => {
    return reply.type(opts.registry.contentType).send(await opts.registry.metrics());
  });
  done();
}

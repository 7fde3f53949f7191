/** The lore watcher's state: each inbox's cursor and polls, the lease, and the recent decisions with their reasons. */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { LORE_DECISIONS } from '../../store/schema.ts';
import type { LoreDecision, LoreInboxStatus, Store } from '../../store/db.ts';
import { WATCHER_LEASE } from '../../store/lore-repo.ts';
import { ErrorBody } from '../schemas.ts';

const Time = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
const Decision = Type.Enum(LORE_DECISIONS);

export const LoreInboxView = Type.Object({
  url: Type.String(),
  cursorAt: Time,
  lastPollAt: Time,
  lastOkAt: Time,
  lastError: Type.Union([Type.String(), Type.Null()]),
  lastErrorAt: Time,
  polls: Type.Integer(),
  pollErrors: Type.Integer(),
  messagesSeen: Type.Integer(),
  requests: Type.Integer(),
});

export const LoreDecisionView = Type.Object({
  id: Type.String(),
  decision: Decision,
  reason: Type.String(),
  title: Type.String(),
  version: Type.Union([Type.Integer(), Type.Null()]),
  author: Type.String(),
  identity: Type.Union([Type.String(), Type.Null()]),
  inbox: Type.String(),
  rootMessageId: Type.String(),
  tree: Type.Union([Type.String(), Type.Null()]),
  base: Type.Union([Type.String(), Type.Null()]),
  baseRule: Type.Union([Type.String(), Type.Null()]),
  seriesId: Type.Union([Type.String(), Type.Null()]),
  jobId: Type.Union([Type.String(), Type.Null()]),
  decidedAt: Type.String({ format: 'date-time' }),
});

export const LoreStatusView = Type.Object({
  inboxes: Type.Array(LoreInboxView),
  /** The watcher polling now, if any. */
  lease: Type.Union([Type.Object({ holder: Type.String(), expiresAt: Type.String({ format: 'date-time' }) }), Type.Null()]),
  decisions: Type.Array(LoreDecisionView),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});

const iso = (d: Date | null): string | null => d?.toISOString() ?? null;

export function inboxView(i: LoreInboxStatus): Static<typeof LoreInboxView> {
  return { ...i, cursorAt: iso(i.cursorAt), lastPollAt: iso(i.lastPollAt), lastOkAt: iso(i.lastOkAt), lastErrorAt: iso(i.lastErrorAt) };
}

export function decisionView(d: LoreDecision): Static<typeof LoreDecisionView> {
  return {
    id: d.id, decision: d.decision, reason: d.reason, title: d.title, version: d.version, author: d.author, identity: d.identity,
    inbox: d.inbox, rootMessageId: d.rootMessageId, tree: d.tree, base: d.base, baseRule: d.baseRule,
    seriesId: d.seriesId, jobId: d.jobId, decidedAt: d.decidedAt.toISOString(),
  };
}

export default function loreRoutes(fastify: FastifyInstance, opts: { store: Store }, done: (err?: Error) => void): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { store } = opts;

  app.get('/api/v1/lore', {
    config: { scope: 'read' },
    schema: {
      summary: 'The lore watcher: inboxes (cursor, last poll, errors), the watcher holding the lease, recent decisions',
      tags: ['lore'],
      querystring: Type.Object({
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
        cursor: Type.Optional(Type.String({ maxLength: 200 })),
        /** One kind; `series`: every kind but no-patches (the list's discussions); default all. */
        decision: Type.Optional(Type.Union([Decision, Type.Literal('series'), Type.Literal('all')])),
      }),
      response: { 200: LoreStatusView, 400: ErrorBody, 401: ErrorBody },
    },
  }, async (request) => {
    const [inboxes, lease, page] = await Promise.all([
      store.lore.inboxes(),
      store.lore.leaseHolder(WATCHER_LEASE),
      store.lore.decisions({
        limit: request.query.limit ?? 50,
        ...(request.query.cursor !== undefined ? { cursor: request.query.cursor } : {}),
        ...(request.query.decision === 'series' ? { exclude: ['no-patches'] as const }
          : request.query.decision === undefined || request.query.decision === 'all' ? {} : { decision: request.query.decision }),
      }),
    ]);
    return {
      inboxes: inboxes.map(inboxView),
      lease: lease === null ? null : { holder: lease.holder, expiresAt: lease.expiresAt.toISOString() },
      decisions: page.items.map(decisionView),
      nextCursor: page.nextCursor,
    };
  });

  app.get('/api/v1/lore/revisions', {
    config: { scope: 'read' },
    schema: {
      summary: 'Every judged revision of one series (by its identity: change-id, else title and author), oldest first',
      tags: ['lore'],
      querystring: Type.Object({ identity: Type.String({ minLength: 1, maxLength: 1000 }) }),
      response: { 200: Type.Object({ revisions: Type.Array(LoreDecisionView) }), 400: ErrorBody, 401: ErrorBody },
    },
  }, async (request) => ({ revisions: (await store.lore.revisions(request.query.identity)).map(decisionView) }));

  done();
}

/**
 * The outbox: every mail report planned, its recipients, where it stands
 * (pending, sending, sent, failed, held, skipped) and why; the message as
 * composed; an operator's resend or mark-sent of a held or failed report.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { PatchbayError } from '../../domain/errors.ts';
import { STATUSES } from '../../domain/status.ts';
import type { OutboxEntry, Store } from '../../store/db.ts';
import { OUTBOX_STATUSES, type OutboxStatus } from '../../store/schema.ts';
import { contentDisposition } from '../content-disposition.ts';
import { ErrorBody, Paging } from '../schemas.ts';

const Time = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
const Text = Type.Union([Type.String(), Type.Null()]);
const Mailbox = Type.Object({ name: Type.String(), email: Type.String() });
const OutboxStatusSchema = Type.Enum(OUTBOX_STATUSES);
const Verdict = Type.Union([Type.Enum(STATUSES), Type.Null()]);
const Mode = Type.Enum(['dry-run', 'author', 'author+list']);
const SentVia = Type.Union([Type.Enum(['smtp', 'outbox-folder', 'archive', 'by-hand']), Type.Null()]);

export const OutboxEntryView = Type.Object({
  id: Type.String(),
  /** result: a verdict's report; ack: an answer to a command mailed to the robot. */
  kind: Type.Enum(['result', 'ack']),
  /** The revision's root Message-ID. */
  revision: Type.String(),
  seriesId: Type.String(),
  jobId: Text,
  verdict: Verdict,
  inbox: Text,
  mode: Mode,
  messageId: Type.String(),
  inReplyTo: Type.String(),
  references: Type.Array(Type.String()),
  subject: Type.String(),
  recipients: Type.Object({ to: Type.Array(Mailbox), cc: Type.Array(Mailbox), optedOut: Type.Array(Type.String()) }),
  status: OutboxStatusSchema,
  /** Why it was planned (or skipped). */
  reason: Type.String(),
  attempts: Type.Integer(),
  nextAttemptAt: Type.String({ format: 'date-time' }),
  lastError: Text,
  sentAt: Time,
  sentVia: SentVia,
  smtpResponse: Text,
  createdAt: Type.String({ format: 'date-time' }),
  /** Whether the message was composed (its bytes are kept: GET .../raw). */
  composed: Type.Boolean(),
  url: Type.String(),
  /** The composed message (message/rfc822); null until composed. */
  raw: Text,
});

/** A job's reports, as its detail lists them. */
export const JobReportView = Type.Object({
  id: Type.String(),
  kind: Type.Enum(['result', 'ack']),
  status: OutboxStatusSchema,
  verdict: Verdict,
  messageId: Type.String(),
  sentAt: Time,
  sentVia: SentVia,
  mode: Mode,
  url: Type.String(),
});

const Counts = Type.Object(Object.fromEntries(OUTBOX_STATUSES.map((s) => [s, Type.Integer()])) as Record<OutboxStatus, ReturnType<typeof Type.Integer>>);

const iso = (d: Date | null): string | null => d?.toISOString() ?? null;

export function outboxEntryView(e: OutboxEntry): Static<typeof OutboxEntryView> {
  return {
    id: e.id, kind: e.kind, revision: e.revision, seriesId: e.seriesId, jobId: e.jobId, verdict: e.verdict, inbox: e.inbox, mode: e.mode,
    messageId: e.messageId, inReplyTo: e.inReplyTo, references: e.references, subject: e.subject,
    recipients: { to: e.recipients.to, cc: e.recipients.cc, optedOut: e.recipients.optedOut },
    status: e.status, reason: e.reason, attempts: e.attempts, nextAttemptAt: e.nextAttemptAt.toISOString(), lastError: e.lastError,
    sentAt: iso(e.sentAt), sentVia: e.sentVia, smtpResponse: e.smtpResponse, createdAt: e.createdAt.toISOString(), composed: e.composed,
    url: `/api/v1/outbox/${e.id}`,
    raw: e.composed ? `/api/v1/outbox/${e.id}/raw` : null,
  };
}

export function jobReportView(e: OutboxEntry): Static<typeof JobReportView> {
  return { id: e.id, kind: e.kind, status: e.status, verdict: e.verdict, messageId: e.messageId, sentAt: iso(e.sentAt), sentVia: e.sentVia, mode: e.mode, url: `/api/v1/outbox/${e.id}` };
}

/** Every status counted, those with no row as 0. */
export async function outboxCounts(store: Store): Promise<Record<OutboxStatus, number>> {
  const counts = await store.outbox.counts();
  return Object.fromEntries(OUTBOX_STATUSES.map((s) => [s, counts[s] ?? 0])) as Record<OutboxStatus, number>;
}

const Id = Type.Object({ id: Type.String({ maxLength: 64 }) });

export default function outboxRoutes(fastify: FastifyInstance, opts: { store: Store }, done: (err?: Error) => void): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { store } = opts;

  const mustGet = async (id: string): Promise<OutboxEntry> => {
    const entry = await store.outbox.get(id);
    if (entry === null) throw new PatchbayError('OUTBOX_NOT_FOUND', `There is no report ${id}.`);
    return entry;
  };

  app.get('/api/v1/outbox', {
    config: { scope: 'read' },
    schema: {
      summary: 'Mail reports, newest first, filtered by status, job or series; with the counts by status',
      tags: ['outbox'],
      querystring: Type.Intersect([Paging, Type.Object({
        status: Type.Optional(OutboxStatusSchema),
        jobId: Type.Optional(Type.String({ maxLength: 64 })),
        seriesId: Type.Optional(Type.String({ maxLength: 64 })),
      })]),
      response: {
        200: Type.Object({ items: Type.Array(OutboxEntryView), nextCursor: Type.Union([Type.String(), Type.Null()]), counts: Counts }),
        400: ErrorBody, 401: ErrorBody,
      },
    },
  }, async (request) => {
    const q = request.query;
    const [page, counts] = await Promise.all([
      store.outbox.list({
        limit: q.limit ?? 50,
        ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
        ...(q.status !== undefined ? { status: q.status } : {}),
        ...(q.jobId !== undefined ? { jobId: q.jobId } : {}),
        ...(q.seriesId !== undefined ? { seriesId: q.seriesId } : {}),
      }),
      outboxCounts(store),
    ]);
    return { items: page.items.map(outboxEntryView), nextCursor: page.nextCursor, counts };
  });

  app.get('/api/v1/outbox/:id', {
    config: { scope: 'read' },
    schema: { summary: 'One mail report: recipients, status, tries, the relay\'s answer', tags: ['outbox'], params: Id, response: { 200: OutboxEntryView, 401: ErrorBody, 404: ErrorBody } },
  }, async (request) => outboxEntryView(await mustGet(request.params.id)));

  app.get('/api/v1/outbox/:id/raw', {
    config: { scope: 'read' },
    schema: {
      summary: 'The report as composed (message/rfc822): the bytes every try sends; 404 OUTBOX_NOT_COMPOSED before its first try',
      tags: ['outbox'], params: Id,
    },
  }, async (request, reply) => {
    const { id } = request.params;
    const raw = await store.outbox.raw(id);
    if (raw === null) {
      const entry = await mustGet(id);
      throw new PatchbayError('OUTBOX_NOT_COMPOSED', `Report ${id} is ${entry.status} and was not composed yet: it is composed when first sent.`);
    }
    return reply
      .type('message/rfc822')
      .header('content-disposition', contentDisposition('attachment', `${id}.eml`))
      .header('x-content-type-options', 'nosniff')
      .send(raw);
  });

  for (const action of ['resend', 'mark-sent'] as const) {
    app.post(`/api/v1/outbox/:id/${action}`, {
      config: { scope: 'admin' },
      schema: {
        summary: action === 'resend'
          ? 'Send a held or failed report again: the same bytes, the same Message-ID (admin)'
          : 'Record a held or failed report as sent, when it is known to have gone out (admin)',
        tags: ['outbox'], params: Id,
        response: { 200: OutboxEntryView, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    }, async (request) => {
      // Recorded on the row (last_error or smtp_response): who asked.
      const who = request.caller.tokenName ?? request.caller.tokenId ?? 'unknown';
      const entry = await store.outbox.resolveByHand(request.params.id, action, who);
      request.log.info({ report: entry.id, action, token: request.caller.tokenId }, 'report resolved by hand');
      return outboxEntryView(entry);
    });
  }

  done();
}

/** Submitting series and reading them back. */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { PatchbayError } from '../../domain/errors.ts';
import type { Intake } from '../../intake/intake.ts';
import type { Store } from '../../store/db.ts';
import { isAdmin } from '../plugins/auth.ts';
import { parseRequirements } from '../../domain/runners.ts';
import { ErrorBody, JobSummary, Paging, SeriesSummary, SubmitJson, SubmitOptions, SubmitReply } from '../schemas.ts';
import { jobView, seriesView } from '../views.ts';

export interface SeriesRoutesOptions {
  store: Store;
  intake: Intake;
  /** Largest mbox accepted, in bytes. */
  mboxLimitBytes: number;
  fetchThread: (inbox: string, messageId: string) => Promise<string>;
  /** Jobs a non-admin token may have queued or running. */
  activeJobsPerToken: number;
}

const MBOX_TYPES = ['application/mbox', 'text/plain', 'message/rfc822'];

export default function seriesRoutes(fastify: FastifyInstance, opts: SeriesRoutesOptions, done: (err?: Error) => void): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.addContentTypeParser(MBOX_TYPES, { parseAs: 'buffer', bodyLimit: opts.mboxLimitBytes }, (_req, body, done) => {
    done(null, body);
  });

  app.post('/api/v1/series', {
    config: { scope: 'submit' },
    bodyLimit: opts.mboxLimitBytes,
    schema: {
      summary: 'Submit a series: an mbox body (application/mbox), or JSON naming a Message-ID on a public-inbox',
      tags: ['series'],
      querystring: SubmitOptions,
      response: { 202: SubmitReply, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 413: ErrorBody, 415: ErrorBody },
    },
  }, async (request, reply) => {
    const ct = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    let mbox: string;
    let source: 'upload' | 'message-id' = 'upload';
    let inboxUrl: string | null = null;
    let tree = request.query.tree ?? null;
    let base = request.query.base ?? null;
    const q = request.query.suite;
    let suites: string[] | null = q === undefined ? null : Array.isArray(q) ? q : [q];
    let force = request.query.force ?? false;
    const r = request.query.runsOn;
    let runsOn: string[] = r === undefined ? [] : Array.isArray(r) ? r : [r];
    if (ct === 'application/json') {
      const body = request.body;
      const { Value } = await import('typebox/value');
      if (!Value.Check(SubmitJson, body)) {
        const first = Value.Errors(SubmitJson, body)[0];
        throw new PatchbayError('VALIDATION', `body${first?.instancePath ?? ''} ${first?.message ?? 'is invalid'}`);
      }
      mbox = await opts.fetchThread(body.inbox, body.messageId);
      source = 'message-id';
      inboxUrl = body.inbox;
      tree = body.tree ?? tree;
      base = body.base ?? base;
      suites = body.suites ?? suites;
      force = body.force ?? force;
      runsOn = body.runsOn ?? runsOn;
    } else if (Buffer.isBuffer(request.body)) {
      mbox = request.body.toString('latin1');
    } else {
      throw new PatchbayError('UNSUPPORTED_MEDIA_TYPE', 'send application/mbox (or text/plain) with the series, or application/json with a messageId');
    }
    const requires = parseRequirements(runsOn);
    const result = await opts.intake.submit({ mbox, source, inboxUrl, tree, base, suites, force, requires, submittedBy: request.caller.tokenId,
      activeJobCap: isAdmin(request.caller) ? null : opts.activeJobsPerToken,
    });
    return reply.code(202).send({ created: result.created, series: seriesView(result.series), jobs: result.jobs.map(jobView) });
  });

  app.get('/api/v1/series', {
    config: { scope: 'read' },
    schema: {
      summary: 'Series, newest first',
      tags: ['series'],
      querystring: Type.Intersect([Paging, Type.Object({ q: Type.Optional(Type.String({ maxLength: 200 })) })]),
      response: { 200: Type.Object({ items: Type.Array(SeriesSummary), nextCursor: Type.Union([Type.String(), Type.Null()]) }) },
    },
  }, async (request) => {
    const page = await opts.store.series.list({
      limit: request.query.limit ?? 50,
      ...(request.query.cursor ? { cursor: request.query.cursor } : {}),
      ...(request.query.q ? { q: request.query.q } : {}),
    });
    return { items: page.items.map(seriesView), nextCursor: page.nextCursor };
  });

  app.get('/api/v1/series/:id', {
    config: { scope: 'read' },
    schema: {
      summary: 'A series: its patches and jobs',
      tags: ['series'],
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
      response: {
        200: Type.Intersect([SeriesSummary, Type.Object({
          cover: Type.Union([Type.Object({ subject: Type.String(), messageId: Type.String(), author: Type.String() }), Type.Null()]),
          patches: Type.Array(Type.Object({ counter: Type.Integer(), subject: Type.String(), messageId: Type.String(), author: Type.String(), files: Type.Array(Type.String()) })),
          jobs: Type.Array(JobSummary),
        })]),
        404: ErrorBody,
      },
    },
  }, async (request) => {
    const s = await opts.store.series.get(request.params.id);
    if (!s) throw new PatchbayError('SERIES_UNKNOWN', `no series ${request.params.id}`);
    const [cover, patches, jobs] = await Promise.all([opts.store.series.cover(s.id), opts.store.series.patches(s.id), opts.store.jobs.forSeries(s.id)]);
    return {
      ...seriesView(s),
      cover: cover ? { subject: cover.subject, messageId: cover.messageId, author: `${cover.authorName} <${cover.authorEmail}>` } : null,
      patches: patches.map((p) => ({
        counter: p.counter,
        subject: p.subject,
        messageId: p.messageId,
        author: `${p.authorName} <${p.authorEmail}>`,
        files: p.files.map((f) => f.newPath ?? f.oldPath ?? '?'),
      })),
      jobs: jobs.map(jobView),
    };
  });
  done();
}

/** Jobs: status and results, listing, cancelling, live and full logs, artifacts. */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { PatchbayError, errorMessage } from '../../domain/errors.ts';
import { contentDisposition } from '../content-disposition.ts';
import { isAdmin, rateLimitKey } from '../plugins/auth.ts';
import type { JobQueue } from '../../queue/job-queue.ts';
import type { JobLogs, LogEntry } from '../../queue/logs.ts';
import type { JobStatus, Store } from '../../store/db.ts';
import { BaseComparisonView, ErrorBody, JobSummary, Paging, PrerequisitesView, SplatView, Status, TestResultView, splatView, testResultView } from '../schemas.ts';
import { jobView } from '../views.ts';
import { JobReportView, jobReportView } from './outbox.ts';

export interface JobRoutesOptions {
  store: Store;
  queue: JobQueue;
  logs: JobLogs;
  /** Ask the workers to stop a running job. */
  cancelRunning: (jobId: string) => Promise<void>;
  /** How often a live log is polled for new entries. */
  logPollMs: number;
  /** Live log streams open at once, in all and per client (rateLimitKey). */
  sse: { maxTotal: number; maxPerClient: number };
}

/** A stream entry id as Redis gives it, or 0 for the start. */
const LOG_ID = /^(0|\d{1,20}-\d{1,20})$/;

/** Counts open live-log streams; acquire() refuses past either cap. */
class StreamSlots {
  #total = 0;
  readonly #byClient = new Map<string, number>();

  constructor(private readonly caps: { maxTotal: number; maxPerClient: number }) {}

  acquire(client: string): () => void {
    const mine = this.#byClient.get(client) ?? 0;
    if (mine >= this.caps.maxPerClient) {
      throw new PatchbayError('TOO_MANY_STREAMS', `you have ${mine} live logs open, the most one client may; close one first`);
    }
    if (this.#total >= this.caps.maxTotal) {
      throw new PatchbayError('STREAMS_FULL', 'the service has as many live logs open as it allows; try again in a minute', { retryable: true });
    }
    this.#total++;
    this.#byClient.set(client, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const n = (this.#byClient.get(client) ?? 1) - 1;
      if (n <= 0) this.#byClient.delete(client);
      else this.#byClient.set(client, n);
    };
  }
}

const TERMINAL: ReadonlySet<JobStatus> = new Set(['PASS', 'FAIL', 'ERROR', 'MISS', 'SKIP', 'cancelled']);

const JobDetail = Type.Intersect([JobSummary, Type.Object({
  attempts: Type.Integer(),
  baseCommit: Type.Union([Type.String(), Type.Null()]),
  /** The rule that picked the base: requested, base-commit, blob-guess, tree-map (the watcher's), tree-ref (the executor's guess). */
  baseRule: Type.Union([Type.String(), Type.Null()]),
  prerequisitesId: Type.Union([Type.String(), Type.Null()], { description: 'The series of prerequisite patches applied before this one (GET /api/v1/series/{id}); null: none.' }),
  headCommit: Type.Union([Type.String(), Type.Null()]),
  accel: Type.Union([Type.String(), Type.Null()]),
  buildMode: Type.Union([Type.String(), Type.Null()]),
  error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
  stages: Type.Array(Type.Object({ stage: Type.String(), status: Type.String(), durationMs: Type.Integer(), summary: Type.String() })),
  results: Type.Array(TestResultView),
  /** Patches applied on the base (of both kernels) before the series; null when none (or not recorded yet). */
  prerequisites: Type.Union([PrerequisitesView, Type.Null()]),
  /** How the results were compared with the base kernel; null before the tests ran. */
  baseComparison: Type.Union([BaseComparisonView, Type.Null()]),
  crashes: Type.Array(Type.Object({ kind: Type.String(), title: Type.String(), fingerprint: Type.String(), culprit: Type.Union([Type.String(), Type.Null()]), frames: Type.Array(Type.String()) })),
  /** Each splat fingerprint counted per boot on both kernels and judged like a test (boots for runs). */
  splats: Type.Array(SplatView),
  /** What was wrong with the structure of the series' KTAP output (line numbers are ktap.txt's). */
  ktapProblems: Type.Array(Type.String()),
  artifacts: Type.Array(Type.Object({ name: Type.String(), url: Type.String() })),
  log: Type.String(),
  /** The mail reports of this job's verdict (GET /api/v1/outbox/{id}), newest first; none for uploads, MISS and a verdict its revision had reported already. */
  reports: Type.Array(JobReportView),
})]);

export default function jobRoutes(fastify: FastifyInstance, opts: JobRoutesOptions, done: (err?: Error) => void): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { store } = opts;
  const streams = new StreamSlots(opts.sse);

  const mustGet = async (id: string) => {
    const job = await store.jobs.get(id);
    if (!job) throw new PatchbayError('JOB_UNKNOWN', `no job ${id}`);
    return job;
  };

  app.get('/api/v1/jobs/:id', {
    config: { scope: 'read' },
    schema: { summary: 'A job: status, stage timings, per-subtest results', tags: ['jobs'], params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { 200: JobDetail, 404: ErrorBody } },
  }, async (request) => {
    const job = await mustGet(request.params.id);
    const [{ stages, tests }, reports] = await Promise.all([store.jobs.results(job.id), store.outbox.list({ limit: 100, jobId: job.id })]);
    const r = job.result;
    return {
      ...jobView(job),
      attempts: job.attempts,
      baseCommit: job.baseCommit,
      baseRule: job.baseRule,
      prerequisitesId: job.prerequisitesId,
      headCommit: job.headCommit,
      accel: job.accel,
      buildMode: job.buildMode,
      error: job.errorCode ? { code: job.errorCode, message: job.errorMessage ?? '' } : null,
      stages: stages.map((s) => ({ stage: s.stage, status: s.status, durationMs: s.durationMs, summary: s.summary })),
      results: tests.map(testResultView),
      prerequisites: r?.prerequisites ?? null,
      baseComparison: r?.base ?? null,
      crashes: (r?.crashes ?? []).map((c) => ({ kind: c.kind, title: c.title, fingerprint: c.fingerprint, culprit: c.culprit, frames: c.frames })),
      splats: (r?.splats ?? []).map(splatView),
      ktapProblems: r?.ktapProblems ?? [],
      artifacts: (r?.artifacts ?? []).map((name) => ({ name, url: `/api/v1/jobs/${job.id}/artifacts/${name}` })),
      log: `/api/v1/jobs/${job.id}/log`,
      reports: reports.items.map(jobReportView),
    };
  });

  app.get('/api/v1/jobs', {
    config: { scope: 'read' },
    schema: {
      summary: 'Jobs, newest first, filtered by status, series or tree',
      tags: ['jobs'],
      querystring: Type.Intersect([Paging, Type.Object({ status: Type.Optional(Status), series: Type.Optional(Type.String({ maxLength: 64 })), tree: Type.Optional(Type.String({ maxLength: 64 })) })]),
      response: { 200: Type.Object({ items: Type.Array(JobSummary), nextCursor: Type.Union([Type.String(), Type.Null()]) }) },
    },
  }, async (request) => {
    const q = request.query;
    const page = await store.jobs.list({
      limit: q.limit ?? 50,
      ...(q.cursor ? { cursor: q.cursor } : {}),
      ...(q.status ? { status: q.status } : {}),
      ...(q.series ? { seriesId: q.series } : {}),
      ...(q.tree ? { tree: q.tree } : {}),
    });
    return { items: page.items.map(jobView), nextCursor: page.nextCursor };
  });

  app.post('/api/v1/jobs/:id/cancel', {
    config: { scope: 'submit' },
    schema: { summary: 'Cancel a queued or running job', tags: ['jobs'], params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { 202: Type.Object({ id: Type.String(), status: Type.String() }), 403: ErrorBody, 404: ErrorBody, 409: ErrorBody } },
  }, async (request, reply) => {
    const job = await mustGet(request.params.id);
    const caller = request.caller;
    if (!isAdmin(caller) && (job.submittedBy === null || job.submittedBy !== caller.tokenId)) {
      throw new PatchbayError('AUTH_FORBIDDEN', `only the token that submitted job ${job.id}, or an admin, may cancel it`);
    }
    if (TERMINAL.has(job.status)) throw new PatchbayError('JOB_FINISHED', `job ${job.id} already finished (${job.status})`);
    if (job.pool === 'runners') {
      // A lab runner's job: cancelled at once when no runner holds it, else its runner hears at its next heartbeat.
      const became = await store.runners.requestCancel(job.id);
      if (became === 'cancelled') await opts.logs.append(job.id, { kind: 'end', status: 'cancelled' });
      return reply.code(202).send({ id: job.id, status: became });
    }
    if (job.status === 'queued' && (await opts.queue.removeIfWaiting(job.id))) {
      await store.jobs.markCancelled(job.id);
      await opts.logs.append(job.id, { kind: 'end', status: 'cancelled' });
      return reply.code(202).send({ id: job.id, status: 'cancelled' });
    }
    await opts.cancelRunning(job.id);
    return reply.code(202).send({ id: job.id, status: 'cancelling' });
  });

  app.get('/api/v1/jobs/:id/log', {
    config: { scope: 'read' },
    schema: { summary: 'The job\'s log: Server-Sent Events while it runs (Accept: text/event-stream), else plain text', tags: ['jobs'], params: Type.Object({ id: Type.String({ maxLength: 64 }) }) },
  }, async (request, reply) => {
    const job = await mustGet(request.params.id);
    const wantsSse = (request.headers.accept ?? '').includes('text/event-stream');
    if (!wantsSse) {
      // Streamed batch by batch: a long log is never held whole in memory.
      return reply.type('text/plain; charset=utf-8').send(Readable.from(logText(opts.logs, job.id)));
    }
    const from = request.headers['last-event-id'];
    let last = typeof from === 'string' && from !== '' ? from : '0';
    if (!LOG_ID.test(last)) throw new PatchbayError('LOG_CURSOR_INVALID', 'Last-Event-ID must be an id this stream sent (like 1764670000000-0)');
    const release = streams.acquire(rateLimitKey(request));
    reply.hijack();
    const res = reply.raw;
    const client = { gone: false };
    res.on('close', () => { client.gone = true; });
    /** An event; with no id, a comment that keeps proxies from timing the stream out. */
    const send = (id: string | null, event: string, data: unknown): void => {
      if (client.gone) return;
      res.write(id === null ? `: ${event}\n\n` : `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    try {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      // Sent now, not with the first entry: the client knows at once the stream is open.
      res.flushHeaders();
      let idle = 0;
      while (!client.gone) {
        const entries = await opts.logs.read(job.id, last, { count: 500 });
        for (const { id, entry } of entries) {
          send(id, entry.kind, entry);
          last = id;
        }
        if (entries.some((e) => e.entry.kind === 'end')) break;
        if (entries.length === 0) {
          idle += opts.logPollMs;
          // A job that finished before its stream began (or whose stream expired): say so and stop.
          if (idle % 5000 < opts.logPollMs) {
            const now = await store.jobs.get(job.id);
            if (!now || TERMINAL.has(now.status)) {
              send(last, 'end', { kind: 'end', status: now?.status ?? 'unknown' });
              break;
            }
            send(null, 'keep-alive', null);
          }
          await new Promise((r) => setTimeout(r, opts.logPollMs));
        }
      }
    } catch (e) {
      // Redis or the database went away mid-stream: the client is told to reconnect (EventSource does, with Last-Event-ID).
      request.log.warn({ jobId: job.id, err: errorMessage(e) }, 'live log stream failed');
      if (res.headersSent) send(last, 'error', { code: 'LOG_UNAVAILABLE', message: 'the log could not be read; reconnect to resume' });
    } finally {
      release();
      res.end();
    }
  });

  app.get('/api/v1/jobs/:id/artifacts/:name', {
    config: { scope: 'read' },
    schema: { summary: 'Download an artifact (build log, console log, KTAP, .config, bzImage, result.json)', tags: ['jobs'], params: Type.Object({ id: Type.String({ maxLength: 64 }), name: Type.String({ maxLength: 100 }) }) },
  }, async (request, reply) => {
    const job = await mustGet(request.params.id);
    const name = request.params.name;
    // Only names the job itself listed: no path ever comes from the request.
    const listed = job.result?.artifacts ?? [];
    if (!listed.includes(name) || job.artifactsDir === null) throw new PatchbayError('ARTIFACT_UNKNOWN', `job ${job.id} has no artifact "${name}"`);
    if (name.includes('/') || name === '.' || name === '..') throw new PatchbayError('ARTIFACT_UNKNOWN', `job ${job.id} has no artifact "${name}"`);
    // The artifacts folder is the host's own copy (no container writes it);
    // still, a link or anything but a regular file is never served.
    let file;
    try {
      file = await open(join(job.artifactsDir, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch {
      throw new PatchbayError('ARTIFACT_UNKNOWN', `artifact "${name}" of job ${job.id} is no longer kept`);
    }
    const st = await file.stat();
    if (!st.isFile()) {
      await file.close();
      throw new PatchbayError('ARTIFACT_UNKNOWN', `artifact "${name}" of job ${job.id} is no longer kept`);
    }
    const text = /\.(log|txt|json|config)$/.test(name);
    return reply
      .type(text ? 'text/plain; charset=utf-8' : 'application/octet-stream')
      .header('content-length', st.size)
      .header('content-disposition', contentDisposition(text ? 'inline' : 'attachment', name))
      .send(file.createReadStream());
  });
  done();
}

/** The log's text, read from its stream a batch at a time. */
async function* logText(logs: JobLogs, jobId: string): AsyncGenerator<string> {
  let last = '0';
  for (;;) {
    const batch = await logs.read(jobId, last, { count: 1000 });
    if (batch.length === 0) return;
    const text = batch.map((b) => b.entry).filter((e): e is Extract<LogEntry, { kind: 'log' }> => e.kind === 'log').map((e) => e.text).join('');
    if (text !== '') yield text;
    last = batch[batch.length - 1]?.id ?? last;
  }
}

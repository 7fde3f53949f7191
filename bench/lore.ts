/**
 * The lore watcher on this machine, against a real public-inbox on loopback,
 * PGlite in a temporary folder, the local Redis (a queue prefix of its own),
 * a real Intake and LoreWatcher (no spacing between requests, a budget no
 * poll reaches) and a test tree from services/lore/test/traffic.ts:
 *
 *   1. Poll throughput: 10,000 messages (discussion threads, and 20 series
 *      of 3-5 patches with a cover letter and a review, touching io_uring/
 *      or fs/fuse/) are delivered into one inbox; then a fresh watcher's
 *      first pollAll (its lookback covers them all) and its judge passes
 *      (until no thread is left to judge) are timed separately, with the
 *      HTTP requests (the inbox's counter in the store) and the peak RSS.
 *   2. Posting -> queued latency: a watcher runs its own loop (poll every
 *      5 s) on a second, quiet inbox; a new 3-patch series is delivered N
 *      times, a random part of an interval apart, and the time from the end
 *      of the delivery to the job row is taken (the store is read every
 *      50 ms), split into the wait for the next poll and the poll's work.
 *   3. The work alone: the same, with pollAll + judge called right after
 *      each delivery instead of the loop.
 *
 * Prints a markdown table (stdout); progress goes to stderr. Everything
 * stays on 127.0.0.1; the temporary folders, the public-inbox server, the
 * store and the queue's keys are removed at the end, also on failure.
 *
 * Run: npm run bench:lore   (a few minutes on 2 cores)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { loadCatalogs } from '../services/catalog/load.ts';
import { loadConfig } from '../services/config/config.ts';
import { mirrorGit, resolveBase } from '../services/intake/base.ts';
import { Intake, patchIds } from '../services/intake/intake.ts';
import { JobQueue } from '../services/queue/job-queue.ts';
import { closeRedis, createRedis } from '../services/queue/redis.ts';
import { type Store, openDatabase } from '../services/store/db.ts';
import { ATOM_PAGE } from '../services/lore/client.ts';
import { type LoreConfig, LoreWatcher, type PollReport, type WatcherDeps } from '../services/lore/watcher.ts';
import { type PublicInbox, startPublicInbox } from '../services/lore/test/public-inbox-server.ts';
import { type Mail, type TestTree, makeDiscussion, makeReply, makeSeries, makeTestTree } from '../services/lore/test/traffic.ts';

const say = (s: string): void => { process.stderr.write(`bench: ${s}\n`); };
const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;
const secs = (ms: number): number => round(ms / 1000, 2);
const mib = (bytes: number): number => Math.round(bytes / 1024 / 1024);
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}
const max = (xs: readonly number[]): number => xs.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '10000' },
    series: { type: 'string', default: '20' },
    chunk: { type: 'string', default: '1000' },
    deliveries: { type: 'string', default: '10' },
    interval: { type: 'string', default: '5' },
  },
});
const MESSAGES = Number(args.messages);
const SERIES = Number(args.series);
const CHUNK = Number(args.chunk);
const N = Number(args.deliveries);
const INTERVAL_S = Number(args.interval);
const BIG_INBOX = 'io-uring';
const QUIET_INBOX = 'linux-fsdevel';
const SERIES_FILES = ['io_uring/kbuf.c', 'io_uring/rsrc.c', 'fs/fuse/dev.c', 'fs/fuse/file.c', 'include/uapi/linux/io_uring.h'];

/** Peak RSS and JS heap (used heap plus array buffers) while it runs, sampled every 50 ms. */
class MemorySampler {
  rss = 0;
  heap = 0;
  readonly #timer = setInterval(() => { this.sample(); }, 50);
  constructor() {
    this.sample();
  }
  sample(): void {
    const m = process.memoryUsage();
    this.rss = Math.max(this.rss, m.rss);
    this.heap = Math.max(this.heap, m.heapUsed + m.arrayBuffers);
  }
  stop(): { rss: number; heap: number } {
    clearInterval(this.#timer);
    this.sample();
    return { rss: this.rss, heap: this.heap };
  }
}

/** A watcher that notes when each of its passes starts polling (the loop calls this.pollAll). */
class TimedWatcher extends LoreWatcher {
  readonly pollStarts: number[] = [];
  override async pollAll(signal: AbortSignal): Promise<PollReport[]> {
    this.pollStarts.push(performance.now());
    return super.pollAll(signal);
  }
}

/** A discussion paragraph of about 70 characters a line, `lines` long. */
function prose(seed: number, lines: number): string {
  const words = ['ring', 'buffer', 'completion', 'submission', 'queue', 'request', 'page', 'cache', 'fuse', 'daemon', 'reply', 'latency', 'copy', 'zero', 'pinned', 'memory'];
  return Array.from({ length: lines }, (_, i) => Array.from({ length: 10 }, (_, j) => words[(seed * 7 + i * 3 + j * 5) % words.length]).join(' ')).join('\n');
}

/** The 10,000-message inbox: series (cover, 3-5 patches, a review) spread among discussion threads of 1-6 messages. */
function makeTraffic(tree: TestTree, total: number, seriesCount: number, seedBase: number): { mails: Mail[]; series: Mail[][] } {
  const series: Mail[][] = [];
  for (let s = 0; s < seriesCount; s++) {
    const patches = 3 + (s % 3);
    const files = Array.from({ length: patches }, (_, i) => SERIES_FILES[(s + i) % SERIES_FILES.length] ?? 'io_uring/kbuf.c');
    const mails = makeSeries(tree, {
      id: `bench-series-${s}`, title: `io_uring: bench series number ${s}`, files, cover: true, seed: seedBase + s,
      baseTrailer: s % 2 === 0, author: { name: `Author ${s}`, email: `author${s}@example.org` },
    });
    const [cover] = mails;
    if (cover !== undefined) mails.push(makeReply(cover, { id: `bench-series-${s}-review`, from: 'reviewer@example.org', body: 'Reviewed-by: Reviewer <reviewer@example.org>' }));
    series.push(mails);
  }
  const seriesMessages = series.reduce((a, m) => a + m.length, 0);
  const discussion: Mail[][] = [];
  let count = 0;
  for (let t = 0; count < total - seriesMessages; t++) {
    const root = makeDiscussion(`bench-talk-${t}`, `io_uring: question ${t}`, prose(t, 10 + (t % 30)));
    const thread = [root];
    const replies = Math.min(t % 6, total - seriesMessages - count - 1);
    for (let r = 0; r < replies; r++) {
      thread.push(makeReply(root, { id: `bench-talk-${t}-re-${r}`, from: `r${r}@example.org`, body: prose(t + r, 5 + r * 4), quote: prose(t, 4) }));
    }
    count += thread.length;
    discussion.push(thread);
  }
  // The series spread evenly among the discussion threads.
  const blocks = [...discussion];
  const every = Math.max(1, Math.floor(discussion.length / (seriesCount + 1)));
  for (let k = series.length - 1; k >= 0; k--) blocks.splice(Math.min(blocks.length, (k + 1) * every), 0, series[k] ?? []);
  const mails = blocks.flat();
  return { mails, series };
}

interface Resources {
  dir?: string;
  pi?: PublicInbox;
  redis?: Redis;
  store?: Store;
  queue?: JobQueue;
  watchers: LoreWatcher[];
}

const res: Resources = { watchers: [] };
let cleaning: Promise<void> | null = null;

/** Idempotent; each step runs even when an earlier one failed. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const step = async (what: string, f: () => unknown): Promise<void> => {
      try {
        await f();
      } catch (e) {
        say(`cleanup: ${what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    for (const w of res.watchers) await step('watcher', () => w.close(5000));
    await step('queue keys', () => res.queue?.queue.obliterate({ force: true }));
    await step('queue', () => res.queue?.close());
    await step('store', () => res.store?.close());
    await step('redis', () => (res.redis === undefined ? undefined : closeRedis(res.redis)));
    await step('public-inbox', () => res.pi?.stop());
    await step('temp dir', () => { if (res.dir !== undefined) rmSync(res.dir, { recursive: true, force: true }); });
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    say(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const rssStart = process.memoryUsage().rss;
  const config = loadConfig(process.env);
  const redisHost = new URL(config.redisUrl).hostname;
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(redisHost)) throw new Error(`REDIS_URL must be on loopback for this bench (it is ${redisHost})`);
  const started = new Date();
  res.dir = mkdtempSync(join(tmpdir(), 'patchbay-bench-lore-'));
  say('starting public-inbox, PGlite, Redis queue, test tree ...');
  res.pi = await startPublicInbox([BIG_INBOX, QUIET_INBOX]);
  const pi = res.pi;
  const bigUrl = pi.urls[BIG_INBOX] ?? '';
  const quietUrl = pi.urls[QUIET_INBOX] ?? '';
  res.redis = createRedis(config.redisUrl, 'bench-lore');
  res.store = await openDatabase({ databaseUrl: null, dataDir: join(res.dir, 'data') });
  const store = res.store;
  const rssStore = process.memoryUsage().rss;
  res.queue = new JobQueue(res.redis, { prefix: `bench-lore-${randomBytes(4).toString('hex')}` });
  const tree = makeTestTree(join(res.dir, 'tree'));
  const { suites } = loadCatalogs(config);
  const logger = pino({ level: process.env.PATCHBAY_BENCH_LOG ?? 'warn' }, pino.destination(2));
  const intake = new Intake({ store, queue: res.queue, trees: tree.trees, suites, defaultSuites: 'by-paths', logger });
  const git = mirrorGit(tree.mirrorsDir);

  const watcher = (inboxes: string[], over: Partial<LoreConfig> = {}): TimedWatcher => {
    const deps: WatcherDeps = {
      store, intake, trees: tree.trees, logger, allow: [pi.origin], timeoutMs: 60_000, maxBytes: 64 * 1024 * 1024,
      config: { ...config.lore, inboxes, requestSpacingMs: 0, requestBudget: 1_000_000, userAgent: 'patchbay-bench (contact: bench@patchbay.invalid)', ...over },
      resolveBase: (series, prerequisites) => resolveBase(series, { trees: tree.trees, git, requestedTree: null, requestedBase: null, historyDepth: config.lore.baseHistoryDepth, prerequisites }),
      patchIds,
    };
    const w = new TimedWatcher(deps);
    res.watchers.push(w);
    return w;
  };

  // --- 1. poll throughput over a 10,000-message inbox ----------------------
  // public-inbox 1.9 answers the page past the last result with a bare "</feed>" (200), which
  // the watcher takes for a bad feed (LORE_BAD_FEED): a listing of an exact multiple of a page fails.
  const total = MESSAGES % ATOM_PAGE === 0 ? MESSAGES + 1 : MESSAGES;
  if (total !== MESSAGES) say(`${MESSAGES} is a multiple of the Atom page (${ATOM_PAGE}): public-inbox answers the empty page after it with a bare </feed>, a poll error (LORE_BAD_FEED); delivering ${total}`);
  say(`making ${total} messages (${SERIES} series) ...`);
  const traffic = makeTraffic(tree, total, SERIES, 1000);
  const bytes = traffic.mails.reduce((a, m) => a + m.raw.length, 0);
  const tDeliver = performance.now();
  for (let i = 0; i < traffic.mails.length; i += CHUNK) {
    pi.deliverMany(traffic.mails.slice(i, i + CHUNK).map((m) => m.raw), { inbox: BIG_INBOX, received: true });
    say(`delivered ${Math.min(i + CHUNK, traffic.mails.length)} / ${traffic.mails.length} (${secs(performance.now() - tDeliver)} s)`);
  }
  const deliverMs = performance.now() - tDeliver;
  // The server's search sees the last message (delivery ended with a SIGHUP): not timed, not counted.
  const last = traffic.mails.at(-1)?.messageId ?? '';
  for (let i = 0; ; i++) {
    const probe = await fetch(`${bigUrl}?q=${encodeURIComponent(`m:${last}`)}&x=A`);
    if ((await probe.text()).includes(last)) break;
    if (i > 600) throw new Error('public-inbox never indexed the last message');
    await pause(100);
  }

  const w1 = watcher([bigUrl]);
  const signal = new AbortController().signal;
  const rssBase = process.memoryUsage().rss;
  const pollMem = new MemorySampler();
  const tPoll = performance.now();
  const [polled] = await w1.pollAll(signal);
  const pollMs = performance.now() - tPoll;
  const pollPeak = pollMem.stop();
  if (polled === undefined || polled.error !== null) throw new Error(`the first poll failed: ${polled?.error ?? 'no report'}`);
  const requests = (await store.lore.inboxes()).find((s) => s.url === bigUrl)?.requests ?? 0;
  say(`poll: ${polled.listed} listed, ${polled.fetched} fetched, ${polled.added} stored in ${secs(pollMs)} s, ${requests} requests`);

  const judgeMem = new MemorySampler();
  const tJudge = performance.now();
  let threads = 0;
  let passes = 0;
  const decided = new Map<string, number>();
  for (;;) {
    const r = await w1.judge(signal);
    if (r.threads > 0) passes++;
    threads += r.threads;
    for (const d of r.decisions) decided.set(d.decision, (decided.get(d.decision) ?? 0) + 1);
    if (r.threads > 0 && passes % 10 === 0) say(`judge: ${threads} threads in ${passes} passes (${secs(performance.now() - tJudge)} s)`);
    if (r.threads === 0 || passes >= 1000) break;
  }
  const judgeMs = performance.now() - tJudge;
  const judgePeak = judgeMem.stop();
  const stillDirty = (await store.lore.dirtyThreads(10_000)).length;
  const queued1 = decided.get('queued') ?? 0;
  say(`judge: ${threads} threads in ${passes} passes, ${secs(judgeMs)} s; decisions ${JSON.stringify(Object.fromEntries(decided))}; ${stillDirty} left dirty`);
  if (queued1 !== SERIES) say(`warning: ${queued1} of ${SERIES} series queued`);

  // --- 2. posting -> queued, the watcher's own loop -------------------------
  let seed = 5000;
  const newSeries = (tag: string, i: number): Mail[] => makeSeries(tree, {
    id: `bench-${tag}-${i}`, title: `fuse: latency ${tag} ${i}`, files: ['io_uring/kbuf.c', 'io_uring/rsrc.c', 'fs/fuse/dev.c'],
    seed: seed++, author: { name: `Latency ${tag}`, email: `${tag}@example.org` },
  });
  const latestJob = async (): Promise<string | null> => (await store.jobs.list({ limit: 1 })).items[0]?.id ?? null;
  /** Delivers a series to the quiet inbox; returns when it was delivered (ms), and how long delivery took. */
  const deliver = (mails: readonly Mail[]): { at: number; took: number } => {
    const t0 = performance.now();
    pi.deliverMany(mails.map((m) => m.raw), { inbox: QUIET_INBOX, received: true });
    const at = performance.now();
    return { at, took: at - t0 };
  };
  /** Reads the newest job every 50 ms until it is a new one; the time it was seen (ms). */
  const newJob = async (before: string | null, timeoutMs = 120_000): Promise<number> => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if ((await latestJob()) !== before) return performance.now();
      if (performance.now() > deadline) throw new Error('no job was queued in time');
      await pause(50);
    }
  };

  const loopSeries = Array.from({ length: N }, (_, i) => newSeries('loop', i));
  const w2 = watcher([quietUrl], { pollIntervalSeconds: INTERVAL_S });
  w2.start();
  while (w2.pollStarts.length === 0) await pause(50);
  const loop: Array<{ latency: number; wait: number; work: number; missed: number; delivery: number }> = [];
  for (const [i, mails] of loopSeries.entries()) {
    // A random phase against the poll timer.
    await pause(Math.random() * INTERVAL_S * 1000);
    const before = await latestJob();
    const d = deliver(mails);
    const seen = await newJob(before);
    // The pass that queued it: the last to start before the job was seen.
    const passes = w2.pollStarts.filter((t) => t >= d.at && t <= seen);
    const queuing = passes.at(-1) ?? d.at;
    loop.push({ latency: seen - d.at, wait: queuing - d.at, work: seen - queuing, missed: Math.max(0, passes.length - 1), delivery: d.took });
    say(`loop ${i + 1}/${N}: ${secs(seen - d.at)} s (wait ${secs(queuing - d.at)} s, work ${secs(seen - queuing)} s${passes.length > 1 ? `, ${passes.length - 1} pass(es) missed it` : ''})`);
  }
  await w2.close();

  // --- 3. the poll + judge + intake work alone --------------------------------
  const directSeries = Array.from({ length: N }, (_, i) => newSeries('direct', i));
  const w3 = watcher([quietUrl], { pollIntervalSeconds: INTERVAL_S });
  const direct: Array<{ total: number; work: number; attempts: number; requests: number }> = [];
  for (const [i, mails] of directSeries.entries()) {
    const before = await latestJob();
    const d = deliver(mails);
    let attempts = 0;
    let requestsUsed = 0;
    for (;;) {
      attempts++;
      const t0 = performance.now();
      const reports = await w3.pollAll(signal);
      await w3.judge(signal);
      const t1 = performance.now();
      requestsUsed += reports.reduce((a, r) => a + r.requests, 0);
      if ((await latestJob()) !== before) {
        direct.push({ total: t1 - d.at, work: t1 - t0, attempts, requests: requestsUsed });
        say(`direct ${i + 1}/${N}: poll+judge ${secs(t1 - t0)} s, ${attempts} pass(es), ${requestsUsed} requests`);
        break;
      }
      if (attempts >= 100) throw new Error('the series was not queued after 100 direct passes');
      await pause(100);
    }
  }

  // --- report -------------------------------------------------------------------
  const lat = loop.map((l) => l.latency);
  const rows: Array<[string, string]> = [
    [`messages delivered (${traffic.series.length} series, the rest discussion), one inbox`, `${traffic.mails.length} (${mib(bytes)} MiB, ${Math.round(bytes / traffic.mails.length)} B mean)`],
    [`delivery into public-inbox (deliverMany, chunks of ${CHUNK}), s`, `${secs(deliverMs)}`],
    ['first poll: listed / fetched / stored', `${polled.listed} / ${polled.fetched} / ${polled.added}`],
    ['first poll, s', `${secs(pollMs)}`],
    ['**first poll: messages/s (listed, fetched and stored)**', `**${Math.round(polled.added / (pollMs / 1000))}**`],
    ['first poll: HTTP requests (store counter)', `${requests}`],
    [`judge: threads (passes of up to 200)`, `${threads} (${passes})`],
    ['judge: decisions', [...decided].map(([k, v]) => `${k} ${v}`).join(', ')],
    ['judge, s', `${secs(judgeMs)}`],
    ['**judge: threads/s**', `**${round(threads / (judgeMs / 1000))}**`],
    ['RSS: at start / PGlite open / before the poll, MiB', `${mib(rssStart)} / ${mib(rssStore)} / ${mib(rssBase)}`],
    ['**peak RSS in the poll / in judging, MiB**', `**${mib(pollPeak.rss)}** / **${mib(judgePeak.rss)}**`],
    ['peak JS heap + array buffers in the poll / in judging, MiB', `${mib(pollPeak.heap)} / ${mib(judgePeak.heap)}`],
    [`posting -> job row, loop every ${INTERVAL_S} s, N=${N}: median / max, s`, `**${secs(median(lat))}** / ${secs(max(lat))}`],
    ['&nbsp;&nbsp;of which waiting for the next poll: median / max, s', `${secs(median(loop.map((l) => l.wait)))} / ${secs(max(loop.map((l) => l.wait)))}`],
    ['&nbsp;&nbsp;of which the pass that queued it: median / max, s', `${secs(median(loop.map((l) => l.work)))} / ${secs(max(loop.map((l) => l.work)))}`],
    ['&nbsp;&nbsp;passes that started after delivery but missed it', `${loop.reduce((a, l) => a + l.missed, 0)} of ${N} deliveries`],
    [`pollAll + judge called right after delivery, N=${N}: median / max, s`, `${secs(median(direct.map((d) => d.work)))} / ${secs(max(direct.map((d) => d.work)))}`],
    ['&nbsp;&nbsp;passes needed (median / max), requests per series', `${median(direct.map((d) => d.attempts))} / ${max(direct.map((d) => d.attempts))}, ${median(direct.map((d) => d.requests))}`],
    ['delivery of a 3-patch series (deliverMany, not in the latency): median, s', `${secs(median([...loop.map((l) => l.delivery)]))}`],
  ];
  const table = ['| figure | value |', '| --- | ---: |', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
  const figures = {
    date: started.toISOString(), messages: traffic.mails.length, bytes, deliverMs, poll: { ...polled, ms: pollMs, requests }, judge: { threads, passes, ms: judgeMs, decisions: Object.fromEntries(decided), stillDirty },
    memory: { rssStart, rssStore, rssBeforePoll: rssBase, poll: pollPeak, judge: judgePeak }, loop, direct,
  };
  process.stdout.write(`${JSON.stringify(figures)}\n\n${table}\n`);
}

main()
  .catch((e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());

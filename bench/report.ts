/**
 * Posting -> report in the thread, end to end on this machine, by stage.
 *
 * Real parts, as in services/serve/test/report.itest.ts but with the
 * suites a list's series gets (those its paths select: kbuf, fuse and
 * smoke for the pinning fixture): a public-inbox on loopback, the lore
 * watcher polling it, a worker with the real executor, the reporter
 * sending through a real SMTP server on loopback (STARTTLS, AUTH) that
 * delivers list mail back into the inbox.
 *
 *   1. Warm-up: the fixture series is posted as v1 and run to its report,
 *      which puts the base's runs of those suites in the base-run cache
 *      (skipped with --no-warm-up when they are there already).
 *   2. Measured: v2, the same series with patch 1's change altered (a new
 *      build, the same base), is posted as a new thread; every stage is
 *      timed from the end of its delivery to the report being in the
 *      thread (t.mbox.gz of its cover letter, read every 250 ms).
 *
 * Prints a markdown table (stdout) and writes bench/results/report-DATE.json;
 * progress goes to stderr. Everything stays on 127.0.0.1.
 *
 * Run: npm run bench:report   (about 10 minutes with the base's runs cached; 20 without)
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { pino } from 'pino';
import { loadConfig } from '../services/config/config.ts';
import { type MailMessage, parseMbox, splitMbox } from '../services/domain/mbox.ts';
import { type PublicInbox, startPublicInbox } from '../services/lore/test/public-inbox-server.ts';
import { type SmtpSink, startSmtpSink } from '../services/reporter/test/smtp-sink.ts';
import { type Service, startService } from '../services/serve/service.ts';

const root = new URL('..', import.meta.url).pathname;
const LIST = 'io-uring@patchbay.invalid';
const say = (s: string): void => { process.stderr.write(`bench: ${s}\n`); };
const secs = (ms: number): number => Math.round(ms / 100) / 10;

const { values: args } = parseArgs({ options: { 'no-warm-up': { type: 'boolean', default: false } } });

/** The pinning fixture as posted to the test list, as revision `version`; `tweak` alters patch 1's change (a new build). */
function revision(version: number, tag: string, tweak: boolean): Buffer[] {
  let text = readFileSync(join(root, 'fixtures/series/pass-kbuf-pin.mbox'), 'latin1')
    .replaceAll('io-uring@vger.kernel.org', LIST)
    .replaceAll('linux-fsdevel@vger.kernel.org', 'linux-fsdevel@patchbay.invalid')
    .replaceAll('<axboe@kernel.dk>', '<axboe@patchbay.invalid>')
    .replaceAll('-kbuf-pin-v2-', `-kbuf-pin-${tag}-v${version}-`)
    .replaceAll('[PATCH v2 ', `[PATCH v${version} `);
  if (tweak) {
    // The last patch adds one more line (a comment) at the end of its last
    // hunk: the same behaviour, another build; no later patch's context sees it.
    const last = text.lastIndexOf('Subject: [PATCH');
    const signature = text.indexOf('\n-- \n', last);
    const end = signature < 0 ? text.length : signature;
    const hunk = text.lastIndexOf('\n@@ ', end);
    const lastAdded = text.lastIndexOf('\n+', end);
    if (last < 0 || hunk < last || lastAdded < hunk) throw new Error('the fixture\'s last patch is not as this bench expects');
    const lineEnd = text.indexOf('\n', lastAdded + 1);
    text = `${text.slice(0, lineEnd)}\n+/* v${version} */${text.slice(lineEnd)}`;
    const header = /^@@ -(\d+)(,\d+)? \+(\d+),(\d+) @@/.exec(text.slice(hunk + 1));
    if (header === null) throw new Error('the fixture\'s last hunk has no header');
    const bumped = header[0].replace(/\+(\d+),(\d+) @@/, (_m, start: string, count: string) => `+${start},${Number(count) + 1} @@`);
    text = `${text.slice(0, hunk + 1)}${bumped}${text.slice(hunk + 1 + header[0].length)}`;
  }
  return splitMbox(text).map((m) => Buffer.from(m, 'latin1'));
}

async function inThread(pi: PublicInbox, messageId: string): Promise<MailMessage[]> {
  const res = await fetch(`${pi.url}${encodeURIComponent(messageId)}/t.mbox.gz`);
  if (!res.ok) return [];
  return parseMbox(gunzipSync(Buffer.from(await res.arrayBuffer())).toString('latin1')).filter((m) => m.header('Auto-Submitted') === 'auto-generated');
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, everyMs = 250, timeoutMs = 60 * 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

interface Timeline {
  deliveredAt: number;
  queuedAt: number;
  startedAt: number;
  finishedAt: number;
  sentAt: number;
  inThreadAt: number;
  stages: Array<{ stage: string; seconds: number }>;
  suites: string[];
  verdict: string;
}

/** Posts one revision and follows it to its report in the thread. */
async function post(service: Service, pi: PublicInbox, version: number, tag: string, tweak: boolean): Promise<Timeline> {
  const cover = `20261120-kbuf-pin-${tag}-v${version}-0@patchbay.invalid`;
  pi.deliverMany(revision(version, tag, tweak));
  const deliveredAt = Date.now();
  say(`v${version} delivered; waiting for the watcher`);
  const decision = await waitFor('the watcher\'s decision', async () => {
    const page = await service.store.lore.decisions({ limit: 20 });
    return page.items.find((d) => d.rootMessageId === cover && d.decision === 'queued' && d.jobId !== null);
  });
  const jobId = decision.jobId ?? '';
  say(`v${version} queued as ${jobId}; waiting for its verdict`);
  const job = await waitFor('the verdict', async () => {
    const j = await service.store.jobs.get(jobId);
    return j?.finishedAt != null && j.result !== null ? j : undefined;
  }, 1000);
  say(`v${version}: ${job.status}; waiting for the report`);
  const report = await waitFor('the report sent', async () => {
    const r = (await service.store.outbox.list({ limit: 5, jobId })).items[0];
    return r?.sentAt != null ? r : undefined;
  });
  await waitFor('the report in the thread', async () => ((await inThread(pi, cover)).some((m) => m.messageId === report.messageId) ? true : undefined));
  const inThreadAt = Date.now();
  return {
    deliveredAt,
    queuedAt: decision.decidedAt.getTime(),
    startedAt: job.startedAt?.getTime() ?? Number.NaN,
    finishedAt: job.finishedAt?.getTime() ?? Number.NaN,
    sentAt: report.sentAt?.getTime() ?? Number.NaN,
    inThreadAt,
    stages: (job.result?.stages ?? []).map((s) => ({ stage: s.stage, seconds: secs(s.durationMs) })),
    suites: job.suites,
    verdict: job.status,
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'patchbay-bench-report-'));
  let pi: PublicInbox | undefined;
  let smtp: SmtpSink | undefined;
  let service: Service | undefined;
  try {
    pi = await startPublicInbox('io-uring');
    smtp = await startSmtpSink();
    const inbox = pi;
    smtp.onMessage = (m) => { if (m.to.includes(LIST)) inbox.deliver(m.raw, { received: true }); };
    const policy = join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ default: { mode: 'dry-run', results: 'all' }, inboxes: [{ inbox: pi.url, mode: 'author+list', results: 'all' }] }));
    const config = loadConfig({
      ...process.env,
      PATCHBAY_DATA: join(dir, 'data'), PATCHBAY_QUEUE_PREFIX: `bench-report-${randomBytes(3).toString('hex')}`, PORT: '0',
      PATCHBAY_LORE_INBOXES: pi.url, PATCHBAY_INBOX_ALLOW: pi.origin, PATCHBAY_LORE_POLL_SECONDS: '10', PATCHBAY_LORE_SPACING_MS: '0',
      PATCHBAY_LORE_OVERLAP_SECONDS: '3600', PATCHBAY_LORE_LOOKBACK_SECONDS: '3600', PATCHBAY_LORE_SETTLE_SECONDS: '30', PATCHBAY_LORE_SUITES: '',
      PATCHBAY_REPORT_POLICY: policy, PATCHBAY_REPORT_FROM: 'patchbay@robot.patchbay.invalid', PATCHBAY_REPORT_POLL_MS: '2000',
      PATCHBAY_SMTP_URL: smtp.url, PATCHBAY_SMTP_CA: smtp.caFile, PATCHBAY_SMTP_REQUIRE_TLS: 'true',
    });
    service = await startService(config, { roles: ['worker', 'lore', 'reporter'], hostEnv: process.env, logger: pino({ level: 'silent' }) });
    const tag = randomBytes(3).toString('hex');
    if (!args['no-warm-up']) {
      say('warm-up: v1 puts the base\'s runs of its suites in the cache');
      const warm = await post(service, pi, 1, tag, false);
      say(`warm-up done in ${secs(warm.inThreadAt - warm.deliveredAt)} s (${warm.verdict})`);
    }
    const t = await post(service, pi, 2, tag, true);
    const rows: Array<[string, number]> = [
      ['watcher: poll interval (10 s), poll, judge, base, queue', secs(t.queuedAt - t.deliveredAt)],
      ['queue: to a worker', secs(t.startedAt - t.queuedAt)],
      ...t.stages.map((s): [string, number] => [`job: ${s.stage}`, s.seconds]),
      ['job: recorded (result, outbox row) after its stages', secs(t.finishedAt - t.startedAt - t.stages.reduce((a, s) => a + s.seconds * 1000, 0))],
      ['reporter: poll interval (2 s), render, compose, SMTP', secs(t.sentAt - t.finishedAt)],
      ['list: SMTP -> public-inbox-mda -> in t.mbox.gz', secs(t.inThreadAt - t.sentAt)],
    ];
    const total = secs(t.inThreadAt - t.deliveredAt);
    const out = [
      `| stage (v2 of the pinning fixture, suites ${t.suites.join(', ')}, base's runs cached, ${t.verdict}) | seconds |`,
      '| --- | ---: |',
      ...rows.map(([k, v]) => `| ${k} | ${v} |`),
      `| **posting -> report in the thread** | **${total}** |`,
    ].join('\n');
    process.stdout.write(`${out}\n`);
    mkdirSync(join(root, 'bench', 'results'), { recursive: true });
    const file = join(root, 'bench', 'results', `report-${new Date().toISOString().slice(0, 10)}.json`);
    writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), totalSeconds: total, rows, timeline: t }, null, 2)}\n`);
    say(`wrote ${file}`);
  } finally {
    await service?.close();
    await smtp?.stop();
    pi?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

/**
 * The `patchbay` command. Wiring only: parse arguments, load config and
 * catalogues, call the executor, print.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DockerFilter, filterStartError } from '../../runners/docker-filter/proxy.ts';
import { filterRules } from '../../runners/docker-filter/rules.ts';
import { orphanAgeSeconds } from '../../runners/executor/docker.ts';
import { ensureImages } from '../../runners/executor/images.ts';
import { runJob } from '../../runners/executor/pipeline.ts';
import { loadConfig } from '../config/config.ts';
import { PatchbayError, errorMessage, isPatchbayError } from '../domain/errors.ts';
import type { StageName } from '../domain/job.ts';
import type { Status } from '../domain/status.ts';
import { localTokenPath, parseRoles, startService } from '../serve/service.ts';
import { openDatabase } from '../store/db.ts';
import { ServiceClient } from './client.ts';
import { seriesPaths } from '../domain/series.ts';
import { type PrerequisitesApplied, prerequisitesFromMbox, prerequisitesLine } from '../domain/prerequisites.ts';
import { type TestSelector, parseTestSelector } from '../domain/test-filter.ts';
import { Progress, formatDuration } from './progress.ts';
import { renderResult } from './results-table.ts';
import { type SeriesSource, seriesFromSource } from './series-input.ts';
import { loadCatalogs } from '../catalog/load.ts';
import { makeExecutorDeps } from '../../runners/executor/deps.ts';
import { makeLogger } from '../platform/logger.ts';
import { cmdRunner, cmdRunners } from './runners.ts';

const USAGE = `usage: patchbay <command> [options]

commands:
  run [--tree NAME] (--mbox FILE | --message-id ID --inbox URL) [--prerequisites FILE]
      [--suite NAME ...] [--test SUITE/TEST ...] [--base COMMIT] [--json] [-v]
        apply a series to a tree, build, boot it in QEMU and run the suites
        (default: the suites the series' paths select), compared with the base;
        --message-id: fetch the thread from that public-inbox (an allowlisted
        origin, PATCHBAY_INBOX_ALLOW) and take the revision the message is in;
        --test: run only these tests of their suites (a suite not selected is
        added), on the series' kernel and the base alike;
        --prerequisites: an mbox of patches the series needs that the tree lacks,
        applied in file order on the base (of both kernels) before the series
  trees [--json]        list the configured trees
  suites [--json]       list the test suites
  demo [--port N]       start the service on embedded defaults, submit the passing
                        fixture series, follow it to its verdict, print the job page
  serve [--port N] [--role api|worker|lore|reporter|all]
        run the service (API, a worker and the reporter by default, and the
        lore watcher when PATCHBAY_LORE_WATCH=true) on the configured database
        (embedded PGlite unless DATABASE_URL) and Redis; the reporter mails
        verdicts into their threads (PATCHBAY_SMTP_URL) or, by default, writes
        them to the outbox folder
  lore status [--json] [--limit N] [--decision KIND|series|all] [--server URL]
        the lore watcher: each inbox's cursor, last poll and errors, and the
        recent decisions with their reasons (default: series, not discussions)
  docker-filter         listen on the filter socket (PATCHBAY_DOCKER_FILTER_SOCKET) and
                        forward to the engine only the calls a worker's jobs make
                        (the compose worker's only way to Docker)
  prepare [--json]      build what a worker on this Docker host needs before its first
                        job: the base and runner images and the tree mirrors
  token create NAME --scope submit|read|admin ...
        create an API token (printed once) in the configured database
  submit FILE | --message-id ID --inbox URL [--tree NAME] [--suite NAME ...]
         [--base COMMIT] [--force] [--follow] [--runs-on LABEL ...] [--server URL]
        submit a series to a running service; --follow shows it to its verdict;
        --runs-on: a lab runner with kvm, arch=..., cores=N, memory-mb=N or label=value
  runner --config FILE
        run a lab runner: register with the token the file names (once), then
        take jobs from the API and run them on this machine's Docker engine;
        SIGTERM drains (finishes what runs), a second one stops at once
  runners list [--json] | token [--note TEXT] | drain NAME | resume NAME | revoke NAME
         [--server URL]
        lab runners (an admin token): their state and jobs; a one-time
        registration token for a new one; drain, resume or revoke one
  status JOB [--json] [--server URL]
  logs [-f] JOB [--server URL]

exit status: 0 when a job ran (whatever its verdict) , 1 for MISS
(infrastructure trouble), 2 for bad input or usage.`;

export { UsageError } from './usage.ts';
import { UsageError } from './usage.ts';

export function newJobId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

async function cmdRun(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      tree: { type: 'string' },
      mbox: { type: 'string' },
      'message-id': { type: 'string' },
      inbox: { type: 'string' },
      prerequisites: { type: 'string' },
      suite: { type: 'string', multiple: true },
      test: { type: 'string', multiple: true },
      base: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
    },
    strict: true,
  });
  const source = runSource(values);
  const only: TestSelector[] = (values.test ?? []).map(parseTestSelector);
  const config = loadConfig(process.env);
  const catalogs = loadCatalogs(config);
  const tree = catalogs.trees.get(values.tree ?? catalogs.trees.trees[0]?.name ?? '');
  const err = process.stderr;
  const { series, from, note } = await seriesFromSource(source, { allow: config.api.inboxAllowlist, timeoutMs: config.api.inboxTimeoutMs, maxBytes: config.api.mboxLimitBytes });
  if (source.kind === 'message-id') err.write(`patchbay: series from ${from}${note === null ? '' : `: ${note}`}\n`);
  const prerequisites = values.prerequisites === undefined ? null : prerequisitesFromMbox(readFileSync(values.prerequisites).toString('latin1'));
  const chosen = values.suite ? catalogs.suites.select(values.suite) : catalogs.suites.forPaths(seriesPaths(series));
  // A --test names its suite: one not selected is added.
  const suites = catalogs.suites.select([...chosen.map((s) => s.name), ...only.map((k) => k.suite)]);
  const logger = makeLogger(config);
  const { deps, engine } = makeExecutorDeps(config, process.env, logger);
  await engine.ping();
  for (const name of await engine.reapOrphans(orphanAgeSeconds(config))) err.write(`patchbay: removed ${name}, left behind by a runner that is gone\n`);

  const jobId = newJobId();
  const onPrerequisites = prerequisites === null ? '' : ` after ${prerequisites.patches.length} prerequisite patch(es)`;
  const filter = only.length === 0 ? '' : ` (only ${only.map((k) => `${k.suite}/${k.test}`).join(', ')})`;
  err.write(`patchbay: job ${jobId}: "${series.title}" v${series.version}, ${series.patches.length} patch(es)${onPrerequisites} on ${tree.name}, suites ${suites.map((s) => s.name).join(', ')}${filter}\n`);
  const progress = new Progress(err, values.verbose);
  const abort = new AbortController();
  const onSignal = (): void => { abort.abort(); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const result = await runJob(
      { jobId, tree, base: values.base ?? null, series, prerequisites, suites, kernelFragment: catalogs.kernelFragment, ...(only.length > 0 ? { only } : {}) },
      deps,
      (e) => { progress.handle(e); },
      abort.signal,
    );
    progress.close();
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else process.stdout.write(`${renderResult(result)}\n`);
    return result.status === 'MISS' ? 1 : 0;
  } finally {
    progress.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    logger.flush();
  }
}

/** `run`'s series: exactly one of --mbox FILE and --message-id ID (with --inbox URL). */
export function runSource(values: { mbox?: string | undefined; 'message-id'?: string | undefined; inbox?: string | undefined }): SeriesSource {
  const messageId = values['message-id'];
  if (values.mbox !== undefined && messageId !== undefined) throw new UsageError('run: --mbox and --message-id exclude each other');
  if (values.mbox !== undefined) {
    if (values.inbox !== undefined) throw new UsageError('run: --inbox goes with --message-id, not --mbox');
    return { kind: 'mbox', file: values.mbox };
  }
  if (messageId === undefined) throw new UsageError('run: --mbox FILE or --message-id ID --inbox URL is required');
  if (values.inbox === undefined) throw new UsageError('run: --message-id needs --inbox URL (a public-inbox, e.g. a lore list)');
  return { kind: 'message-id', messageId, inbox: values.inbox };
}

function cmdTrees(argv: string[]): number {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, strict: true });
  const { trees } = loadCatalogs(loadConfig(process.env));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(trees.trees, null, 2)}\n`);
    return 0;
  }
  for (const t of trees.trees) {
    const source = t.url ?? (t.import ? `import: Debian source ${t.import.debianSource.package} ${t.import.debianSource.version}` : '');
    process.stdout.write(`${t.name.padEnd(16)} ${t.ref.padEnd(12)} ${source}${t.description ? `\n${' '.repeat(17)}${t.description}` : ''}\n`);
  }
  return 0;
}

function cmdSuites(argv: string[]): number {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, strict: true });
  const { suites } = loadCatalogs(loadConfig(process.env));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(suites.suites, null, 2)}\n`);
    return 0;
  }
  for (const s of suites.suites) process.stdout.write(`${s.name.padEnd(10)} ${String(s.timeoutSeconds).padStart(5)}s  ${s.description}\n`);
  return 0;
}

async function cmdServe(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { port: { type: 'string' }, role: { type: 'string' } }, strict: true });
  const config = loadConfig(process.env);
  const logger = makeLogger(config);
  const roles = parseRoles(values.role, config);
  const service = await startService(config, { roles, hostEnv: process.env, logger, ...(values.port ? { port: Number(values.port) } : {}) });
  process.stderr.write(`patchbay: serving (${roles.join(' + ')})${service.url ? ` on ${service.url}` : ''}; database ${service.store.backend}, logs ${config.logFile === null ? 'on standard output' : `in ${config.logFile}`}\n`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      const grace = roles.includes('worker') ? ` (running jobs get ${Math.round(config.worker.shutdownGraceMs / 1000)}s, then go back to the queue)` : '';
      process.stderr.write(`patchbay: ${sig}: shutting down${grace}\n`);
      resolve();
    };
    process.once('SIGINT', () => { stop('SIGINT'); });
    process.once('SIGTERM', () => { stop('SIGTERM'); });
  });
  await service.close();
  logger.flush();
  return 0;
}

async function cmdDockerFilter(argv: string[]): Promise<number> {
  parseArgs({ args: argv, options: {}, strict: true });
  const config = loadConfig(process.env);
  const logger = makeLogger(config).child({ component: 'docker-filter' });
  const filter = await DockerFilter.start({
    listen: config.docker.filterSocket,
    upstream: config.docker.socketPath,
    rules: filterRules(config),
    logger,
  }).catch((e: unknown) => { throw filterStartError(config.docker.filterSocket, e); });
  process.stderr.write(`patchbay: docker filter on ${config.docker.filterSocket} -> ${config.docker.socketPath}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => { resolve(); });
    process.once('SIGTERM', () => { resolve(); });
  });
  await filter.close();
  logger.flush();
  return 0;
}

/**
 * The host-side part of a worker's setup, done ahead of the first job: the
 * base image (debootstrap needs the host), the runner image and the tree
 * mirrors (a Debian source import needs the host's deb-src lines). Prints
 * `base TAG`, `runner TAG` and `tree NAME MIRROR` lines.
 */
async function cmdPrepare(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, strict: true });
  const config = loadConfig(process.env);
  const catalogs = loadCatalogs(config);
  const logger = makeLogger(config);
  const { deps, engine } = makeExecutorDeps(config, process.env, logger);
  const onLog = (text: string): void => { process.stderr.write(`patchbay: ${text.trimEnd()}\n`); };
  try {
    await engine.ping();
    const images = await ensureImages(engine, { imagesDir: config.imagesDir, baseImage: config.docker.baseImage, env: process.env, onLog });
    const trees: Array<{ name: string; mirror: string }> = [];
    for (const tree of catalogs.trees.trees) trees.push({ name: tree.name, mirror: await deps.mirrors.ensure(tree, onLog) });
    if (values.json) process.stdout.write(`${JSON.stringify({ base: images.base, runner: images.runner, trees }, null, 2)}\n`);
    else process.stdout.write([`base ${images.base}`, `runner ${images.runner}`, ...trees.map((t) => `tree ${t.name} ${t.mirror}`)].join('\n') + '\n');
    return 0;
  } finally {
    logger.flush();
  }
}

/** Follows a job's log stream on the terminal with the same progress display as `run`. */
async function followWithProgress(client: ServiceClient, jobId: string, verbose: boolean): Promise<void> {
  const progress = new Progress(process.stderr, verbose);
  try {
    await client.follow(jobId, (e) => {
      if (e.kind === 'log') progress.handle({ type: 'log', stage: e.stage as StageName, text: e.text });
      else if (e.kind === 'stage' && e.phase === 'start') progress.handle({ type: 'stage-start', stage: e.stage as StageName });
      else if (e.kind === 'stage') progress.handle({ type: 'stage-end', stage: e.stage as StageName, status: (e.status ?? 'MISS') as Status, durationMs: e.durationMs ?? 0, summary: e.summary ?? '' });
    });
  } finally {
    progress.close();
  }
}

async function cmdDemo(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { port: { type: 'string' }, verbose: { type: 'boolean', short: 'v', default: false } }, strict: true });
  const config = loadConfig(process.env);
  const logger = makeLogger(config);
  const err = process.stderr;
  err.write('patchbay: starting the service (API and a worker) on embedded defaults\n');
  const service = await startService(config, { roles: ['api', 'worker'], hostEnv: process.env, logger, ...(values.port ? { port: Number(values.port) } : {}) });
  const server = service.url ?? '';
  try {
    err.write(`patchbay: serving on ${server}; database ${service.store.backend} in ${config.dataDir}\n`);
    const client = new ServiceClient({ server, token: localToken(config.dataDir) });
    const mbox = join(config.repoRoot, 'fixtures', 'series', 'pass-kbuf-pin.mbox');
    type Reply = { series: { title: string; version: number; total: number }; jobs: Array<{ id: string; url: string; page: string }> };
    const reply = await client.request<Reply>('POST', '/api/v1/series?suite=smoke&force=true', { type: 'application/mbox', data: readFileSync(mbox) });
    const job = reply.jobs[0];
    if (!job) throw new PatchbayError('INTERNAL', 'the service answered with no job');
    err.write(`patchbay: submitted "${reply.series.title}" v${reply.series.version} (${reply.series.total} patches) as job ${job.id}\n`);
    await followWithProgress(client, job.id, values.verbose);
    const final = await client.request<JobView>('GET', job.url);
    printJob(final, server);
    if (process.stdin.isTTY) {
      err.write('\npatchbay: the service keeps running so the page can be opened; Ctrl-C stops it\n');
      await new Promise<void>((resolve) => { process.once('SIGINT', () => { resolve(); }); process.once('SIGTERM', () => { resolve(); }); });
    }
    return final.status === 'MISS' ? 1 : 0;
  } finally {
    await service.close();
    logger.flush();
  }
}

async function cmdToken(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { scope: { type: 'string', multiple: true } }, allowPositionals: true, strict: true });
  if (positionals[0] !== 'create' || positionals[1] === undefined) throw new UsageError('token create NAME --scope SCOPE ...');
  const scopes = values.scope ?? ['submit', 'read'];
  for (const s of scopes) if (s !== 'submit' && s !== 'read' && s !== 'admin') throw new UsageError(`unknown scope "${s}"`);
  const config = loadConfig(process.env);
  const store = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const { token, secret } = await store.tokens.create(positionals[1], scopes as Array<'submit' | 'read' | 'admin'>);
    process.stderr.write(`patchbay: token ${token.id} "${token.name}" (${token.scopes.join(', ')}); the secret is shown once:\n`);
    process.stdout.write(`${secret}\n`);
  } finally {
    await store.close();
  }
  return 0;
}

interface JobView {
  id: string; status: string; stage: string | null; summary: string; page: string;
  stages: Array<{ stage: string; status: string; durationMs: number; summary: string }>;
  results: Array<{ suite: string; test: string; status: string; detail: string }>;
  /** Absent from services older than prerequisites. */
  prerequisites?: PrerequisitesApplied | null;
}

function clientFrom(server: string | undefined): ServiceClient {
  const config = loadConfig(process.env);
  return new ServiceClient({ server: server ?? config.client.server, token: config.client.token ?? localToken(config.dataDir) });
}

/** The token `patchbay serve` left for local use, if this user can read it. */
function localToken(dataDir: string): string | null {
  try {
    return readFileSync(localTokenPath(dataDir), 'utf8').trim() || null;
  } catch {
    return null;
  }
}

function printJob(job: JobView, server: string): void {
  const out = process.stdout;
  for (const s of job.stages) out.write(`  ${s.status.padEnd(5)} ${s.stage.padEnd(6)} ${formatDuration(s.durationMs).padStart(7)}  ${s.summary}\n`);
  if (job.results.length > 0) {
    out.write('\n');
    for (const r of job.results) out.write(`  ${r.suite.padEnd(8)} ${r.test.padEnd(32)} ${r.status.padEnd(5)} ${r.detail.split('\n')[0] ?? ''}\n`);
  }
  const prerequisites = prerequisitesLine(job.prerequisites);
  out.write(`\nstatus: ${job.status}${job.stage ? ` at ${job.stage}` : ''}: ${job.summary}\n${prerequisites === null ? '' : `prerequisites: ${prerequisites}\n`}job page: ${new URL(job.page, server).href}\n`);
}

async function cmdSubmit(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      'message-id': { type: 'string' }, inbox: { type: 'string' }, tree: { type: 'string' }, suite: { type: 'string', multiple: true },
      base: { type: 'string' }, force: { type: 'boolean', default: false }, follow: { type: 'boolean', default: false },
      server: { type: 'string' }, verbose: { type: 'boolean', short: 'v', default: false }, 'runs-on': { type: 'string', multiple: true },
    },
    allowPositionals: true,
    strict: true,
  });
  const client = clientFrom(values.server);
  const runsOn = values['runs-on'] ?? [];
  const server = values.server ?? loadConfig(process.env).client.server;
  type Reply = { created: boolean; series: { id: string; title: string; version: number; total: number }; jobs: Array<{ id: string; url: string; page: string; status: string }> };
  let reply: Reply;
  if (values['message-id'] !== undefined) {
    if (values.inbox === undefined) throw new UsageError('submit --message-id needs --inbox URL (a public-inbox, e.g. a lore list)');
    reply = await client.request<Reply>('POST', '/api/v1/series', { type: 'application/json', data: JSON.stringify({
      messageId: values['message-id'], inbox: values.inbox, ...(values.tree ? { tree: values.tree } : {}), ...(values.base ? { base: values.base } : {}),
      ...(values.suite ? { suites: values.suite } : {}), force: values.force, ...(runsOn.length > 0 ? { runsOn } : {}),
    }) });
  } else {
    const file = positionals[0];
    if (file === undefined) throw new UsageError('submit FILE, or --message-id ID --inbox URL');
    const q = new URLSearchParams();
    if (values.tree) q.set('tree', values.tree);
    if (values.base) q.set('base', values.base);
    for (const s of values.suite ?? []) q.append('suite', s);
    if (values.force) q.set('force', 'true');
    for (const r of runsOn) q.append('runsOn', r);
    reply = await client.request<Reply>('POST', `/api/v1/series?${q.toString()}`, { type: 'application/mbox', data: readFileSync(file) });
  }
  const err = process.stderr;
  err.write(`patchbay: series ${reply.series.id} "${reply.series.title}" v${reply.series.version} (${reply.series.total} patches)${reply.created ? '' : ' — already submitted; the existing job'}\n`);
  for (const j of reply.jobs) err.write(`  job ${j.id}: ${j.status}, ${new URL(j.page, server).href}\n`);
  if (!values.follow) return 0;
  const job = reply.jobs[0];
  if (!job) return 0;
  await followWithProgress(client, job.id, values.verbose);
  const final = await client.request<JobView>('GET', job.url);
  printJob(final, server);
  return final.status === 'MISS' ? 1 : 0;
}

async function cmdStatus(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false }, server: { type: 'string' } }, allowPositionals: true, strict: true });
  const id = positionals[0];
  if (id === undefined) throw new UsageError('status JOB');
  const server = values.server ?? loadConfig(process.env).client.server;
  const job = await clientFrom(values.server).request<JobView>('GET', `/api/v1/jobs/${encodeURIComponent(id)}`);
  if (values.json) process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
  else printJob(job, server);
  return 0;
}

async function cmdLogs(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { follow: { type: 'boolean', short: 'f', default: false }, server: { type: 'string' } }, allowPositionals: true, strict: true });
  const id = positionals[0];
  if (id === undefined) throw new UsageError('logs [-f] JOB');
  const client = clientFrom(values.server);
  if (!values.follow) {
    const config = loadConfig(process.env);
    const token = config.client.token ?? localToken(config.dataDir);
    const res = await fetch(new URL(`/api/v1/jobs/${encodeURIComponent(id)}/log`, values.server ?? config.client.server), { headers: token ? { authorization: `Bearer ${token}` } : {} });
    if (!res.ok) throw new PatchbayError(`HTTP_${res.status}`, `no log for ${id} (${res.status})`);
    process.stdout.write(await res.text());
    return 0;
  }
  const status = await client.follow(id, (e) => { if (e.kind === 'log') process.stdout.write(e.text); });
  process.stderr.write(`patchbay: job ${id} ended: ${status}\n`);
  return 0;
}

interface LoreStatusReply {
  inboxes: Array<{ url: string; cursorAt: string | null; lastPollAt: string | null; lastOkAt: string | null; lastError: string | null; lastErrorAt: string | null; polls: number; pollErrors: number; messagesSeen: number; requests: number }>;
  lease: { holder: string; expiresAt: string } | null;
  decisions: Array<{ decision: string; reason: string; title: string; version: number | null; author: string; tree: string | null; base: string | null; baseRule: string | null; jobId: string | null; decidedAt: string }>;
}

async function cmdLore(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'status') throw new UsageError('lore status [--json] [--limit N] [--decision KIND|series|all] [--server URL]');
  const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean', default: false }, limit: { type: 'string' }, decision: { type: 'string' }, server: { type: 'string' } }, strict: true });
  const client = clientFrom(values.server);
  const q = new URLSearchParams({ limit: values.limit ?? '20', decision: values.decision ?? 'series' });
  const reply = await client.request<LoreStatusReply>('GET', `/api/v1/lore?${q.toString()}`);
  const out = process.stdout;
  if (values.json) {
    out.write(`${JSON.stringify(reply, null, 2)}\n`);
    return 0;
  }
  const when = (s: string | null): string => (s === null ? '-' : s.replace('T', ' ').slice(0, 19));
  out.write(reply.lease === null ? 'watcher: none holds the lease (none is polling)\n' : `watcher: ${reply.lease.holder}, lease until ${when(reply.lease.expiresAt)}\n`);
  for (const i of reply.inboxes) {
    out.write(`\n${i.url}\n  cursor ${when(i.cursorAt)}, last poll ${when(i.lastPollAt)}, last success ${when(i.lastOkAt)}\n`);
    out.write(`  ${i.polls} polls (${i.pollErrors} failed), ${i.messagesSeen} messages, ${i.requests} requests\n`);
    if (i.lastError !== null) out.write(`  last error (${when(i.lastErrorAt)}): ${i.lastError}\n`);
  }
  out.write('\nrecent decisions:\n');
  for (const d of reply.decisions) {
    const base = d.tree === null ? '' : ` on ${d.tree}@${(d.base ?? '').slice(0, 12)} (${d.baseRule ?? '?'})`;
    out.write(`  ${when(d.decidedAt)}  ${d.decision.padEnd(12)} ${d.title}${d.version === null ? '' : ` v${d.version}`}${base}${d.jobId === null ? '' : ` job ${d.jobId}`}\n      ${d.reason}\n`);
  }
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await cmdRun(rest);
      case 'trees':
        return cmdTrees(rest);
      case 'suites':
        return cmdSuites(rest);
      case 'serve':
        return await cmdServe(rest);
      case 'demo':
        return await cmdDemo(rest);
      case 'prepare':
        return await cmdPrepare(rest);
      case 'docker-filter':
        return await cmdDockerFilter(rest);
      case 'token':
        return await cmdToken(rest);
      case 'submit':
        return await cmdSubmit(rest);
      case 'status':
        return await cmdStatus(rest);
      case 'logs':
        return await cmdLogs(rest);
      case 'lore':
        return await cmdLore(rest);
      case 'runner':
        return await cmdRunner(rest);
      case 'runners':
        return await cmdRunners(rest, clientFrom);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e instanceof Error && 'code' in e && String((e as { code: unknown }).code).startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`patchbay: ${e.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (isPatchbayError(e)) {
      process.stderr.write(`patchbay: error [${e.code}]: ${e.message}\n`);
      return e.retryable ? 1 : 2;
    }
    process.stderr.write(`patchbay: internal error: ${errorMessage(e)}\n`);
    return 1;
  }
}

/**
 * Lab runners as real processes for tests and benches: the API and an
 * in-cluster worker (`serve --role api,worker` in this process, PGlite, its
 * own Redis on loopback; jobs go to runners unless submitToQueue) and any number
 * of `patchbay runner` processes, each with its own state folder,
 * credential and labels, on this machine's Docker engine. The runners
 * share the machine's warm caches (trees, warm bases, base runs), as two
 * runners on one lab machine would; their job folders are per attempt.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { ServiceClient } from '../../../services/cli/client.ts';
import { loadConfig } from '../../../services/config/config.ts';
import { loadCatalogs } from '../../../services/catalog/load.ts';
import { DockerEngine, orphanAgeSeconds } from '../../executor/docker.ts';
import { Intake } from '../../../services/intake/intake.ts';
import { JobQueue } from '../../../services/queue/job-queue.ts';
import { closeRedis, createRedis } from '../../../services/queue/redis.ts';
import { type RedisServer, startRedisServer } from '../../../services/queue/test/redis-server.ts';
import { localTokenPath, type Service, startService } from '../../../services/serve/service.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface JobView { id: string; status: string; ranOn: string | null; attempts: number; stage: string | null; summary: string; startedAt: string | null; finishedAt: string | null; results: Array<{ suite: string; test: string; status: string }>; artifacts?: Array<{ name: string; url: string }> }
export interface RunnerRow { id: string; name: string; state: string; lastSeenAt: string | null; warmBases: Array<{ tree: string; commit: string }>; jobsDone: number; failures: number }

export interface RunnerLab {
  /** The API (and the in-cluster worker); replaced by restartApi(). */
  readonly service: Service;
  client: ServiceClient;
  /** The API's admin token (the one serve leaves for local use). */
  adminToken: string;
  /** The commit of the tree's ref (linux-7.1.y at v7.1.8): the machine's warm base. */
  baseCommit: string;
  work: string;
  procs: Map<string, ChildProcess>;
  startRunner: (name: string, labels: { kvm: boolean; extra: Record<string, string> }, settings?: Record<string, string>) => Promise<ChildProcess>;
  runners: () => Promise<RunnerRow[]>;
  submit: (fixture: string, q: Record<string, string | string[]>) => Promise<string>;
  /** The same submission for the in-cluster worker (the queue's pool): the lab's service runs one beside the API. */
  submitToQueue: (fixture: string, suites: string[]) => Promise<string>;
  job: (id: string) => Promise<JobView>;
  waitFor: (what: string, ms: number, check: () => Promise<boolean>) => Promise<void>;
  finished: (id: string, ms?: number) => Promise<JobView>;
  /** Stops the API for `downMs`, then starts it again on the same port and database (runners must ride it out). */
  restartApi: (downMs: number) => Promise<void>;
  close: () => Promise<void>;
}

export async function startRunnerLab(opts: { env?: Record<string, string>; quiet?: boolean } = {}): Promise<RunnerLab> {
  const host = loadConfig(process.env);
  const dataDir = mkdtempSync(join(tmpdir(), 'patchbay-runners-api-'));
  const work = mkdtempSync(join(tmpdir(), 'patchbay-runners-'));
  const redis: RedisServer = startRedisServer();
  const env = {
    ...process.env, REDIS_URL: redis.url, PATCHBAY_DATA: dataDir, DATABASE_URL: '',
    PATCHBAY_QUEUE_PREFIX: `runners-${randomBytes(3).toString('hex')}`, PORT: '0',
    PATCHBAY_DISPATCH: 'runners', PATCHBAY_REPORT: 'false',
    ...opts.env,
  };
  const config = loadConfig(env);
  let service = await startService(config, { roles: ['api', 'worker'], hostEnv: env, logger: pino({ level: 'silent' }) });
  const port = Number(new URL(service.url ?? '').port);
  const queueRedis = createRedis(config.redisUrl, 'lab-queue');
  const queue = new JobQueue(queueRedis, { prefix: config.queuePrefix });
  const catalogs = loadCatalogs(config);
  const intakeStore = (): Service['store'] => service.store;
  const toQueue = (): Intake => new Intake({ store: intakeStore(), queue, trees: catalogs.trees, suites: catalogs.suites, defaultSuites: ['smoke'], logger: pino({ level: 'silent' }), dispatch: 'queue' });
  const adminToken = readFileSync(localTokenPath(dataDir), 'utf8').trim();
  const client = new ServiceClient({ server: service.url ?? '', token: adminToken });
  const rev = spawnSync('git', ['-C', join(host.mirrorsDir, 'linux-7.1.y.git'), 'rev-parse', 'v7.1.8^{commit}'], { encoding: 'utf8' });
  const baseCommit = rev.stdout.trim();
  assert.match(baseCommit, /^[0-9a-f]{40}$/, rev.stderr);
  const procs = new Map<string, ChildProcess>();

  const job = (id: string): Promise<JobView> => client.request<JobView>('GET', `/api/v1/jobs/${id}`);
  const runners = async (): Promise<RunnerRow[]> => (await client.request<{ items: RunnerRow[] }>('GET', '/api/v1/runners')).items;
  const waitFor = async (what: string, ms: number, check: () => Promise<boolean>): Promise<void> => {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if (await check()) return;
      await sleep(500);
    }
    assert.fail(`timed out waiting for ${what}`);
  };

  return {
    get service() { return service; },
    client, adminToken, baseCommit, work, procs, runners, job, waitFor,
    restartApi: async (downMs) => {
      await service.close();
      await sleep(downMs);
      service = await startService(config, { roles: ['api', 'worker'], hostEnv: env, logger: pino({ level: 'silent' }), port });
    },
    startRunner: async (name, labels, settings = {}) => {
      const state = join(work, name);
      mkdirSync(state, { recursive: true });
      const tokenFile = join(state, 'registration-token');
      try {
        readFileSync(join(state, 'credential'));
      } catch {
        const t = await client.request<{ token: string }>('POST', '/api/v1/runners/tokens', { type: 'application/json', data: JSON.stringify({ note: name }) });
        writeFileSync(tokenFile, `${t.token}\n`, { mode: 0o600 });
      }
      const configFile = join(state, 'runner.json');
      writeFileSync(configFile, JSON.stringify({
        server: service.url, name, stateDir: state, registrationTokenFile: tokenFile, capacity: 1, labels,
        settings: { PATCHBAY_CACHE: host.cacheDir, PATCHBAY_LOG_FILE: '-', PATCHBAY_LOG_LEVEL: 'warn', ...settings },
      }));
      const p = spawn(process.execPath, [join(root, 'bin/patchbay.mjs'), 'runner', '--config', configFile], { cwd: root, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
      const prefix = (b: Buffer): void => {
        if (opts.quiet === true) return;
        for (const line of b.toString().split('\n')) if (line !== '') process.stderr.write(`  [${name}] ${line.slice(0, 400)}\n`);
      };
      p.stdout.on('data', prefix);
      p.stderr.on('data', prefix);
      procs.set(name, p);
      await waitFor(`runner ${name} to say hello`, 60_000, async () => (await runners()).some((r) => r.name === name && r.lastSeenAt !== null && Date.now() - Date.parse(r.lastSeenAt) < 5000));
      return p;
    },
    submit: async (fixture, q) => {
      const params = new URLSearchParams({ force: 'true', suite: 'smoke' });
      for (const [k, v] of Object.entries(q)) for (const x of Array.isArray(v) ? v : [v]) params.append(k, x);
      const r = await client.request<{ jobs: Array<{ id: string }> }>('POST', `/api/v1/series?${params.toString()}`, { type: 'application/mbox', data: readFileSync(join(root, 'fixtures/series', fixture)) });
      const id = r.jobs[0]?.id;
      assert.ok(id);
      return id;
    },
    submitToQueue: async (fixture, suites) => {
      const r = await toQueue().submit({
        mbox: readFileSync(join(root, 'fixtures/series', fixture), 'latin1'), source: 'upload', inboxUrl: null, tree: null, base: null,
        suites, force: true, submittedBy: null, activeJobCap: null,
      });
      const id = r.jobs[0]?.id;
      assert.ok(id);
      return id;
    },
    finished: async (id, ms = 15 * 60_000) => {
      await waitFor(`job ${id} to finish`, ms, async () => !['queued', 'running'].includes((await job(id)).status));
      return job(id);
    },
    close: async () => {
      // Stopped as an admin would (a second SIGTERM stops at once, removing the jobs' containers), killed only if that hangs.
      await Promise.all([...procs.values()].filter((p) => p.exitCode === null && p.signalCode === null).map((p) => new Promise<void>((resolve) => {
        const kill = setTimeout(() => { p.kill('SIGKILL'); }, 30_000);
        p.once('exit', () => { clearTimeout(kill); resolve(); });
        p.kill('SIGTERM');
        setTimeout(() => { p.kill('SIGTERM'); }, 200);
      })));
      // Containers of a runner killed on purpose (SIGKILL in a test) have a dead owner: gone now, not left to the next test.
      await new DockerEngine(host.docker.socketPath).reapOrphans(orphanAgeSeconds(host)).catch(() => []);
      await queue.close();
      await closeRedis(queueRedis);
      await service.close();
      redis.remove();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    },
  };
}

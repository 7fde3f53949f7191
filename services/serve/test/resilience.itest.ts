/**
 * Failures the service must survive, with real processes and the real
 * executor: a worker killed with SIGKILL in the middle of a build (another
 * worker finishes the job, with one result), and Redis restarted while a job
 * runs and another waits (no job lost). PostgreSQL (started here) holds the
 * record, since several processes share it; Redis is a dedicated server with
 * AOF in a temporary folder.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { ServiceClient } from '../../cli/client.ts';
import { loadConfig } from '../../config/config.ts';
import type { LogEntry } from '../../queue/logs.ts';
import { startPostgres, type PostgresServer } from '../../store/test/postgres-server.ts';
import { type RedisServer, startRedisServer } from '../../queue/test/redis-server.ts';
import { localTokenPath, type Service, startService } from '../service.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const mbox = (name: string): Buffer => readFileSync(join(root, 'fixtures/series', name));

describe('service resilience', { timeout: 60 * 60_000 }, () => {
  let pg: PostgresServer;
  let service: Service;
  let client: ServiceClient;
  let redis: RedisServer;
  let dataDir = '';
  const workers: ChildProcess[] = [];
  let env: NodeJS.ProcessEnv = {};

  before(async () => {
    pg = await startPostgres();
    dataDir = mkdtempSync(join(tmpdir(), 'patchbay-res-'));
    redis = startRedisServer();
    env = {
      ...process.env,
      DATABASE_URL: pg.url,
      REDIS_URL: redis.url,
      PATCHBAY_DATA: dataDir,
      PATCHBAY_QUEUE_PREFIX: `res-${randomBytes(3).toString('hex')}`,
      PATCHBAY_LOCK_MS: '8000',
      PATCHBAY_STALLED_INTERVAL_MS: '2000',
      PATCHBAY_SHUTDOWN_GRACE_MS: '1000',
      PORT: '0',
    };
    service = await startService(loadConfig(env), { roles: ['api'], hostEnv: env, logger: pino({ level: 'silent' }) });
    client = new ServiceClient({ server: service.url ?? '', token: readFileSync(localTokenPath(dataDir), 'utf8').trim() });
  });

  after(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await service.close();
    redis.remove();
    await pg.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function startWorker() {
    const w = spawn(process.execPath, [join(root, 'bin/patchbay.mjs'), 'serve', '--role', 'worker'], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
    w.stderr.on('data', (b: Buffer) => { process.stderr.write(`  [worker ${w.pid ?? '?'}] ${b.toString()}`); });
    workers.push(w);
    return w;
  }

  async function submit(name: string): Promise<string> {
    const r = await client.request<{ jobs: Array<{ id: string }> }>('POST', '/api/v1/series?suite=smoke&force=true', { type: 'application/mbox', data: mbox(name) });
    const id = r.jobs[0]?.id;
    assert.ok(id);
    return id;
  }

  async function counts(jobId: string): Promise<{ stages: number; tests: number; status: string; attempts: number }> {
    const job = await service.store.jobs.get(jobId);
    const { stages, tests } = await service.store.jobs.results(jobId);
    return { stages: stages.length, tests: tests.length, status: job?.status ?? '?', attempts: job?.attempts ?? 0 };
  }

  test('a worker killed with SIGKILL during a build: another worker finishes the job, with one result', async () => {
    const jobId = await submit('pass-kbuf-pin.mbox');
    const first = startWorker();
    // Wait until the first worker is building.
    await new Promise<void>((resolve, reject) => {
      client.follow(jobId, (e: LogEntry) => {
        if (e.kind === 'stage' && e.stage === 'build' && e.phase === 'start') {
          first.kill('SIGKILL');
          resolve();
        }
      }).then(() => { reject(new Error('the job ended before its build started')); }, reject);
    });
    await new Promise((r) => first.once('exit', r));
    startWorker();
    const ends: string[] = [];
    const status = await client.follow(jobId, (e) => { if (e.kind === 'end') ends.push(e.status); });
    assert.equal(status, 'PASS');
    const c = await counts(jobId);
    assert.equal(c.status, 'PASS');
    assert.equal(c.stages, 5, 'one set of stage rows');
    assert.equal(c.tests, 6, 'one set of results');
    assert.ok(c.attempts >= 2, `the job ran again after the kill (attempts ${c.attempts})`);
    const left = spawnSync('docker', ['ps', '-a', '--filter', `label=org.patchbay.job=${jobId}`, '-q']).stdout.toString().trim();
    assert.equal(left, '', 'the killed worker\'s container was reaped');
  });

  test('Redis restarted while a job runs and another waits: both finish, none lost', async () => {
    const running = await submit('fail-build-undeclared.mbox');
    await new Promise<void>((resolve, reject) => {
      client.follow(running, (e: LogEntry) => {
        if (e.kind === 'stage' && e.stage === 'apply' && e.phase === 'start') resolve();
      }).then(() => { resolve(); }, reject);
    });
    const waiting = await submit('fail-apply-needs-kmbuf.mbox');
    redis.stop();
    await new Promise((r) => setTimeout(r, 2000));
    redis.start();
    const deadline = Date.now() + 15 * 60_000;
    for (;;) {
      const [a, b] = await Promise.all([counts(running), counts(waiting)]);
      if (a.status === 'FAIL' && b.status === 'FAIL') break;
      assert.ok(Date.now() < deadline, `jobs did not finish: ${a.status}, ${b.status}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    assert.equal((await service.store.jobs.get(running))?.stage, 'build');
    assert.equal((await service.store.jobs.get(waiting))?.stage, 'apply');
  });
});

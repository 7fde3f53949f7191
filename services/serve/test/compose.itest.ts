/**
 * The split deployment end to end: deploy/compose.sh brings up Redis,
 * PostgreSQL, the API and a worker in containers built from images/, under a
 * unique project name and a free loopback port. A passing fixture (the one
 * whose kernel builds fastest: it changes only selftests; what is tested is
 * the deployment's part) is submitted over HTTP to the API container and
 * followed to PASS; its results are read back from the API and from
 * PostgreSQL, and the stack's Redis is checked for AOF and noeviction. The
 * worker shares the host's cache folder (and so its tree mirrors; warm bases
 * are images on the same engine). The stack is removed with its volumes
 * whatever happens.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ServiceClient } from '../../cli/client.ts';
import { loadConfig } from '../../config/config.ts';
import { PatchbayError, errorMessage } from '../../domain/errors.ts';
import { freePort } from '../../platform/net.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const run = promisify(execFile);

interface JobDetail {
  status: string;
  stages: Array<{ stage: string; status: string }>;
  results: Array<{ suite: string; test: string; status: string }>;
  artifacts: Array<{ name: string; url: string }>;
}

describe('the split deployment (deploy/compose.yaml)', { timeout: 60 * 60_000 }, () => {
  test('Redis, PostgreSQL, API and worker containers take a series over HTTP to PASS', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'patchbay-compose-'));
    const port = await freePort();
    const settings = join(dir, 'settings.env');
    writeFileSync(settings, [
      `PATCHBAY_CACHE=${loadConfig(process.env).cacheDir}`,
      `PATCHBAY_WORKER_STATE=${join(dir, 'worker')}`,
      `PATCHBAY_DB_PASSWORD=${randomBytes(16).toString('hex')}`,
      `PATCHBAY_LISTEN=127.0.0.1:${port}`,
    ].join('\n'), { mode: 0o600 });
    // The settings file decides: nothing in the caller's environment overrides it.
    const env: NodeJS.ProcessEnv = { ...process.env, COMPOSE_PROJECT_NAME: `pbtest${randomBytes(4).toString('hex')}`, PATCHBAY_COMPOSE_ENV: settings, PATCHBAY_IMAGE_TAG: 'test' };
    delete env.PATCHBAY_LISTEN;
    delete env.PATCHBAY_DB_PASSWORD;
    const compose = async (...args: string[]): Promise<string> => {
      try {
        return (await run('bash', [join(root, 'deploy', 'compose.sh'), ...args], { env, maxBuffer: 64 * 1024 * 1024 })).stdout;
      } catch (e) {
        const { stdout = '', stderr = '' } = e as { stdout?: string; stderr?: string };
        const tail = `${stdout}\n${stderr}`.trim().split('\n').slice(-40).join('\n');
        throw new PatchbayError('COMPOSE_FAILED', `deploy/compose.sh ${args.join(' ')} failed:\n${tail}`, { cause: e });
      }
    };
    const server = `http://127.0.0.1:${port}`;
    let teardown: string | null;
    try {
      let started = Date.now();
      await compose('up');
      t.diagnostic(`deploy/compose.sh up (host preparation, image builds, start, /readyz): ${((Date.now() - started) / 1000).toFixed(1)} s`);

      const ready = await fetch(`${server}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { status: 'ready', checks: { database: 'ok', redis: 'ok', docker: 'ok' } });

      // The stack's Redis: AOF on, never evicting queue keys.
      assert.equal((await compose('exec', '-T', 'redis', 'redis-cli', 'config', 'get', 'appendonly')).trim(), 'appendonly\nyes');
      assert.equal((await compose('exec', '-T', 'redis', 'redis-cli', 'config', 'get', 'maxmemory-policy')).trim(), 'maxmemory-policy\nnoeviction');
      // ... bounded in memory, and closed to a client without the password.
      assert.match((await compose('exec', '-T', 'redis', 'redis-cli', 'config', 'get', 'maxmemory')).trim(), /^maxmemory\n[1-9]\d*$/);
      assert.equal((await compose('exec', '-T', 'redis', 'redis-cli', 'config', 'get', 'protected-mode')).trim(), 'protected-mode\nyes');
      assert.match(await compose('exec', '-T', '-e', 'REDISCLI_AUTH=', 'redis', 'redis-cli', 'ping').catch((e: unknown) => errorMessage(e)), /NOAUTH/);

      const token = (await compose('exec', '-T', 'api', 'cat', '/var/lib/patchbay/admin-token')).trim();
      assert.match(token, /^\S{20,}$/);
      const client = new ServiceClient({ server, token });
      started = Date.now();
      const reply = await client.request<{ jobs: Array<{ id: string; url: string }> }>('POST', '/api/v1/series?suite=smoke', {
        type: 'application/mbox',
        data: readFileSync(join(root, 'fixtures/series/pass-selftest-pbuf-ring.mbox')),
      });
      const job = reply.jobs[0];
      assert.ok(job);
      assert.match(job.id, /^[A-Za-z0-9-]+$/);
      let log = '';
      const status = await client.follow(job.id, (e) => { if (e.kind === 'log') log = (log + e.text).slice(-6000); });
      if (status !== 'PASS') {
        const workerLogs = await compose('logs', '--no-color', '--tail=40', 'worker', 'docker-filter').catch((e: unknown) => errorMessage(e));
        assert.fail(`job ${job.id} ended ${status}:\n${log}\n--- worker and filter logs:\n${workerLogs}`);
      }
      t.diagnostic(`job ${job.id}: submitted to PASS in ${((Date.now() - started) / 1000).toFixed(1)} s`);

      const detail = await client.request<JobDetail>('GET', job.url);
      assert.equal(detail.status, 'PASS');
      assert.deepEqual(detail.stages.map((s) => `${s.stage}:${s.status}`), ['setup:PASS', 'apply:PASS', 'build:PASS', 'boot:PASS', 'test:PASS']);
      assert.ok(detail.results.length > 0);
      assert.ok(detail.results.every((r) => r.suite === 'smoke' && r.status === 'PASS'));
      // The API container reads artifacts from the job folder the worker wrote.
      const ktap = detail.artifacts.find((a) => a.name === 'ktap.txt');
      assert.ok(ktap);
      assert.match(await (await fetch(new URL(ktap.url, server))).text(), /^KTAP version 1/);

      // The worker: uid 990, no capabilities, no engine socket, no host pid
      // namespace; Docker only through the filter, which refuses what the
      // executor never asks (a build into the runner's repository here).
      const workerId = (await compose('ps', '-q', 'worker')).trim();
      const [inspected] = JSON.parse((await run('docker', ['inspect', workerId])).stdout) as Array<{
        Config: { User: string };
        HostConfig: { PidMode: string; CapDrop: string[] | null; Privileged: boolean };
        Mounts: Array<{ Source: string; Destination: string }>;
      }>;
      assert.ok(inspected);
      assert.equal(inspected.Config.User, '990:990');
      assert.notEqual(inspected.HostConfig.PidMode, 'host');
      assert.deepEqual(inspected.HostConfig.CapDrop, ['ALL']);
      assert.equal(inspected.HostConfig.Privileged, false);
      assert.ok(!inspected.Mounts.some((m) => m.Source.endsWith('docker.sock') || m.Destination.endsWith('docker.sock')), 'the engine socket is not mounted in the worker');
      assert.equal((await compose('exec', '-T', 'worker', 'id', '-u')).trim(), '990');
      const probe = `const r = require('node:http').request({ socketPath: process.env.DOCKER_SOCKET, method: 'POST', path: '/build?t=patchbay/runner:evil' }, (res) => { let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => { console.log(res.statusCode, b); }); }); r.end();`;
      const refused = (await compose('exec', '-T', 'worker', 'node', '-e', probe)).trim();
      assert.match(refused, /^403 .*patchbay docker filter: .*not one of patchbay's images/);
      await assert.rejects(compose('exec', '-T', 'worker', 'test', '-e', '/var/run/docker.sock'));

      // The record is in the stack's PostgreSQL.
      const psql = (sql: string): Promise<string> => compose('exec', '-T', 'db', 'psql', '-U', 'patchbay', '-d', 'patchbay', '-tAc', sql);
      assert.equal((await psql(`select status from jobs where id = '${job.id}'`)).trim(), 'PASS');
      assert.equal((await psql(`select count(*) from test_results where job_id = '${job.id}' and status = 'PASS'`)).trim(), String(detail.results.length));
    } finally {
      const t0 = Date.now();
      teardown = await compose('down', '--volumes', '--remove-orphans', '--timeout', '30').then(() => null, (e: unknown) => errorMessage(e));
      t.diagnostic(`deploy/compose.sh down --volumes: ${((Date.now() - t0) / 1000).toFixed(1)} s${teardown === null ? '' : `, failed: ${teardown}`}`);
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(teardown, null, 'the stack and its volumes were removed');
  });
});

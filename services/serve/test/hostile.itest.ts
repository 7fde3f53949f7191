/**
 * A hostile series through the whole service on the real pipeline, as anyone
 * who posts could send it: submitted over HTTP to `serve` (API and worker in
 * one process). Its fuse selftest Makefile (built from the tree by the fuse
 * suite: no clean kernel build) plants links to host files where artifacts
 * are made, writes to the compiler cache, replaces every kernel it can
 * reach, leaves a process behind to forge the guest's KTAP, and prints 18 MB.
 * The job must come out with its own verdict, regular-file artifacts only
 * (as the API serves them), an unchanged cache and base, logs and log
 * stream within their limit, and /healthz answering throughout.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { ServiceClient } from '../../cli/client.ts';
import { type Config, loadConfig } from '../../config/config.ts';
import type { JobResult } from '../../domain/job.ts';
import type { LogEntry } from '../../queue/logs.ts';
import { localTokenPath, type Service, startService } from '../service.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const LIMIT_KB = 1024;

function ccacheFiles(config: Config): string[] {
  const r = spawnSync('docker', ['volume', 'inspect', '-f', '{{.Mountpoint}}', config.docker.ccacheVolume], { encoding: 'utf8' });
  const mount = r.stdout.trim();
  if (r.status !== 0 || mount === '') return [];
  const f = spawnSync('find', [mount, '-type', 'f', '!', '-path', '*/tmp/*', '!', '-name', 'stats', '-printf', '%P %s %T@\\n'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return f.stdout.split('\n').filter((l) => l !== '').sort();
}

describe('a hostile series through the service', { timeout: 60 * 60_000 }, () => {
  let service: Service;
  let client: ServiceClient;
  let config: Config;
  let dataDir = '';

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'patchbay-hostile-'));
    config = loadConfig({ ...process.env, PATCHBAY_DATA: dataDir, PATCHBAY_QUEUE_PREFIX: `hostile-${randomBytes(3).toString('hex')}`, PORT: '0', PATCHBAY_LOG_LIMIT_KB: String(LIMIT_KB) });
    service = await startService(config, { roles: ['api', 'worker'], hostEnv: process.env, logger: pino({ level: 'silent' }) });
    client = new ServiceClient({ server: service.url ?? '', token: readFileSync(localTokenPath(dataDir), 'utf8').trim() });
  });

  after(async () => {
    await service.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('links, cache and base poisoning, a forging leftover process and a flood all fail; the verdict is its own', async () => {
    const before = ccacheFiles(config);
    const token = readFileSync(localTokenPath(dataDir), 'utf8').trim();
    const reply = await client.request<{ jobs: Array<{ id: string; url: string }> }>('POST', '/api/v1/series?suite=fuse', {
      type: 'application/mbox',
      data: readFileSync(join(root, 'fixtures/series/hostile-fuse-makefile.mbox')),
    });
    const job = reply.jobs[0];
    assert.ok(job);

    // /healthz keeps answering while the attack runs.
    const health = { worst: 0, checks: 0, failures: 0, running: true };
    const prober = (async () => {
      while (health.running) {
        const t0 = performance.now();
        try {
          const r = await fetch(new URL('/healthz', service.url ?? ''), { signal: AbortSignal.timeout(5000) });
          if (!r.ok) health.failures++;
        } catch {
          health.failures++;
        }
        health.worst = Math.max(health.worst, performance.now() - t0);
        health.checks++;
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const entries: LogEntry[] = [];
    const status = await client.follow(job.id, (e) => { entries.push(e); });
    health.running = false;
    await prober;
    assert.equal(status, 'PASS');
    assert.ok(health.checks > 20, `${health.checks} health checks`);
    assert.equal(health.failures, 0);
    assert.ok(health.worst < 1000, `/healthz took up to ${Math.round(health.worst)} ms`);

    // The log stream of the attempt is cut at its limit; stage events still came.
    const streamed = entries.map((e) => (e.kind === 'log' ? e.text : '')).join('');
    assert.ok(Buffer.byteLength(streamed) <= LIMIT_KB * 1024 + 512, `${Buffer.byteLength(streamed)} bytes streamed`);
    assert.match(streamed, /patchbay: the log stream of this attempt cut at 1 MiB/);
    assert.deepEqual(entries.filter((e) => e.kind === 'stage' && e.phase === 'end').map((e) => e.kind === 'stage' ? `${e.stage}:${e.status ?? ''}` : ''), ['setup:PASS', 'apply:PASS', 'build:PASS', 'boot:PASS', 'test:PASS']);

    const detail = await client.request<{ status: string; artifacts: Array<{ name: string; url: string }> }>('GET', job.url);
    const names = detail.artifacts.map((a) => a.name);
    assert.ok(!names.includes('kernel.config'), 'the link planted as kernel.config was refused');
    assert.ok(!names.includes('passwd.txt'), 'a file the job named itself is not an artifact');
    for (const a of ['build.log', 'console.log', 'ktap.txt', 'bzImage', 'result.json']) assert.ok(names.includes(a), `${a} in ${names.join(', ')}`);

    // Every artifact, as the API serves it, is the host's regular-file copy and holds no file a link pointed at.
    const result = JSON.parse(await (await fetch(new URL(`/api/v1/jobs/${job.id}/artifacts/result.json`, service.url ?? ''), { headers: { authorization: `Bearer ${token}` } })).text()) as JobResult;
    const dir = result.artifactsDir ?? '';
    for (const a of detail.artifacts) {
      assert.ok(lstatSync(join(dir, a.name)).isFile(), `${a.name} is a regular file`);
      const body = Buffer.from(await (await fetch(new URL(a.url, service.url ?? ''))).arrayBuffer());
      assert.ok(body.equals(readFileSync(join(dir, a.name))), `${a.name} served as copied`);
      assert.ok(!body.toString('latin1').includes('root:x:0:0:'), `${a.name} holds no passwd file`);
    }

    // The flood is cut at the limit in the build log, with a marker.
    const buildLog = readFileSync(join(dir, 'build.log'), 'utf8');
    assert.ok(Buffer.byteLength(buildLog) <= LIMIT_KB * 1024 + 512, `build.log is ${Buffer.byteLength(buildLog)} bytes`);
    assert.match(buildLog, /patchbay: build\.log cut at 1 MiB/);

    // The process the build left behind did not live into the boot.
    const ktap = readFileSync(join(dir, 'ktap.txt'), 'utf8');
    assert.match(ktap, /^ok 1 fuse/m);
    assert.ok(!ktap.includes('forged-by-build'), 'no forged KTAP line');

    // The compiler cache is as the warm-base builds left it.
    const after = ccacheFiles(config);
    assert.ok(!after.some((l) => l.includes('poison')), 'no file planted in the cache');
    assert.deepEqual(after, before, 'the cache was not changed by the series');

    // The base ran (or was cached) untouched: every fuse test compares as on a clean base.
    const fuse = result.base?.suites.find((s) => s.suite === 'fuse');
    assert.ok(fuse && (fuse.source === 'run' || fuse.source === 'cached'), JSON.stringify(result.base));
    assert.ok(result.results.length > 3, 'the fuse suite ran');
    for (const r of result.results) {
      assert.equal(r.comparison, 'unchanged', JSON.stringify(r));
      assert.equal(r.baseStatus, r.status, JSON.stringify(r));
    }
  });
});

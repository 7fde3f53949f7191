/**
 * The service end to end over HTTP with the real executor: `serve` (API and a
 * worker in one process, embedded database, a unique queue prefix), a
 * passing fixture submitted over HTTP (the one whose kernel builds fastest:
 * it changes only selftests; what is tested is the service's part), its live
 * log followed over SSE to the verdict, and the result read back from the
 * API. Runs after the fixture tests, whose warm base it reuses.
 */
import assert from 'node:assert/strict';
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
import { localTokenPath, type Service, startService } from '../service.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));

describe('patchbay serve, end to end', { timeout: 60 * 60_000 }, () => {
  let service: Service;
  let client: ServiceClient;
  let dataDir = '';

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'patchbay-serve-'));
    const config = loadConfig({ ...process.env, PATCHBAY_DATA: dataDir, PATCHBAY_QUEUE_PREFIX: `e2e-${randomBytes(3).toString('hex')}`, PORT: '0' });
    service = await startService(config, { roles: ['api', 'worker'], hostEnv: process.env, logger: pino({ level: 'silent' }) });
    assert.ok(service.url);
    client = new ServiceClient({ server: service.url, token: readFileSync(localTokenPath(dataDir), 'utf8').trim() });
  });

  after(async () => {
    await service.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('a series submitted over HTTP is followed live to PASS, and its results are in the API', async () => {
    const reply = await client.request<{ jobs: Array<{ id: string; url: string }> }>('POST', '/api/v1/series?suite=smoke', {
      type: 'application/mbox',
      data: readFileSync(join(root, 'fixtures/series/pass-selftest-pbuf-ring.mbox')),
    });
    const job = reply.jobs[0];
    assert.ok(job);
    const entries: LogEntry[] = [];
    const status = await client.follow(job.id, (e) => { entries.push(e); });
    assert.equal(status, 'PASS');
    const stagesSeen = entries.filter((e): e is Extract<LogEntry, { kind: 'stage' }> => e.kind === 'stage' && e.phase === 'end').map((e) => `${e.stage}:${e.status ?? ''}`);
    assert.deepEqual(stagesSeen, ['setup:PASS', 'apply:PASS', 'build:PASS', 'boot:PASS', 'test:PASS']);
    // Output arrives in arbitrary chunks: look in the joined text.
    const text = entries.map((e) => (e.kind === 'log' ? e.text : '')).join('');
    assert.match(text, /ok 4 pbuf_ring_read_select/, 'the live log carried the guest\'s KTAP');

    const detail = await client.request<{ status: string; stages: Array<{ stage: string; durationMs: number }>; results: Array<{ suite: string; test: string; status: string }>; artifacts: Array<{ name: string; url: string }> }>('GET', job.url);
    assert.equal(detail.status, 'PASS');
    assert.equal(detail.results.length, 6);
    assert.ok(detail.results.every((r) => r.suite === 'smoke' && r.status === 'PASS'));
    assert.ok(detail.stages.every((s) => s.durationMs >= 0));
    const ktap = detail.artifacts.find((a) => a.name === 'ktap.txt');
    assert.ok(ktap);
    const res = await fetch(new URL(ktap.url, service.url ?? ''));
    assert.match(await res.text(), /^KTAP version 1/);

    // Submitting the same series again gives the same job, already finished.
    const again = await client.request<{ created: boolean; jobs: Array<{ id: string; status: string }> }>('POST', '/api/v1/series?suite=smoke', {
      type: 'application/mbox',
      data: readFileSync(join(root, 'fixtures/series/pass-selftest-pbuf-ring.mbox')),
    });
    assert.equal(again.created, false);
    assert.deepEqual(again.jobs.map((j) => [j.id, j.status]), [[job.id, 'PASS']]);
  });
});

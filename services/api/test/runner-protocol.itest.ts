/**
 * The runner protocol against a hostile (compromised) runner, through
 * app.inject() on a real store (PGlite) and Redis: what it sends is
 * validated and capped, artifacts are checked and kept only in the API's
 * own folder, and nothing is taken without a current lease.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { loadConfig } from '../../config/config.ts';
import { parseMbox } from '../../domain/mbox.ts';
import { assembleSeries } from '../../domain/series.ts';
import { closeRedis, createRedis } from '../../queue/redis.ts';
import { type Store, openDatabase, seriesContentHash } from '../../store/db.ts';
import { verdict } from '../../reporter/test/verdict.ts';
import { type Harness, apiHarness } from './harness.ts';

const root = new URL('../../..', import.meta.url).pathname;
const TREE = 'linux-7.1.y';
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

describe('runner protocol against a hostile runner', () => {
  let redis: Redis;
  let store: Store;
  let h: Harness;
  let dir = '';
  let credential = '';
  let seriesId = '';
  let seq = 0;
  const labels = { arch: 'x86_64', kvm: false, cores: 2, memoryMb: 2048, trees: [TREE], extra: {} };

  before(async () => {
    redis = createRedis(loadConfig(process.env).redisUrl, 'runner-protocol-test');
    dir = mkdtempSync(join(tmpdir(), 'patchbay-runner-protocol-'));
    store = await openDatabase({ databaseUrl: null, dataDir: dir });
    // The smallest log cap and artifact limit the configuration allows, and results kept in this test's folder.
    h = await apiHarness(redis, store, { env: { PATCHBAY_LOG_LIMIT_KB: '64', PATCHBAY_ARTIFACT_LIMIT_MB: '1', PATCHBAY_RESULTS: join(dir, 'results'), PATCHBAY_DATA: dir } });
    const s = assembleSeries(parseMbox(readFileSync(join(root, 'fixtures/series/pass-kbuf-pin.mbox'), 'latin1')));
    seriesId = (await store.series.create({ series: s, source: 'upload', inboxUrl: null, submittedBy: null, contentHash: seriesContentHash(s) })).id;
    const token = await store.runners.createToken('protocol test', 600);
    const reg = await h.app.inject({ method: 'POST', url: '/api/v1/runners/register', payload: { token: token.secret, name: 'mallory', labels, capacity: 1, version: null } });
    assert.equal(reg.statusCode, 201, reg.body);
    credential = reg.json<{ credential: string }>().credential;
    // The token was spent.
    const again = await h.app.inject({ method: 'POST', url: '/api/v1/runners/register', payload: { token: token.secret, name: 'mallory2', labels, capacity: 1, version: null } });
    assert.equal(again.json<{ error: { code: string } }>().error.code, 'RUNNER_TOKEN_INVALID');
  });
  after(async () => {
    await h.close();
    await store.close();
    await closeRedis(redis);
    rmSync(dir, { recursive: true, force: true });
  });

  const auth = (): Record<string, string> => ({ authorization: `Bearer ${credential}` });

  /** A queued runners' job, claimed over HTTP: its lease id. */
  async function leased(): Promise<{ lease: string; job: string }> {
    const { job } = await store.jobs.createOrGet({ seriesId, tree: TREE, base: null, suites: ['smoke'], idempotencyKey: `protocol-${++seq}`, deadlineAt: null, submittedBy: null, activeCap: null, pool: 'runners' });
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/runner/claim', headers: auth(), payload: { warmBases: [], waitSeconds: 0 } });
    assert.equal(res.statusCode, 200, res.body);
    const got = res.json<{ lease: { id: string }; job: { id: string } }>();
    assert.equal(got.job.id, job.id);
    return { lease: got.lease.id, job: job.id };
  }

  const put = (lease: string, name: string, body: Buffer, digest = sha(body)) => h.app.inject({
    method: 'PUT', url: `/api/v1/runner/leases/${lease}/artifacts/${name}`, headers: { ...auth(), 'content-type': 'application/octet-stream', 'x-content-sha256': digest }, payload: body,
  });

  test('no credential, a forged one, or a token in its place: refused', async () => {
    for (const headers of [{}, { authorization: 'Bearer pbr_' + 'A'.repeat(43) }, { authorization: `Bearer ${h.tokens.admin}` }]) {
      const res = await h.app.inject({ method: 'POST', url: '/api/v1/runner/claim', headers, payload: { warmBases: [], waitSeconds: 0 } });
      assert.equal(res.statusCode, 401, res.body);
    }
  });

  test('artifacts: a path in the name, a wrong checksum, one over the limit, and one sent twice are refused; only the API\'s folder is written', async () => {
    const { lease, job } = await leased();
    for (const name of ['..%2F..%2Fetc%2Fpasswd', '.hidden', 'a%2Fb']) {
      const res = await put(lease, name, Buffer.from('x'));
      assert.ok(res.statusCode === 400 || res.statusCode === 404, `${name}: ${res.statusCode} ${res.body}`);
    }
    const wrong = await put(lease, 'console.log', Buffer.from('console'), sha('something else'));
    assert.equal(wrong.json<{ error: { code: string } }>().error.code, 'ARTIFACT_CHECKSUM');
    const big = await put(lease, 'big.log', Buffer.alloc(1024 * 1024 + 1, 0x61));
    assert.equal(big.statusCode, 413, big.body);
    const folder = join(dir, 'results', job, lease);
    assert.deepEqual(readdirSync(folder), [], 'refused uploads leave nothing behind');
    const good = Buffer.from('boot console\n');
    assert.equal((await put(lease, 'console.log', good)).statusCode, 201);
    assert.equal((await put(lease, 'console.log', Buffer.from('replaced'))).json<{ error: { code: string } }>().error.code, 'ARTIFACT_EXISTS');
    assert.deepEqual(readdirSync(folder), ['console.log']);
    assert.equal(readFileSync(join(folder, 'console.log'), 'utf8'), 'boot console\n');

    // The result lists one artifact it uploaded, one with another checksum and one it never sent: only the first is kept, and served.
    const result = { ...verdict(job, 'PASS'), artifactsDir: '/etc', artifacts: ['passwd'] };
    const res = await h.app.inject({ method: 'POST', url: `/api/v1/runner/leases/${lease}/result`, headers: auth(), payload: { result, artifacts: { 'console.log': sha(good), 'kernel.config': sha('x'), 'passwd': sha('y') } } });
    assert.equal(res.statusCode, 200, res.body);
    const recorded = await store.jobs.get(job);
    assert.equal(recorded?.status, 'PASS');
    assert.equal(recorded.artifactsDir, folder, 'the API\'s folder, never the runner\'s path');
    assert.deepEqual(recorded.result?.artifacts, ['console.log']);
    const served = await h.app.inject({ method: 'GET', url: `/api/v1/jobs/${job}/artifacts/console.log` });
    assert.equal(served.body, 'boot console\n');
    assert.equal(existsSync(join(folder, 'passwd')), false);
  });

  test('a result that does not fit the protocol is refused and nothing is recorded; then a good one under the same lease is taken', async () => {
    const { lease, job } = await leased();
    const good = verdict(job, 'FAIL');
    for (const bad of [
      { ...good, status: 'cancelled' },
      { ...good, results: [{ suite: 'smoke', test: 'x', status: 'MISS', detail: '', baseStatus: null, comparison: 'new-failure', seriesRuns: { runs: 1, fails: 1, skips: 0, missing: 0 }, baseRuns: null }] },
      { ...good, summary: 'x'.repeat(5000) },
      { ...good, error: { code: 'not a code; rm -rf', message: '' } },
      { ...good, artifacts: ['../escape'] },
    ]) {
      const res = await h.app.inject({ method: 'POST', url: `/api/v1/runner/leases/${lease}/result`, headers: auth(), payload: { result: bad, artifacts: {} } });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal((await store.jobs.get(job))?.status, 'running');
    }
    const huge = await h.app.inject({ method: 'POST', url: `/api/v1/runner/leases/${lease}/result`, headers: { ...auth(), 'content-type': 'application/json' }, payload: JSON.stringify({ result: good, artifacts: {}, pad: 'x'.repeat(17 * 1024 * 1024) }) });
    assert.equal(huge.statusCode, 413);
    const ok = await h.app.inject({ method: 'POST', url: `/api/v1/runner/leases/${lease}/result`, headers: auth(), payload: { result: good, artifacts: {} } });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal((await store.jobs.get(job))?.status, 'FAIL');
    // The lease ended with the result: nothing more is taken under it.
    const late = await h.app.inject({ method: 'POST', url: `/api/v1/runner/leases/${lease}/result`, headers: auth(), payload: { result: verdict(job, 'PASS'), artifacts: {} } });
    assert.equal(late.json<{ error: { code: string } }>().error.code, 'LEASE_STALE');
    assert.equal((await store.jobs.get(job))?.status, 'FAIL');
  });

  test('the live log is cut at the attempt\'s limit with one marker; stage events still go; an end event is refused', async () => {
    const { lease, job } = await leased();
    const send = (entries: unknown[]) => h.app.inject({ method: 'POST', url: `/api/v1/runner/leases/${lease}/log`, headers: auth(), payload: { entries } });
    for (let i = 0; i < 4; i++) assert.equal((await send([{ kind: 'log', stage: 'build', text: 'y'.repeat(20_000) }])).statusCode, 204);
    assert.equal((await send([{ kind: 'stage', stage: 'build', phase: 'end', status: 'PASS', durationMs: 1, summary: 'ok' }])).statusCode, 204);
    assert.equal((await send([{ kind: 'end', status: 'PASS' }])).statusCode, 400, 'only the API ends a log');
    const entries = await h.logs.read(job, '0');
    const text = entries.filter((e) => e.entry.kind === 'log').map((e) => (e.entry as { text: string }).text).join('');
    assert.equal(text.replace(/\n\[patchbay:[^\]]*\]\n|patchbay: runner [^\n]*\n/g, '').length, 64 * 1024, 'exactly the 64 KiB limit of the job\'s own bytes');
    assert.equal(text.match(/reached its limit/g)?.length, 1);
    assert.ok(entries.some((e) => e.entry.kind === 'stage'));
    assert.ok(!entries.some((e) => e.entry.kind === 'end'));
  });
});

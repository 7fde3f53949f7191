/**
 * Lab runners for real: the API (`serve --role api`, PGlite, its own Redis)
 * and two `patchbay runner` processes, each with its own state folder,
 * credential and labels, on this machine's Docker engine with the real
 * executor (test/harness.ts). Nothing but HTTP joins them to the service.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { ServiceClient } from '../../../services/cli/client.ts';
import { type JobView, type RunnerLab, sleep, startRunnerLab } from './harness.ts';

const execFileAsync = promisify(execFile);
// Long enough to outlast the API's restart below on a loaded machine (CI); the lapse tests wait for it.
const LEASE = 15;
const root = fileURLToPath(new URL('../../..', import.meta.url));

describe('lab runners', { timeout: 40 * 60_000 }, () => {
  let lab: RunnerLab;
  // Shorthands for the lab's parts, set in before().
  let client: RunnerLab['client'];
  let procs: RunnerLab['procs'];
  let work = '';
  let baseCommit = '';
  let startRunner: RunnerLab['startRunner'];
  let runners: RunnerLab['runners'];
  let submit: RunnerLab['submit'];
  let job: RunnerLab['job'];
  let waitFor: RunnerLab['waitFor'];
  let finished: RunnerLab['finished'];

  before(async () => {
    lab = await startRunnerLab({ env: { PATCHBAY_LEASE_SECONDS: String(LEASE), PATCHBAY_HEARTBEAT_SECONDS: '2', PATCHBAY_CLAIM_WAIT_SECONDS: '5' } });
    ({ client, procs, work, baseCommit, startRunner, runners, submit, job, waitFor, finished } = lab);
  });

  after(async () => { await lab.close(); });

  test('two runners register; jobs go by label; a job on a base one of them holds goes to that one', { timeout: 15 * 60_000 }, async () => {
    await startRunner('alpha', { kvm: false, extra: { lab: 'a' } });
    await startRunner('beta', { kvm: false, extra: { lab: 'b' } });
    const names = (await runners()).map((r) => r.name).sort();
    assert.deepEqual(names, ['alpha', 'beta']);

    // Does not apply: a FAIL at apply, quick, on the machine's warm base.
    const onB = await submit('fail-apply-needs-kmbuf.mbox', { runsOn: 'lab=b', base: baseCommit });
    const onA = await submit('fail-apply-needs-kmbuf.mbox', { runsOn: 'lab=a', base: baseCommit });
    const [b, a] = [await finished(onB), await finished(onA)];
    assert.equal(b.status, 'FAIL', b.summary);
    assert.equal(b.ranOn, 'runner beta');
    assert.equal(a.status, 'FAIL', a.summary);
    assert.equal(a.ranOn, 'runner alpha');

    // Both now hold the base; beta forgets it (its record), so only alpha reports it.
    rmSync(join(work, 'beta', 'warm-bases.json'), { force: true });
    await waitFor('alpha to report the warm base and beta not', 20_000, async () => {
      const rs = await runners();
      return rs.some((r) => r.name === 'alpha' && r.warmBases.some((w) => w.commit === baseCommit))
        && rs.some((r) => r.name === 'beta' && r.warmBases.length === 0);
    });
    // Either may take it by label; both are idle and polling: the warm base decides.
    for (let i = 0; i < 2; i++) {
      const any = await submit('fail-apply-needs-kmbuf.mbox', { base: baseCommit });
      const done = await finished(any);
      assert.equal(done.ranOn, 'runner alpha', `job ${i + 1} on the base alpha holds ran on ${done.ranOn ?? 'nothing'}`);
    }
  });

  test('a job that needs KVM waits for a runner with it; a runner restarted with its credential resumes', { timeout: 10 * 60_000 }, async () => {
    const id = await submit('fail-apply-needs-kmbuf.mbox', { runsOn: 'kvm', base: baseCommit });
    await sleep(3 * 2000 + 2000);
    assert.equal((await job(id)).status, 'queued', 'no runner has KVM: the job waits');
    // beta drains on SIGTERM and exits; restarted with the same credential (no token left) and KVM, it takes the job.
    const beta = procs.get('beta');
    assert.ok(beta);
    const exited = new Promise<number | null>((r) => beta.once('exit', (code) => { r(code); }));
    beta.kill('SIGTERM');
    assert.equal(await exited, 0);
    rmSync(join(work, 'beta', 'registration-token'), { force: true });
    const before = (await runners()).filter((r) => r.name === 'beta');
    await startRunner('beta', { kvm: true, extra: { lab: 'b' } });
    const after = (await runners()).filter((r) => r.name === 'beta');
    assert.equal(after.length, 1);
    assert.equal(after[0]?.id, before[0]?.id, 'the same runner, not a new registration');
    const done = await finished(id);
    assert.equal(done.ranOn, 'runner beta');
    assert.equal(done.status, 'FAIL');

    // An admin drains beta with the CLI: it takes nothing new until resumed.
    // Not spawnSync: the API answering the CLI runs in this process.
    const cli = async (...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> => {
      try {
        const r = await execFileAsync(process.execPath, [join(root, 'bin/patchbay.mjs'), 'runners', ...args],
          { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PATCHBAY_SERVER: lab.service.url ?? '', PATCHBAY_TOKEN: lab.adminToken } });
        return { status: 0, stdout: r.stdout, stderr: r.stderr };
      } catch (e) {
        const x = e as { code?: number; stdout?: string; stderr?: string };
        return { status: typeof x.code === 'number' ? x.code : 1, stdout: x.stdout ?? '', stderr: x.stderr ?? String(e) };
      }
    };
    const drained = await cli('drain', 'beta');
    assert.equal(drained.status, 0, drained.stderr);
    assert.match(drained.stderr, /runner beta is draining/);
    const held = await submit('fail-apply-needs-kmbuf.mbox', { runsOn: 'lab=b', base: baseCommit });
    await sleep(3 * 2000 + 2000);
    assert.equal((await job(held)).status, 'queued', 'a draining runner takes nothing new');
    const list = await cli('list');
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^beta\s+draining/m);
    assert.match(list.stdout, /^alpha\s+active/m);
    assert.equal((await cli('resume', 'beta')).status, 0);
    assert.equal((await finished(held)).ranOn, 'runner beta');
  });

  test('results under a stale lease are refused; the lapsed job runs again; a revoked runner is refused', { timeout: 5 * 60_000 }, async () => {
    // A runner that speaks the protocol by hand, to hold a lease and let it lapse.
    const t = await client.request<{ token: string }>('POST', '/api/v1/runners/tokens', { type: 'application/json', data: '{}' });
    const labels = { arch: 'x86_64', kvm: false, cores: 1, memoryMb: 1024, trees: ['linux-7.1.y'], extra: { lab: 'manual' } };
    const reg = await client.request<{ credential: string }>('POST', '/api/v1/runners/register', { type: 'application/json', data: JSON.stringify({ token: t.token, name: 'manual', labels, capacity: 1, version: null }) });
    const manual = new ServiceClient({ server: lab.service.url ?? '', token: reg.credential });
    await manual.request('POST', '/api/v1/runner/hello', { type: 'application/json', data: JSON.stringify({ labels, capacity: 1, version: null, warmBases: [], leases: [] }) });
    const id = await submit('fail-apply-needs-kmbuf.mbox', { runsOn: 'lab=manual' });
    const leased = await manual.request<{ lease: { id: string; attempt: number } }>('POST', '/api/v1/runner/claim', { type: 'application/json', data: JSON.stringify({ warmBases: [], waitSeconds: 5 }) });
    assert.equal(leased.lease.attempt, 1);
    const lapsedAt = Date.now();
    await waitFor('the lease to lapse and the job to be queued again', 3 * LEASE * 1000, async () => (await job(id)).status === 'queued');
    const requeueMs = Date.now() - lapsedAt;
    assert.ok(requeueMs <= 2 * LEASE * 1000 + 1000, `re-queued ${requeueMs} ms after the last renewal (two lease periods: ${2 * LEASE * 1000})`);
    const result = { jobId: id, status: 'PASS', stage: null, summary: 'forged', tree: { name: 'linux-7.1.y', ref: 'v7.1.8' }, baseCommit: null, headCommit: null, series: null, suites: ['smoke'], accel: null, buildMode: null, stages: [], results: [], base: null, crashes: [], applyFailure: null, buildErrors: [], error: null, artifactsDir: null, artifacts: [], startedAt: new Date().toISOString(), durationMs: 1 };
    await assert.rejects(
      manual.request('POST', `/api/v1/runner/leases/${leased.lease.id}/result`, { type: 'application/json', data: JSON.stringify({ result, artifacts: {} }) }),
      (e: Error & { code?: string }) => e.code === 'LEASE_STALE',
    );
    await assert.rejects(
      manual.request('POST', `/api/v1/runner/leases/${leased.lease.id}/log`, { type: 'application/json', data: JSON.stringify({ entries: [{ kind: 'log', stage: 'setup', text: 'late' }] }) }),
      (e: Error & { code?: string }) => e.code === 'LEASE_STALE',
    );
    const again = await job(id);
    assert.equal(again.status, 'queued');
    assert.equal(again.attempts, 1, 'the lapsed attempt is counted; the next claim makes it 2');
    // Revoked: every call refused.
    await client.request('POST', '/api/v1/runners/manual/revoke', { type: 'application/json', data: '{}' });
    await assert.rejects(
      manual.request('POST', '/api/v1/runner/claim', { type: 'application/json', data: JSON.stringify({ warmBases: [], waitSeconds: 0 }) }),
      (e: Error & { code?: string }) => e.code === 'RUNNER_REVOKED',
    );
    await client.request('POST', `/api/v1/jobs/${id}/cancel`, { type: 'application/json', data: '{}' });
    assert.equal((await job(id)).status, 'cancelled');
  });

  test('a runner killed with SIGKILL mid-build: the other finishes the job, with exactly one result; cancel stops a running job and its container', { timeout: 20 * 60_000 }, async () => {
    const id = await submit('pass-kbuf-pin.mbox', {});
    await waitFor('the build to start on a runner', 5 * 60_000, async () => {
      const j = await job(id);
      return j.status === 'running' && j.ranOn !== null && (await containersOf(id)).length > 0;
    });
    const first = (await job(id)).ranOn?.replace('runner ', '') ?? '';
    const victim = procs.get(first);
    assert.ok(victim, `the job runs on ${first}`);
    victim.kill('SIGKILL');
    const done = await finished(id);
    assert.equal(done.status, 'PASS', done.summary);
    assert.notEqual(done.ranOn, `runner ${first}`);
    assert.equal(done.attempts, 2);
    const leases = await lab.service.store.db.selectFrom('leases').select(['outcome']).where('job_id', '=', id).orderBy('created_at').execute();
    assert.deepEqual(leases.map((l) => l.outcome), ['lapsed', 'result']);
    const results = await lab.service.store.jobs.results(id);
    assert.equal(new Set(results.tests.map((t) => `${t.suite}/${t.test}`)).size, results.tests.length, 'one row per test: one result');
    assert.ok(results.tests.length > 0);

    // The in-cluster worker, given the same series and suites, comes to the same verdict and subtests.
    const byWorker = await finished(await lab.submitToQueue('pass-kbuf-pin.mbox', ['smoke']));
    assert.match(byWorker.ranOn ?? '', /^(?!runner )/, `the worker ran it, not a runner (${byWorker.ranOn ?? 'nothing'})`);
    assert.equal(byWorker.status, done.status, byWorker.summary);
    const outcomes = (v: { results: Array<{ suite: string; test: string; status: string }> }): string[] => v.results.map((r) => `${r.suite}/${r.test}=${r.status}`).sort();
    assert.deepEqual(outcomes(byWorker), outcomes(done));
    // The runner's artifacts were uploaded, checked and are served by the API, as the worker's are.
    const names = (v: JobView): string[] => (v.artifacts ?? []).map((a) => a.name).sort();
    assert.ok(names(done).length > 0, 'the runner uploaded artifacts');
    assert.deepEqual(names(done), names(byWorker));
    const consoleLog = (done.artifacts ?? []).find((a) => /console/.test(a.name)) ?? done.artifacts?.[0];
    assert.ok(consoleLog);
    const served = await fetch(new URL(consoleLog.url, lab.service.url ?? ''));
    assert.equal(served.status, 200);
    assert.ok((await served.text()).length > 0);

    // The API restarts while a job builds on the runner left: the runner rides it out and keeps its lease.
    const c = await submit('pass-kbuf-pin.mbox', {});
    await waitFor('the second job to run a container', 5 * 60_000, async () => (await job(c)).status === 'running' && (await containersOf(c)).length > 0);
    const leaseBefore = await lab.service.store.db.selectFrom('leases').select(['id']).where('job_id', '=', c).where('ended_at', 'is', null).execute();
    assert.equal(leaseBefore.length, 1);
    await lab.restartApi(2000);
    await sleep(3 * 2000);
    const leaseAfter = await lab.service.store.db.selectFrom('leases').select(['id', 'expires_at']).where('job_id', '=', c).where('ended_at', 'is', null).execute();
    assert.deepEqual(leaseAfter.map((l) => l.id), leaseBefore.map((l) => l.id), 'the same lease, still open');
    assert.ok((leaseAfter[0]?.expires_at.getTime() ?? 0) > Date.now(), 'renewed after the restart');
    assert.equal((await job(c)).status, 'running');
    // Cancel while it builds: the container goes within seconds.
    const asked = Date.now();
    await client.request('POST', `/api/v1/jobs/${c}/cancel`, { type: 'application/json', data: '{}' });
    await waitFor('the cancel to reach the runner', 60_000, async () => (await job(c)).status === 'cancelled' && (await containersOf(c)).length === 0);
    const took = Date.now() - asked;
    assert.ok(took < 30_000, `cancelled and its container gone in ${took} ms`);
  });
});

/** The job's containers on the engine (by the name the executor gives them). */
async function containersOf(jobId: string): Promise<string[]> {
  const r = spawnSync('docker', ['ps', '-a', '--format', '{{.Names}}'], { encoding: 'utf8' });
  await Promise.resolve();
  return r.stdout.split('\n').filter((n) => n.includes(jobId));
}

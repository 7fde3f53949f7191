/**
 * Lab runners on this machine, side by side in one run:
 *
 *   1. Throughput: a queue of N smoke jobs on one base (the pinning fixture,
 *      forced: each job applies, builds incrementally from the warm base,
 *      boots and runs smoke; the base's runs are cached) drained by one
 *      runner, then the same queue by two runners. Jobs per hour each, and
 *      the ratio. Both runners share this machine's cores (and the API),
 *      so the ideal is not 2x: each job's build already uses every core.
 *   2. Lease lapse to re-queue: a runner holds a lease and goes silent; the
 *      time from its last renewal to the job being queued again, against
 *      the lease (the promise is within two lease periods).
 *
 * Real parts only: the API (serve --role api, PGlite, its own Redis on
 * loopback) and `patchbay runner` processes with the real executor
 * (runners/agent/test/harness.ts). Prints a markdown table (stdout) and
 * writes bench/results/runners-DATE.json; progress goes to stderr.
 *
 * Run: npm run bench:runners [-- --jobs N] [-- --lease S]   (about 20 minutes with N=4)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ServiceClient } from '../services/cli/client.ts';
import { type RunnerLab, sleep, startRunnerLab } from '../runners/agent/test/harness.ts';

const root = new URL('..', import.meta.url).pathname;
const say = (s: string): void => { process.stderr.write(`bench: ${s}\n`); };
const { values: args } = parseArgs({ options: { jobs: { type: 'string', default: '4' }, lease: { type: 'string', default: '20' } } });
const N = Number(args.jobs);
const LEASE = Number(args.lease);

/** Queues n jobs at once on the machine's warm base and waits for all; wall seconds from the first queued to the last finished. */
async function drain(lab: RunnerLab, n: number, label: string): Promise<{ seconds: number; perHour: number; ranOn: Record<string, number> }> {
  const started = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push(await lab.submit('pass-kbuf-pin.mbox', { base: lab.baseCommit, runsOn: `bench=${label}` }));
  const ranOn: Record<string, number> = {};
  for (const id of ids) {
    const j = await lab.finished(id, 60 * 60_000);
    if (j.status !== 'PASS') throw new Error(`job ${id} ended ${j.status}: ${j.summary}`);
    ranOn[j.ranOn ?? '?'] = (ranOn[j.ranOn ?? '?'] ?? 0) + 1;
  }
  const seconds = (Date.now() - started) / 1000;
  say(`${label}: ${n} jobs in ${seconds.toFixed(0)} s (${JSON.stringify(ranOn)})`);
  return { seconds, perHour: (n * 3600) / seconds, ranOn };
}

async function leaseLapse(lab: RunnerLab): Promise<{ requeueSeconds: number }> {
  const t = await lab.client.request<{ token: string }>('POST', '/api/v1/runners/tokens', { type: 'application/json', data: '{}' });
  const labels = { arch: 'x86_64', kvm: false, cores: 1, memoryMb: 1024, trees: ['linux-7.1.y'], extra: { bench: 'silent' } };
  const reg = await lab.client.request<{ credential: string }>('POST', '/api/v1/runners/register', { type: 'application/json', data: JSON.stringify({ token: t.token, name: 'silent', labels, capacity: 1, version: null }) });
  const silent = new ServiceClient({ server: lab.service.url ?? '', token: reg.credential });
  await silent.request('POST', '/api/v1/runner/hello', { type: 'application/json', data: JSON.stringify({ labels, capacity: 1, version: null, warmBases: [], leases: [] }) });
  const id = await lab.submit('fail-apply-needs-kmbuf.mbox', { runsOn: 'bench=silent' });
  await silent.request('POST', '/api/v1/runner/claim', { type: 'application/json', data: JSON.stringify({ warmBases: [], waitSeconds: 5 }) });
  const lastRenewal = Date.now();
  await lab.waitFor('the lapsed job to be queued again', 4 * LEASE * 1000, async () => (await lab.job(id)).status === 'queued');
  const requeueSeconds = (Date.now() - lastRenewal) / 1000;
  await lab.client.request('POST', `/api/v1/jobs/${id}/cancel`, { type: 'application/json', data: '{}' });
  say(`lease lapse: re-queued ${requeueSeconds.toFixed(1)} s after the last renewal (lease ${LEASE} s)`);
  return { requeueSeconds };
}

const lab = await startRunnerLab({ quiet: true, env: { PATCHBAY_LEASE_SECONDS: String(LEASE), PATCHBAY_HEARTBEAT_SECONDS: '3', PATCHBAY_CLAIM_WAIT_SECONDS: '10' } });
try {
  // Each runner takes only its own bench label, so the two runs do not mix.
  await lab.startRunner('one', { kvm: false, extra: { bench: 'one' } });
  await lab.startRunner('two-a', { kvm: false, extra: { bench: 'two' } });
  await lab.startRunner('two-b', { kvm: false, extra: { bench: 'two' } });
  say('warm-up: one job (the job image and the base runs are ready after it)');
  await drain(lab, 1, 'one');
  const one = await drain(lab, N, 'one');
  const two = await drain(lab, N, 'two');
  const lapse = await leaseLapse(lab);
  const row = (what: string, v: string): string => `| ${what} | ${v} |`;
  const table = [
    `| lab runners on this machine (${N} smoke jobs of the pinning fixture on one warm base, base runs cached) | |`,
    '| --- | ---: |',
    row('one runner: wall seconds', one.seconds.toFixed(0)),
    row('one runner: jobs per hour', one.perHour.toFixed(1)),
    row('two runners: wall seconds', two.seconds.toFixed(0)),
    row('two runners: jobs per hour', two.perHour.toFixed(1)),
    row('two runners / one runner', (two.perHour / one.perHour).toFixed(2)),
    row(`lease lapse -> job queued again (lease ${LEASE} s)`, `${lapse.requeueSeconds.toFixed(1)} s`),
  ].join('\n');
  process.stdout.write(`${table}\n`);
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  const file = join(root, `bench/results/runners-${new Date().toISOString().slice(0, 10)}.json`);
  writeFileSync(file, `${JSON.stringify({ jobs: N, leaseSeconds: LEASE, one, two, lapse, cpus: process.env.PATCHBAY_JOB_CPUS ?? null }, null, 2)}\n`);
  say(`wrote ${file}`);
} finally {
  await sleep(100);
  await lab.close();
}

/**
 * Infrastructure faults through the real pipeline (runJob on the Docker
 * engine, the 7.1.8 tree's warm base, QEMU): each ends MISS with its reason
 * and a code the worker retries, never FAIL. A FAIL blames an author in
 * public and needs positive evidence (issue 11).
 *
 * The faults are injected by the host, never by the job: the test wraps the
 * executor's container port (ContainerRuntime) and, in the series' sandbox
 * only, kills processes from outside as the OOM killer would, fills /tmp,
 * or sets PATCHBAY_TEST_FAULT in the environment of boot.sh's exec (which
 * nothing in a job can reach). The suites under test and the series are
 * the ordinary ones; the jobs share the one warm base the other tests use.
 *
 * First, boot.sh's exit contract with a stand-in for QEMU, in a container
 * of the runner image: what each way of ending means (boot.sh's header).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { loadCatalogs } from '../../../services/catalog/load.ts';
import type { SuiteManifest } from '../../../services/catalog/suites.ts';
import { loadConfig } from '../../../services/config/config.ts';
import { NOT_RETRIED_CODES } from '../../../services/domain/errors.ts';
import type { JobResult } from '../../../services/domain/job.ts';
import { parseMbox } from '../../../services/domain/mbox.ts';
import { assembleSeries } from '../../../services/domain/series.ts';
import { packInputs } from '../container-files.ts';
import { makeExecutorDeps } from '../deps.ts';
import type { ContainerRuntime, ContainerSpec, ExecOptions, ExecOutcome, JobContainer } from '../docker.ts';
import { ensureImages } from '../images.ts';
import { type ExecutorDeps, runJob } from '../pipeline.ts';
import { fixtures } from './patchbay-run.ts';

const HOUR = 60 * 60 * 1000;
const config = loadConfig(process.env);
const catalogs = loadCatalogs(config);
const { deps, engine } = makeExecutorDeps(config, process.env, pino({ level: 'silent' }));
const say = (text: string): void => { process.stderr.write(`  ${text}\n`); };

// ---------------------------------------------------------------------------
// boot.sh's exit contract, QEMU replaced by a script.

/** Stands in for qemu-system-x86_64, as FAKE_QEMU says. */
const FAKE_QEMU = `#!/bin/bash
echo "[    0.000000] Linux version 7.1.8+ (fake)"
case "$FAKE_QEMU" in
  exit0) echo "patchbay: init started"; exit 0 ;;
  exit1) echo "qemu-system-x86_64: could not load kernel" >&2; exit 1 ;;
  oom) kill -KILL $$ ;;
  hang) exec sleep 600 ;;
  stubborn) trap '' TERM; while :; do sleep 1; done ;;
  terminated) echo "qemu-system-x86_64: terminating on signal 15 from pid 1 (init)" >&2; exit 0 ;;
esac
`;

describe('boot.sh exit contract (a stand-in for QEMU)', { timeout: HOUR }, () => {
  let box: JobContainer;

  before(async () => {
    await engine.ping();
    const images = await ensureImages(engine, { imagesDir: config.imagesDir, baseImage: config.docker.baseImage, env: process.env, onLog: say });
    box = await engine.create({
      image: images.runner,
      name: `patchbay-test-bootsh-${process.pid}`,
      labels: { 'org.patchbay.role': 'test' },
      mounts: [],
      memoryBytes: 1024 * 1024 * 1024,
      cpus: 2,
      pids: 512,
      devices: [],
      fileSizeBytes: 256 * 1024 * 1024,
      tmpBytes: 256 * 1024 * 1024,
    });
    await box.put(packInputs([
      { type: 'dir', path: '/job', mode: 0o755, uid: 0 },
      { type: 'dir', path: '/job/in', mode: 0o755, uid: 0 },
      { type: 'dir', path: '/job/in/fake', mode: 0o755, uid: 0 },
      { type: 'file', path: '/job/in/fake/qemu-system-x86_64', mode: 0o755, uid: 0, content: FAKE_QEMU },
      { type: 'file', path: '/job/in/kernel', mode: 0o644, uid: 0, content: 'not a kernel' },
      { type: 'file', path: '/job/in/plan-smoke.txt', mode: 0o644, uid: 0, content: 'smoke\n' },
      { type: 'file', path: '/job/in/plan-absent.txt', mode: 0o644, uid: 0, content: 'smoke\nno-such-suite\n' },
      { type: 'dir', path: '/job/out', mode: 0o777, uid: 1000 },
    ]));
    await box.start();
  });

  after(async () => { await box.dispose(); });

  const bootSh = (fake: string, timeout: number, plan = 'smoke'): Promise<ExecOutcome & { seconds: number }> => {
    const started = Date.now();
    return box.exec(['/opt/patchbay/stages/boot.sh', 'tcg', String(timeout), '/job/in/kernel', `/job/out/${fake}`, `/job/in/plan-${plan}.txt`], {
      env: { FAKE_QEMU: fake, PATH: '/job/in/fake:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' },
    }).then((r) => ({ ...r, seconds: (Date.now() - started) / 1000 }));
  };

  test('each way boot.sh ends has its status: QEMU\'s own, 123, 124, 125', async () => {
    // Independent runs, side by side: the slowest (10 s of SIGKILL grace) sets the time.
    const [ok, failed, absent, oom, terminated, hang, stubborn] = await Promise.all([
      bootSh('exit0', 60), bootSh('exit1', 60), bootSh('absent', 60, 'absent'),
      bootSh('oom', 60), bootSh('terminated', 60), bootSh('hang', 2), bootSh('stubborn', 1),
    ]);
    assert.equal(ok.exitCode, 0, ok.tail);
    assert.match(ok.tail, /Linux version 7\.1\.8\+ \(fake\)/);
    assert.doesNotMatch(ok.tail, /harness failed/, 'no step of a good run trips the harness trap');
    assert.equal(failed.exitCode, 1, failed.tail);
    assert.match(failed.tail, /^qemu: qemu-system-x86_64: could not load kernel$/m, 'QEMU\'s messages are printed after it, marked');
    // A suite that is absent: the harness (125), before QEMU starts.
    assert.equal(absent.exitCode, 125, absent.tail);
    assert.match(absent.tail, /^patchbay: boot harness failed: suite no-such-suite not found/m);
    assert.doesNotMatch(absent.tail, /Linux version/, 'QEMU never started');
    // QEMU SIGKILLed by someone else: 123, naming the signal (before, 137 became 124: a guest timeout).
    assert.equal(oom.exitCode, 123, oom.tail);
    assert.match(oom.tail, /^patchbay: QEMU was killed by signal 9 \(KILL\) after \d+s, not by the timeout \(60s\)$/m);
    assert.equal(terminated.exitCode, 123, terminated.tail);
    assert.match(terminated.tail, /^patchbay: QEMU was killed by signal 15 \(TERM\)/m);
    // Stopped by the timeout: 124.
    assert.equal(hang.exitCode, 124, hang.tail);
    // SIGTERM ignored: the timeout's own SIGKILL 10 s later makes GNU timeout
    // exit 137, as an OOM kill would; the time QEMU ran tells them apart.
    assert.equal(stubborn.exitCode, 124, stubborn.tail);
    assert.ok(stubborn.seconds >= 10, `the SIGKILL came 10 s after the SIGTERM (${stubborn.seconds}s)`);
  });
});

// ---------------------------------------------------------------------------
// Faults in real jobs.

type Fault = 'kill-compiler' | 'fill-tmp' | 'kill-qemu' | 'no-ktap-port' | null;

/**
 * The series' sandbox (role "job") with one fault; every other container
 * (the base sandbox, the warm base) untouched.
 */
class FaultyRuntime implements ContainerRuntime {
  fault: Fault = null;
  /** What the injection did, for the test's messages. */
  readonly notes: string[] = [];

  constructor(private readonly inner: ContainerRuntime) {}

  async create(spec: ContainerSpec): Promise<JobContainer> {
    const c = await this.inner.create(spec);
    return spec.labels['org.patchbay.role'] === 'job' ? new FaultyContainer(c, this, this.fault) : c;
  }
}

class FaultyContainer implements JobContainer {
  constructor(private readonly inner: JobContainer, private readonly runtime: FaultyRuntime, private readonly fault: Fault) {}

  get id(): string { return this.inner.id; }
  start(): Promise<void> { return this.inner.start(); }
  stop(): Promise<void> { return this.inner.stop(); }
  put(archive: Readable): Promise<void> { return this.inner.put(archive); }
  archive(path: string): Promise<Readable | null> { return this.inner.archive(path); }
  diskUsage(): Promise<number> { return this.inner.diskUsage(); }
  commit(tag: string, labels: Record<string, string>): Promise<void> { return this.inner.commit(tag, labels); }
  dispose(): Promise<void> { return this.inner.dispose(); }

  /** A command of the injector's own, beside the stage's (same user, same container). */
  private side(script: string): Promise<ExecOutcome> {
    return this.inner.exec(['bash', '-c', script], { timeoutSeconds: 300 }).then((r) => {
      if (r.tail.trim() !== '') this.runtime.notes.push(r.tail.trim().split('\n').join(' | '));
      return r;
    });
  }

  async exec(cmd: readonly string[], opts: ExecOptions = {}): Promise<ExecOutcome> {
    const stage = cmd[0] ?? '';
    if (this.fault === 'kill-compiler' && stage.endsWith('/build.sh')) {
      // Every cc1 that shows up is SIGKILLed while the build runs, as the OOM
      // killer does to the biggest process under memory pressure.
      const killer = this.side('for i in $(seq 6000); do p=$(pidof cc1) && kill -KILL $p 2>/dev/null && echo "fault: SIGKILLed cc1 $p"; sleep 0.05; done');
      const r = await this.inner.exec(cmd, opts);
      void killer.catch(() => undefined);
      return r;
    }
    if (this.fault === 'fill-tmp' && stage.endsWith('/build.sh')) {
      // The scratch tmpfs, full before the build starts.
      await this.side('dd if=/dev/zero of=/tmp/fill bs=1M status=none 2>/dev/null; echo "fault: /tmp filled: $(df -h /tmp | tail -n 1)"');
      return this.inner.exec(cmd, opts);
    }
    if (stage.endsWith('/boot.sh') && cmd.some((a) => a.endsWith('/plan-series.txt'))) {
      if (this.fault === 'no-ktap-port') {
        return this.inner.exec(cmd, { ...opts, env: { ...opts.env, PATCHBAY_TEST_FAULT: 'no-ktap-port' } });
      }
      if (this.fault === 'kill-qemu') {
        // QEMU SIGKILLed from outside once the kernel's banner is on the console.
        const live: { seen: string; killer: Promise<ExecOutcome> | null } = { seen: '', killer: null };
        const onOutput = (t: string): void => {
          opts.onOutput?.(t);
          live.seen = (live.seen + t).slice(-8192);
          if (live.killer === null && /Linux version \d/.test(live.seen)) {
            live.killer = this.side('p=$(pidof qemu-system-x86_64) && kill -KILL $p && echo "fault: SIGKILLed qemu $p"');
          }
        };
        const r = await this.inner.exec(cmd, { ...opts, onOutput });
        await live.killer;
        return r;
      }
    }
    return this.inner.exec(cmd, opts);
  }
}

const faulty = new FaultyRuntime(deps.runtime);
let jobs = 0;
const scratch = mkdtempSync(join(tmpdir(), 'patchbay-faults-'));
after(() => { rmSync(scratch, { recursive: true, force: true }); });

/** One job on the real executor with a fault in its series' sandbox. */
async function faultyJob(fault: Fault, mbox: string, suites: readonly SuiteManifest[], tune: (d: ExecutorDeps) => ExecutorDeps = (d) => d): Promise<JobResult> {
  faulty.fault = fault;
  faulty.notes.length = 0;
  const series = assembleSeries(parseMbox(readFileSync(join(fixtures, mbox)).toString('latin1')));
  const jobId = `faults-${process.pid}-${++jobs}-${fault ?? 'none'}`;
  const started = Date.now();
  say(`job ${jobId}: ${mbox}, fault ${fault ?? 'none'}`);
  const result = await runJob(
    { jobId, tree: catalogs.trees.get('linux-7.1.y'), base: null, series, prerequisites: null, suites, kernelFragment: catalogs.kernelFragment },
    tune({ ...deps, runtime: faulty }),
    (e) => { if (e.type === 'stage-end') say(`.. ${e.stage} ${e.status} in ${Math.round(e.durationMs / 1000)}s: ${e.summary.split('\n')[0] ?? ''}`); },
  );
  faulty.fault = null;
  say(`job ${jobId}: ${result.status} in ${Math.round((Date.now() - started) / 1000)}s${faulty.notes.length > 0 ? `; ${faulty.notes.join('; ').slice(0, 300)}` : ''}`);
  return result;
}

/** MISS at `stage` with `code`, retried by the worker, nothing failed, nothing blamed. */
function assertMiss(result: JobResult, stage: string, code: string, message: RegExp): void {
  const trail = JSON.stringify({ status: result.status, stage: result.stage, error: result.error, stages: result.stages });
  assert.equal(result.status, 'MISS', trail);
  assert.equal(result.stage, stage, trail);
  assert.ok(result.error, trail);
  assert.equal(result.error.code, code, trail);
  assert.match(result.error.message, message, trail);
  // The codes the worker does not retry (NOT_RETRIED_CODES): none of these faults may end so.
  assert.ok(!NOT_RETRIED_CODES.has(result.error.code), `${result.error.code} is retried by the worker`);
  assert.ok(result.stages.every((s) => s.status !== 'FAIL'), trail);
  assert.ok(result.results.every((r) => r.status !== 'FAIL'), JSON.stringify(result.results));
  assert.deepEqual(result.buildErrors, []);
  assert.equal(result.applyFailure, null);
}

const smoke = catalogs.suites.select(['smoke']);

describe('infrastructure faults in real jobs end MISS, never FAIL', { timeout: 2 * HOUR }, () => {
  before(async () => { await engine.ping(); });

  test('a compiler killed mid-build (SIGKILL, as by the OOM killer): MISS at build, no clean retry', { timeout: HOUR }, async () => {
    const result = await faultyJob('kill-compiler', 'pass-kbuf-pin.mbox', smoke);
    assertMiss(result, 'build', 'BUILD_ENVIRONMENT', /Killed signal terminated program cc1/);
    assert.equal(result.buildMode, 'incremental', 'no twelve-minute clean build for a killed compiler');
    assert.ok(faulty.notes.some((n) => n.includes('SIGKILLed cc1')), 'a compiler was killed');
  });

  test('a full scratch disk (/tmp): MISS at build', { timeout: HOUR }, async () => {
    const small = (d: ExecutorDeps): ExecutorDeps => ({ ...d, settings: { ...d.settings, job: { ...d.settings.job, tmpBytes: 64 * 1024 * 1024 } } });
    const result = await faultyJob('fill-tmp', 'pass-kbuf-pin.mbox', smoke, small);
    assertMiss(result, 'build', 'BUILD_ENVIRONMENT', /No space left on device/);
    assert.equal(result.buildMode, 'incremental');
  });

  test('QEMU SIGKILLed mid-boot (as by the OOM killer): MISS at boot, not a timeout', { timeout: HOUR }, async () => {
    const result = await faultyJob('kill-qemu', 'pass-selftest-pbuf-ring.mbox', smoke);
    // Killed as soon as the banner shows, it dies in boot; on a slow machine it might reach init first (stage test).
    assertMiss(result, result.stage === 'test' ? 'test' : 'boot', 'GUEST_KILLED', /^QEMU was killed by signal 9, not by the timeout: out of memory\?$/);
    assert.ok(faulty.notes.some((n) => n.includes('SIGKILLed qemu')), 'QEMU was killed');
  });

  test('a guest without its KTAP serial port: MISS at test, no failing row per suite', { timeout: HOUR }, async () => {
    const result = await faultyJob('no-ktap-port', 'pass-selftest-pbuf-ring.mbox', smoke);
    assertMiss(result, 'test', 'GUEST_NO_KTAP', /KTAP channel \(ttyS1\) stayed empty/);
    assert.deepEqual(result.stages.slice(0, 4).map((s) => [s.stage, s.status]), [['setup', 'PASS'], ['apply', 'PASS'], ['build', 'PASS'], ['boot', 'PASS']]);
    assert.deepEqual(result.results, []);
    assert.ok(result.artifactsDir);
    assert.match(readFileSync(join(result.artifactsDir, 'console.log'), 'utf8'), /^KTAP version 1$/m, 'the guest mirrored its KTAP to the console');
    assert.equal(readFileSync(join(result.artifactsDir, 'ktap.txt'), 'utf8'), '');
  });

  test('a boot script that fails before QEMU (a suite absent from the plan\'s sources): MISS at boot', { timeout: HOUR }, async () => {
    // A suite the job names whose folder has no manifest.json: boot.sh
    // cannot assemble the initramfs.
    const suitesDir = join(scratch, 'suites');
    mkdirSync(join(suitesDir, 'absent'), { recursive: true });
    const [template] = smoke;
    assert.ok(template);
    const absent: SuiteManifest = { ...template, name: 'absent', description: 'a suite with no files', kconfig: [], build: {} };
    const withSuites = (d: ExecutorDeps): ExecutorDeps => ({ ...d, settings: { ...d.settings, suitesDir } });
    const result = await faultyJob(null, 'pass-selftest-pbuf-ring.mbox', [absent], withSuites);
    assertMiss(result, 'boot', 'GUEST_HARNESS', /boot harness failed .*suite absent not found/);
  });
});


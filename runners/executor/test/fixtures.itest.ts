/**
 * The four fixture series through `patchbay run --json` on the real Docker
 * engine, the real 7.1.8 tree and QEMU: pass, does not apply, breaks the
 * build, panics at boot; then a series with a prerequisite patch, and one
 * whose prerequisites do not apply. The first test pays for images and the
 * warm base (a cold kernel build); the others reuse it (incremental builds
 * only). Progress goes to stderr so a CI log shows where the time goes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { JobResult } from '../../../services/domain/job.ts';
import { fixtures, patchbayRun } from './patchbay-run.ts';

const HOUR = 60 * 60 * 1000;
const BASE = '0dfbac4f4be0f380cd34673a572ab902a33a82b2';

/** What every job records of its environment (JobResult.environment), as a job on this machine's engine has it. */
function assertEnvironment(result: JobResult, guest: 'booted' | 'not booted'): void {
  const env = result.environment;
  assert.ok(env, 'the environment is recorded');
  assert.match(env.image?.tag ?? '', /^patchbay\/(warm|job):[0-9a-f]{16}(-[0-9a-f]{16})?$/, 'the image the job ran in');
  assert.match(env.image?.id ?? '', /^sha256:[0-9a-f]{64}$/);
  assert.match(env.compiler ?? '', /^gcc \(Debian [^)]+\) \d+\.\d+/);
  assert.match(env.qemu ?? '', /^QEMU emulator version \d+\.\d+/);
  const recipe = env.config;
  assert.ok(recipe, 'the config\'s recipe');
  assert.equal(recipe.base, 'tinyconfig');
  assert.equal(recipe.fragments[0], 'images/guest/guest.config');
  assert.ok(recipe.fragments.includes('images/guest/suites/smoke/manifest.json'), JSON.stringify(recipe));
  const config = readFileSync(join(result.artifactsDir ?? '', 'kernel.config'));
  assert.equal(recipe.sha256, createHash('sha256').update(config).digest('hex'), 'the hash of the .config artifact');
  if (guest === 'not booted') {
    assert.equal(env.qemuCommand, null);
    return;
  }
  const accel = result.accel ?? '?';
  assert.match(env.qemuCommand ?? '', new RegExp(`^qemu-system-x86_64 -accel ${accel} -cpu (max|host) -smp 2,sockets=2,cores=1,threads=1 -m 1024 .*-kernel /job/out/bzImage -initrd /job/out/guest-series/initramfs\\.cpio\\.gz -append 'console=ttyS0 rdinit=/init [^']*' -serial stdio -serial file:/tmp/ktap\\.\\w+$`));
}

/** The recorded result.json of a job of this machine (its attempts' folders), or null. */
function recordedResult(jobsDir: string, jobId: string): JobResult | null {
  let attempts: string[];
  try {
    attempts = readdirSync(join(jobsDir, jobId)).sort();
  } catch {
    return null;
  }
  for (const a of attempts.reverse()) {
    const file = join(jobsDir, jobId, a, 'result.json');
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as JobResult;
  }
  return null;
}

describe('fixture series on the real pipeline', { timeout: 2 * HOUR }, () => {
  test('the passing series applies, builds, boots and passes smoke', { timeout: HOUR }, async () => {
    const { code, result } = await patchbayRun('pass-kbuf-pin.mbox', ['--suite', 'smoke']);
    assert.equal(result.status, 'PASS', result.summary);
    assert.equal(code, 0);
    assert.equal(result.stage, null);
    assert.deepEqual(result.stages.map((s) => [s.stage, s.status]), [
      ['setup', 'PASS'], ['apply', 'PASS'], ['build', 'PASS'], ['boot', 'PASS'], ['test', 'PASS'],
    ]);
    assert.equal(result.series?.patches, 3);
    assert.equal(result.baseCommit, '0dfbac4f4be0f380cd34673a572ab902a33a82b2');
    assert.match(result.headCommit ?? '', /^[0-9a-f]{40}$/);
    assert.notEqual(result.headCommit, result.baseCommit);
    assert.equal(result.buildMode, 'incremental');
    const smoke = result.results.filter((r) => r.suite === 'smoke');
    assert.deepEqual(smoke.map((r) => r.test).sort(), [
      'io_uring_setup', 'pbuf_ring_read_select', 'pbuf_ring_register', 'pbuf_ring_register_duplicate',
      'pbuf_ring_unregister', 'pbuf_ring_unregister_again',
    ]);
    assert.ok(smoke.every((r) => r.status === 'PASS'), JSON.stringify(smoke));
    assert.deepEqual(result.crashes, []);
    for (const a of ['build.log', 'console.log', 'ktap.txt', 'kernel.config', 'bzImage', 'result.json']) {
      assert.ok(result.artifacts.includes(a), `artifact ${a} in ${result.artifacts.join(', ')}`);
      assert.ok(existsSync(join(result.artifactsDir ?? '', a)), `${a} exists`);
    }
    // The guest is SMP: both vCPUs come up (io-wq and multishot races need a second CPU).
    assert.match(readFileSync(join(result.artifactsDir ?? '', 'console.log'), 'utf8'), /smp: Brought up 1 node, 2 CPUs/);
    assertEnvironment(result, 'booted');
    const recorded = JSON.parse(readFileSync(join(result.artifactsDir ?? '', 'result.json'), 'utf8')) as JobResult;
    assert.deepEqual(recorded.environment, result.environment, 'result.json holds it');
  });

  test('a run filtered by --test runs only the named tests, on the series\' kernel and the base alike', { timeout: HOUR }, async () => {
    // A passing series whose build is short (it changes only selftests, which
    // smoke does not build): the filter, not the series, is what is tested.
    const { code, result } = await patchbayRun('pass-selftest-pbuf-ring.mbox', ['--suite', 'smoke', '--test', 'smoke/pbuf_ring_register', '--test', 'smoke/io_uring_setup']);
    const trail = JSON.stringify({ status: result.status, summary: result.summary, error: result.error, stages: result.stages });
    assert.equal(result.status, 'PASS', trail);
    assert.equal(code, 0);
    assert.deepEqual(result.results.map((r) => [r.suite, r.test, r.status, r.baseStatus, r.comparison]), [
      ['smoke', 'io_uring_setup', 'PASS', 'PASS', 'unchanged'],
      ['smoke', 'pbuf_ring_register', 'PASS', 'PASS', 'unchanged'],
    ]);
    // The guest was told (the series' initramfs holds the suite's "only" file) ...
    const initramfs = gunzipSync(readFileSync(join(result.artifactsDir ?? '', 'initramfs.cpio.gz'))).toString('latin1');
    assert.match(initramfs, /patchbay\/suites\/smoke\/only\0+io_uring_setup pbuf_ring_register\n/);
    // ... and the base ran the same filtered set: a run of its own (the whole suite's cached runs do not stand for it), or one an earlier filtered job cached.
    const smokeBase = result.base?.suites.find((b) => b.suite === 'smoke');
    assert.ok(smokeBase && smokeBase.source !== 'unavailable', JSON.stringify(result.base));
    if (smokeBase.source === 'run') {
      assert.ok(existsSync(join(result.artifactsDir ?? '', 'base-ktap.txt')), 'the base booted in this job');
    } else {
      const from = recordedResult(dirname(dirname(result.artifactsDir ?? '')), smokeBase.jobId ?? '');
      assert.deepEqual(from?.results.map((r) => r.test), ['io_uring_setup', 'pbuf_ring_register'], `the cached base run of job ${smokeBase.jobId ?? '?'} was the same filtered run`);
    }
    assertEnvironment(result, 'booted');
  });

  test('a series that does not apply is FAIL at apply, naming the patch and git\'s message', { timeout: HOUR }, async () => {
    const { code, result } = await patchbayRun('fail-apply-needs-kmbuf.mbox', ['--suite', 'smoke']);
    assert.equal(code, 0);
    assert.equal(result.status, 'FAIL');
    assert.equal(result.stage, 'apply');
    const failure = result.applyFailure;
    assert.ok(failure, 'the apply failure is described');
    assert.equal(failure.patchIndex, 2);
    assert.match(result.summary, /patch 2\/2 "io_uring\/kbuf: refuse to unregister a pinned kernel-managed ring" does not apply/);
    assert.ok(failure.messages.length > 0, 'git\'s error lines are kept');
    assert.deepEqual(result.results, []);
    assert.equal(result.stages.some((s) => s.stage === 'build'), false, 'nothing is built after a failed apply');
    // What is known is recorded on a failure too: the image and tools, not a boot that never happened.
    const env = result.environment;
    assert.ok(env, 'the environment is recorded');
    assert.match(env.compiler ?? '', /^gcc /);
    assert.match(env.image?.id ?? '', /^sha256:/);
    assert.equal(env.qemuCommand, null);
    assert.equal(env.config?.sha256, null, 'no kernel was built');
  });

  test('a series that breaks the build is FAIL at build with the compiler error', { timeout: HOUR }, async () => {
    const { code, result } = await patchbayRun('fail-build-undeclared.mbox', ['--suite', 'smoke']);
    assert.equal(code, 0);
    assert.equal(result.status, 'FAIL');
    assert.equal(result.stage, 'build');
    assert.equal(result.buildMode, 'incremental', 'an error in a changed file is not retried from clean');
    const first = result.buildErrors[0];
    assert.ok(first, 'a compiler error is reported');
    assert.equal(first.file, 'io_uring/kbuf.c');
    assert.match(first.message, /IOBL_PINNED/);
    assert.match(result.summary, /io_uring\/kbuf\.c:\d+: .*IOBL_PINNED/);
  });

  test('a series whose kernel oopses at boot is FAIL at boot with a fingerprinted crash', { timeout: HOUR }, async () => {
    const { code, result } = await patchbayRun('fail-boot-panic.mbox', ['--suite', 'smoke']);
    assert.equal(code, 0);
    assert.equal(result.status, 'FAIL');
    assert.equal(result.stage, 'boot');
    const crash = result.crashes[0];
    assert.ok(crash, 'the crash is reported');
    assert.match(crash.fingerprint, /^[0-9a-f]{16}$/);
    assert.ok(crash.frames.includes('io_kbuf_pin_selftest') || crash.culprit === 'io_kbuf_ring_pin' || crash.frames.includes('io_kbuf_ring_pin'),
      `the call trace names the series' code: ${crash.frames.join(' <- ')}`);
    assert.deepEqual(result.results, [], 'no tests ran');
  });

  test('a series that needs a prerequisite patch passes with it, against a base that has it too', { timeout: HOUR }, async () => {
    // fail-build-undeclared.mbox alone fails to build (IOBL_PINNED is
    // undeclared: see above); patch 1/3 of pass-kbuf-pin.mbox declares it.
    const { code, result } = await patchbayRun('fail-build-undeclared.mbox', ['--suite', 'smoke', '--prerequisites', join(fixtures, 'prereq-kbuf-pin-helpers.mbox')]);
    const trail = JSON.stringify({ status: result.status, summary: result.summary, error: result.error, stages: result.stages });
    assert.equal(result.status, 'PASS', trail);
    assert.equal(code, 0);
    assert.deepEqual(result.stages.map((s) => [s.stage, s.status]), [
      ['setup', 'PASS'], ['apply', 'PASS'], ['build', 'PASS'], ['boot', 'PASS'], ['test', 'PASS'],
    ], trail);
    assert.equal(result.baseCommit, BASE);
    const prerequisites = result.prerequisites;
    assert.ok(prerequisites, 'the prerequisites are recorded');
    assert.deepEqual(prerequisites.patches, [{ title: 'io_uring/kbuf: add buffer ring pinning/unpinning helpers', messageId: '20261120-kbuf-pin-v2-1@patchbay.invalid' }]);
    assert.match(prerequisites.hash, /^[0-9a-f]{64}$/);
    // No cold build anywhere: the base sandbox rebuilt its kernel with the
    // prerequisite incrementally (in setup), the series' build is incremental.
    assert.match(result.stages[0]?.summary ?? '', /base 0dfbac4f4be0 \+ 1 prerequisite patch\(es\) \(incremental build, \d+s\)$/, trail);
    assert.equal(result.buildMode, 'incremental');
    const setupLog = readFileSync(join(result.artifactsDir ?? '', 'setup.log'), 'utf8');
    assert.match(setupLog, /^Applying: io_uring\/kbuf: add buffer ring pinning\/unpinning helpers$/m, 'the prerequisite is applied in the base sandbox');
    assert.match(setupLog, /^\s+CC\s+io_uring\/kbuf\.o$/m, 'the base kernel is rebuilt with it');
    assert.match(setupLog, /the base kernel is now the base with its prerequisite patches \(incremental build/);
    assert.deepEqual(readFileSync(join(result.artifactsDir ?? '', 'prerequisites-changed-files.txt'), 'utf8').split('\n').filter(Boolean), ['io_uring/kbuf.c', 'io_uring/kbuf.h']);
    // The series' changed files are its own; its build saw both.
    assert.match(result.stages[1]?.summary ?? '', /^1 patch\(es\) applied on 1 prerequisite patch\(es\), 1 file\(s\) changed$/);
    assert.deepEqual(readFileSync(join(result.artifactsDir ?? '', 'changed-files.txt'), 'utf8').split('\n').filter(Boolean), ['io_uring/kbuf.c']);
    // Compared with the base + the prerequisite, never the plain base's runs.
    const base = result.base;
    assert.ok(base, 'the base comparison is recorded');
    assert.equal(base.commit, BASE);
    assert.equal(base.prerequisites, 1);
    assert.equal(base.kernel, '0dfbac4f4be0 + 1 prerequisite patch');
    const smokeBase = base.suites.find((b) => b.suite === 'smoke');
    assert.ok(smokeBase && smokeBase.source !== 'unavailable', JSON.stringify(base));
    if (smokeBase.source === 'cached') {
      const from = recordedResult(dirname(dirname(result.artifactsDir ?? '')), smokeBase.jobId ?? '');
      assert.equal(from?.prerequisites?.hash, prerequisites.hash, `the cached base run of job ${smokeBase.jobId ?? '?'} had the same prerequisites`);
    }
    const smoke = result.results.filter((r) => r.suite === 'smoke');
    assert.equal(smoke.length, 6);
    assert.ok(smoke.every((r) => r.status === 'PASS' && r.baseStatus === 'PASS' && r.comparison === 'unchanged'), JSON.stringify(smoke));
    assert.deepEqual(result.buildErrors, []);
    assert.deepEqual(result.crashes, []);
  });

  test('prerequisites that do not apply are MISS with PREREQUISITES_APPLY naming the patch, never FAIL', { timeout: HOUR }, async () => {
    const { code, result } = await patchbayRun('fail-build-undeclared.mbox', ['--suite', 'smoke', '--prerequisites', join(fixtures, 'fail-apply-needs-kmbuf.mbox')]);
    const trail = JSON.stringify({ status: result.status, summary: result.summary, error: result.error, stages: result.stages });
    assert.equal(result.status, 'MISS', trail);
    assert.equal(code, 1, 'MISS: the exit status of infrastructure trouble, not a verdict');
    assert.equal(result.stage, 'setup', trail);
    assert.equal(result.error?.code, 'PREREQUISITES_APPLY', trail);
    assert.match(result.error.message, /^prerequisite patch 2\/2 "io_uring\/kbuf: refuse to unregister a pinned kernel-managed ring" <20261121-kmbuf-followups-v1-2@patchbay\.invalid> does not apply on the base 0dfbac4f4be0/);
    assert.match(result.error.message, /git am said: error: /, 'git\'s own lines are quoted');
    assert.deepEqual(result.stages.map((s) => [s.stage, s.status]), [['setup', 'MISS']], 'nothing of the series was applied or built');
    assert.ok(result.stages.every((s) => s.status !== 'FAIL'), trail);
    assert.deepEqual(result.results, [], 'no failing row');
    assert.equal(result.applyFailure, null, 'no patch of the series is named');
    assert.deepEqual(result.buildErrors, []);
    assert.equal(result.prerequisites?.patches.length, 2);
  });
});

/**
 * The four fixture series through `patchbay run --json` on the real Docker
 * engine, the real 7.1.8 tree and QEMU: pass, does not apply, breaks the
 * build, panics at boot. The first test pays for images and the warm base
 * (a cold kernel build); the others reuse it. Progress goes to stderr so a
 * CI log shows where the time goes.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { patchbayRun } from './patchbay-run.ts';

const HOUR = 60 * 60 * 1000;

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
});

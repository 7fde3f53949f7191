import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { judgeGuestRun, overallStatus, type StageRun } from '../job.ts';

const golden = (name: string): string => readFileSync(new URL(`./golden/guest/${name}`, import.meta.url), 'utf8');

test('a real TCG boot of 7.1.8 running smoke: boot PASS, six subtests PASS', () => {
  const v = judgeGuestRun({
    consoleLog: golden('pass-smoke.console.log'),
    ktap: golden('pass-smoke.ktap'),
    exitCode: 0,
    timedOut: false,
    timeoutSeconds: 120,
    suites: ['smoke'],
  });
  assert.deepEqual(v.boot, { status: 'PASS', summary: 'booted to init' });
  assert.equal(v.test?.status, 'PASS');
  assert.deepEqual(v.crashes, []);
  assert.deepEqual(
    v.results.map((r) => [r.suite, r.test, r.status]),
    [
      ['smoke', 'io_uring_setup', 'PASS'],
      ['smoke', 'pbuf_ring_register', 'PASS'],
      ['smoke', 'pbuf_ring_register_duplicate', 'PASS'],
      ['smoke', 'pbuf_ring_read_select', 'PASS'],
      ['smoke', 'pbuf_ring_unregister', 'PASS'],
      ['smoke', 'pbuf_ring_unregister_again', 'PASS'],
    ],
  );
});

const bootLines = [
  '[    0.000000] Linux version 7.1.8+ (patchbay@patchbay) #1 PREEMPT_LAZY',
  '[    1.587389] Run /init as init process',
  'patchbay: init started, kernel 7.1.8+',
];

test('no init marker and no crash, killed by the timeout: FAIL at boot, hung', () => {
  const v = judgeGuestRun({ consoleLog: bootLines.slice(0, 2).join('\n'), ktap: '', exitCode: null, timedOut: true, timeoutSeconds: 300, suites: ['smoke'] });
  assert.equal(v.boot.status, 'FAIL');
  assert.match(v.boot.summary, /did not reach init within 300s/);
  assert.equal(v.test, null);
  assert.deepEqual(v.results, []);
});

test('a suite that hangs past the guest timeout: its tests so far stand, the rest is ERROR', () => {
  const consoleLog = [...bootLines, 'patchbay: suite smoke start (timeout 60s)', '    KTAP version 1', '    1..3', '    ok 1 io_uring_setup'].join('\n');
  const ktap = 'KTAP version 1\n1..1\n    KTAP version 1\n    1..3\n    ok 1 io_uring_setup\n';
  const v = judgeGuestRun({ consoleLog, ktap, exitCode: null, timedOut: true, timeoutSeconds: 120, suites: ['smoke'] });
  assert.equal(v.boot.status, 'PASS');
  assert.equal(v.test?.status, 'ERROR');
  const byTest = new Map(v.results.map((r) => [r.test, r]));
  assert.equal(byTest.get('io_uring_setup')?.status, 'PASS');
  assert.equal(byTest.get('(timeout)')?.status, 'ERROR');
  assert.equal(byTest.get('(timeout)')?.suite, 'smoke');
  assert.ok(v.results.every((r) => r.status !== 'FAIL'), 'a hang is not blamed as a failure');
});

test('a WARNING while a suite runs fails that suite even if its tests printed ok', () => {
  const consoleLog = [
    ...bootLines,
    'patchbay: suite smoke start (timeout 60s)',
    '[    3.100000] ------------[ cut here ]------------',
    '[    3.100001] WARNING: CPU: 1 PID: 77 at io_uring/kbuf.c:432 io_kbuf_recycle_legacy+0x8a/0xa0',
    '[    3.100002] Modules linked in:',
    '[    3.100003] RIP: 0010:io_kbuf_recycle_legacy+0x8a/0xa0',
    '[    3.100004] Call Trace:',
    '[    3.100005]  <TASK>',
    '[    3.100006]  io_read+0x1a2/0x3c0',
    '[    3.100007]  io_issue_sqe+0x55/0x4a0',
    '[    3.100008]  io_submit_sqes+0x1d0/0x6d0',
    '[    3.100009]  __do_sys_io_uring_enter+0x2f1/0x9c0',
    '[    3.100010]  do_syscall_64+0x5e/0x160',
    '[    3.100011]  </TASK>',
    '[    3.100012] ---[ end trace 0000000000000000 ]---',
    'patchbay: suite smoke end (exit 0)',
    'patchbay: all suites done',
  ].join('\n');
  const ktap = 'KTAP version 1\n1..1\n    KTAP version 1\n    1..1\n    ok 1 pbuf_ring_read_select\nok 1 smoke\n';
  const v = judgeGuestRun({ consoleLog, ktap, exitCode: 0, timedOut: false, timeoutSeconds: 120, suites: ['smoke'] });
  assert.equal(v.boot.status, 'PASS');
  assert.equal(v.test?.status, 'FAIL');
  const splat = v.results.find((r) => r.test === 'kernel-warning');
  assert.ok(splat, JSON.stringify(v.results));
  assert.equal(splat.suite, 'smoke');
  assert.equal(splat.status, 'FAIL');
  assert.match(splat.detail, /WARNING: .*io_uring\/kbuf\.c:432/);
});

test('requested suites missing from the output are ERROR, not silently absent', () => {
  const consoleLog = [...bootLines, 'patchbay: all suites done'].join('\n');
  const v = judgeGuestRun({ consoleLog, ktap: 'KTAP version 1\n1..0\n', exitCode: 0, timedOut: false, timeoutSeconds: 60, suites: ['smoke'] });
  assert.deepEqual(v.results.map((r) => [r.suite, r.status]), [['smoke', 'ERROR']]);
  assert.equal(v.test?.status, 'ERROR');
});

const run = (stage: StageRun['stage'], status: StageRun['status']): StageRun => ({ stage, status, durationMs: 1, summary: `${stage} ${status}` });

test('the job status is the first non-passing stage, else the test stage\'s', () => {
  assert.deepEqual(overallStatus([run('setup', 'PASS'), run('apply', 'FAIL')]), { status: 'FAIL', stage: 'apply', summary: 'apply: apply FAIL' });
  assert.equal(overallStatus([run('setup', 'MISS')]).status, 'MISS');
  assert.deepEqual(
    overallStatus([run('setup', 'PASS'), run('apply', 'PASS'), run('build', 'PASS'), run('boot', 'PASS'), run('test', 'SKIP')]),
    { status: 'SKIP', stage: null, summary: 'test SKIP' },
  );
  assert.equal(overallStatus([run('setup', 'PASS'), run('apply', 'PASS'), run('build', 'PASS'), run('boot', 'PASS'), run('test', 'ERROR')]).stage, 'test');
  assert.equal(overallStatus([]).status, 'MISS');
});

test('a real boot that oopses in the series\' initcall: FAIL at boot, blamed on its function', () => {
  const v = judgeGuestRun({
    consoleLog: golden('boot-oops.console.log'),
    ktap: golden('boot-oops.ktap'),
    exitCode: 0,
    timedOut: false,
    timeoutSeconds: 600,
    suites: ['smoke'],
  });
  assert.equal(v.boot.status, 'FAIL');
  assert.match(v.boot.summary, /^kernel crashed during boot: BUG: kernel NULL pointer dereference/);
  assert.equal(v.test, null);
  const [crash, ...rest] = v.crashes;
  assert.ok(crash);
  assert.equal(rest.length, 0, 'the panic that follows the oops is the same report');
  assert.equal(crash.kind, 'oops');
  assert.equal(crash.culprit, 'io_kbuf_ring_pin');
  assert.deepEqual(crash.frames.slice(0, 3), ['mutex_lock', 'io_kbuf_ring_pin', 'io_kbuf_pin_selftest']);
});

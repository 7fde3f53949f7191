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

test('a real kbuf run on the 7.1.8 base under TCG: 33 tests, two failing, one skipped, every test named', () => {
  const v = judgeGuestRun({
    consoleLog: golden('kbuf-base-tcg.console.log'),
    ktap: golden('kbuf-base-tcg.ktap'),
    exitCode: 0,
    timedOut: false,
    timeoutSeconds: 2300,
    suites: ['kbuf'],
  });
  assert.equal(v.boot.status, 'PASS');
  assert.deepEqual(v.crashes, []);
  const kbuf = v.results.filter((r) => r.suite === 'kbuf');
  assert.equal(kbuf.length, 33);
  assert.deepEqual(kbuf.filter((r) => r.status === 'FAIL').map((r) => r.test), ['mshot-shutdown-race.t', 'recvsend_bundle.t']);
  assert.deepEqual(kbuf.filter((r) => r.status === 'SKIP').map((r) => r.test), ['read-mshot-stdin.t']);
  assert.match(kbuf.find((r) => r.test === 'recvsend_bundle.t')?.detail ?? '', /TCP test case \(classic=0\) failed/);
  for (const t of ['buf-ring.t', 'kbuf-ring-edges', 'kbuf-unregister-busy']) assert.equal(kbuf.find((r) => r.test === t)?.status, 'PASS', t);
});

const warningLines = readFileSync(new URL('./golden/console/warning-kbuf.log', import.meta.url), 'utf8').split('\n').filter((l) => /^\[\s*\d/.test(l) && !/selftests|fuse: init/.test(l));

test('a splat while a test runs fails that test (no extra row), with the crash\'s fingerprint', () => {
  const consoleLog = [
    ...bootLines,
    'patchbay: suite kbuf start (timeout 600s)',
    '[    3.000000] patchbay: test kbuf/buf-ring.t start',
    ...warningLines,
    '[   40.000000] patchbay: test kbuf/buf-ring.t end',
    '[   40.100000] patchbay: test kbuf/recv-multishot.t start',
    '[   41.000000] patchbay: test kbuf/recv-multishot.t end',
    'patchbay: suite kbuf end (exit 0)',
    'patchbay: all suites done',
  ].join('\n');
  const ktap = 'KTAP version 1\n1..1\n    KTAP version 1\n    1..2\n    # kernel: WARNING: CPU: 0 PID: 312 at io_uring/kbuf.c:186 io_kbuf_commit+0x9c/0xb0\n    not ok 1 buf-ring.t # kernel splat while the test ran (exit 0, 3.0s)\n    ok 2 recv-multishot.t # time=0.9s\nok 1 kbuf\n';
  const v = judgeGuestRun({ consoleLog, ktap, exitCode: 0, timedOut: false, timeoutSeconds: 600, suites: ['kbuf'] });
  assert.equal(v.crashes.length, 1);
  assert.deepEqual(v.results.map((r) => [r.test, r.status]), [['buf-ring.t', 'FAIL'], ['recv-multishot.t', 'PASS'], ['(suite)', 'PASS']].filter(([t]) => v.results.some((r) => r.test === t)));
  const row = v.results.find((r) => r.test === 'buf-ring.t');
  assert.match(row?.detail ?? '', new RegExp(`kernel warning: .*\\[${v.crashes[0]?.fingerprint ?? 'x'}\\]`));
  assert.ok(!v.results.some((r) => r.test.startsWith('kernel-')), 'no separate kernel-warning row');
});

test('a panic in a test, which never prints its result, fails that test by name and leaves the rest not run', () => {
  const consoleLog = [
    ...bootLines,
    'patchbay: suite kbuf start (timeout 600s)',
    '[    3.000000] patchbay: test kbuf/buf-ring.t start',
    '[    3.000000] patchbay: test kbuf/buf-ring.t end',
    '[    3.100000] patchbay: test kbuf/kbuf-unregister-busy start',
    '[    3.200000] BUG: kernel NULL pointer dereference, address: 0000000000000010',
    '[    3.200001] Oops: Oops: 0000 [#1] SMP NOPTI',
    '[    3.200002] RIP: 0010:io_unregister_pbuf_ring+0x4e/0x120',
    '[    3.200003] Call Trace:',
    '[    3.200004]  <TASK>',
    '[    3.200005]  io_unregister_pbuf_ring+0x4e/0x120',
    '[    3.200006]  __io_uring_register+0x6c1/0xf40',
    '[    3.200007]  __do_sys_io_uring_register+0xd4/0x1c0',
    '[    3.200008]  do_syscall_64+0x5e/0x160',
    '[    3.200009]  </TASK>',
    '[    3.200010] Kernel panic - not syncing: Fatal exception',
  ].join('\n');
  const ktap = 'KTAP version 1\n1..1\n    KTAP version 1\n    1..3\n    ok 1 buf-ring.t # time=0.1s\n';
  const v = judgeGuestRun({ consoleLog, ktap, exitCode: 0, timedOut: false, timeoutSeconds: 600, suites: ['kbuf'] });
  const busy = v.results.find((r) => r.test === 'kbuf-unregister-busy');
  assert.ok(busy, JSON.stringify(v.results));
  assert.equal(busy.status, 'FAIL');
  assert.match(busy.detail, /kernel (oops|bug|panic).*io_unregister_pbuf_ring/i);
  assert.equal(v.results.find((r) => r.test === 'buf-ring.t')?.status, 'PASS');
  assert.equal(v.test?.status, 'FAIL');
});

test('re-runs: a crash in the second run of a test marks that run, not the first', () => {
  const consoleLog = [
    ...bootLines,
    'patchbay: suite kbuf start (timeout 600s)',
    '[    3.000000] patchbay: test kbuf/buf-ring.t start',
    '[    3.100000] patchbay: test kbuf/buf-ring.t end',
    'patchbay: suite kbuf end (exit 0)',
    'patchbay: suite kbuf start (timeout 600s)',
    '[    4.000000] patchbay: test kbuf/buf-ring.t start',
    ...warningLines,
    '[   40.000000] patchbay: test kbuf/buf-ring.t end',
    'patchbay: suite kbuf end (exit 0)',
    'patchbay: all suites done',
  ].join('\n');
  const ktap = 'KTAP version 1\n1..2\n    KTAP version 1\n    1..1\n    ok 1 buf-ring.t\nok 1 kbuf\n    KTAP version 1\n    1..1\n    ok 1 buf-ring.t\nok 2 kbuf\n';
  const v = judgeGuestRun({ consoleLog, ktap, exitCode: 0, timedOut: false, timeoutSeconds: 600, suites: ['kbuf', 'kbuf'] });
  assert.deepEqual(v.results.filter((r) => r.test === 'buf-ring.t').map((r) => r.status), ['PASS', 'FAIL']);
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { judgeGuestRun, overallStatus, restoreLastResult, type StageRun } from '../job.ts';

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

test('no kernel banner at all: MISS (QEMU or the harness), not a verdict on the kernel', () => {
  const v = judgeGuestRun({ consoleLog: 'qemu-system-x86_64: cannot set up guest memory \'pc.ram\': Cannot allocate memory\n', ktap: '', exitCode: 1, timedOut: false, timeoutSeconds: 300, suites: ['smoke'] });
  assert.equal(v.boot.status, 'MISS');
  assert.match(v.boot.summary, /no kernel banner/);
  const hung = judgeGuestRun({ consoleLog: '', ktap: '', exitCode: null, timedOut: true, timeoutSeconds: 300, suites: ['smoke'] });
  assert.equal(hung.boot.status, 'MISS', 'silence until the timeout is not a kernel that hung: it never started');
});

test('a WARNING at boot does not fail the boot: it is a splat of that boot, judged against the base\'s boots', () => {
  const consoleLog = [bootLines[0], ...warningLines, ...bootLines.slice(1), 'patchbay: suite smoke start (timeout 60s)', 'patchbay: suite smoke end (exit 0)', 'patchbay: all suites done'].join('\n');
  const ktap = 'KTAP version 1\n1..1\n    KTAP version 1\n    1..1\n    ok 1 pbuf_ring_read_select\nok 1 smoke\n';
  const v = judgeGuestRun({ consoleLog, ktap, exitCode: 0, timedOut: false, timeoutSeconds: 120, suites: ['smoke'] });
  assert.equal(v.boot.status, 'PASS');
  assert.match(v.boot.summary, /1 kernel splat/);
  assert.deepEqual(v.splats.map((x) => [x.kind, x.suite, x.test]), [['warning', null, null]]);
  assert.equal(v.splats[0]?.fingerprint, v.crashes[0]?.fingerprint);
  assert.deepEqual(v.results.map((r) => [r.test, r.status]), [['pbuf_ring_read_select', 'PASS']]);
  assert.deepEqual(v.completed, ['smoke']);
});

test('a WARNING while a suite runs, outside any test, is a splat of that suite\'s boot, not a failing row', () => {
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
  assert.equal(v.test?.status, 'PASS');
  assert.deepEqual(v.results.map((r) => [r.suite, r.test, r.status]), [['smoke', 'pbuf_ring_read_select', 'PASS']]);
  assert.deepEqual(v.splats.map((x) => [x.kind, x.suite, x.test, x.culprit]), [['warning', 'smoke', null, 'io_kbuf_recycle_legacy']]);
  assert.match(v.splats[0]?.title ?? '', /WARNING: .*io_uring\/kbuf\.c:432/);
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

test('a splat while a test runs: the test keeps its own result and a note; the splat is the boot\'s, with where it landed', () => {
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
  const ktap = 'KTAP version 1\n1..1\n    KTAP version 1\n    1..2\n    # kernel: WARNING: CPU: 0 PID: 312 at io_uring/kbuf.c:186 io_kbuf_commit+0x9c/0xb0\n    ok 1 buf-ring.t # time=3.0s\n    ok 2 recv-multishot.t # time=0.9s\nok 1 kbuf\n';
  const v = judgeGuestRun({ consoleLog, ktap, exitCode: 0, timedOut: false, timeoutSeconds: 600, suites: ['kbuf'] });
  assert.equal(v.crashes.length, 1);
  // Exactly these rows: the suite has subtests, so no "(suite)" row of its own, and no row for the splat.
  assert.deepEqual(v.results.map((r) => [r.suite, r.test, r.status]), [['kbuf', 'buf-ring.t', 'PASS'], ['kbuf', 'recv-multishot.t', 'PASS']]);
  const row = v.results.find((r) => r.test === 'buf-ring.t');
  assert.match(row?.detail ?? '', new RegExp(`kernel warning while this test ran: .*\\[${v.crashes[0]?.fingerprint ?? 'x'}\\]`));
  assert.deepEqual(v.splats.map((x) => [x.fingerprint, x.suite, x.test]), [[v.crashes[0]?.fingerprint, 'kbuf', 'buf-ring.t']]);
});

test('a panic in a test, which never prints its result, makes that test an ERROR by name (the panic is judged per kernel)', () => {
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
  assert.equal(busy.status, 'ERROR');
  assert.match(busy.detail, /did not finish: kernel (oops|bug|panic).*io_unregister_pbuf_ring/i);
  assert.equal(v.results.find((r) => r.test === 'buf-ring.t')?.status, 'PASS');
  assert.deepEqual(v.splats.map((x) => [x.suite, x.test]), [['kbuf', 'kbuf-unregister-busy']]);
  assert.deepEqual(v.completed, [], 'the suite never finished');
});

test('re-runs: a crash in the second run of a test notes that run, not the first', () => {
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
  const runs = v.results.filter((r) => r.test === 'buf-ring.t');
  assert.deepEqual(runs.map((r) => r.status), ['PASS', 'PASS']);
  assert.deepEqual(runs.map((r) => r.detail.includes(v.crashes[0]?.fingerprint ?? 'x')), [false, true]);
});

test('the KTAP\'s structural problems are in the verdict, with ktap.txt line numbers; none for a well-formed run', () => {
  const consoleLog = [...bootLines, 'patchbay: suite smoke start (timeout 60s)', 'patchbay: suite smoke end (exit 0)', 'patchbay: all suites done'].join('\n');
  const ktap = 'KTAP version 1\n1..1\n    KTAP version 1\n    1..2\n    ok 2 second\n    ok 1 first\nok 1 smoke\n';
  const v = judgeGuestRun({ consoleLog, ktap, exitCode: 0, timedOut: false, timeoutSeconds: 60, suites: ['smoke'] });
  assert.ok(v.ktapProblems.length > 0);
  assert.ok(v.ktapProblems.every((p) => /line \d+/.test(p)), v.ktapProblems.join(' | '));
  const good = judgeGuestRun({ consoleLog: golden('pass-smoke.console.log'), ktap: golden('pass-smoke.ktap'), exitCode: 0, timedOut: false, timeoutSeconds: 120, suites: ['smoke'] });
  assert.deepEqual(good.ktapProblems, []);
});

test("the KTAP channel's lost last line (the guest rebooted before its UART sent it) is taken from the console's end marker, with a note", () => {
  // Recorded in a CI run: every smoke subtest on ttyS1, the suite's own "ok 1 smoke" not.
  const ktap = golden('last-line-lost.ktap');
  assert.doesNotMatch(ktap, /^ok 1 smoke/m);
  const v = judgeGuestRun({ consoleLog: golden('last-line-lost.console.log'), ktap, exitCode: 0, timedOut: false, timeoutSeconds: 120, suites: ['smoke'] });
  assert.equal(v.test?.status, 'PASS');
  assert.ok(!v.results.some((r) => r.test === '(suite)'), 'no ERROR row for the suite');
  assert.equal(v.results.filter((r) => r.status === 'PASS').length, 6);
  assert.match(v.ktapProblems.join('\n'), /taken from the console's end marker \(exit 0\)/);
});

test('restoreLastResult: only the last block, only with the end marker of that same run, with init\'s result for its exit code', () => {
  const block = (s: string): string => `    # Subtest: ${s}\n    1..1\n    ok 1 t\n`;
  const ktap = `KTAP version 1\n1..2\n${block('kbuf')}ok 1 kbuf\n${block('fuse')}`;
  const ends = (rc2: number): string[] => ['patchbay: suite kbuf start (timeout 60s)', 'patchbay: suite kbuf end (exit 0)', 'patchbay: suite fuse start (timeout 15s)', `[   12.5] patchbay: suite fuse end (exit ${rc2})`];
  assert.match(restoreLastResult(ktap, ends(0)).ktap, /\nok 2 fuse\n$/);
  assert.match(restoreLastResult(ktap, ends(77)).ktap, /\nok 2 fuse # SKIP suite reported skip \(exit 77\)\n$/);
  assert.match(restoreLastResult(ktap, ends(137)).ktap, /\nnot ok 2 fuse # TIMEOUT 15 seconds\n$/, "init's line, with the seconds of the suite's start marker");
  assert.match(restoreLastResult(ktap, ends(1)).ktap, /\nnot ok 2 fuse # exit=1\n$/);
  // The guest died in fuse: no end marker for it, nothing made up.
  assert.deepEqual(restoreLastResult(ktap, ends(0).slice(0, 3)), { ktap, notes: [] });
  // An end marker of another suite at that place: nothing made up.
  assert.deepEqual(restoreLastResult(ktap, ['patchbay: suite kbuf end (exit 0)', 'patchbay: suite smoke end (exit 0)']), { ktap, notes: [] });
  // The last block has its line: unchanged.
  const whole = `${ktap}ok 2 fuse\n`;
  assert.deepEqual(restoreLastResult(whole, ends(1)), { ktap: whole, notes: [] });
});

test('a result line lost between two suites is put back before the next block, and the suites keep their own rows', () => {
  // Recorded in a CI run: "ok 1 basefail" missing on ttyS1, the console showing its end marker.
  const ktap = golden('line-lost-between-suites.ktap');
  assert.doesNotMatch(ktap, /^ok 1 basefail/m);
  const v = judgeGuestRun({ consoleLog: golden('line-lost-between-suites.console.log'), ktap, exitCode: 0, timedOut: false, timeoutSeconds: 300, suites: ['basefail', 'hang', 'later'] });
  const rows = v.results.map((r) => `${r.suite}/${r.test}=${r.status}`);
  assert.deepEqual(rows.filter((r) => r.startsWith('basefail/')), ['basefail/works=PASS', 'basefail/broken=FAIL', 'basefail/leaves-child=PASS', 'basefail/hangs=ERROR', 'basefail/nothing-left=PASS']);
  assert.ok(rows.includes('later/nothing-left=PASS'));
  assert.ok(!rows.some((r) => r.startsWith('hang/') && !r.startsWith('hang/(')), `no basefail test under hang: ${rows.join(' ')}`);
  assert.match(v.ktapProblems.join('\n'), /lost suite basefail's result line \(suite 1\)/);
});

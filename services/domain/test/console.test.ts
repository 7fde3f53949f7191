import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { classify, findCrashes, isGenericFrame, normalizeTitle, type CrashReport } from '../console.ts';
import { assertGolden, GOLDEN_CASES, goldenInputs } from './golden-cases.ts';

const GOLDEN = join(import.meta.dirname, 'golden', 'console');

function golden(name: string): string {
  return readFileSync(join(GOLDEN, `${name}.log`), 'utf8');
}

// Golden files: NAME.log in, NAME.json out (the CrashReport[]). With
// UPDATE_GOLDEN=1 the expected files are rewritten (not under CI): read
// every one after.
for (const file of goldenInputs(GOLDEN, '.log', GOLDEN_CASES.console)) {
  const name = file.slice(0, -'.log'.length);
  test(`golden console: ${name}`, () => {
    assertGolden(join(GOLDEN, `${name}.json`), findCrashes(golden(name)));
  });
}

function only(reports: readonly CrashReport[]): CrashReport {
  assert.equal(reports.length, 1, reports.map((r) => r.title).join('; '));
  const [r] = reports;
  assert.ok(r !== undefined);
  return r;
}

/**
 * The same crash on another run: later timestamps, other addresses and
 * offsets (another build), another CPU and PID, "\r\n" line ends.
 */
function elsewhere(log: string): string {
  return log
    .replace(/^\[\s*(\d+)\.(\d+)\]/gm, (_m, s: string, us: string) => `[${String(Number(s) + 1000).padStart(5)}.${us}]`)
    .replace(/\+0x([0-9a-f]+)\/0x([0-9a-f]+)/g, (_m, off: string, len: string) => {
      const n = parseInt(off, 16) + 7;
      return `+0x${n.toString(16)}/0x${(parseInt(len, 16) + 16).toString(16)}`;
    })
    .replace(/ffff8881/g, 'ffff8882')
    .replace(/ffffc9000/g, 'ffffc9001')
    .replace(/0x7f3c5e9/g, '0x7f11223')
    .replace(/CPU: 1 /g, 'CPU: 0 ')
    .replace(/PID: 245 /g, 'PID: 1789 ')
    .replace(/\n/g, '\r\n');
}

test('the same oops elsewhere (times, addresses, offsets, CPU, PID) has the same fingerprint', () => {
  const log = golden('oops-null-io_uring');
  const moved = elsewhere(log);
  assert.notEqual(moved, log);
  const a = only(findCrashes(log));
  const b = only(findCrashes(moved));
  assert.equal(b.fingerprint, a.fingerprint);
  assert.deepEqual(b.frames, a.frames);
  assert.equal(b.culprit, a.culprit);
  assert.equal(b.kind, a.kind);
  assert.equal(b.line, a.line);
  assert.ok(!b.excerpt.includes('\r'));
});

test('the same oops with other addresses in the title has the same fingerprint', () => {
  const log = golden('oops-null-io_uring').replace('address: 0000000000000010', 'address: 0000000000000018');
  assert.equal(only(findCrashes(log)).fingerprint, only(findCrashes(golden('oops-null-io_uring'))).fingerprint);
});

test('another call chain, or another faulting function, gives another fingerprint', () => {
  const base = only(findCrashes(golden('oops-null-io_uring')));
  const otherCaller = only(findCrashes(golden('oops-null-io_uring').replace(/ io_recv\+/g, ' io_recvmsg+')));
  assert.notEqual(otherCaller.fingerprint, base.fingerprint);
  assert.equal(otherCaller.culprit, base.culprit);

  const otherCulprit = only(
    findCrashes(golden('oops-null-io_uring').replace(/io_kbuf_recycle_ring\+/g, 'io_kbuf_recycle_legacy+')),
  );
  assert.notEqual(otherCulprit.fingerprint, base.fingerprint);
  assert.equal(otherCulprit.culprit, 'io_kbuf_recycle_legacy');
});

test('the same chain reported as another kind has another fingerprint', () => {
  const warning = only(findCrashes(golden('warning-kbuf')));
  const asBug = only(findCrashes(golden('warning-kbuf').replace(/WARNING: CPU: 0 PID: 312 at (\S+) .*/, 'kernel BUG at $1!')));
  assert.equal(asBug.kind, 'bug');
  assert.deepEqual(asBug.frames, warning.frames);
  assert.notEqual(asBug.fingerprint, warning.fingerprint);
});

test('an oops followed by "Kernel panic - not syncing: Fatal exception" is reported once', () => {
  const r = only(findCrashes(golden('oops-null-io_uring')));
  assert.equal(r.kind, 'oops');
  assert.match(r.excerpt, /Kernel panic - not syncing: Fatal exception/);
});

test('"Attempted to kill init!" after an oops belongs to the oops', () => {
  const log = golden('oops-null-io_uring').replace(
    'Kernel panic - not syncing: Fatal exception',
    'Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009',
  );
  assert.equal(only(findCrashes(log)).kind, 'oops');
});

test('a panic long after an oops, or with no oops, is a panic of its own', () => {
  const filler = Array.from({ length: 120 }, (_, i) => `[   30.${String(i).padStart(6, '0')}] fuse: something ${i}`);
  const log = [golden('bug-fuse'), ...filler, '[   40.000000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100'].join(
    '\n',
  );
  const reports = findCrashes(log);
  assert.deepEqual(
    reports.map((r) => r.kind),
    ['bug', 'panic'],
  );
  const panic = reports[1];
  assert.ok(panic !== undefined);
  assert.equal(panic.frames.length, 0);
  assert.equal(panic.culprit, null);
  assert.equal(panic.title, 'Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100');
});

test('a panic without a trace is fingerprinted by its normalized title', () => {
  const a = only(findCrashes('[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n'));
  const b = only(findCrashes('[    2.5] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(8,1)\n'));
  const c = only(findCrashes('Kernel panic - not syncing: No working init found.\n'));
  assert.equal(a.fingerprint, b.fingerprint);
  assert.notEqual(a.fingerprint, c.fingerprint);
  assert.match(a.fingerprint, /^[0-9a-f]{16}$/);
});

test('a WARNING with only crash machinery in its trace blames the function in its title', () => {
  const log = [
    '[    5.000000] ------------[ cut here ]------------',
    '[    5.000001] WARNING: CPU: 1 PID: 77 at io_uring/kbuf.c:99 io_kbuf_commit.part.0+0x9c/0xb0',
    '[    5.000002] Modules linked in:',
    '[    5.000003] Call Trace:',
    '[    5.000004]  <TASK>',
    '[    5.000005]  dump_stack_lvl+0x5d/0x80',
    '[    5.000006]  __warn+0x89/0x150',
    '[    5.000007]  </TASK>',
    '[    5.000008] ---[ end trace 0000000000000000 ]---',
  ].join('\n');
  const r = only(findCrashes(log));
  assert.equal(r.kind, 'warning');
  assert.deepEqual(r.frames, ['dump_stack_lvl', '__warn']);
  assert.equal(r.culprit, 'io_kbuf_commit');
  assert.equal(r.line, 2);
  assert.equal(r.excerpt.split('\n').length, 9, 'from "cut here" to the end marker');
});

test('two reports in one log, in order, each with its own lines', () => {
  const log = [golden('warning-kbuf'), golden('kasan-uaf'), golden('hung-task')].join('\n');
  const reports = findCrashes(log);
  assert.deepEqual(
    reports.map((r) => r.kind),
    ['warning', 'kasan', 'hung_task'],
  );
  const warningLines = golden('warning-kbuf').split('\n').length;
  assert.equal(reports[1]?.line, warningLines + 3);
});

test('UBSAN, RCU stall and other lockdep headlines', () => {
  const ubsan = only(
    findCrashes(
      [
        '[   9.1] ================================================================================',
        '[   9.1] UBSAN: shift-out-of-bounds in io_uring/kbuf.c:412:23',
        '[   9.1] shift exponent 64 is too large for 64-bit type \'long unsigned int\'',
        '[   9.1] CPU: 0 UID: 0 PID: 99 Comm: kbuf_pin Not tainted 6.12.0 #1',
        '[   9.1] Call Trace:',
        '[   9.1]  <TASK>',
        '[   9.1]  dump_stack_lvl+0x5d/0x80',
        '[   9.1]  __ubsan_handle_shift_out_of_bounds.cold+0x61/0xec',
        '[   9.1]  io_register_pbuf_ring.cold+0x1f/0x30',
        '[   9.1]  __io_uring_register+0x5a3/0xa10',
        '[   9.1]  </TASK>',
        '[   9.1] ---[ end trace ]---',
        '[   9.2] after',
      ].join('\n'),
    ),
  );
  assert.equal(ubsan.kind, 'ubsan');
  assert.equal(ubsan.culprit, 'io_register_pbuf_ring');
  assert.equal(ubsan.excerpt.split('\n').length, 12);

  const rcu = only(
    findCrashes(
      [
        'rcu: INFO: rcu_preempt self-detected stall on CPU',
        'rcu: \t1-....: (21000 ticks this GP) idle=4b4c/1/0x4000000000000000 softirq=1234/1234 fqs=5250',
        'CPU: 1 UID: 0 PID: 600 Comm: fuse_uring_kbuf Not tainted 6.12.0 #1',
        'RIP: 0010:fuse_uring_commit_fetch+0x1a2/0x4a0',
        'Call Trace:',
        ' <IRQ>',
        ' ? rcu_dump_cpu_stacks+0xed/0x170',
        ' rcu_sched_clock_irq+0x4b1/0xc80',
        ' update_process_times+0x74/0xb0',
        ' </IRQ>',
        ' <TASK>',
        ' fuse_uring_cmd+0x1e6/0x300',
        ' io_uring_cmd+0xa4/0x1a0',
        ' </TASK>',
      ].join('\n'),
    ),
  );
  assert.equal(rcu.kind, 'rcu_stall');
  assert.deepEqual(rcu.frames, [
    'fuse_uring_commit_fetch',
    'rcu_sched_clock_irq',
    'update_process_times',
    'fuse_uring_cmd',
    'io_uring_cmd',
  ]);
  assert.equal(rcu.culprit, 'fuse_uring_commit_fetch');

  assert.equal(classify('WARNING: possible recursive locking detected'), 'lockdep');
  assert.equal(classify('WARNING: inconsistent lock state'), 'lockdep');
  assert.equal(classify('WARNING: suspicious RCU usage'), 'lockdep');
  assert.equal(classify('WARNING: bad unlock balance detected!'), 'lockdep');
  assert.equal(classify('INFO: rcu_sched detected stalls on CPUs/tasks:'), 'rcu_stall');
  assert.equal(classify('BUG: unable to handle page fault for address: ffffc90000a3e000'), 'oops');
  assert.equal(classify('Oops: general protection fault, probably for non-canonical address 0xdffffc0000000002: 0000 [#1] PREEMPT SMP KASAN NOPTI'), 'oops');
  assert.equal(classify('BUG: sleeping function called from invalid context at kernel/locking/mutex.c:585'), 'bug');
  assert.equal(classify('NMI watchdog: Watchdog detected hard LOCKUP on cpu 1'), 'soft_lockup');
  assert.equal(classify('WARNING: CPU: 0 PID: 1 at kernel/locking/lockdep.c:232 __lock_acquire+0x1/0x2'), 'warning');
});

test('ordinary lines that mention crash words are not crashes', () => {
  const log = [
    '[    0.000000] Command line: console=ttyS0 panic=-1 oops=panic panic_on_warn=1',
    '[    0.034567] rcu: Preemptible hierarchical RCU implementation.',
    '[    0.110000] NMI watchdog: Perf NMI watchdog permanently disabled',
    'WARNING: test ran without hugepages',
    '# WARNING: CPU: 0 PID: 1 at fake.c:1 fake+0x1/0x2',
    'echo "BUG: kernel NULL pointer dereference" > /dev/null',
    '[    1.000000] ... MAX_LOCKDEP_KEYS:        8192',
  ].join('\n');
  assert.deepEqual(findCrashes(log), []);
  assert.deepEqual(findCrashes(''), []);
});

test('an excerpt holds at most 60 lines; a report cut off by the end of the log still counts', () => {
  const frames = Array.from({ length: 100 }, (_, i) => ` fuse_fn_${i}+0x1/0x2`);
  const log = ['kernel BUG at fs/fuse/dev.c:1!', 'RIP: 0010:fuse_top+0x1/0x2', 'Call Trace:', ...frames].join('\n');
  const r = only(findCrashes(log));
  assert.equal(r.excerpt.split('\n').length, 60);
  assert.equal(r.frames.length, 101);
  assert.deepEqual(r.frames.slice(0, 2), ['fuse_top', 'fuse_fn_0']);
});

test('frames: symbols only, "? " frames skipped, modules and compiler suffixes dropped', () => {
  const log = [
    'BUG: kernel NULL pointer dereference, address: 0000000000000000',
    'RIP: 0010:fuse_dev_do_read.isra.0+0x1f/0x90 [fuse]',
    'Call Trace:',
    ' <TASK>',
    ' ? __die+0x23/0x70',
    ' fuse_dev_do_read.isra.0+0x1f/0x90 [fuse]',
    ' fuse_dev_read+0x6a/0x90 [fuse]',
    ' [<ffffffff81234567>] vfs_read+0x2b4/0x360',
    ' ksys_read.cold+0x67/0xe0',
    ' </TASK>',
  ].join('\n');
  const r = only(findCrashes(log));
  assert.deepEqual(r.frames, ['fuse_dev_do_read', 'fuse_dev_read', 'vfs_read', 'ksys_read']);
  assert.equal(r.culprit, 'fuse_dev_do_read');
});

test('generic frames and title normalization', () => {
  for (const f of ['dump_stack_lvl', 'panic', '__warn', 'warn_slowpath_fmt', 'report_bug', 'handle_bug', 'exc_invalid_op', 'asm_exc_page_fault', 'do_error_trap', 'die', 'oops_end', 'page_fault_oops', '__die_body', 'kasan_report', '__schedule', '__pfx_kernel_init']) {
    assert.ok(isGenericFrame(f), f);
  }
  for (const f of ['io_register_pbuf_ring', 'fuse_uring_cmd', 'panic_handler_fuse', 'dietpi']) {
    assert.ok(!isGenericFrame(f), f);
  }
  assert.equal(
    normalizeTitle('INFO: task kworker/u8:2:123 blocked for more than 122 seconds.'),
    'INFO: task kworker/uN:N:N blocked for more than N seconds.',
  );
  assert.equal(
    normalizeTitle('BUG: unable to handle page fault for address: ffffc90000a3e000'),
    'BUG: unable to handle page fault for address: ?',
  );
  assert.equal(normalizeTitle('BUG: KASAN: slab-out-of-bounds in f+0x1f/0x90'), 'BUG: KASAN: slab-out-of-bounds in f+0x?/0x?');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBuildDiagnostics, parseGitAmFailure, planBuild, shouldRetryClean, treeRelative } from '../build.ts';

test('git am: names the failing patch and keeps git\'s error lines', () => {
  const out = [
    'Applying: io_uring/kbuf: clarify the unit of PEEK_MAX_IMPORT',
    'Applying: io_uring/kbuf: refuse to unregister a pinned kernel-managed ring',
    'error: sha1 information is lacking or useless (io_uring/kbuf.h).',
    'error: could not build fake ancestor',
    'hint: Use \'git am --show-current-patch=diff\' to see the failed patch',
    'Patch failed at 0002 io_uring/kbuf: refuse to unregister a pinned kernel-managed ring',
    'When you have resolved this problem, run "git am --continue".',
  ].join('\n');
  const f = parseGitAmFailure(out);
  assert.equal(f.patchIndex, 2);
  assert.equal(f.title, 'io_uring/kbuf: refuse to unregister a pinned kernel-managed ring');
  assert.deepEqual(f.messages, [
    'error: sha1 information is lacking or useless (io_uring/kbuf.h).',
    'error: could not build fake ancestor',
  ]);
});

test('git am: a conflict after a 3-way fallback', () => {
  const out = [
    'Applying: a',
    'Using index info to reconstruct a base tree...',
    'M\tio_uring/kbuf.h',
    'Falling back to patching base and 3-way merge...',
    'Auto-merging io_uring/kbuf.h',
    'CONFLICT (content): Merge conflict in io_uring/kbuf.h',
    'error: Failed to merge in the changes.',
    'Patch failed at 0001 a',
  ].join('\n');
  const f = parseGitAmFailure(out);
  assert.equal(f.patchIndex, 1);
  assert.deepEqual(f.messages, ['CONFLICT (content): Merge conflict in io_uring/kbuf.h', 'error: Failed to merge in the changes.']);
});

test('git am: without "Patch failed at", the last patch being applied is blamed', () => {
  const f = parseGitAmFailure('Applying: one\nApplying: two\nfatal: corrupt patch at line 12\n');
  assert.equal(f.patchIndex, 2);
  assert.equal(f.title, 'two');
  assert.deepEqual(f.messages, ['fatal: corrupt patch at line 12']);
});

test('compiler errors from an O= build are made tree-relative', () => {
  const log = [
    '  CC      io_uring/kbuf.o',
    '../linux/io_uring/kbuf.c: In function \'io_unregister_pbuf_ring\':',
    '../linux/io_uring/kbuf.c:719:23: error: \'IOBL_PINNED\' undeclared (first use in this function)',
    '  719 |         if (bl->flags & IOBL_PINNED)',
    '/work/linux/io_uring/kbuf.h:12:1: warning: unused variable \'x\' [-Wunused-variable]',
    'make[4]: *** [/work/linux/scripts/Makefile.build:287: io_uring/kbuf.o] Error 1',
  ].join('\n');
  const d = parseBuildDiagnostics(log);
  assert.deepEqual(d, [
    { file: 'io_uring/kbuf.c', line: 719, column: 23, severity: 'error', message: '\'IOBL_PINNED\' undeclared (first use in this function)' },
    { file: 'io_uring/kbuf.h', line: 12, column: 1, severity: 'warning', message: 'unused variable \'x\' [-Wunused-variable]' },
  ]);
});

test('linker errors name the object\'s source and the symbol', () => {
  const log = [
    'ld: io_uring/uring_cmd.o: in function `io_uring_cmd_buf_ring_pin\':',
    'uring_cmd.c:(.text+0x1a5): undefined reference to `io_kbuf_ring_pin\'',
  ].join('\n');
  assert.deepEqual(parseBuildDiagnostics(log), [
    { file: 'io_uring/uring_cmd.c', line: null, column: null, severity: 'error', message: 'undefined reference to `io_kbuf_ring_pin\'' },
  ]);
});

test('treeRelative strips the build\'s view of the source tree', () => {
  assert.equal(treeRelative('../linux/io_uring/kbuf.c'), 'io_uring/kbuf.c');
  assert.equal(treeRelative('/work/linux/fs/fuse/dev.c'), 'fs/fuse/dev.c');
  assert.equal(treeRelative('io_uring/kbuf.c'), 'io_uring/kbuf.c');
});

test('build plan: incremental unless Kconfig, Makefiles or scripts change', () => {
  assert.equal(planBuild(['io_uring/kbuf.c', 'io_uring/kbuf.h']).mode, 'incremental');
  const p = planBuild(['io_uring/kbuf.c', 'io_uring/Kconfig']);
  assert.equal(p.mode, 'clean');
  assert.match(p.reason, /io_uring\/Kconfig/);
  assert.equal(planBuild(['fs/fuse/Makefile']).mode, 'clean');
  assert.equal(planBuild(['scripts/kconfig/conf.c']).mode, 'clean');
  // make bzImage never reads selftests or documentation: their Makefiles are the suites' business.
  assert.equal(planBuild(['tools/testing/selftests/filesystems/fuse/Makefile', 'Documentation/Makefile']).mode, 'incremental');
  assert.equal(planBuild(['tools/objtool/Makefile']).mode, 'clean');
  assert.equal(planBuild(['arch/x86/Kconfig.debug']).mode, 'clean');
  assert.equal(planBuild([]).mode, 'incremental');
});

test('a failed incremental build is retried clean only when the series is not evidently at fault', () => {
  const err = (file: string) => ({ file, line: 1, column: 1, severity: 'error' as const, message: 'x' });
  assert.equal(shouldRetryClean([err('io_uring/kbuf.c')], ['io_uring/kbuf.c']), false, 'error in a changed file');
  assert.equal(shouldRetryClean([err('io_uring/net.c')], ['io_uring/kbuf.h']), false, 'the series changed a header');
  assert.equal(shouldRetryClean([err('fs/fuse/dev.c')], ['io_uring/kbuf.c']), true, 'error elsewhere: stale state?');
  assert.equal(shouldRetryClean([], ['io_uring/kbuf.c']), true, 'no diagnostics at all (e.g. killed)');
});

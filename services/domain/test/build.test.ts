import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyzeBuildFailure, applyEvidence, buildEnvironmentFailure, formatDiagnostics, parseBuildDiagnostics, parseGitAmFailure, planBuild, shouldRetryClean, staleDependency, treeRelative } from '../build.ts';

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

test('git am: without "Patch failed at", no patch is named and the output is no evidence', () => {
  // Before: the last "Applying:" was blamed whatever git said after it.
  const out = 'Applying: one\nApplying: two\nfatal: corrupt patch at line 12\n';
  const f = parseGitAmFailure(out);
  assert.equal(f.patchIndex, null);
  assert.equal(f.title, null);
  assert.deepEqual(f.messages, ['fatal: corrupt patch at line 12']);
  assert.deepEqual(applyEvidence(out), { blame: false, reason: 'git named no failing patch (no "Patch failed at")' });
});

test('git am killed mid-series (no message at all) names no patch', () => {
  const out = 'Applying: io_uring/kbuf: clarify the unit of PEEK_MAX_IMPORT\nApplying: io_uring/kbuf: refuse to unregister\n';
  assert.deepEqual(parseGitAmFailure(out), { patchIndex: null, title: null, messages: [] });
  assert.equal(applyEvidence(out).blame, false);
});

test('git am: "Patch failed at" and git\'s error lines are evidence against that patch', () => {
  const conflict = [
    'Applying: a',
    'Using index info to reconstruct a base tree...',
    'Falling back to patching base and 3-way merge...',
    'CONFLICT (content): Merge conflict in io_uring/kbuf.h',
    'error: Failed to merge in the changes.',
    'Patch failed at 0001 a',
  ].join('\n');
  assert.deepEqual(applyEvidence(conflict), { blame: true });
  const plain = 'Applying: a\nerror: patch failed: io_uring/kbuf.c:719\nerror: io_uring/kbuf.c: patch does not apply\nPatch failed at 0001 a\n';
  assert.deepEqual(applyEvidence(plain), { blame: true });
});

test('git am: "Patch failed at" without an error or CONFLICT line is no evidence', () => {
  const out = 'Applying: a\nPatch failed at 0001 a\nWhen you have resolved this problem, run "git am --continue".\n';
  assert.equal(parseGitAmFailure(out).patchIndex, 1);
  const e = applyEvidence(out);
  assert.equal(e.blame, false);
  assert.match(e.reason, /printed no error or CONFLICT line/);
});

test('git am: an empty patch is the one after those applied (git prints no "Applying:" for it)', () => {
  // git 2.39's output for a three-patch mbox whose second patch has no diff.
  const out = [
    'Applying: two',
    'Patch is empty.',
    'When you have resolved this problem, run "git am --continue".',
    'If you prefer to skip this patch, run "git am --skip" instead.',
    'To record the empty patch as an empty commit, run "git am --allow-empty".',
    'To restore the original branch and stop patching, run "git am --abort".',
  ].join('\n');
  assert.deepEqual(parseGitAmFailure(out), { patchIndex: 2, title: null, messages: ['Patch is empty.'] });
  assert.deepEqual(applyEvidence(out), { blame: true });
});

test('git am: a full disk, a corrupt object or a stale lock is trouble with the machine, not the patch', () => {
  const cases = [
    ['Applying: a', 'error: unable to write file io_uring/kbuf.c mode 100644: No space left on device', 'error: patch failed: io_uring/kbuf.c:1', 'Patch failed at 0001 a'],
    ['Applying: a', 'Using index info to reconstruct a base tree...', 'error: inflate: data stream error (incorrect header check)', 'error: unable to read sha1 file of io_uring/kbuf.h (0123abcd)', 'error: could not build fake ancestor', 'Patch failed at 0001 a'],
    ['fatal: Unable to create \'/work/linux/.git/index.lock\': File exists.'],
  ];
  for (const lines of cases) {
    const e = applyEvidence(lines.join('\n'));
    assert.equal(e.blame, false, lines.join(' | '));
    assert.match(e.reason, /trouble with the machine or the repository/);
  }
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

test('linker: multiple definitions are diagnostics too', () => {
  const log = [
    'ld: io_uring/net.o: in function `io_kbuf_ring_pin\':',
    'net.c:(.text+0x0): multiple definition of `io_kbuf_ring_pin\'; io_uring/kbuf.o:kbuf.c:(.text+0x1a0): first defined here',
  ].join('\n');
  assert.deepEqual(parseBuildDiagnostics(log), [
    { file: 'io_uring/net.c', line: null, column: null, severity: 'error', message: 'multiple definition of `io_kbuf_ring_pin\'' },
  ]);
});

// Golden-style: what scripts/kconfig of 7.1.8 prints (parser.y, lexer.l, symbol.c), as make shows it.
test('Kconfig diagnostics: syntax errors, unknown statements, missing sources, recursive dependencies', () => {
  const log = [
    '  SYNC    include/config/auto.conf',
    'io_uring/Kconfig:12: syntax error',
    'io_uring/Kconfig:11: unknown statement "depend"',
    'fs/fuse/Kconfig:3:warning: ignoring unsupported character \'`\'',
    'drivers/Kconfig:5: can\'t open file "drivers/x/Kconfig"',
    'arch/x86/Kconfig.debug:40: error: choice member must be bool',
    'fs/Kconfig:20: \'FUSE_KMBUF\' in different file than \'FUSE_FS\'',
    'fs/fuse/Kconfig:1: location of the \'FUSE_FS\'',
    'error: recursive dependency detected!',
    '\tsymbol FUSE_IO_URING depends on IO_URING',
    '\tsymbol IO_URING is selected by FUSE_IO_URING',
    'For a resolution refer to Documentation/kbuild/kconfig-language.rst',
    'subsection "Kconfig recursive dependency limitations"',
    '',
    'make[3]: *** [/work/linux/scripts/kconfig/Makefile:85: syncconfig] Error 1',
    '*** Error during sync of the configuration.',
  ].join('\n');
  assert.deepEqual(parseBuildDiagnostics(log), [
    { file: 'io_uring/Kconfig', line: 12, column: null, severity: 'error', message: 'syntax error' },
    { file: 'io_uring/Kconfig', line: 11, column: null, severity: 'error', message: 'unknown statement "depend"' },
    { file: 'fs/fuse/Kconfig', line: 3, column: null, severity: 'warning', message: 'ignoring unsupported character \'`\'' },
    { file: 'drivers/Kconfig', line: 5, column: null, severity: 'error', message: 'can\'t open file "drivers/x/Kconfig"' },
    { file: 'arch/x86/Kconfig.debug', line: 40, column: null, severity: 'error', message: 'choice member must be bool' },
    { file: 'fs/Kconfig', line: 20, column: null, severity: 'error', message: '\'FUSE_KMBUF\' in different file than \'FUSE_FS\'' },
    { file: '(Kconfig)', line: null, column: null, severity: 'error', message: 'recursive dependency detected! symbol FUSE_IO_URING depends on IO_URING; symbol IO_URING is selected by FUSE_IO_URING' },
  ]);
});

// Golden: what `make bzImage` printed on the 7.1.8 warm base after each edit of io_uring/Kconfig (captured in the runner image).
test('Kconfig diagnostics as the 7.1.8 build prints them', () => {
  const syntax = [
    '  SYNC    include/config/auto.conf',
    '  HOSTLD  scripts/kconfig/conf',
    'io_uring/Kconfig:24: syntax error',
    'io_uring/Kconfig:24: unknown statement "depend"',
    'make[4]: *** [/work/linux/scripts/kconfig/Makefile:85: syncconfig] Error 1',
    'make[3]: *** [/work/linux/Makefile:761: syncconfig] Error 2',
    'make[2]: *** [/work/linux/Makefile:901: include/config/auto.conf] Error 2',
  ].join('\n');
  assert.deepEqual(parseBuildDiagnostics(syntax), [
    { file: 'io_uring/Kconfig', line: 24, column: null, severity: 'error', message: 'syntax error' },
    { file: 'io_uring/Kconfig', line: 24, column: null, severity: 'error', message: 'unknown statement "depend"' },
  ]);
  const recursive = [
    '  SYNC    include/config/auto.conf',
    'error: recursive dependency detected!',
    '\tsymbol PB_A depends on PB_B',
    '\tsymbol PB_B depends on PB_A',
    'For a resolution refer to Documentation/kbuild/kconfig-language.rst',
    'subsection "Kconfig recursive dependency limitations"',
    '',
    'make[4]: *** [/work/linux/scripts/kconfig/Makefile:85: syncconfig] Error 1',
  ].join('\n');
  assert.deepEqual(parseBuildDiagnostics(recursive), [
    { file: '(Kconfig)', line: null, column: null, severity: 'error', message: 'recursive dependency detected! symbol PB_A depends on PB_B; symbol PB_B depends on PB_A' },
  ]);
  const source = 'io_uring/Kconfig:22: can\'t open file "io_uring/Kconfig.nope"\nmake[4]: *** [/work/linux/scripts/kconfig/Makefile:85: syncconfig] Error 1\n';
  assert.deepEqual(parseBuildDiagnostics(source), [
    { file: 'io_uring/Kconfig', line: 22, column: null, severity: 'error', message: 'can\'t open file "io_uring/Kconfig.nope"' },
  ]);
});

test('"*** Error during update of the configuration" and make\'s own errors are not diagnostics by themselves', () => {
  const log = [
    '*** Error during update of the configuration.',
    'make[2]: *** [/work/linux/scripts/kconfig/Makefile:85: olddefconfig] Error 1',
    'make[1]: *** [/work/linux/Makefile:742: olddefconfig] Error 2',
    'make: *** [Makefile:248: __sub-make] Error 2',
  ].join('\n');
  assert.deepEqual(parseBuildDiagnostics(log), []);
});

test('modpost: undefined symbols name the module; other errors keep their subject', () => {
  const log = [
    '  MODPOST Module.symvers',
    'WARNING: modpost: vmlinux: section mismatch in reference: io_kbuf_init+0x1a (section: .text) -> io_kbuf_setup (section: .init.text)',
    'ERROR: modpost: "io_kbuf_ring_pin" [fs/fuse/fuse.ko] undefined!',
    'ERROR: modpost: Section mismatches detected.',
    'make[2]: *** [/work/linux/scripts/Makefile.modpost:147: Module.symvers] Error 1',
  ].join('\n');
  assert.deepEqual(parseBuildDiagnostics(log), [
    { file: 'vmlinux', line: null, column: null, severity: 'warning', message: 'modpost: vmlinux: section mismatch in reference: io_kbuf_init+0x1a (section: .text) -> io_kbuf_setup (section: .init.text)' },
    { file: 'fs/fuse/fuse.ko', line: null, column: null, severity: 'error', message: 'modpost: "io_kbuf_ring_pin" [fs/fuse/fuse.ko] undefined!' },
    { file: '(modpost)', line: null, column: null, severity: 'error', message: 'modpost: Section mismatches detected.' },
  ]);
});

test('a machine out of disk or memory is no diagnostic, even where the compiler names a source line', () => {
  // As the 7.1.8 build printed it with /tmp full (faults.itest.ts).
  const full = [
    '  CC      fs/fuse/dev_uring.o',
    '/work/linux/fs/fuse/dev_uring.c:1412:1: fatal error: error writing to /tmp/cckv2G53.s: No space left on device',
    'compilation terminated.',
    'make[4]: *** [/work/linux/scripts/Makefile.build:203: fs/fuse/dev_uring.o] Error 1',
  ].join('\n');
  assert.deepEqual(parseBuildDiagnostics(full), []);
  assert.equal(buildEnvironmentFailure(full), '/work/linux/fs/fuse/dev_uring.c:1412:1: fatal error: error writing to /tmp/cckv2G53.s: No space left on device');
  const oom = 'gcc: fatal error: Killed signal terminated program cc1\ncompilation terminated.\nmake[4]: *** [/work/linux/scripts/Makefile.build:203: io_uring/kbuf.o] Error 1\n';
  assert.deepEqual(parseBuildDiagnostics(oom), []);
  assert.equal(buildEnvironmentFailure(oom), 'gcc: fatal error: Killed signal terminated program cc1');
  assert.equal(buildEnvironmentFailure('make[2]: *** [scripts/Makefile.vmlinux_o:61: vmlinux.o] Killed'), 'make[2]: *** [scripts/Makefile.vmlinux_o:61: vmlinux.o] Killed');
  assert.equal(buildEnvironmentFailure('../linux/io_uring/kbuf.c:719:23: error: \'IOBL_PINNED\' undeclared'), null);
});

test('make\'s "No rule to make target" is a stale dependency, not a diagnostic', () => {
  const log = 'make[4]: *** No rule to make target \'/work/linux/include/linux/io_uring/kbuf_old.h\', needed by \'io_uring/kbuf.o\'.  Stop.\nmake[3]: *** [/work/linux/scripts/Makefile.build:478: io_uring] Error 2\n';
  assert.deepEqual(parseBuildDiagnostics(log), []);
  assert.match(staleDependency(log) ?? '', /No rule to make target .*kbuf_old\.h/);
  assert.equal(staleDependency('make: *** [Makefile:248: __sub-make] Error 2'), null);
});

test('a failed incremental build is retried clean only when the warm base may be at fault', () => {
  const err = (file: string) => ({ file, line: 1, column: 1, severity: 'error' as const, message: 'x' });
  const f = (errors: ReturnType<typeof err>[], extra: { environment?: string; stale?: string } = {}) => ({ errors, environment: extra.environment ?? null, stale: extra.stale ?? null });
  assert.equal(shouldRetryClean(f([err('io_uring/kbuf.c')]), ['io_uring/kbuf.c']), false, 'error in a changed file');
  assert.equal(shouldRetryClean(f([err('io_uring/net.c')]), ['io_uring/kbuf.h']), false, 'the series changed a header');
  assert.equal(shouldRetryClean(f([err('fs/fuse/dev.c')]), ['io_uring/kbuf.c']), true, 'error elsewhere: stale state?');
  // Before: no diagnostics at all got a twelve-minute clean build, then MISS anyway.
  assert.equal(shouldRetryClean(f([]), ['io_uring/kbuf.c']), false, 'no diagnostics at all (e.g. killed): MISS at once');
  assert.equal(shouldRetryClean(f([], { stale: 'make[4]: *** No rule to make target \'x.h\', needed by \'y.o\'.  Stop.' }), ['io_uring/kbuf.c']), true, 'a stale dependency of the warm base');
  assert.equal(shouldRetryClean(f([err('fs/fuse/dev.c')], { environment: 'No space left on device' }), ['io_uring/kbuf.c']), false, 'out of disk: MISS at once');
});

test('analyzeBuildFailure keeps errors only; formatDiagnostics prints them as a compiler would', () => {
  const a = analyzeBuildFailure('../linux/io_uring/kbuf.c:719:23: error: \'IOBL_PINNED\' undeclared\n/work/linux/io_uring/kbuf.h:12:1: warning: unused variable \'x\'\n');
  assert.deepEqual(a.errors.map((e) => e.file), ['io_uring/kbuf.c']);
  assert.equal(a.environment, null);
  assert.equal(a.stale, null);
  assert.equal(formatDiagnostics(a.errors), 'io_uring/kbuf.c:719:23: error: \'IOBL_PINNED\' undeclared');
  const many = Array.from({ length: 7 }, (_, i) => ({ file: 'a.c', line: i + 1, column: null, severity: 'error' as const, message: 'm' }));
  assert.equal(formatDiagnostics(many, 2), 'a.c:1: error: m\na.c:2: error: m\n(+5 more)');
});

/**
 * The apply and build stages against a fake container (the narrow port):
 * what git and make said decides between FAIL (evidence against the series)
 * and a retryable error (MISS), and whether a failed incremental build is
 * worth a clean one. The same on the real engine: faults.itest.ts and
 * fixtures.itest.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { SuiteCatalog } from '../../../services/catalog/suites.ts';
import { NOT_RETRIED_CODES, type PatchbayError, isPatchbayError } from '../../../services/domain/errors.ts';
import type { JobResult } from '../../../services/domain/job.ts';
import { parseMbox } from '../../../services/domain/mbox.ts';
import { baseKeyCommit, prerequisitesApplied, prerequisitesFromMbox } from '../../../services/domain/prerequisites.ts';
import { type BaseRunKeyParts, baseRunKey } from '../base-runs.ts';
import { assembleSeries } from '../../../services/domain/series.ts';
import type { ExecOutcome } from '../docker.ts';
import { ScriptedContainer, fakeSandbox } from './fake-container.ts';
import type { JobInput } from '../pipeline.ts';
import { ArtifactsDir, type Sandbox } from '../sandbox.ts';
import { applyPrerequisites, applyStage } from '../stages/apply.ts';
import { buildBaseWithPrerequisites, buildStage } from '../stages/build.ts';
import { type ExecutorSettings, StageContext, StageOutcome } from '../stages/context.ts';

const root = join(import.meta.dirname, '..', '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'patchbay-stages-unit-'));
const contexts: StageContext[] = [];
after(async () => {
  await Promise.all(contexts.map((c) => c.closeLogs()));
  rmSync(dir, { recursive: true, force: true });
});

const catalog = SuiteCatalog.load(join(root, 'images', 'guest', 'suites'));
const series = assembleSeries(parseMbox(readFileSync(join(root, 'fixtures', 'series', 'pass-kbuf-pin.mbox')).toString('latin1')));

const settings = { job: { applyTimeoutSeconds: 60, buildTimeoutSeconds: 600, logLimitBytes: 1 << 20, artifactLimitBytes: 1 << 20 } } as unknown as ExecutorSettings;

async function setup(c: ScriptedContainer): Promise<{ box: Sandbox; ctx: StageContext; result: JobResult }> {
  const box = await fakeSandbox(c);
  const result = { buildMode: null, buildErrors: [], applyFailure: null } as unknown as JobResult;
  const artifacts = ArtifactsDir.create(join(dir, 'jobs'), 'j');
  const ctx = new StageContext('j', settings, pino({ level: 'silent' }), artifacts, result, () => undefined, () => undefined);
  contexts.push(ctx);
  return { box, ctx, result };
}

const input = { series, prerequisites: null } as unknown as JobInput;
const ok = (tail = ''): ExecOutcome => ({ exitCode: 0, timedOut: false, tail });
const failed = (tail: string, exitCode = 1): ExecOutcome => ({ exitCode, timedOut: false, tail });

async function outcomeOf(p: Promise<unknown>): Promise<{ kind: 'FAIL' | 'MISS' | 'ok'; code: string; message: string }> {
  try {
    await p;
    return { kind: 'ok', code: '', message: '' };
  } catch (e) {
    if (e instanceof StageOutcome) return { kind: 'FAIL', code: e.status, message: e.summary };
    assert.ok(isPatchbayError(e), String(e));
    assert.equal(e.retryable, true, `${e.code} is retryable`);
    return { kind: 'MISS', code: e.code, message: e.message };
  }
}

// apply

test('apply: git killed after "Applying:" (no "Patch failed at") is a retryable APPLY_FAILED, not "does not apply"', async () => {
  // Before: the last "Applying:" patch was named and the series failed.
  const { box, ctx, result } = await setup(new ScriptedContainer(() => failed('Applying: io_uring/kbuf: add a pin count\nApplying: io_uring/kbuf: pin\npatchbay: git am failed (exit 128)\n')));
  const o = await outcomeOf(applyStage(box, input, ctx));
  assert.equal(o.kind, 'MISS');
  assert.equal(o.code, 'APPLY_FAILED');
  assert.match(o.message, /without evidence against a patch: git named no failing patch/);
  assert.equal(result.applyFailure, null);
});

test('apply: the harness failing (exit 125) is a retryable APPLY_FAILED with its reason', async () => {
  const { box, ctx } = await setup(new ScriptedContainer(() => failed('Applying: a\npatchbay: apply harness failed: git am was killed by signal 9\n', 125)));
  const o = await outcomeOf(applyStage(box, input, ctx));
  assert.deepEqual([o.kind, o.code], ['MISS', 'APPLY_FAILED']);
  assert.match(o.message, /not git on a patch: git am was killed by signal 9$/);
});

test('apply: "Patch failed at" with git\'s error lines is FAIL naming the patch', async () => {
  const tail = [
    `Applying: ${series.patches[0]?.subject.title ?? ''}`,
    `Applying: ${series.patches[1]?.subject.title ?? ''}`,
    'error: patch failed: io_uring/kbuf.c:719',
    'error: io_uring/kbuf.c: patch does not apply',
    `Patch failed at 0002 ${series.patches[1]?.subject.title ?? ''}`,
  ].join('\n');
  const { box, ctx, result } = await setup(new ScriptedContainer(() => failed(tail)));
  const o = await outcomeOf(applyStage(box, input, ctx));
  assert.equal(o.kind, 'FAIL');
  assert.match(o.message, new RegExp(`^patch 2/${series.total} ".*" does not apply: error: patch failed: io_uring/kbuf.c:719`));
  assert.equal(result.applyFailure?.patchIndex, 2);
});

test('apply: an empty patch is FAIL naming the patch after those applied', async () => {
  const { box, ctx } = await setup(new ScriptedContainer(() => failed(`Applying: ${series.patches[0]?.subject.title ?? ''}\nPatch is empty.\n`)));
  const o = await outcomeOf(applyStage(box, input, ctx));
  assert.equal(o.kind, 'FAIL');
  assert.match(o.message, new RegExp(`^patch 2/${series.total} "${(series.patches[1]?.subject.title ?? '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" does not apply: Patch is empty\\.`));
});

// build

const kernelBuilt = { bzImage: 'kernel', 'kernel.config': 'CONFIG_X=y\n' };

test('build: an incremental build that fails with no diagnostic is MISS at once, without a clean build', async () => {
  // Before: a twelve-minute clean build, then MISS anyway.
  const c = new ScriptedContainer(() => failed('  CC      io_uring/kbuf.o\nmake[4]: *** [/work/linux/scripts/Makefile.build:203: io_uring/kbuf.o] Error 1\n'));
  const { box, ctx } = await setup(c);
  const o = await outcomeOf(buildStage(box, ['io_uring/kbuf.c'], [], ctx));
  assert.deepEqual([o.kind, o.code], ['MISS', 'BUILD_NO_DIAGNOSTIC']);
  assert.deepEqual(c.commands, ['build.sh']);
});

test('build: a stale dependency of the warm base is retried clean, and the clean build decides', async () => {
  const c = new ScriptedContainer((cmd) => cmd.includes('clean')
    ? failed('../linux/fs/fuse/dev.c:3:10: fatal error: linux/io_uring/kbuf_old.h: No such file or directory\n')
    : failed('make[4]: *** No rule to make target \'/work/linux/include/linux/io_uring/kbuf_old.h\', needed by \'fs/fuse/dev.o\'.  Stop.\n'));
  const { box, ctx, result } = await setup(c);
  const o = await outcomeOf(buildStage(box, ['include/linux/io_uring/kbuf_old.h'], [], ctx));
  assert.deepEqual(c.commands, ['build.sh', 'build.sh clean']);
  assert.equal(o.kind, 'FAIL');
  assert.match(o.message, /^fs\/fuse\/dev\.c:3: linux\/io_uring\/kbuf_old\.h: No such file or directory/);
  assert.equal(result.buildMode, 'clean');
});

test('build: errors outside the changed files still get a clean build', async () => {
  const c = new ScriptedContainer((cmd) => cmd.includes('clean') ? ok() : failed('../linux/fs/fuse/dev.c:10:1: error: \'x\' undeclared\n'), kernelBuilt);
  const { box, ctx } = await setup(c);
  const o = await outcomeOf(buildStage(box, ['io_uring/kbuf.c'], [], ctx));
  assert.equal(o.kind, 'ok');
  assert.deepEqual(c.commands, ['build.sh', 'build.sh clean']);
});

test('build: out of disk is MISS even where the compiler named a source line, and no clean build', async () => {
  const c = new ScriptedContainer(() => failed('io_uring/kbuf.c:1:0: fatal error: error writing to /tmp/ccA.s: No space left on device\ncompilation terminated.\n'));
  const { box, ctx } = await setup(c);
  const o = await outcomeOf(buildStage(box, ['io_uring/kbuf.c'], [], ctx));
  assert.deepEqual([o.kind, o.code], ['MISS', 'BUILD_ENVIRONMENT']);
  assert.match(o.message, /No space left on device/);
  assert.deepEqual(c.commands, ['build.sh']);
});

test('build: a Kconfig syntax error is FAIL with the Kconfig file and line', async () => {
  const c = new ScriptedContainer(() => failed('io_uring/Kconfig:12: syntax error\n*** Error during sync of the configuration.\n'));
  const { box, ctx } = await setup(c);
  const o = await outcomeOf(buildStage(box, ['io_uring/Kconfig'], [], ctx));
  assert.equal(o.kind, 'FAIL');
  assert.equal(o.message, 'io_uring/Kconfig:12: syntax error');
});

test('build: a build SIGKILLed before its limit is BUILD_KILLED, not a timeout', async () => {
  const c = new ScriptedContainer(() => ({ exitCode: 137, timedOut: true, tail: '' }));
  const { box, ctx } = await setup(c);
  const o = await outcomeOf(buildStage(box, ['io_uring/kbuf.c'], [], ctx));
  assert.deepEqual([o.kind, o.code], ['MISS', 'BUILD_KILLED']);
});

// suites built from the tree under test

const fuse = catalog.select(['fuse']);
const treeSuite = (answer: ExecOutcome): ScriptedContainer => new ScriptedContainer((cmd) => (cmd[0] ?? '').endsWith('build-tree-suites.sh') ? answer : ok(), kernelBuilt);

test('a suite built from the tree that times out is MISS, not a (build) FAIL row', async () => {
  const { box, ctx } = await setup(treeSuite({ exitCode: 124, timedOut: true, tail: '' }));
  const o = await outcomeOf(buildStage(box, ['fs/fuse/dev.c'], fuse, ctx));
  assert.deepEqual([o.kind, o.code], ['MISS', 'SUITE_BUILD_TIMEOUT']);
});

test('a suite built from the tree that fails without a diagnostic is MISS', async () => {
  const { box, ctx } = await setup(treeSuite(failed('fuse: test fusectl_test was not installed\npatchbay: suite fuse: build from the tree failed\n')));
  const o = await outcomeOf(buildStage(box, ['fs/fuse/dev.c'], fuse, ctx));
  assert.deepEqual([o.kind, o.code], ['MISS', 'SUITE_BUILD_FAILED']);
  assert.match(o.message, /without a compiler or linker diagnostic/);
});

test('a suite built from the tree that fails with a compiler error is evidence: its row carries the diagnostic', async () => {
  const tail = [
    'fuse: building tools/testing/selftests/filesystems/fuse',
    'fusectl_test.c:42:9: error: implicit declaration of function \'fuse_kmbuf\' [-Wimplicit-function-declaration]',
    'make: *** [../../lib.mk:222: /tmp/tmp.x/build/fusectl_test] Error 1',
    'patchbay: suite fuse: build from the tree failed',
  ].join('\n');
  const { box, ctx } = await setup(treeSuite(failed(tail)));
  const built = await buildStage(box, ['fs/fuse/dev.c'], fuse, ctx);
  const detail = built.unbuilt.get('fuse') ?? '';
  assert.match(detail, /^fusectl_test\.c:42:9: error: implicit declaration of function 'fuse_kmbuf'/);
  assert.match(detail, /build from the tree failed$/);
});

test('a suite build whose harness failed (exit 125) is MISS', async () => {
  const { box, ctx } = await setup(treeSuite(failed('patchbay: build-tree-suites harness failed: suite fuse not found\n', 125)));
  const o = await outcomeOf(buildStage(box, ['fs/fuse/dev.c'], fuse, ctx));
  assert.deepEqual([o.kind, o.code], ['MISS', 'SUITE_BUILD_FAILED']);
  assert.match(o.message, /the harness failed, not the suite's build: suite fuse not found/);
});

// prerequisite patches

const fixture = (name: string): string => readFileSync(join(root, 'fixtures', 'series', name)).toString('latin1');
const BASE = '0dfbac4f4be0f380cd34673a572ab902a33a82b2';
/** fail-apply-needs-kmbuf.mbox as prerequisites: its cover letter left out, two patches. */
const twoPrerequisites = prerequisitesFromMbox(fixture('fail-apply-needs-kmbuf.mbox'));
const withPrerequisites = { series, prerequisites: twoPrerequisites } as unknown as JobInput;

/** The PatchbayError a stage throws (never a verdict against the series). */
async function errorOf(p: Promise<unknown>): Promise<PatchbayError> {
  try {
    await p;
  } catch (e) {
    assert.ok(!(e instanceof StageOutcome), `a verdict against the series: ${String(e)}`);
    assert.ok(isPatchbayError(e), String(e));
    return e;
  }
  assert.fail('no error');
}

const prerequisiteFails = [
  `Applying: ${twoPrerequisites.patches[0]?.subject.title ?? ''}`,
  `Applying: ${twoPrerequisites.patches[1]?.subject.title ?? ''}`,
  'error: sha1 information is lacking or useless (io_uring/kbuf.h).',
  'error: could not build fake ancestor',
  `Patch failed at 0002 ${twoPrerequisites.patches[1]?.subject.title ?? ''}`,
].join('\n');

test('apply: the prerequisites go in first, by a git am of their own, then the series; the changed files are the series\' own', async () => {
  const c = new ScriptedContainer((cmd) => ok((cmd[1] ?? '').endsWith('series.mbox') ? `patchbay: applied 3 patches; 4 files changed; HEAD ${'a'.repeat(40)}\n` : ''), { 'changed-files.txt': 'io_uring/kbuf.c\n' });
  const { box, ctx, result } = await setup(c);
  result.baseCommit = BASE;
  const applied = await applyStage(box, withPrerequisites, ctx);
  assert.deepEqual(c.commands, ['apply.sh /job/in/prerequisites.mbox', 'apply.sh /job/in/series.mbox']);
  assert.deepEqual(applied.changed, ['io_uring/kbuf.c']);
  assert.equal(applied.headCommit, 'a'.repeat(40));
  assert.match(applied.summary, /^3 patch\(es\) applied on 2 prerequisite patch\(es\)/);
});

test('apply: a prerequisite git fails on is PREREQUISITES_APPLY, not retried, naming it with git\'s lines; the series is not applied', async () => {
  const c = new ScriptedContainer(() => failed(prerequisiteFails));
  const { box, ctx, result } = await setup(c);
  result.baseCommit = BASE;
  const e = await errorOf(applyStage(box, withPrerequisites, ctx));
  assert.equal(e.code, 'PREREQUISITES_APPLY');
  assert.equal(e.retryable, false);
  assert.ok(NOT_RETRIED_CODES.has(e.code), 'the worker does not retry it');
  assert.match(e.message, /^prerequisite patch 2\/2 "io_uring\/kbuf: refuse to unregister a pinned kernel-managed ring" <20261121-kmbuf-followups-v1-2@patchbay\.invalid> does not apply on the base 0dfbac4f4be0/);
  assert.match(e.message, /error: sha1 information is lacking or useless \(io_uring\/kbuf\.h\)\.; error: could not build fake ancestor$/);
  assert.deepEqual(c.commands, ['apply.sh /job/in/prerequisites.mbox']);
  assert.equal(result.applyFailure, null, 'the series\' apply failure stays empty: no patch of it failed');
});

test('apply: prerequisites git was killed on (no "Patch failed at") are a retryable APPLY_FAILED', async () => {
  const { box, ctx } = await setup(new ScriptedContainer(() => failed(`Applying: ${twoPrerequisites.patches[0]?.subject.title ?? ''}\npatchbay: git am failed (exit 128)\n`)));
  const e = await errorOf(applyPrerequisites(box, twoPrerequisites, BASE, ctx, () => undefined, 'prerequisites-changed-files.txt'));
  assert.equal(e.code, 'APPLY_FAILED');
  assert.equal(e.retryable, true);
  assert.match(e.message, /prerequisite patches failed \(exit 1\) without evidence against one/);
});

test('apply: the prerequisites on the base list what they change, kept as an artifact of its own', async () => {
  const c = new ScriptedContainer(() => ok(), { 'changed-files.txt': 'io_uring/kbuf.c\nio_uring/kbuf.h\n' });
  const { box, ctx } = await setup(c);
  const changed = await applyPrerequisites(box, twoPrerequisites, BASE, ctx, () => undefined, 'prerequisites-changed-files.txt');
  assert.deepEqual(changed, ['io_uring/kbuf.c', 'io_uring/kbuf.h']);
  assert.equal(ctx.artifacts.readText('prerequisites-changed-files.txt'), 'io_uring/kbuf.c\nio_uring/kbuf.h\n');
});

test('build: base + prerequisites that does not build (a compiler error) is PREREQUISITES_BUILD, not retried, never FAIL', async () => {
  const c = new ScriptedContainer(() => failed('../linux/io_uring/kbuf.c:250:9: error: \'IOBL_PINNED\' undeclared (first use in this function)\n'));
  const { box, ctx, result } = await setup(c);
  const e = await errorOf(buildBaseWithPrerequisites(box, ['io_uring/kbuf.c'], 2, BASE, ctx));
  assert.equal(e.code, 'PREREQUISITES_BUILD');
  assert.equal(e.retryable, false);
  assert.ok(NOT_RETRIED_CODES.has(e.code));
  assert.match(e.message, /^the base 0dfbac4f4be0 with its 2 prerequisite patch\(es\) does not build, so the series cannot be tested: io_uring\/kbuf\.c:250:9: error: 'IOBL_PINNED' undeclared/);
  assert.deepEqual(c.commands, ['build.sh'], 'an error in a file the prerequisites changed is not retried from clean');
  assert.deepEqual(result.buildErrors, [], 'the series\' build errors stay empty');
  assert.equal(result.buildMode, null, 'the series\' build mode is not the base\'s');
});

test('build: base + prerequisites failing without a diagnostic is a retryable BUILD_NO_DIAGNOSTIC; read-only ccache like a series build', async () => {
  const envs: Array<Record<string, string> | undefined> = [];
  const c = new ScriptedContainer((_cmd, opts) => { envs.push(opts.env); return failed('make: *** [Makefile:2000: io_uring] Error 2\n'); });
  const { box, ctx } = await setup(c);
  const e = await errorOf(buildBaseWithPrerequisites(box, ['io_uring/kbuf.c'], 1, BASE, ctx));
  assert.equal(e.code, 'BUILD_NO_DIAGNOSTIC');
  assert.equal(e.retryable, true);
  assert.match(e.message, /^the build of the base 0dfbac4f4be0 with its 1 prerequisite patch\(es\) failed without/);
  assert.equal(envs[0]?.CCACHE_READONLY, 'true');
});

test('build: base + prerequisites that touch the build system is built clean, like a series that does', async () => {
  const c = new ScriptedContainer(() => ok());
  const { box, ctx } = await setup(c);
  const built = await buildBaseWithPrerequisites(box, ['io_uring/Makefile'], 1, BASE, ctx);
  assert.equal(built.mode, 'clean');
  assert.deepEqual(c.commands, ['build.sh clean']);
});

test('build: the series\' build counts the prerequisites\' files as changed: an error in one is the series\' (no clean retry)', async () => {
  // The pipeline passes the prerequisites' files with the series' own; the
  // base built with the prerequisites alone, so an error in their file now
  // comes from the series (a header it changed, say).
  const c = new ScriptedContainer(() => failed('../linux/io_uring/kbuf.h:20:5: error: unknown type name \'pin_t\'\n'));
  const { box, ctx } = await setup(c);
  const o = await outcomeOf(buildStage(box, ['io_uring/kbuf.h', 'io_uring/kbuf.c'], [], ctx));
  assert.equal(o.kind, 'FAIL');
  assert.deepEqual(c.commands, ['build.sh']);
});

test('base runs of the plain base and of base + prerequisites have different cache keys, and so do different prerequisites', () => {
  const parts = (baseCommit: string): BaseRunKeyParts => ({ baseCommit, fragment: 'CONFIG_IO_URING=y\n', toolchain: 't', guestInputs: 'g', suiteVersion: 'v', suite: 'smoke', accel: 'tcg' });
  const plain = baseRunKey(parts(baseKeyCommit(BASE, null)));
  const helpers = baseRunKey(parts(baseKeyCommit(BASE, prerequisitesApplied(prerequisitesFromMbox(fixture('prereq-kbuf-pin-helpers.mbox'))))));
  const kmbuf = baseRunKey(parts(baseKeyCommit(BASE, prerequisitesApplied(twoPrerequisites))));
  assert.equal(plain, baseRunKey(parts(BASE)), 'the plain base keeps its key (and its cached runs)');
  assert.equal(new Set([plain, helpers, kmbuf]).size, 3);
});

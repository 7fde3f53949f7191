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
import { isPatchbayError } from '../../../services/domain/errors.ts';
import type { JobResult } from '../../../services/domain/job.ts';
import { parseMbox } from '../../../services/domain/mbox.ts';
import { assembleSeries } from '../../../services/domain/series.ts';
import type { ExecOutcome } from '../docker.ts';
import { ScriptedContainer, fakeSandbox } from './fake-container.ts';
import type { JobInput } from '../pipeline.ts';
import { ArtifactsDir, type Sandbox } from '../sandbox.ts';
import { applyStage } from '../stages/apply.ts';
import { buildStage } from '../stages/build.ts';
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

const input = { series } as unknown as JobInput;
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

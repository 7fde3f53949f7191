/**
 * The sandbox's lifecycle rules against a fake container (the narrow port):
 * every stage ends with its processes killed, even when it throws; inputs
 * and copy-out only between stages; the disk watchdog ends a stage with
 * JOB_LIMIT. (The same sandbox on the real engine: sandbox.itest.ts.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import tar from 'tar-stream';
import { isPatchbayError } from '../../../services/domain/errors.ts';
import type { ContainerRuntime, ContainerSpec, ExecOutcome, JobContainer } from '../docker.ts';
import { ArtifactsDir, Sandbox } from '../sandbox.ts';

const dir = mkdtempSync(join(tmpdir(), 'patchbay-sandbox-unit-'));
after(() => { rmSync(dir, { recursive: true, force: true }); });

class FakeContainer implements JobContainer {
  readonly id = 'fake';
  readonly calls: string[] = [];
  running = false;
  disk = 0;
  files = new Map<string, string>();
  start(): Promise<void> { this.calls.push('start'); this.running = true; return Promise.resolve(); }
  stop(): Promise<void> { this.calls.push('stop'); this.running = false; return Promise.resolve(); }
  exec(cmd: readonly string[]): Promise<ExecOutcome> {
    this.calls.push(`exec ${cmd.join(' ')}`);
    if (!this.running) return Promise.resolve({ exitCode: -1, timedOut: false, tail: 'not running' });
    return Promise.resolve({ exitCode: 0, timedOut: false, tail: '' });
  }
  put(archive: Readable): Promise<void> { this.calls.push('put'); archive.resume(); return Promise.resolve(); }
  archive(path: string): Promise<Readable | null> {
    const body = this.files.get(path);
    if (body === undefined) return Promise.resolve(null);
    const pack = tar.pack();
    pack.entry({ name: path.slice(path.lastIndexOf('/') + 1) }, body);
    pack.finalize();
    return Promise.resolve(pack);
  }
  diskUsage(): Promise<number> { return Promise.resolve(this.disk); }
  commit(): Promise<void> { return Promise.resolve(); }
  dispose(): Promise<void> { this.calls.push('dispose'); return Promise.resolve(); }
}

const spec = { image: 'x', name: 'fake', labels: {}, mounts: [], memoryBytes: 1, cpus: 1, pids: 1, devices: [], fileSizeBytes: 1, tmpBytes: 1 } satisfies ContainerSpec;
const limits = { diskBytes: 1000, diskCheckMs: 10, outputLimitBytes: 1024 };

async function make(): Promise<{ box: Sandbox; c: FakeContainer }> {
  const c = new FakeContainer();
  const runtime: ContainerRuntime = { create: () => Promise.resolve(c) };
  return { box: await Sandbox.create(runtime, spec, [], limits), c };
}

test('the /job layout goes in before anything runs; a stage starts, runs, and kills', async () => {
  const { box, c } = await make();
  assert.deepEqual(c.calls, ['put']);
  await box.stage((r) => r.exec(['true']));
  assert.deepEqual(c.calls, ['put', 'start', 'exec true', 'stop']);
});

test('a stage that throws still ends with its processes killed', async () => {
  const { box, c } = await make();
  await assert.rejects(box.stage(() => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(c.calls.at(-1), 'stop');
  assert.equal(c.running, false);
});

test('inputs, copy-out and commits are refused while a stage runs', async () => {
  const { box } = await make();
  await box.stage(async () => {
    await assert.rejects(box.put([]), /only between stages/);
    await assert.rejects(box.collect('/job/out', [], dir), /only between stages/);
    await assert.rejects(box.commit('t', {}), /only between stages/);
    await assert.rejects(box.stage(() => Promise.resolve()), /already running/);
  });
});

test('copy-out takes named files into the artifacts folder and says which are absent', async () => {
  const { box, c } = await make();
  c.files.set('/job/out/ktap.txt', 'KTAP version 1\n');
  const art = ArtifactsDir.create(join(dir, 'jobs'), 'j1');
  const out = await box.collect('/job/out', [{ name: 'ktap.txt', maxBytes: 100, truncate: true }, { name: 'console.log', maxBytes: 100, truncate: true }], art.path, (n) => `base-${n}`);
  assert.deepEqual(out, [
    { name: 'ktap.txt', kept: true, bytes: 15, truncated: false },
    { name: 'console.log', kept: false, reason: 'absent' },
  ]);
  assert.deepEqual(art.list(), ['base-ktap.txt']);
  assert.equal(art.readText('base-ktap.txt'), 'KTAP version 1\n');
  assert.throws(() => art.file('../x'), /not a plain file name/);
});

test('each attempt gets a new artifacts folder', () => {
  const a = ArtifactsDir.create(join(dir, 'jobs'), 'j2');
  const b = ArtifactsDir.create(join(dir, 'jobs'), 'j2');
  assert.notEqual(a.path, b.path);
});

test('past its disk budget a stage is stopped and ends with JOB_LIMIT', async () => {
  const { box, c } = await make();
  const err = await box.stage(async () => {
    c.disk = 5000;
    await new Promise((r) => setTimeout(r, 50));
  }).then(() => null, (e: unknown) => e);
  assert.ok(isPatchbayError(err));
  assert.equal(err.code, 'JOB_LIMIT');
  assert.equal(c.running, false);
});

test('a container that fails to start leaves the sandbox usable for the next stage', async () => {
  const { box, c } = await make();
  const start = c.start.bind(c);
  c.start = () => Promise.reject(new Error('engine said no'));
  await assert.rejects(box.stage(() => Promise.resolve()), /engine said no/);
  c.start = start;
  await box.stage((r) => r.exec(['true']));
  assert.equal(c.calls.at(-1), 'stop');
});

/**
 * Garbage collection on the real engine, with throwaway images of its own
 * (tagged patchbay/warm:gc-<id>-* and patchbay/job:gc-<id>-*, from the base
 * image, labelled as the executor labels its own, and one test label the
 * collector is scoped to: the real warm bases are never looked at) and
 * temporary folders. The collector's clock is moved a month ahead, so the
 * images it just built are old unless a use says otherwise.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../../services/config/config.ts';
import { DockerEngine, type JobContainer } from '../docker.ts';
import { type GcConfig, collectGarbage } from '../gc.ts';
import { IMAGE_LABEL, ensureBaseImage } from '../images.ts';
import { warmLocksDir, warmUsedDir } from '../warm-base.ts';

const config = loadConfig(process.env);
const engine = new DockerEngine(config.docker.socketPath);
const id = randomBytes(4).toString('hex');
const TEST_LABEL = 'org.patchbay.gc-test';
const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.now() + 30 * DAY;
const cacheDir = mkdtempSync(join(tmpdir(), 'patchbay-gc-itest-'));
const context = mkdtempSync(join(tmpdir(), 'patchbay-gc-itest-context-'));
const warmTag = (name: string): string => `patchbay/warm:gc-${id}-${name}`;
const jobTag = (name: string): string => `patchbay/job:gc-${id}-${name}`;

const gcConfig = (warmBases: { maxAgeDays: number; budgetBytes: number }): GcConfig => ({
  cacheDir,
  job: { deadlineSeconds: 3600 },
  gc: { intervalMinutes: 0, warmBases, baseRuns: { maxAgeDays: 14, budgetBytes: 0 }, jobs: { maxAgeDays: 14, budgetBytes: 0 } },
});

/** An image FROM `from` with the executor's labels for its kind and the test's label: no layer of its own. */
async function image(tag: string, from: string, labels: Record<string, string>): Promise<void> {
  await engine.build({
    contextDir: context,
    dockerfile: 'Dockerfile',
    tag,
    buildArgs: { FROM: from },
    labels: { [TEST_LABEL]: id, 'org.patchbay.gc-test-tag': tag, ...labels },
    onOutput: () => undefined,
  });
  assert.ok((await engine.imageId(tag)) !== null, tag);
}

/** Records a use of a warm base or job image `daysAgo` days before the collector's now. */
function used(name: string, daysAgo: number): void {
  const dir = warmUsedDir(cacheDir);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), '');
  const t = new Date(NOW - daysAgo * DAY);
  utimesSync(join(dir, name), t, t);
}

function jobFolder(jobId: string, daysAgo: number): void {
  const dir = join(cacheDir, 'jobs', jobId, 'attempt-1');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'build.log'), 'log');
  const t = new Date(NOW - daysAgo * DAY);
  for (const p of [join(dir, 'build.log'), dir, join(cacheDir, 'jobs', jobId)]) utimesSync(p, t, t);
}

describe('garbage collection on the real engine', { timeout: 10 * 60_000 }, () => {
  const containers: JobContainer[] = [];
  const tags: string[] = [];

  before(async () => {
    await engine.ping();
    writeFileSync(join(context, 'Dockerfile'), 'ARG FROM\nFROM ${FROM}\nLABEL org.patchbay.gc-test-image=1\n');
    const base = await ensureBaseImage(engine, { imagesDir: config.imagesDir, baseImage: config.docker.baseImage, env: process.env, onLog: () => undefined });
    for (const name of ['old', 'busy', 'locked', 'recent', 'd', 'e', 'f']) {
      tags.push(warmTag(name));
      await image(warmTag(name), base, { [IMAGE_LABEL]: 'warm', 'org.patchbay.warm': `gc-${id}-${name}` });
    }
    tags.push(jobTag('old-x'));
    await image(jobTag('old-x'), warmTag('old'), { [IMAGE_LABEL]: 'job', 'org.patchbay.warm': `gc-${id}-old` });
    // busy: a (stopped) container of patchbay's was created from it.
    containers.push(await engine.create({
      image: warmTag('busy'), name: `patchbay-test-gc-${id}`, labels: { 'org.patchbay.role': 'test' }, mounts: [], command: ['true'],
      memoryBytes: 256 * 1024 * 1024, cpus: 1, pids: 64, devices: [], fileSizeBytes: 1024 * 1024, tmpBytes: 1024 * 1024,
    }));
    // locked: its key's build lock is held.
    mkdirSync(join(warmLocksDir(cacheDir), `gc-${id}-locked.lock`), { recursive: true });
    writeFileSync(join(warmLocksDir(cacheDir), `gc-${id}-locked.lock`, 'owner'), 'elsewhere');
    used(`gc-${id}-recent`, 1);
    used(`gc-${id}-d`, 5);
    used(`gc-${id}-e`, 4);
    used(`gc-${id}-f`, 3);
    jobFolder('old-job', 20);
    jobFolder('running-job', 20);
    jobFolder('new-job', 2);
  });

  after(async () => {
    for (const c of containers) await c.dispose();
    for (const t of [...tags].reverse()) await engine.remove(t).catch(() => undefined);
    rmSync(cacheDir, { recursive: true, force: true });
    rmSync(context, { recursive: true, force: true });
  });

  test('old ones go (a warm base with its job image); in-use, locked and recently used ones stay', async () => {
    const report = await collectGarbage(
      { images: engine, scope: { [TEST_LABEL]: id }, activeJobs: () => ['running-job'], now: () => NOW },
      gcConfig({ maxAgeDays: 14, budgetBytes: 0 }),
    );
    assert.deepEqual(report.errors, []);
    assert.deepEqual(report.removed.map((r) => [r.kind, r.id, r.reason]).sort(), [
      ['job', 'old-job', 'age'],
      ['warm-base', `gc-${id}-old`, 'age'],
    ]);
    assert.equal(await engine.imageId(warmTag('old')), null);
    assert.equal(await engine.imageId(jobTag('old-x')), null, 'its job image went with it');
    for (const name of ['busy', 'locked', 'recent', 'd', 'e', 'f']) assert.ok((await engine.imageId(warmTag(name))) !== null, name);
    assert.equal(existsSync(join(cacheDir, 'jobs', 'old-job')), false);
    assert.ok(existsSync(join(cacheDir, 'jobs', 'running-job')));
    assert.ok(existsSync(join(cacheDir, 'jobs', 'new-job')));
    assert.ok(existsSync(join(warmUsedDir(cacheDir), `gc-${id}-recent`)));
    // Only the test's images were looked at.
    assert.equal(report.found['warm-base']?.count, 7);
  });

  test('over the budget, the least recently used go first; in-use ones count but stay', async () => {
    const size = (await engine.describe({ [TEST_LABEL]: id, [IMAGE_LABEL]: 'warm' })).find((i) => i.tags.includes(warmTag('d')))?.sizeBytes ?? 0;
    assert.ok(size > 0);
    // Six left, each `size` (no layer of its own): room for four and a half.
    const report = await collectGarbage(
      { images: engine, scope: { [TEST_LABEL]: id }, now: () => NOW },
      gcConfig({ maxAgeDays: 0, budgetBytes: Math.floor(4.5 * size) }),
    );
    assert.deepEqual(report.errors, []);
    assert.deepEqual(report.removed.filter((r) => r.kind === 'warm-base').map((r) => [r.id, r.reason]), [[`gc-${id}-d`, 'budget'], [`gc-${id}-e`, 'budget']]);
    for (const name of ['d', 'e']) assert.equal(await engine.imageId(warmTag(name)), null, name);
    for (const name of ['busy', 'locked', 'recent', 'f']) assert.ok((await engine.imageId(warmTag(name))) !== null, name);
  });

  test('the engine refuses to remove an image a container uses, even when the collector did not know', async () => {
    assert.equal(await engine.removeUnused(warmTag('busy')), 'in-use');
    assert.ok((await engine.imageId(warmTag('busy'))) !== null);
    assert.equal(await engine.removeUnused(warmTag('gone-never-existed')), 'gone');
  });
});

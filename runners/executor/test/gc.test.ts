/**
 * Garbage collection: the plan (pure), and collections of base runs and job
 * folders in temporary folders, with images from a fake engine.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import type { CollectableImages, ImageRecord } from '../docker.ts';
import { type GcConfig, type GcItem, type GcKind, addedBytes, collectGarbage, planCollection } from '../gc.ts';

const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.parse('2026-12-01T00:00:00Z');
const item = (id: string, daysAgo: number, sizeBytes = 1, more: Partial<GcItem> = {}): GcItem => ({
  kind: 'job', id, sizeBytes, lastUsedAt: NOW - daysAgo * DAY, inUse: false, ...more,
});
const ids = (plan: Array<{ id: string }>): string[] => plan.map((p) => p.id);

describe('planCollection', () => {
  it('by age: what was not used for maxAgeDays goes, oldest first; in-use items stay however old', () => {
    const plan = planCollection([item('new', 1), item('old', 20), item('older', 30), item('busy', 40, 1, { inUse: true })], { job: { maxAgeDays: 14, budgetBytes: 0 } }, NOW);
    assert.deepEqual(plan.map((p) => [p.id, p.reason]), [['older', 'age'], ['old', 'age']]);
  });

  it('by budget: the least recently used go until the kind fits; what is in use counts but stays', () => {
    const items = [item('a', 5, 40), item('b', 4, 40), item('busy', 6, 40, { inUse: true }), item('c', 3, 40), item('d', 1, 40)];
    const plan = planCollection(items, { job: { maxAgeDays: 0, budgetBytes: 100 } }, NOW);
    // 200 in all: a, b and c go (80 left); busy is older but in use, and counts.
    assert.deepEqual(plan.map((p) => [p.id, p.reason]), [['a', 'budget'], ['b', 'budget'], ['c', 'budget']]);
    assert.deepEqual(ids(planCollection(items, { job: { maxAgeDays: 0, budgetBytes: 200 } }, NOW)), []);
  });

  it('age first, then the budget over what is left', () => {
    const items = [item('ancient', 50, 10), item('a', 5, 60), item('b', 1, 60)];
    const plan = planCollection(items, { job: { maxAgeDays: 30, budgetBytes: 100 } }, NOW);
    assert.deepEqual(plan.map((p) => [p.id, p.reason]), [['ancient', 'age'], ['a', 'budget']]);
  });

  it('each kind by its own policy; a kind without one is left alone; 0 turns a limit off', () => {
    const items: GcItem[] = [
      item('j', 10, 5), { ...item('w', 10, 5), kind: 'warm-base' }, { ...item('r', 100, 5), kind: 'base-run' },
    ];
    const plan = planCollection(items, { job: { maxAgeDays: 7, budgetBytes: 0 }, 'warm-base': { maxAgeDays: 0, budgetBytes: 0 } }, NOW);
    assert.deepEqual(plan.map((p) => [p.kind, p.id]), [['job', 'j']]);
  });

  it('even when what is in use alone is over the budget, nothing in use goes', () => {
    assert.deepEqual(ids(planCollection([item('x', 9, 500, { inUse: true }), item('y', 1, 1)], { job: { maxAgeDays: 0, budgetBytes: 100 } }, NOW)), ['y']);
  });

  it('holds its rules for any items (property)', () => {
    const kinds: GcKind[] = ['warm-base', 'job-image', 'base-run', 'job'];
    const arb = fc.record({
      items: fc.uniqueArray(fc.record({
        kind: fc.constantFrom(...kinds),
        id: fc.string({ minLength: 1, maxLength: 4 }),
        sizeBytes: fc.integer({ min: 0, max: 1000 }),
        lastUsedAt: fc.integer({ min: NOW - 100 * DAY, max: NOW }),
        inUse: fc.boolean(),
      }), { selector: (i) => `${i.kind}\0${i.id}`, maxLength: 30 }),
      maxAgeDays: fc.integer({ min: 0, max: 60 }),
      budgetBytes: fc.integer({ min: 0, max: 5000 }),
    });
    fc.assert(fc.property(arb, ({ items, maxAgeDays, budgetBytes }) => {
      const policy = { maxAgeDays, budgetBytes };
      const plan = planCollection(items, { 'warm-base': policy, 'job-image': policy, 'base-run': policy, job: policy }, NOW);
      assert.ok(plan.every((p) => !p.inUse), 'never in use');
      for (let n = 1; n < plan.length; n++) assert.ok((plan[n - 1]?.lastUsedAt ?? 0) <= (plan[n]?.lastUsedAt ?? 0), 'oldest first');
      assert.equal(new Set(plan.map((p) => `${p.kind}\0${p.id}`)).size, plan.length, 'each once');
      for (const kind of kinds) {
        const mine = items.filter((i) => i.kind === kind);
        const gone = new Set(plan.filter((p) => p.kind === kind).map((p) => p.id));
        const left = mine.filter((i) => !gone.has(i.id));
        if (maxAgeDays > 0) assert.ok(left.every((i) => i.inUse || NOW - i.lastUsedAt <= maxAgeDays * DAY), 'nothing too old is left');
        const total = left.reduce((s, i) => s + i.sizeBytes, 0);
        if (budgetBytes > 0 && total > budgetBytes) assert.ok(left.every((i) => i.inUse), 'over budget only with what is in use');
        // Removed by budget: never newer than something kept that could have gone.
        const byBudget = plan.filter((p) => p.kind === kind && p.reason === 'budget');
        const newestGone = Math.max(-Infinity, ...byBudget.map((p) => p.lastUsedAt));
        assert.ok(left.filter((i) => !i.inUse).every((i) => i.lastUsedAt >= newestGone), 'least recently used first');
      }
    }), { numRuns: 300 });
  });
});

describe('addedBytes', () => {
  const img = (id: string, layers: string[], sizeBytes: number): ImageRecord => ({ id, tags: [], labels: {}, created: 0, sizeBytes, layers });
  it('is what an image adds over the largest image its layers begin with', () => {
    const base = img('base', ['l1'], 100);
    const runner = img('runner', ['l1', 'l2'], 1000);
    const warm = img('warm', ['l1', 'l2', 'l3'], 3000);
    const job = img('job', ['l1', 'l2', 'l3', 'l4'], 3100);
    const other = img('other', ['l1', 'x'], 5000);
    assert.equal(addedBytes(warm, [base, runner, warm, job, other]), 2000);
    assert.equal(addedBytes(job, [base, runner, warm, job, other]), 100);
    assert.equal(addedBytes(warm, [base]), 2900);
    assert.equal(addedBytes(warm, []), 3000);
  });
});

describe('collectGarbage on folders', () => {
  const dirs: string[] = [];
  after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
  const setup = (): { cacheDir: string; config: GcConfig } => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'patchbay-gc-'));
    dirs.push(cacheDir);
    const config: GcConfig = {
      cacheDir,
      job: { deadlineSeconds: 3600 },
      gc: {
        intervalMinutes: 0,
        warmBases: { maxAgeDays: 14, budgetBytes: 0 },
        baseRuns: { maxAgeDays: 30, budgetBytes: 0 },
        jobs: { maxAgeDays: 14, budgetBytes: 0 },
      },
    };
    return { cacheDir, config };
  };
  /** Writes a file and dates it (and its folder) daysAgo. */
  const file = (path: string, daysAgo: number, bytes = 10): void => {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, 'x'.repeat(bytes));
    const t = new Date(NOW - daysAgo * DAY);
    utimesSync(path, t, t);
    utimesSync(join(path, '..'), t, t);
  };
  const job = (cacheDir: string, id: string, daysAgo: number, bytes = 10): void => {
    file(join(cacheDir, 'jobs', id, 'attempt-x', 'build.log'), daysAgo, bytes);
    const t = new Date(NOW - daysAgo * DAY);
    utimesSync(join(cacheDir, 'jobs', id), t, t);
  };

  it('job folders: old ones go, a recent one and one this process runs stay; the budget takes the oldest first', async () => {
    const { cacheDir, config } = setup();
    job(cacheDir, 'old', 20);
    job(cacheDir, 'running-old', 20);
    job(cacheDir, 'a', 5, 100);
    job(cacheDir, 'b', 3, 100);
    job(cacheDir, 'c', 1, 100);
    job(cacheDir, 'now', 0.01, 100);
    writeFileSync(join(cacheDir, 'jobs', 'not-a-folder'), '');
    const report = await collectGarbage({ images: null, activeJobs: () => ['running-old'], now: () => NOW }, { ...config, gc: { ...config.gc, jobs: { maxAgeDays: 14, budgetBytes: 250 } } });
    assert.deepEqual(report.removed.map((p) => [p.id, p.reason]), [['old', 'age'], ['a', 'budget'], ['b', 'budget']]);
    assert.deepEqual(report.errors, []);
    for (const id of ['old', 'a', 'b']) assert.equal(existsSync(join(cacheDir, 'jobs', id)), false, id);
    for (const id of ['running-old', 'c', 'now']) assert.equal(existsSync(join(cacheDir, 'jobs', id)), true, id);
    assert.ok(existsSync(join(cacheDir, 'jobs', 'not-a-folder')));
    assert.equal(report.freedBytes, 210);
  });

  it('base runs: a record goes with its re-run boots and a writer\'s leftover; one read lately stays', async () => {
    const { cacheDir, config } = setup();
    const dir = join(cacheDir, 'base-runs');
    const old = 'a'.repeat(20);
    const read = 'b'.repeat(20);
    file(join(dir, `${old}.json.gz`), 40);
    file(join(dir, `${old}.boots`, '20261001-aaaaaaaaaaaa.json.gz'), 40);
    file(join(dir, `${old}.json.gz.123.tmp`), 40);
    file(join(dir, `${read}.json.gz`), 0.001);
    file(join(dir, `${read}.boots`, '20261001-aaaaaaaaaaaa.json.gz'), 40);
    file(join(dir, 'README'), 100);
    const report = await collectGarbage({ images: null, now: () => NOW }, config);
    assert.deepEqual(report.removed.map((p) => [p.kind, p.id]), [['base-run', old]]);
    assert.equal(report.removed[0]?.sizeBytes, 30);
    assert.equal(existsSync(join(dir, `${old}.json.gz`)) || existsSync(join(dir, `${old}.boots`)) || existsSync(join(dir, `${old}.json.gz.123.tmp`)), false);
    assert.ok(existsSync(join(dir, `${read}.boots`)));
    assert.ok(existsSync(join(dir, 'README')));
  });

  it('images: a warm base goes with its job images, sized by what they add; in use or locked stays; stale use records go', async () => {
    const { cacheDir, config } = setup();
    const created = (NOW - 30 * DAY) / 1000;
    const img = (id: string, tag: string, layers: string[], sizeBytes: number, labels: Record<string, string>): ImageRecord => ({ id, tags: [tag], labels, created, sizeBytes, layers });
    const records: ImageRecord[] = [
      img('r', 'patchbay/runner:r', ['l1', 'l2'], 1000, { 'org.patchbay.image': 'runner' }),
      img('w1', 'patchbay/warm:k1', ['l1', 'l2', 'w1'], 3000, { 'org.patchbay.image': 'warm' }),
      img('j1', 'patchbay/job:k1-a', ['l1', 'l2', 'w1', 'j1'], 3100, { 'org.patchbay.image': 'job', 'org.patchbay.warm': 'k1' }),
      img('w2', 'patchbay/warm:k2', ['l1', 'l2', 'w2'], 3000, { 'org.patchbay.image': 'warm' }),
      img('w3', 'patchbay/warm:k3', ['l1', 'l2', 'w3'], 3000, { 'org.patchbay.image': 'warm' }),
    ];
    const removed: string[] = [];
    const fake: CollectableImages = {
      describe: (labels) => Promise.resolve(records.filter((r) => !removed.includes(r.tags[0] ?? '') && Object.entries(labels).every(([k, v]) => r.labels[k] === v))),
      imagesInUse: () => Promise.resolve(new Set(['w2'])),
      removeUnused: (tag) => { removed.push(tag); return Promise.resolve('removed'); },
    };
    mkdirSync(join(cacheDir, 'warm', 'k3.lock'), { recursive: true });
    file(join(cacheDir, 'warm-used', 'gone-long-ago'), 40);
    file(join(cacheDir, 'warm-used', 'being-built'), 0.001);
    file(join(cacheDir, 'warm-used', 'k1-a'), 20);
    const report = await collectGarbage({ images: fake, now: () => NOW }, config);
    assert.deepEqual(report.errors, []);
    assert.deepEqual(removed, ['patchbay/job:k1-a', 'patchbay/warm:k1'], 'the job image first, then its warm base; w2 is in use, k3 locked');
    assert.deepEqual(report.removed.map((r) => [r.kind, r.id, r.sizeBytes]), [['warm-base', 'k1', 2000 + 100]]);
    assert.equal(report.found['warm-base']?.count, 3);
    assert.equal(existsSync(join(cacheDir, 'warm-used', 'gone-long-ago')), false);
    assert.equal(existsSync(join(cacheDir, 'warm-used', 'k1-a')), false);
    assert.ok(existsSync(join(cacheDir, 'warm-used', 'being-built')), 'a use being recorded for a warm base being built stays');
  });

  it('an engine that fails is an error in the report; the folders are still collected', async () => {
    const { cacheDir, config } = setup();
    job(cacheDir, 'old', 20);
    const broken: CollectableImages = {
      describe: () => Promise.reject(new Error('refused')),
      imagesInUse: () => Promise.resolve(new Set()),
      removeUnused: () => Promise.resolve('gone'),
    };
    const report = await collectGarbage({ images: broken, now: () => NOW }, config);
    assert.deepEqual(report.removed.map((p) => p.id), ['old']);
    assert.match(report.errors.join('\n'), /images: refused/);
  });
});

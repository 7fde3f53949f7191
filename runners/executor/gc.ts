/**
 * Garbage collection of what jobs leave on a host, on workers and lab
 * runners alike: warm-base images (patchbay/warm:*) with their job overlays
 * (patchbay/job:*), base-run records (<cacheDir>/base-runs) and job folders
 * (<cacheDir>/jobs, the artifacts with them).
 *
 * planCollection is pure: per kind, what has not been used for maxAgeDays
 * goes, then, while the kind's total is over its budget, the least recently
 * used; nothing in use ever goes. The rest reads the engine and the folders
 * into items, applies the plan, and checks again right before each removal.
 *
 * "In use": an image a patchbay container was created from (the engine
 * refuses to remove an image any container uses, which is checked too), a
 * warm base whose build lock is held, a job folder of a job this process
 * runs, and anything used more recently than a job can last (its deadline
 * and a margin): a job between finding its warm base and starting its
 * containers, a base run a job is about to add a boot to, a job folder of
 * a job another process runs.
 */
import { existsSync, lstatSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../../services/config/config.ts';
import { errorMessage } from '../../services/domain/errors.ts';
import { type CollectableImages, type ImageRecord, orphanAgeSeconds } from './docker.ts';
import { IMAGE_LABEL } from './images.ts';
import { warmLocksDir, warmUsedDir } from './warm-base.ts';

export type GcKind = 'warm-base' | 'job-image' | 'base-run' | 'job';

export interface GcItem {
  kind: GcKind;
  /** Unique within its kind: the warm key, the job image's tag suffix, the base run's key, the job id. */
  id: string;
  sizeBytes: number;
  /** Milliseconds since the epoch. */
  lastUsedAt: number;
  inUse: boolean;
}

/** 0 turns a limit off. */
export interface GcPolicy {
  maxAgeDays: number;
  budgetBytes: number;
}

export type GcPolicies = Partial<Record<GcKind, GcPolicy>>;

export interface GcPlanned extends GcItem {
  reason: 'age' | 'budget';
}

const DAY_MS = 24 * 60 * 60 * 1000;

const size = (i: GcItem): number => (Number.isFinite(i.sizeBytes) && i.sizeBytes > 0 ? i.sizeBytes : 0);
const oldestFirst = (a: GcItem, b: GcItem): number => a.lastUsedAt - b.lastUsedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * What to remove, least recently used first; never an item in use, never a
 * kind without a policy. The budget counts every item of the kind, those in
 * use too (they take the disk all the same): it may stay over budget when
 * what is in use alone is over it.
 */
export function planCollection(items: readonly GcItem[], policies: GcPolicies, now: number): GcPlanned[] {
  const out: GcPlanned[] = [];
  const kinds = [...new Set(items.map((i) => i.kind))];
  for (const kind of kinds) {
    const policy = policies[kind];
    if (policy === undefined) continue;
    const mine = items.filter((i) => i.kind === kind).sort(oldestFirst);
    const chosen = new Set<GcItem>();
    let total = mine.reduce((sum, i) => sum + size(i), 0);
    if (policy.maxAgeDays > 0) {
      for (const i of mine) {
        if (i.inUse || now - i.lastUsedAt <= policy.maxAgeDays * DAY_MS) continue;
        chosen.add(i);
        out.push({ ...i, reason: 'age' });
        total -= size(i);
      }
    }
    if (policy.budgetBytes > 0) {
      for (const i of mine) {
        if (total <= policy.budgetBytes) break;
        if (i.inUse || chosen.has(i)) continue;
        chosen.add(i);
        out.push({ ...i, reason: 'budget' });
        total -= size(i);
      }
    }
  }
  return out.sort(oldestFirst);
}

export interface GcReport {
  /** What was removed, in the order it was. */
  removed: GcPlanned[];
  freedBytes: number;
  /** Planned, but found in use (or changed) when its turn came: kept. */
  kept: Array<{ kind: GcKind; id: string; why: string }>;
  /** What was there before, per kind. */
  found: Partial<Record<GcKind, { count: number; bytes: number }>>;
  errors: string[];
  durationMs: number;
}

export interface GcDeps {
  /** The engine's images; null: images are not collected (no engine). */
  images: CollectableImages | null;
  /** The jobs this process runs now: their folders never go (beside the time rule). */
  activeJobs?: () => Iterable<string>;
  /** Labels every warm-base and job image collected must also carry (a test's own throwaway images); none: all of them. */
  scope?: Record<string, string>;
  now?: () => number;
}

export type GcConfig = Pick<Config, 'cacheDir' | 'gc'> & { job: Pick<Config['job'], 'deadlineSeconds'> };

/** The warm-base policy's days hold for job images too; their bytes count toward the warm bases' budget. */
export function gcPolicies(gc: Config['gc']): GcPolicies {
  return {
    'warm-base': gc.warmBases,
    'job-image': { maxAgeDays: gc.warmBases.maxAgeDays, budgetBytes: 0 },
    'base-run': gc.baseRuns,
    job: gc.jobs,
  };
}

/** mtime in ms, 0 when absent. */
function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** Bytes and newest mtime of a path and everything under it (links not followed). */
function walk(path: string): { bytes: number; newest: number } {
  let bytes = 0;
  let newest = 0;
  const visit = (p: string): void => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    bytes += st.isDirectory() ? 0 : st.size;
    newest = Math.max(newest, st.mtimeMs);
    if (!st.isDirectory()) return;
    let names: string[];
    try {
      names = readdirSync(p);
    } catch {
      return;
    }
    for (const n of names) visit(join(p, n));
  };
  visit(path);
  return { bytes, newest };
}

const WARM_TAG = /^patchbay\/warm:([A-Za-z0-9][A-Za-z0-9_.-]*)$/;
const JOB_TAG = /^patchbay\/job:([A-Za-z0-9][A-Za-z0-9_.-]*)$/;
const BASE_RUN_NAME = /^([0-9a-f]{8,64})\.(json\.gz|boots)(\..*)?$/;

/**
 * What an image adds on disk over the largest other image its layers begin
 * with (a warm base over the runner image it was committed from, a job image
 * over its warm base); its whole size when no such image is left.
 */
export function addedBytes(image: ImageRecord, others: readonly ImageRecord[]): number {
  let parent = 0;
  for (const o of others) {
    if (o.id === image.id || o.layers.length === 0 || o.layers.length >= image.layers.length) continue;
    if (o.layers.every((l, n) => image.layers[n] === l)) parent = Math.max(parent, o.sizeBytes);
  }
  return Math.max(0, image.sizeBytes - parent);
}

interface ImageScan {
  items: GcItem[];
  /** warm key -> its tag and its job images' tags (by item id). */
  warm: Map<string, { tag: string; jobs: string[] }>;
  jobTags: Map<string, string>;
}

async function scanImages(images: CollectableImages, cacheDir: string, graceFrom: number, scope: Record<string, string>): Promise<ImageScan> {
  const [warms, jobs, runners, inUse] = await Promise.all([
    images.describe({ ...scope, [IMAGE_LABEL]: 'warm' }),
    images.describe({ ...scope, [IMAGE_LABEL]: 'job' }),
    images.describe({ [IMAGE_LABEL]: 'runner' }),
    images.imagesInUse(),
  ]);
  const all = [...warms, ...jobs, ...runners];
  const used = warmUsedDir(cacheDir);
  const locks = warmLocksDir(cacheDir);
  const jobItems = new Map<string, { item: GcItem; warmKey: string }>();
  const jobTags = new Map<string, string>();
  for (const image of jobs) {
    for (const tag of image.tags) {
      const id = JOB_TAG.exec(tag)?.[1];
      if (id === undefined) continue;
      const lastUsedAt = Math.max(mtime(join(used, id)), image.created * 1000);
      jobItems.set(id, {
        item: { kind: 'job-image', id, sizeBytes: addedBytes(image, all), lastUsedAt, inUse: inUse.has(image.id) || lastUsedAt > graceFrom },
        warmKey: image.labels['org.patchbay.warm'] ?? '',
      });
      jobTags.set(id, tag);
    }
  }
  const items: GcItem[] = [];
  const warm = new Map<string, { tag: string; jobs: string[] }>();
  for (const image of warms) {
    for (const tag of image.tags) {
      const key = WARM_TAG.exec(tag)?.[1];
      if (key === undefined) continue;
      const mine = [...jobItems.values()].filter((j) => j.warmKey === key).map((j) => j.item);
      const lastUsedAt = Math.max(mtime(join(used, key)), image.created * 1000, ...mine.map((j) => j.lastUsedAt));
      items.push({
        kind: 'warm-base',
        id: key,
        // The warm base and the job images over it go together: they count together.
        sizeBytes: addedBytes(image, all) + mine.reduce((s, j) => s + j.sizeBytes, 0),
        lastUsedAt,
        inUse: inUse.has(image.id) || mine.some((j) => j.inUse) || existsSync(join(locks, `${key}.lock`)) || lastUsedAt > graceFrom,
      });
      warm.set(key, { tag, jobs: mine.map((j) => j.id) });
    }
  }
  items.push(...[...jobItems.values()].map((j) => j.item));
  return { items, warm, jobTags };
}

/** Base runs by key: the record, its re-run boots and any temporary file of a writer. */
function scanBaseRuns(dir: string, graceFrom: number): { items: GcItem[]; paths: Map<string, string[]> } {
  const paths = new Map<string, string[]>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return { items: [], paths };
  }
  for (const name of names) {
    const key = BASE_RUN_NAME.exec(name)?.[1];
    if (key === undefined) continue;
    paths.set(key, [...(paths.get(key) ?? []), join(dir, name)]);
  }
  const items = [...paths].map(([key, ps]): GcItem => {
    const walked = ps.map(walk);
    const lastUsedAt = Math.max(0, ...walked.map((w) => w.newest));
    return { kind: 'base-run', id: key, sizeBytes: walked.reduce((s, w) => s + w.bytes, 0), lastUsedAt, inUse: lastUsedAt > graceFrom };
  });
  return { items, paths };
}

const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function scanJobs(dir: string, graceFrom: number, active: ReadonlySet<string>): GcItem[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const items: GcItem[] = [];
  for (const id of names) {
    if (!JOB_ID.test(id)) continue;
    const path = join(dir, id);
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue;
    }
    if (!st.isDirectory()) continue;
    const w = walk(path);
    items.push({ kind: 'job', id, sizeBytes: w.bytes, lastUsedAt: w.newest, inUse: active.has(id) || w.newest > graceFrom });
  }
  return items;
}

/** One collection: scan, plan, remove (each checked again just before). */
export async function collectGarbage(deps: GcDeps, config: GcConfig): Promise<GcReport> {
  const now = deps.now ?? Date.now;
  const started = now();
  // A job lasts at most its deadline: anything used since then may be in a running job's hands.
  const graceFrom = started - orphanAgeSeconds(config) * 1000;
  const report: GcReport = { removed: [], freedBytes: 0, kept: [], found: {}, errors: [], durationMs: 0 };
  const items: GcItem[] = [];
  let scan: ImageScan | null = null;
  if (deps.images !== null) {
    try {
      scan = await scanImages(deps.images, config.cacheDir, graceFrom, deps.scope ?? {});
      items.push(...scan.items);
    } catch (e) {
      report.errors.push(`images: ${errorMessage(e)}`);
    }
  }
  const baseRunsDir = join(config.cacheDir, 'base-runs');
  const baseRuns = scanBaseRuns(baseRunsDir, graceFrom);
  items.push(...baseRuns.items);
  const jobsDir = join(config.cacheDir, 'jobs');
  const active = (): Set<string> => new Set(deps.activeJobs?.() ?? []);
  items.push(...scanJobs(jobsDir, graceFrom, active()));
  for (const i of items) {
    const f = report.found[i.kind] ?? { count: 0, bytes: 0 };
    report.found[i.kind] = { count: f.count + 1, bytes: f.bytes + size(i) };
  }

  const used = warmUsedDir(config.cacheDir);
  /** Job images removed with their warm base in this collection. */
  const removedTags = new Set<string>();
  const recentlyUsed = (name: string): boolean => mtime(join(used, name)) > now() - orphanAgeSeconds(config) * 1000;
  for (const p of planCollection(items, gcPolicies(config.gc), started)) {
    const keep = (why: string): void => { report.kept.push({ kind: p.kind, id: p.id, why }); };
    try {
      if ((p.kind === 'warm-base' || p.kind === 'job-image') && scan !== null && deps.images !== null) {
        const images = deps.images;
        if (p.kind === 'job-image') {
          const tag = scan.jobTags.get(p.id);
          if (tag === undefined || removedTags.has(tag)) continue;
          if (recentlyUsed(p.id)) { keep('used meanwhile'); continue; }
          const r = await images.removeUnused(tag);
          if (r === 'in-use') { keep('a container uses it'); continue; }
          rmSync(join(used, p.id), { force: true });
          // Gone already: with its warm base, earlier in this collection (counted there), or by someone else.
          if (r === 'gone') continue;
        } else {
          const warm = scan.warm.get(p.id);
          if (warm === undefined) continue;
          if (existsSync(join(warmLocksDir(config.cacheDir), `${p.id}.lock`))) { keep('its build lock is held'); continue; }
          if ([p.id, ...warm.jobs].some(recentlyUsed)) { keep('used meanwhile'); continue; }
          // Its job images first: the warm base's layers stay on disk while one is left.
          let blocked = false;
          for (const j of warm.jobs) {
            const tag = scan.jobTags.get(j);
            if (tag === undefined) continue;
            if ((await images.removeUnused(tag)) === 'in-use') blocked = true;
            else {
              removedTags.add(tag);
              rmSync(join(used, j), { force: true });
            }
          }
          if (blocked) { keep('a container uses one of its job images'); continue; }
          const r = await images.removeUnused(warm.tag);
          if (r === 'in-use') { keep('a container uses it'); continue; }
          rmSync(join(used, p.id), { force: true });
          if (r === 'gone') continue;
        }
      } else if (p.kind === 'base-run') {
        const paths = baseRuns.paths.get(p.id) ?? [];
        if (Math.max(0, ...paths.map((x) => walk(x).newest)) > now() - orphanAgeSeconds(config) * 1000) { keep('used meanwhile'); continue; }
        for (const x of paths) rmSync(x, { recursive: true, force: true });
      } else if (p.kind === 'job') {
        const path = join(jobsDir, p.id);
        if (active().has(p.id)) { keep('its job is running'); continue; }
        if (walk(path).newest > now() - orphanAgeSeconds(config) * 1000) { keep('used meanwhile'); continue; }
        rmSync(path, { recursive: true, force: true });
      } else {
        continue;
      }
      report.removed.push(p);
      report.freedBytes += size(p);
    } catch (e) {
      report.errors.push(`${p.kind} ${p.id}: ${errorMessage(e)}`);
    }
  }
  // Uses recorded for images that are gone (removed by hand, or by another collector), unused since the grace.
  if (scan !== null && deps.scope === undefined) {
    const names = new Set([...scan.warm.keys(), ...scan.jobTags.keys()]);
    let files: string[] = [];
    try {
      files = readdirSync(used);
    } catch {
      // none recorded
    }
    for (const f of files) if (!names.has(f) && !recentlyUsed(f)) rmSync(join(used, f), { force: true });
  }
  report.durationMs = now() - started;
  return report;
}

/** How long after start the first collection runs (a worker's first job comes first). */
const FIRST_RUN_MS = 5 * 60_000;

/**
 * Collects every config.gc.intervalMinutes (0: never on its own; runOnce
 * still collects). A collection never throws out of the timer: what fails
 * is logged and the next one tries again. Collections never overlap.
 */
export function startGarbageCollector(
  deps: GcDeps,
  config: GcConfig,
  logger: Logger,
): { runOnce(): Promise<GcReport>; close(): Promise<void> } {
  let running: Promise<GcReport> | null = null;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const log = (r: GcReport): void => {
    const byKind: Partial<Record<GcKind, { count: number; bytes: number; ids: string[] }>> = {};
    for (const p of r.removed) {
      const k = byKind[p.kind] ?? { count: 0, bytes: 0, ids: [] };
      byKind[p.kind] = { count: k.count + 1, bytes: k.bytes + size(p), ids: k.ids.length < 50 ? [...k.ids, p.id] : k.ids };
    }
    if (r.removed.length > 0 || r.kept.length > 0) {
      logger.info({ gc: { removed: byKind, freedBytes: r.freedBytes, kept: r.kept.slice(0, 50), found: r.found, durationMs: r.durationMs } }, `gc: removed ${r.removed.length}, ${Math.round(r.freedBytes / 1024 / 1024)} MiB`);
    } else {
      logger.debug({ gc: { found: r.found, durationMs: r.durationMs } }, 'gc: nothing to remove');
    }
    if (r.errors.length > 0) logger.warn({ gc: { errors: r.errors.slice(0, 20) } }, 'gc: some removals failed');
  };
  const runOnce = (): Promise<GcReport> => {
    if (running !== null) return running;
    const p = collectGarbage(deps, config).then((r) => { log(r); return r; }).finally(() => { running = null; });
    running = p;
    return p;
  };
  const schedule = (ms: number): void => {
    if (closed || config.gc.intervalMinutes <= 0) return;
    timer = setTimeout(() => {
      runOnce().catch((e: unknown) => { logger.warn({ err: errorMessage(e) }, 'gc: collection failed'); }).finally(() => {
        schedule(config.gc.intervalMinutes * 60_000);
      });
    }, ms);
    timer.unref();
  };
  schedule(Math.min(FIRST_RUN_MS, config.gc.intervalMinutes * 60_000));
  return {
    runOnce,
    close: async () => {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      await running?.catch(() => undefined);
    },
  };
}

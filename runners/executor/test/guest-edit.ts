/**
 * A guest edit on the real engine, as a developer makes one: images/ copied
 * to a temporary folder, a line appended to guest/init, the runner image
 * built from the copy, then the warm base and the job image resolved as a
 * job's setup resolves them. Used by test/warm-base.itest.ts and
 * bench/warm-base.ts.
 *
 * It never starts a cold kernel build: the warm base of the fixture tree's
 * base must exist already (the fixture tests leave it), the edited images'
 * key must be that warm base's (checked before anything resolves it), and
 * ensureWarmBase is given a runtime that refuses to create a container.
 */
import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCatalogs } from '../../../services/catalog/load.ts';
import type { Config } from '../../../services/config/config.ts';
import type { ContainerRuntime, DockerEngine } from '../docker.ts';
import { type ImageSet, ensureImages } from '../images.ts';
import { type WarmBase, ensureJobImage, ensureWarmBase, warmBaseKey, warmLocksDir } from '../warm-base.ts';

/** The fixture tests' base (fixtures.itest.ts): its warm base is the one every engine test shares. */
export const FIXTURE_TREE = 'linux-7.1.y';
export const FIXTURE_BASE = '0dfbac4f4be0f380cd34673a572ab902a33a82b2';

export interface GuestEdit {
  /** The images of the repository's images/ folder, and of the edited copy. */
  before: ImageSet;
  after: ImageSet;
  /** The warm base's key and its image id before anything ran. */
  key: string;
  warmId: string;
  warm: WarmBase;
  jobImage: string;
  /** The line appended to the copy's guest/init. */
  line: string;
  /** The runner image's build from the copy, and the job image (the overlay), in ms. */
  runnerMs: number;
  jobImageMs: number;
  log: string[];
  /** Removes the job image, the edited runner image and the copy. */
  cleanup: () => Promise<void>;
}

/** A runtime that refuses: ensureWarmBase only creates a container for a cold build. */
const NO_COLD_BUILD: ContainerRuntime = {
  create: () => Promise.reject(new Error('the warm base would be built cold (the test and the bench never do that)')),
};

export async function editGuestAndPrepare(engine: DockerEngine, config: Config, opts: { nonce: string; usedDir: string }): Promise<GuestEdit> {
  const log: string[] = [];
  const onLog = (l: string): void => { log.push(l.endsWith('\n') ? l : `${l}\n`); };
  const fragment = loadCatalogs(config).kernelFragment;
  const before = await ensureImages(engine, { imagesDir: config.imagesDir, baseImage: config.docker.baseImage, env: process.env, onLog });
  const key = warmBaseKey({ toolchain: before.toolchain, treeName: FIXTURE_TREE, commit: FIXTURE_BASE, fragment });
  const warmId = await engine.imageId(`patchbay/warm:${key}`);
  if (warmId === null) {
    throw new Error(`no warm base patchbay/warm:${key} for ${FIXTURE_TREE} @ ${FIXTURE_BASE.slice(0, 12)}: run runners/executor/test/fixtures.itest.ts first (this never builds one)`);
  }
  const copy = mkdtempSync(join(tmpdir(), 'patchbay-guest-edit-'));
  const removals: string[] = [];
  const cleanup = async (): Promise<void> => {
    for (const tag of removals.reverse()) await engine.remove(tag).catch(() => undefined);
    rmSync(copy, { recursive: true, force: true });
  };
  try {
    cpSync(config.imagesDir, copy, { recursive: true });
    const line = `# guest edit ${opts.nonce}`;
    appendFileSync(join(copy, 'guest', 'init'), `${line}\n`);

    const t0 = performance.now();
    const after = await ensureImages(engine, { imagesDir: copy, baseImage: config.docker.baseImage, env: process.env, onLog });
    const runnerMs = performance.now() - t0;
    if (after.runner !== before.runner) removals.push(after.runner);
    const afterKey = warmBaseKey({ toolchain: after.toolchain, treeName: FIXTURE_TREE, commit: FIXTURE_BASE, fragment });
    if (afterKey !== key) throw new Error(`the guest edit changed the warm-base key (${key} -> ${afterKey}): it would rebuild the warm base`);

    const t1 = performance.now();
    const warm = await ensureWarmBase(NO_COLD_BUILD, engine, {
      runnerImage: after.runner,
      runnerId: after.runnerId,
      toolchain: after.toolchain,
      treeName: FIXTURE_TREE,
      mirror: join(config.mirrorsDir, `${FIXTURE_TREE}.git`),
      commit: FIXTURE_BASE,
      fragment,
      limits: { memoryBytes: config.job.memoryBytes, cpus: config.job.cpus, pids: config.job.pids, fileSizeBytes: config.job.fileSizeBytes, tmpBytes: config.job.tmpBytes },
      sandbox: { diskBytes: config.job.diskBytes, diskCheckMs: 5000, outputLimitBytes: config.job.logLimitBytes },
      buildTimeoutSeconds: config.job.buildTimeoutSeconds,
      locksDir: warmLocksDir(config.cacheDir),
      usedDir: opts.usedDir,
      ccacheVolume: config.docker.ccacheVolume,
      onLog,
    });
    const jobImage = await ensureJobImage(engine, warm, { tag: after.runner, id: after.runnerId, inputs: after.runnerInputs }, onLog, opts.usedDir);
    const jobImageMs = performance.now() - t1;
    if (jobImage !== warm.image) removals.push(jobImage);
    return { before, after, key, warmId, warm, jobImage, line, runnerMs, jobImageMs, log, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

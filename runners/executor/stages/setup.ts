/**
 * setup: the images, the tree mirror and the base commit, the warm base, and
 * the attempt's two sandboxes (the series', and the base kernel's, which no
 * series ever touches), then the accelerator, the job's prerequisite patches
 * (applied and built: the base kernel is then base + prerequisites) and the
 * suites' base builds, all in the base sandbox.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { SuiteManifest } from '../../../services/catalog/suites.ts';
import { PatchbayError } from '../../../services/domain/errors.ts';
import { baseKeyCommit, prerequisitesApplied } from '../../../services/domain/prerequisites.ts';
import { testsBySuite } from '../../../services/domain/test-filter.ts';
import type { TreeMirrors } from '../../host/trees.ts';
import { type Accel, KVM_DEVICE, chooseAccel, kvmPresent } from '../accel.ts';
import { BASE_SUITES_EXTRA, keyPartsOf } from '../against-base.ts';
import { BaseRunCache, type BaseRunKeyParts, baseRunKey } from '../base-runs.ts';
import type { ContainerRuntime, ContainerSpec, LocalImages } from '../docker.ts';
import { type ToolVersionCache, type ToolVersions, readToolVersions } from '../environment.ts';
import { ensureImages, hashInputs } from '../images.ts';
import { JOB_IN, Sandbox, type SandboxLimits, folderInputs } from '../sandbox.ts';
import { ensureJobImage, ensureWarmBase, lastLines, warmLocksDir, warmUsedDir } from '../warm-base.ts';
import type { JobInput } from '../pipeline.ts';
import { applyPrerequisites } from './apply.ts';
import { buildBaseWithPrerequisites } from './build.ts';
import type { StageContext } from './context.ts';

export interface SetupDeps {
  runtime: ContainerRuntime;
  images: LocalImages;
  mirrors: TreeMirrors;
  /** The compiler's and QEMU's version lines per image id, read once per process; absent: read for every job. */
  toolVersions?: ToolVersionCache;
}

export interface Prepared {
  baseCommit: string;
  warmKey: string;
  accel: Accel;
  series: Sandbox;
  base: Sandbox;
  /** Base-run cache key parts shared by every suite; suiteVersion per suite. */
  keyParts: Omit<BaseRunKeyParts, 'suite' | 'suiteVersion'>;
  suiteVersion: (s: SuiteManifest) => string;
  /** The job's test filter by suite (testsBySuite(input.only)); empty: every suite whole. */
  only: Map<string, string[]>;
  cache: BaseRunCache;
  /** Suites whose build from the base tree failed, and why. */
  baseUnavailable: Map<string, string>;
  /** How many prerequisite patches the base kernel has on its commit (0: none). */
  prerequisites: number;
  /** The files the prerequisites change (empty without them): the series' build must see them changed too. */
  prerequisitesChanged: string[];
  summary: string;
}

/** The prerequisites' changed files, as the base sandbox lists them (an artifact). */
export const PREREQUISITES_CHANGED_LIST = 'prerequisites-changed-files.txt';

/** Container limits every sandbox of a job gets. */
export function containerLimits(ctx: StageContext): Pick<ContainerSpec, 'memoryBytes' | 'cpus' | 'pids' | 'fileSizeBytes' | 'tmpBytes'> {
  const j = ctx.settings.job;
  return { memoryBytes: j.memoryBytes, cpus: j.cpus, pids: j.pids, fileSizeBytes: j.fileSizeBytes, tmpBytes: j.tmpBytes };
}

export function sandboxLimits(ctx: StageContext): SandboxLimits {
  return { diskBytes: ctx.settings.job.diskBytes, diskCheckMs: 5000, outputLimitBytes: ctx.settings.job.logLimitBytes };
}

export async function setupStage(
  input: JobInput,
  deps: SetupDeps,
  ctx: StageContext,
  /** Each sandbox as soon as it exists, so a deadline can remove it. */
  adopt: (s: Sandbox) => void,
): Promise<Prepared> {
  const { settings } = ctx;
  const line = (t: string): void => { ctx.setupLine(t); };
  const images = await ensureImages(deps.images, { imagesDir: settings.imagesDir, baseImage: settings.baseImage, env: settings.hostEnv, onLog: line });
  ctx.checkAborted();
  const mirror = await deps.mirrors.ensure(input.tree, line);
  const { sha: baseCommit, rule } = await resolveBase(input, deps.mirrors, line);
  ctx.result.baseCommit = baseCommit;
  ctx.result.baseRule = rule;
  ctx.checkAborted();
  const limits = containerLimits(ctx);
  const warm = await ensureWarmBase(deps.runtime, deps.images, {
    runnerImage: images.runner,
    runnerId: images.runnerId,
    toolchain: images.toolchain,
    treeName: input.tree.name,
    mirror,
    commit: baseCommit,
    fragment: input.kernelFragment,
    limits,
    sandbox: sandboxLimits(ctx),
    buildTimeoutSeconds: settings.job.buildTimeoutSeconds,
    locksDir: warmLocksDir(settings.cacheDir),
    usedDir: warmUsedDir(settings.cacheDir),
    ccacheVolume: settings.ccacheVolume,
    onLog: (t) => { ctx.stageLog('setup', t); },
  });
  ctx.checkAborted();
  const jobImage = await ensureJobImage(deps.images, warm, { tag: images.runner, id: images.runnerId, inputs: images.runnerInputs }, (t) => { ctx.stageLog('setup', t); }, warmUsedDir(settings.cacheDir));
  ctx.checkAborted();
  const jobImageId = await deps.images.imageId(jobImage);
  const environment = ctx.environment();
  environment.image = jobImageId === null ? null : { tag: jobImage, id: jobImageId };
  const known = jobImageId === null ? undefined : deps.toolVersions?.get(jobImageId);
  if (known !== undefined) Object.assign(environment, known);

  // Two sandboxes from the same image. The compiler cache is read-only to
  // both: only warm-base builds (the base tree alone) write it.
  const nonce = randomBytes(3).toString('hex');
  const suiteInputs = input.suites.flatMap((s) => folderInputs(join(settings.suitesDir, s.name), `${JOB_IN}/suites/${s.name}`));
  const useKvm = kvmPresent() && settings.job.accel !== 'tcg';
  const spec = (role: 'job' | 'base'): ContainerSpec => ({
    image: jobImage,
    name: `patchbay-${role}-${input.jobId}-${nonce}`,
    labels: { 'org.patchbay.role': role, 'org.patchbay.job': input.jobId },
    mounts: [{ kind: 'volume', source: settings.ccacheVolume, target: '/ccache', readOnly: true }],
    devices: useKvm ? [KVM_DEVICE] : [],
    ...limits,
  });
  const inputs = [{ type: 'dir' as const, path: `${JOB_IN}/suites`, mode: 0o755, uid: 0 }, ...suiteInputs];
  const base = await Sandbox.create(deps.runtime, spec('base'), inputs, sandboxLimits(ctx));
  adopt(base);
  const series = await Sandbox.create(deps.runtime, spec('job'), inputs, sandboxLimits(ctx));
  adopt(series);

  // The tools' versions come from the base sandbox before anything of the
  // job (its prerequisites) ran in it: the image's own answer.
  const accel = await base.stage(async (c) => {
    if (known === undefined) {
      // What cannot be read stays unknown (null); the job goes on.
      const versions: ToolVersions | null = await readToolVersions(c).catch(() => null);
      if (versions !== null) {
        Object.assign(environment, versions);
        if (jobImageId !== null) deps.toolVersions?.set(jobImageId, versions);
      }
    }
    return chooseAccel(settings.job.accel, c, join(settings.cacheDir, 'accel.json'), line);
  });
  ctx.result.accel = accel;
  ctx.checkAborted();

  // Prerequisites: the base kernel every comparison uses is base +
  // prerequisites, else what they change would be blamed on the series.
  // Applied and built here, in the base sandbox, after the KVM probe (which
  // boots the warm base's own kernel: its answer is kept for every later job
  // on this host, so no mailed patch's kernel may decide it) and before the
  // suites build from the base tree. make rebuilds /work/build in place, so
  // BASE_KERNEL is the rebuilt kernel from here on.
  let prerequisitesChanged: string[] = [];
  let prerequisitesNote = '';
  if (input.prerequisites !== null) {
    const n = input.prerequisites.patches.length;
    prerequisitesChanged = await applyPrerequisites(base, input.prerequisites, baseCommit, ctx, (t) => { ctx.stageLog('setup', t); }, PREREQUISITES_CHANGED_LIST);
    ctx.checkAborted();
    const built = await buildBaseWithPrerequisites(base, prerequisitesChanged, n, baseCommit, ctx);
    ctx.checkAborted();
    prerequisitesNote = ` + ${n} prerequisite patch(es) (${built.mode} build, ${Math.round(built.seconds)}s)`;
  }

  // A suite's base results depend on the kernel (commit and prerequisites,
  // config, toolchain), what all guest runs share, and the suite's own
  // folder: not on other suites. With prerequisites, baseCommit is
  // "<commit>+prerequisites:<sha256 of their mbox>" (baseKeyCommit): base
  // runs of the plain base and of base + prerequisites never stand for each
  // other. Such runs come from a sandbox that built mailed prerequisite
  // code; only jobs with byte-identical prerequisites (the same base kernel)
  // read them.
  // guestInputs: what the job image's guest was built from (ImageSet), not images/ as it is now.
  const guestInputs = images.guestInputs;
  const keyCommit = baseKeyCommit(baseCommit, input.prerequisites === null ? null : prerequisitesApplied(input.prerequisites));
  const keyParts = { baseCommit: keyCommit, fragment: input.kernelFragment, toolchain: images.toolchain, guestInputs, accel };
  const suiteVersion = (s: SuiteManifest): string => hashInputs(settings.suitesDir, [s.name]);
  const cache = new BaseRunCache(join(settings.cacheDir, 'base-runs'));
  const only = testsBySuite(input.only);
  const baseUnavailable = new Map<string, string>();
  const needBase = input.suites
    .filter((s) => (s.build.tree ?? []).length > 0)
    .filter((s) => cache.get(baseRunKey(keyPartsOf({ keyParts, suiteVersion, only }, s))) === null);
  if (needBase.length > 0) {
    const timeout = settings.job.buildTimeoutSeconds;
    const built = await base.stage((c) => c.exec(['/opt/patchbay/stages/build-tree-suites.sh', BASE_SUITES_EXTRA, ...needBase.map((s) => s.name)], {
      onOutput: (t) => { ctx.stageLog('setup', t); },
      timeoutSeconds: timeout,
    }));
    ctx.checkAborted();
    if (built.timedOut) line(`patchbay: building suites from the base tree timed out after ${timeout}s`);
    if (built.exitCode !== 0) for (const s of needBase) baseUnavailable.set(s.name, `its build from the base tree failed: ${lastLines(built.tail, 2)}`);
  }
  return {
    baseCommit,
    warmKey: warm.key,
    accel,
    series,
    base,
    keyParts,
    suiteVersion,
    only,
    cache,
    baseUnavailable,
    prerequisites: input.prerequisites?.patches.length ?? 0,
    prerequisitesChanged,
    summary: `warm base ${warm.key}${warm.built ? ' (built now)' : ' (cached)'}, ${accel.toUpperCase()}, base ${baseCommit.slice(0, 12)}${prerequisitesNote}`,
  };
}

/**
 * The job's base, by a named rule: `requested` (the job names it),
 * `base-commit` (the series' trailer, when the tree has it), else
 * `tree-ref`, the tree's ref: a guess, recorded as one on the result (the
 * lore watcher never leaves it to this guess: services/intake/base.ts).
 */
async function resolveBase(input: JobInput, mirrors: TreeMirrors, onLog: (line: string) => void): Promise<{ sha: string; rule: 'requested' | 'base-commit' | 'tree-ref' }> {
  if (input.base !== null) {
    const sha = await mirrors.resolve(input.tree, input.base);
    if (sha === null) {
      throw new PatchbayError('BASE_UNKNOWN', `base "${input.base}" is not a commit in tree ${input.tree.name}`, { retryable: false });
    }
    onLog(`base: requested ${input.base} = ${sha.slice(0, 12)} (rule: requested)`);
    return { sha, rule: 'requested' };
  }
  let why = 'the series names no base-commit';
  if (input.series.baseCommit !== null) {
    const sha = await mirrors.resolve(input.tree, input.series.baseCommit);
    if (sha !== null) {
      onLog(`base: the series' base-commit ${sha.slice(0, 12)} (rule: base-commit)`);
      return { sha, rule: 'base-commit' };
    }
    why = `the series' base-commit ${input.series.baseCommit} is not in ${input.tree.name}`;
  }
  const sha = await mirrors.resolve(input.tree, input.tree.ref);
  if (sha === null) throw new PatchbayError('BASE_UNKNOWN', `ref ${input.tree.ref} of tree ${input.tree.name} does not resolve`, { retryable: true });
  onLog(`base: ${why}; guessing the tree's ref ${input.tree.ref} = ${sha.slice(0, 12)} (rule: tree-ref)`);
  return { sha, rule: 'tree-ref' };
}

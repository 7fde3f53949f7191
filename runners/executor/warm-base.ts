/**
 * Warm bases: the base tree checked out, configured and built once per
 * (toolchain, tree, commit, config), then committed as an image. A job's
 * container starts from it, so overlayfs gives each job its own copy-on-write
 * tree and make recompiles only what the series touches.
 *
 * The toolchain key leaves out the guest, the suites and the stages that do
 * not build the kernel: when only those changed, the job image is the warm
 * base with the current runner image's /opt/patchbay laid over it (a
 * seconds-long build), not a new cold kernel build.
 */
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PatchbayError } from '../../services/domain/errors.ts';
import { withLock } from '../host/lock.ts';
import type { ContainerRuntime, ContainerSpec, LocalImages } from './docker.ts';
import { IMAGE_LABEL } from './images.ts';
import { JOB_IN, JOB_OUT, Sandbox, type SandboxLimits } from './sandbox.ts';

export interface WarmBaseRequest {
  runnerImage: string;
  runnerId: string;
  /** See ImageSet.toolchain. */
  toolchain: string;
  treeName: string;
  /** Host path of the tree's bare mirror. */
  mirror: string;
  commit: string;
  /** The merged kernel config fragment (guest + every suite). */
  fragment: string;
  limits: Pick<ContainerSpec, 'memoryBytes' | 'cpus' | 'pids' | 'fileSizeBytes' | 'tmpBytes'>;
  sandbox: SandboxLimits;
  buildTimeoutSeconds: number;
  /** The host folder for the cross-process lock of each key (warmLocksDir). */
  locksDir: string;
  /** Where each use of a warm base is recorded (warmUsedDir), for garbage collection. */
  usedDir: string;
  /** Docker volume of the compiler cache: warm-base builds (the base tree alone) are its only writers. */
  ccacheVolume: string;
  onLog: (text: string) => void;
}

export interface WarmBase {
  image: string;
  key: string;
  /** True when this call built it (a cold build). */
  built: boolean;
}

export function warmBaseKey(req: Pick<WarmBaseRequest, 'toolchain' | 'treeName' | 'commit' | 'fragment'>): string {
  return createHash('sha256')
    .update(['v2', req.toolchain, req.treeName, req.commit, req.fragment].join('\0'))
    .digest('hex')
    .slice(0, 16);
}

/** The folder of the warm bases' build locks: <cacheDir>/warm/<key>.lock. */
export function warmLocksDir(cacheDir: string): string {
  return join(cacheDir, 'warm');
}

/**
 * The folder where a job's use of a warm base (<key>) and of a job image
 * (<key>-<runner inputs>, its tag's) is recorded by touching a file of that
 * name: Docker does not track when an image was last used, and gc.ts
 * collects the least recently used first.
 */
export function warmUsedDir(cacheDir: string): string {
  return join(cacheDir, 'warm-used');
}

/** Records a use now (best effort: a failure to record never fails a job; at worst the image looks older). */
export function recordUse(usedDir: string, name: string): void {
  try {
    mkdirSync(usedDir, { recursive: true });
    const path = join(usedDir, name);
    closeSync(openSync(path, 'a'));
    const now = new Date();
    utimesSync(path, now, now);
  } catch {
    // best effort
  }
}

/** In this process, one build per key at a time; across processes, a lock. */
const inFlight = new Map<string, Promise<WarmBase>>();

export function ensureWarmBase(runtime: ContainerRuntime, images: LocalImages, req: WarmBaseRequest): Promise<WarmBase> {
  const key = warmBaseKey(req);
  // Recorded before the image is looked up: a collector that sees the use keeps it.
  recordUse(req.usedDir, key);
  const pending = inFlight.get(key);
  if (pending) return pending;
  const p = (async (): Promise<WarmBase> => {
    const image = `patchbay/warm:${key}`;
    if ((await images.imageId(image)) !== null) return { image, key, built: false };
    return withLock(join(req.locksDir, key), () => { req.onLog(`waiting for another process building warm base ${key}\n`); }, async () => {
      if ((await images.imageId(image)) !== null) return { image, key, built: false };
      await buildWarmBase(runtime, req, key, image);
      return { image, key, built: true };
    });
  })().finally(() => inFlight.delete(key));
  inFlight.set(key, p);
  return p;
}

async function buildWarmBase(runtime: ContainerRuntime, req: WarmBaseRequest, key: string, image: string): Promise<void> {
  req.onLog(`building warm base ${key}: ${req.treeName} @ ${req.commit.slice(0, 12)} (a cold kernel build, about 10 minutes on 2 cores)\n`);
  // No series is ever in this sandbox: the base tree alone, which is why it
  // alone may write the compiler cache.
  const box = await Sandbox.create(runtime, {
    image: req.runnerImage,
    name: `patchbay-warm-${key}-${process.pid}`,
    labels: { 'org.patchbay.role': 'warm-base', 'org.patchbay.warm': key },
    mounts: [
      { kind: 'bind', source: req.mirror, target: '/trees/tree.git', readOnly: true },
      { kind: 'volume', source: req.ccacheVolume, target: '/ccache', readOnly: false },
    ],
    devices: [],
    ...req.limits,
  }, [{ type: 'file', path: `${JOB_IN}/kernel.config`, mode: 0o444, uid: 0, content: req.fragment }], req.sandbox);
  try {
    await box.stage(async (c) => {
      const step = async (what: string, cmd: string[], timeoutSeconds: number): Promise<void> => {
        const r = await c.exec(cmd, { onOutput: req.onLog, timeoutSeconds });
        if (r.exitCode !== 0) {
          const why = r.timedOut ? `timed out after ${timeoutSeconds}s` : `exit ${r.exitCode}`;
          throw new PatchbayError('WARM_BASE_FAILED', `warm base ${key}: ${what} failed (${why}): ${lastLines(r.tail, 8)}`, {
            retryable: r.timedOut,
            details: { key, step: what },
          });
        }
      };
      await step('checkout', ['/opt/patchbay/stages/checkout.sh', 'file:///trees/tree.git', req.commit], 600);
      await step('configure', ['/opt/patchbay/stages/configure.sh', `${JOB_IN}/kernel.config`], 600);
      await step('build', ['/opt/patchbay/stages/build.sh'], req.buildTimeoutSeconds);
      // Rewrite the index now that every file is older than it: no racily
      // clean entries for a job's git to re-hash.
      await step('index refresh', ['git', '-C', '/work/linux', 'update-index', '-q', '--refresh'], 600);
      // A job starts with an empty out folder (build.sh copied the kernel there).
      await step('emptying the out folder', ['find', JOB_OUT, '-mindepth', '1', '-delete'], 60);
    });
    req.onLog(`saving warm base ${key} as ${image}\n`);
    await box.commit(image, {
      [IMAGE_LABEL]: 'warm',
      'org.patchbay.tree': req.treeName,
      'org.patchbay.commit': req.commit,
      'org.patchbay.runner': req.runnerId,
      'org.patchbay.toolchain': req.toolchain,
    });
  } finally {
    await box.dispose();
  }
}

export function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

export const OVERLAY_DOCKERFILE = `ARG WARM
ARG RUNNER
FROM \${RUNNER} AS runner
FROM \${WARM}
USER root
RUN rm -rf /opt/patchbay
COPY --from=runner /opt/patchbay /opt/patchbay
USER builder
`;

const overlays = new Map<string, Promise<string>>();

/**
 * The image a job container starts from: the warm base itself when the
 * current runner image built it, else the warm base with the runner image's
 * /opt/patchbay (stages, guest, suites and their test builds) laid over it.
 */
export function ensureJobImage(
  images: LocalImages,
  warm: WarmBase,
  runner: { tag: string; id: string; inputs: string },
  onLog: (text: string) => void,
  /** Where the use is recorded (warmUsedDir); null: not recorded. */
  usedDir: string | null = null,
): Promise<string> {
  const tag = `patchbay/job:${warm.key}-${runner.inputs}`;
  if (usedDir !== null) {
    recordUse(usedDir, warm.key);
    recordUse(usedDir, `${warm.key}-${runner.inputs}`);
  }
  const pending = overlays.get(tag);
  if (pending) return pending;
  const p = (async (): Promise<string> => {
    const builtBy = await images.list({ [IMAGE_LABEL]: 'warm', 'org.patchbay.runner': runner.id });
    if (builtBy.some((i) => i.tags.includes(warm.image))) return warm.image;
    if ((await images.imageId(tag)) !== null) return tag;
    onLog(`laying ${runner.tag}'s /opt/patchbay over warm base ${warm.key}\n`);
    const context = mkdtempSync(join(tmpdir(), 'patchbay-overlay-'));
    try {
      writeFileSync(join(context, 'Dockerfile'), OVERLAY_DOCKERFILE);
      await images.build({
        contextDir: context,
        dockerfile: 'Dockerfile',
        tag,
        buildArgs: { WARM: warm.image, RUNNER: runner.tag },
        labels: { [IMAGE_LABEL]: 'job', 'org.patchbay.warm': warm.key, 'org.patchbay.runner': runner.id },
        onOutput: (line) => { onLog(line.endsWith('\n') ? line : `${line}\n`); },
      });
    } finally {
      rmSync(context, { recursive: true, force: true });
    }
    if ((await images.imageId(tag)) === null) {
      throw new PatchbayError('IMAGE_BUILD_FAILED', `${tag} was not created`, { retryable: true });
    }
    return tag;
  })().finally(() => overlays.delete(tag));
  overlays.set(tag, p);
  return p;
}

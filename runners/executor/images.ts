/**
 * Images without a registry. The base comes from the configured BASE_IMAGE
 * when a registry has it, else from debootstrap + docker import
 * (images/base/build.sh). The runner image is built FROM the base. Both are
 * tagged by a hash of their build inputs and rebuilt only when those change.
 */
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { PatchbayError } from '../../services/domain/errors.ts';
import { runCommand } from '../host/command.ts';
import type { LocalImages } from './docker.ts';

export const IMAGE_LABEL = 'org.patchbay.image';
export const INPUTS_LABEL = 'org.patchbay.inputs';
/** On a runner image: ImageSet.toolchain and ImageSet.guestInputs, as computed from the files it was built from. */
export const TOOLCHAIN_LABEL = 'org.patchbay.toolchain';
export const GUEST_INPUTS_LABEL = 'org.patchbay.guest-inputs';

export interface ImageSet {
  base: string;
  runner: string;
  runnerId: string;
  /** The hash of the runner image's inputs (its tag). */
  runnerInputs: string;
  /**
   * What a warm base's kernel build depends on: the base image, the runner
   * Dockerfile (packages) and the stages that check out, configure and
   * build. Warm bases are keyed by it, so editing a suite or the guest does
   * not rebuild them.
   */
  toolchain: string;
  /**
   * The hash of GUEST_INPUTS in the files this runner image was built from
   * (base runs are keyed by it): computed when the image is built or
   * resolved, never read from images/ later, so an edit made while a worker
   * runs cannot pair a base run's key with another image's guest.
   */
  guestInputs: string;
}

/** What every suite's guest run shares (paths under images/): base runs are keyed by it. */
export const GUEST_INPUTS = ['guest/init', 'guest/lib', 'runner/stages/boot.sh', 'runner/stages/build-tree-suites.sh', 'runner/third-party'] as const;

/** The runner image's inputs that a kernel build depends on (paths under images/). */
export const TOOLCHAIN_INPUTS = [
  'runner/Dockerfile',
  'runner/stages/lib.sh',
  'runner/stages/checkout.sh',
  'runner/stages/configure.sh',
  'runner/stages/build.sh',
] as const;

/** sha256 over the relative paths, modes and contents of every file at or under the paths, plus extra strings. */
export function hashInputs(root: string, paths: readonly string[], extra: readonly string[] = []): string {
  const h = createHash('sha256');
  const walk = (path: string): void => {
    const st = statSync(path);
    if (st.isDirectory()) {
      for (const name of readdirSync(path).sort()) walk(join(path, name));
      return;
    }
    h.update(`${relative(root, path)}\0${(st.mode & 0o111) !== 0 ? 'x' : '-'}\0`);
    h.update(readFileSync(path));
    h.update('\0');
  };
  for (const p of paths) walk(join(root, p));
  for (const e of extra) h.update(`extra\0${e}\0`);
  return h.digest('hex').slice(0, 16);
}

export interface ImageOptions {
  imagesDir: string;
  /** An image to try pulling as the base (null: build it). */
  baseImage: string | null;
  /** Environment for the base build script (PATH, MIRROR, TMPDIR). */
  env: NodeJS.ProcessEnv;
  onLog: (line: string) => void;
}

export async function ensureBaseImage(images: LocalImages, opts: ImageOptions): Promise<string> {
  if (opts.baseImage !== null) {
    if ((await images.imageId(opts.baseImage)) !== null) return opts.baseImage;
    opts.onLog(`trying to pull ${opts.baseImage}`);
    if (await images.tryPull(opts.baseImage, opts.onLog)) return opts.baseImage;
    opts.onLog(`${opts.baseImage} cannot be pulled; building the base with debootstrap`);
  }
  const tag = `patchbay/base:${hashInputs(opts.imagesDir, ['base'])}`;
  if ((await images.imageId(tag)) !== null) return tag;
  opts.onLog(`building ${tag} (debootstrap, about a minute)`);
  const { code } = await runCommand('bash', [join(opts.imagesDir, 'base', 'build.sh'), tag], { env: opts.env, onLine: opts.onLog });
  if (code !== 0 || (await images.imageId(tag)) === null) {
    throw new PatchbayError('IMAGE_BUILD_FAILED', `images/base/build.sh ${tag} failed (exit ${code}); see the lines above`, {
      retryable: true,
    });
  }
  return tag;
}

/** The runner image's build context: the folders its Dockerfile copies from (paths under images/). */
export const RUNNER_CONTEXT = ['runner', 'guest'] as const;

export interface RunnerImage {
  tag: string;
  id: string;
  /** The hash of RUNNER_CONTEXT and the base image id (the tag's). */
  inputs: string;
  toolchain: string;
  guestInputs: string;
}

/** Copies a folder's regular files (links followed, as hashInputs and the build context read them) with their exec bits. */
function copyTree(from: string, to: string): void {
  const st = statSync(from);
  if (st.isDirectory()) {
    mkdirSync(to, { recursive: true });
    for (const name of readdirSync(from)) copyTree(join(from, name), join(to, name));
    return;
  }
  copyFileSync(from, to);
  chmodSync(to, st.mode & 0o777);
}

/**
 * The runner image of the current images/ folder. Its inputs are copied
 * first, and every hash (the tag's, toolchain, guestInputs) is computed from
 * that copy, which is also what the engine builds from: the image and the
 * keys derived from it always describe the same files, whatever is edited
 * under images/ meanwhile. The toolchain and guest-inputs hashes are recorded
 * as labels and read back when the image exists (an image from before the
 * labels: computed from the copy, which the tag says holds the same files).
 */
export async function ensureRunnerImage(
  images: LocalImages,
  base: string,
  opts: ImageOptions,
): Promise<RunnerImage> {
  const baseId = await images.imageId(base);
  if (baseId === null) throw new PatchbayError('IMAGE_MISSING', `base image ${base} is missing`, { retryable: true });
  const context = mkdtempSync(join(tmpdir(), 'patchbay-runner-context-'));
  try {
    for (const dir of RUNNER_CONTEXT) copyTree(join(opts.imagesDir, dir), join(context, dir));
    const toolchain = hashInputs(context, TOOLCHAIN_INPUTS, [baseId]);
    const guestInputs = hashInputs(context, GUEST_INPUTS);
    const inputs = hashInputs(context, RUNNER_CONTEXT, [baseId]);
    const tag = `patchbay/runner:${inputs}`;
    const existing = await images.imageId(tag);
    if (existing !== null) {
      const labels = (await images.list({ [IMAGE_LABEL]: 'runner', [INPUTS_LABEL]: inputs })).find((i) => i.id === existing)?.labels ?? {};
      return { tag, id: existing, inputs, toolchain: labels[TOOLCHAIN_LABEL] ?? toolchain, guestInputs: labels[GUEST_INPUTS_LABEL] ?? guestInputs };
    }
    opts.onLog(`building ${tag} from ${base} (about a minute)`);
    await images.build({
      contextDir: context,
      dockerfile: 'runner/Dockerfile',
      tag,
      buildArgs: { BASE_IMAGE: base },
      labels: { [IMAGE_LABEL]: 'runner', [INPUTS_LABEL]: inputs, [TOOLCHAIN_LABEL]: toolchain, [GUEST_INPUTS_LABEL]: guestInputs },
      onOutput: opts.onLog,
    });
    const id = await images.imageId(tag);
    if (id === null) throw new PatchbayError('IMAGE_BUILD_FAILED', `${tag} was not created`, { retryable: true });
    return { tag, id, inputs, toolchain, guestInputs };
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

export async function ensureImages(images: LocalImages, opts: ImageOptions): Promise<ImageSet> {
  const base = await ensureBaseImage(images, opts);
  const runner = await ensureRunnerImage(images, base, opts);
  return { base, runner: runner.tag, runnerId: runner.id, runnerInputs: runner.inputs, toolchain: runner.toolchain, guestInputs: runner.guestInputs };
}

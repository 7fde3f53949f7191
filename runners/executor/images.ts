/**
 * Images without a registry. The base comes from the configured BASE_IMAGE
 * when a registry has it, else from debootstrap + docker import
 * (images/base/build.sh). The runner image is built FROM the base. Both are
 * tagged by a hash of their build inputs and rebuilt only when those change.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PatchbayError } from '../../services/domain/errors.ts';
import { runCommand } from '../host/command.ts';
import type { LocalImages } from './docker.ts';

export const IMAGE_LABEL = 'org.patchbay.image';
export const INPUTS_LABEL = 'org.patchbay.inputs';

export interface ImageSet {
  base: string;
  runner: string;
  /** The runner image's id: warm bases are keyed by it. */
  runnerId: string;
}

/** sha256 over the relative paths, modes and contents of every file under the folders, plus extra strings. */
export function hashInputs(root: string, folders: readonly string[], extra: readonly string[] = []): string {
  const h = createHash('sha256');
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const st = statSync(path);
      if (st.isDirectory()) walk(path);
      else {
        h.update(`${relative(root, path)}\0${(st.mode & 0o111) !== 0 ? 'x' : '-'}\0`);
        h.update(readFileSync(path));
        h.update('\0');
      }
    }
  };
  for (const f of folders) walk(join(root, f));
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

export async function ensureRunnerImage(images: LocalImages, base: string, opts: ImageOptions): Promise<{ tag: string; id: string }> {
  const baseId = await images.imageId(base);
  if (baseId === null) throw new PatchbayError('IMAGE_MISSING', `base image ${base} is missing`, { retryable: true });
  const inputs = hashInputs(opts.imagesDir, ['runner', 'guest'], [baseId]);
  const tag = `patchbay/runner:${inputs}`;
  const existing = await images.imageId(tag);
  if (existing !== null) return { tag, id: existing };
  opts.onLog(`building ${tag} from ${base} (about a minute)`);
  await images.build({
    contextDir: opts.imagesDir,
    dockerfile: 'runner/Dockerfile',
    tag,
    buildArgs: { BASE_IMAGE: base },
    labels: { [IMAGE_LABEL]: 'runner', [INPUTS_LABEL]: inputs },
    onOutput: opts.onLog,
  });
  const id = await images.imageId(tag);
  if (id === null) throw new PatchbayError('IMAGE_BUILD_FAILED', `${tag} was not created`, { retryable: true });
  return { tag, id };
}

export async function ensureImages(images: LocalImages, opts: ImageOptions): Promise<ImageSet> {
  const base = await ensureBaseImage(images, opts);
  const runner = await ensureRunnerImage(images, base, opts);
  return { base, runner: runner.tag, runnerId: runner.id };
}

/** Per-job folders on the host: in/ (what the job reads) and out/ (artifacts), owned by the container's user. */
import { chownSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The runner image's unprivileged user (images/runner/Dockerfile). */
export const CONTAINER_UID = 1000;

export interface JobDir {
  root: string;
  in: string;
  out: string;
}

export function makeJobDir(root: string): JobDir {
  const dir = { root, in: join(root, 'in'), out: join(root, 'out') };
  for (const d of [dir.root, dir.in, dir.out]) {
    mkdirSync(d, { recursive: true });
    if (process.getuid?.() === 0) chownSync(d, CONTAINER_UID, CONTAINER_UID);
  }
  return dir;
}

/** Files in out/, largest last, as names relative to it. */
export function listArtifacts(dir: JobDir): string[] {
  return readdirSync(dir.out)
    .filter((n) => statSync(join(dir.out, n)).isFile())
    .sort();
}

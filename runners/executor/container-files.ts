/**
 * Files across the container boundary, as tar streams and nothing else.
 *
 * In: host-written inputs are packed into a tar owned by root (read-only to
 * the job's user) and extracted by the engine before the container runs.
 *
 * Out: each artifact is fetched alone (a tar of one path, links not
 * followed) and kept only when it is a regular file with the expected name;
 * it is written into a folder no container can reach, created anew
 * (O_EXCL, O_NOFOLLOW), and never larger than its limit. A link, a device,
 * a folder or a second entry is refused and reported, never followed.
 */
import { constants, openSync, closeSync, writeSync } from 'node:fs';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { cutMarker } from '../../services/domain/limits.ts';

/** The runner image's unprivileged user (images/runner/Dockerfile). */
export const CONTAINER_UID = 1000;

export type InputEntry =
  | { type: 'dir'; path: string; mode: number; uid: number }
  | { type: 'file'; path: string; mode: number; uid: number; content: Buffer | string };

/** A tar of the entries (paths absolute in the container), for JobContainer.put. */
export function packInputs(entries: readonly InputEntry[]): Readable {
  const pack = tar.pack();
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    if (name === '' || name.split('/').some((p) => p === '..' || p === '.')) throw new Error(`input path ${e.path} is not a plain absolute path`);
    const header = { name: e.type === 'dir' ? `${name}/` : name, mode: e.mode, uid: e.uid, gid: e.uid, mtime: new Date(0) };
    if (e.type === 'dir') pack.entry({ ...header, type: 'directory' });
    else pack.entry(header, typeof e.content === 'string' ? Buffer.from(e.content, 'utf8') : e.content);
  }
  pack.finalize();
  return pack;
}

export interface CopyRule {
  /** The artifact's file name (also its name in the container folder). */
  name: string;
  maxBytes: number;
  /** Over the limit: keep the first maxBytes with a marker (logs), else refuse it (binaries). */
  truncate: boolean;
}

export type CopyOutcome =
  | { name: string; kept: true; bytes: number; truncated: boolean }
  | { name: string; kept: false; reason: string };

const TYPE_WORDS: Record<string, string> = {
  symlink: 'a symbolic link',
  link: 'a hard link',
  directory: 'a folder',
  'character-device': 'a character device',
  'block-device': 'a block device',
  fifo: 'a FIFO',
  'contiguous-file': 'a contiguous file',
};

/**
 * Reads the tar of one path (as JobContainer.archive gives it) and writes
 * the file to destPath when it is a plain file named rule.name. The stream
 * is always consumed or destroyed.
 */
export async function copyOne(archive: Readable, rule: CopyRule, destPath: string): Promise<CopyOutcome> {
  const extract = tar.extract();
  const state: { outcome: CopyOutcome | null } = { outcome: null };
  const refuse = (reason: string): void => {
    state.outcome ??= { name: rule.name, kept: false, reason };
  };
  try {
    await new Promise<void>((resolve, reject) => {
      extract.on('entry', (header, body, next) => {
        if (state.outcome !== null) {
          // Only the first entry is ever considered: a tar of one regular
          // file has one entry; anything after it is stopped here.
          body.resume();
          archive.unpipe(extract);
          archive.destroy();
          resolve();
          return;
        }
        const type = header.type ?? 'file';
        const refusal = type !== 'file'
          ? `it is ${TYPE_WORDS[type] ?? `a ${type}`}, not a regular file`
          : header.name !== rule.name
            ? `the archive named "${header.name.slice(0, 200)}", not "${rule.name}"`
            : (header.size ?? 0) > rule.maxBytes && !rule.truncate
              ? `it is ${header.size ?? 0} bytes, over its ${rule.maxBytes}-byte limit`
              : null;
        if (refusal !== null) {
          refuse(refusal);
          body.resume();
          body.on('end', next);
          return;
        }
        const size = header.size ?? 0;
        let fd: number;
        try {
          fd = openSync(destPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        let written = 0;
        let closed = false;
        const finish = (): void => {
          if (closed) return;
          closed = true;
          const truncated = size > rule.maxBytes;
          if (truncated) writeSync(fd, cutMarker(rule.name, rule.maxBytes));
          closeSync(fd);
          state.outcome = { name: rule.name, kept: true, bytes: written, truncated };
        };
        body.on('data', (chunk: Buffer) => {
          if (closed) return;
          const room = rule.maxBytes - written;
          const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
          writeSync(fd, part);
          written += part.length;
          if (written >= rule.maxBytes && size > rule.maxBytes) {
            // The rest is not wanted: stop reading instead of draining it.
            finish();
            archive.unpipe(extract);
            archive.destroy();
            resolve();
          }
        });
        body.on('error', (e) => {
          if (!closed) { closed = true; closeSync(fd); }
          reject(e);
        });
        body.on('end', () => {
          finish();
          next();
        });
      });
      extract.on('finish', resolve);
      extract.on('error', reject);
      archive.on('error', reject);
      archive.pipe(extract);
    });
  } catch (e) {
    archive.destroy();
    extract.destroy();
    // The host side refusing to write (the destination exists) is the caller's bug: thrown.
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw e;
    if (state.outcome?.kept !== true) return { name: rule.name, kept: false, reason: `its archive could not be read: ${e instanceof Error ? e.message : String(e)}` };
  }
  return state.outcome ?? { name: rule.name, kept: false, reason: 'the archive was empty' };
}

/**
 * What a job records of the environment it ran in (JobResult.environment):
 * the image, its compiler and QEMU, the QEMU command line of its boot, and
 * how its kernel config was made. A mail report prints it beside the
 * reproducer.
 *
 * Nothing here opens a file a job wrote. The compiler's and QEMU's version
 * lines come from a short exec in the base sandbox before anything of the
 * job ran there (its output, capped), once per image id; the QEMU command
 * line is boot.sh's first line of output, printed before QEMU starts, so
 * neither the guest nor anything the series built can put it there; the
 * .config's hash is of the artifact the host copied out of the sandbox.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, constants } from 'node:fs';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { SuiteCatalog } from '../../services/catalog/suites.ts';
import { kernelFragmentParts } from '../../services/catalog/load.ts';
import type { JobEnvironment } from '../../services/domain/job.ts';
import { mergeFragments } from '../../services/domain/kconfig.ts';
import type { Running } from './sandbox.ts';

/** The longest text a field of the environment keeps (bytes of UTF-8). */
export const ENVIRONMENT_TEXT_LIMIT = 4096;

/** boot.sh's first line of output: the QEMU command it runs (images/runner/stages/boot.sh). */
export const QEMU_COMMAND_MARKER = 'patchbay: qemu command: ';

/** What configure.sh starts the kernel config from (`kmake -s tinyconfig`), before the fragment is merged in. */
export const CONFIG_BASE = 'tinyconfig';

/**
 * One line of text fit to record: control characters (C0, DEL, C1; a tab
 * becomes a space) removed, outer spaces trimmed, cut at `limit` bytes of
 * UTF-8 on a character boundary (with "..." when cut).
 */
export function cleanLine(text: string, limit = ENVIRONMENT_TEXT_LIMIT): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/\t/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '').trim();
  if (Buffer.byteLength(clean, 'utf8') <= limit) return clean;
  let out = '';
  let bytes = 0;
  for (const ch of clean) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > limit - 3) break;
    out += ch;
    bytes += n;
  }
  return `${out}...`;
}

/** The first line of a command's output, cleaned; null when it printed nothing. */
export function firstLine(output: string): string | null {
  const line = cleanLine(output.split('\n', 1)[0] ?? '');
  return line === '' ? null : line;
}

/**
 * Picks the QEMU command line out of boot.sh's output as it streams: only
 * its first line counts, and only when it is the marker (boot.sh prints it
 * before anything else, before QEMU starts). Whatever comes later (the
 * guest's console, which a series' kernel writes) is never read for it.
 * Holds at most the marker and ENVIRONMENT_TEXT_LIMIT bytes more.
 */
export class QemuCommandPicker {
  private head = '';
  private decided = false;
  private found: string | null = null;

  constructor(private readonly onFound: (command: string) => void = () => undefined) {}

  /** The command line, once seen; null before, or when the first line was not the marker. */
  get command(): string | null {
    return this.found;
  }

  feed(text: string): void {
    if (this.decided) return;
    const room = QEMU_COMMAND_MARKER.length + ENVIRONMENT_TEXT_LIMIT * 4;
    this.head += text.slice(0, Math.max(0, room - this.head.length));
    const nl = this.head.indexOf('\n');
    if (nl < 0 && this.head.length < room) {
      // The first line is not whole yet; a prefix that already differs from the marker decides.
      if (!QEMU_COMMAND_MARKER.startsWith(this.head.slice(0, QEMU_COMMAND_MARKER.length))) this.decide(null);
      return;
    }
    this.decide(nl < 0 ? this.head : this.head.slice(0, nl));
  }

  private decide(line: string | null): void {
    this.decided = true;
    this.head = '';
    if (line === null || !line.startsWith(QEMU_COMMAND_MARKER)) return;
    const command = cleanLine(line.slice(QEMU_COMMAND_MARKER.length));
    if (command === '') return;
    this.found = command;
    this.onFound(command);
  }
}

/** The command line from a whole output (tests, and output already captured). */
export function qemuCommandOf(output: string): string | null {
  const picker = new QemuCommandPicker();
  picker.feed(output);
  picker.feed('\n');
  return picker.command;
}

export interface ToolVersions {
  compiler: string | null;
  qemu: string | null;
}

/** The compiler's and QEMU's version lines per image id, read once per process (the executor's deps hold one). */
export class ToolVersionCache {
  private readonly byImage = new Map<string, ToolVersions>();

  get(imageId: string): ToolVersions | undefined {
    return this.byImage.get(imageId);
  }

  set(imageId: string, versions: ToolVersions): void {
    // An image is immutable: its answer never changes. The map stays small
    // (one entry per job image a process has run jobs in).
    this.byImage.set(imageId, versions);
  }
}

/** How long each version command may take. */
const VERSION_TIMEOUT_SECONDS = 30;

/**
 * `gcc --version` and `qemu-system-x86_64 --version`, first lines, run in a
 * container of the image (before any job code ran in it). A command that
 * fails gives null.
 */
export async function readToolVersions(c: Running): Promise<ToolVersions> {
  const one = async (cmd: string[]): Promise<string | null> => {
    const r = await c.exec(cmd, { timeoutSeconds: VERSION_TIMEOUT_SECONDS, outputLimitBytes: ENVIRONMENT_TEXT_LIMIT });
    return r.exitCode === 0 ? firstLine(r.tail) : null;
  };
  return { compiler: await one(['gcc', '--version']), qemu: await one(['qemu-system-x86_64', '--version']) };
}

/** A path as the repository names it (relative to its root), or as given when it is outside. */
function repositoryPath(repoRoot: string, path: string): string {
  const rel = relative(repoRoot, path);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? path : rel.split(sep).join('/');
}

/**
 * How the job's kernel config is made: CONFIG_BASE, then the fragment merged
 * in, named by the repository files it comes from in merge order (the
 * guest's config, then each suite's manifest, whose `kconfig` it takes):
 * the catalogue's, when merging them gives the job's fragment. A fragment
 * that is not the catalogue's (a bench's, a test's) is named by its hash.
 */
export function configEnvironment(fragment: string, dirs: { imagesDir: string; suitesDir: string }): NonNullable<JobEnvironment['config']> {
  const repoRoot = dirname(dirs.imagesDir);
  try {
    const parts = kernelFragmentParts(dirs.imagesDir, dirs.suitesDir, SuiteCatalog.load(dirs.suitesDir));
    if (mergeFragments(parts) === fragment) return { base: CONFIG_BASE, fragments: parts.map((p) => repositoryPath(repoRoot, p.path)), sha256: null };
  } catch {
    // A catalogue that does not load is not this job's concern here.
  }
  return { base: CONFIG_BASE, fragments: [`(the job's own fragment, sha256 ${sha256(fragment)})`], sha256: null };
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The largest .config artifact hashed (a kernel's is some 100 KiB). */
const CONFIG_MAX_BYTES = 16 * 1024 * 1024;

/**
 * sha256 of an artifact the host wrote (a regular file in the attempt's
 * folder, copied whole: not one cut at its limit), opened without following
 * a link; null when it is absent or larger than CONFIG_MAX_BYTES.
 */
export function artifactSha256(dir: string, name: string): string | null {
  let fd: number;
  try {
    fd = openSync(join(dir, name), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > CONFIG_MAX_BYTES) return null;
    const buf = Buffer.alloc(st.size);
    let at = 0;
    while (at < st.size) {
      const n = readSync(fd, buf, at, st.size - at, at);
      if (n === 0) break;
      at += n;
    }
    return sha256(buf.subarray(0, at));
  } finally {
    closeSync(fd);
  }
}

/** An environment with nothing known yet but the config's recipe. */
export function initialEnvironment(config: JobEnvironment['config']): JobEnvironment {
  return { image: null, compiler: null, qemu: null, qemuCommand: null, config };
}

/**
 * The sandbox one attempt of a job runs in: a container of its own (one for
 * the series, another for the base kernel, which no series ever touches),
 * driven stage by stage.
 *
 * - Inputs (the series, the suites, a guest plan) are put in while it is
 *   stopped, owned by root: the job's user can read them, not change them.
 * - A stage starts its processes and ends by killing all of them: nothing a
 *   stage started survives into the next one.
 * - Outputs are copied out only while it is stopped, one named regular file
 *   at a time, size-capped, into the attempt's artifacts folder on the host
 *   (which no container mounts).
 * - A watchdog stops it when its writable layer passes its disk budget.
 */
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PatchbayError } from '../../services/domain/errors.ts';
import { formatBytes } from '../../services/domain/limits.ts';
import { CONTAINER_UID, type CopyOutcome, type CopyRule, type InputEntry, copyOne, packInputs } from './container-files.ts';
import type { ContainerRuntime, ContainerSpec, ExecOptions, ExecOutcome, JobContainer } from './docker.ts';

/** What a stage may do with a running sandbox. */
export interface Running {
  exec(cmd: readonly string[], opts?: ExecOptions): Promise<ExecOutcome>;
}

export interface SandboxLimits {
  /** The writable layer's budget; past it the container is stopped and the job ends (JOB_LIMIT). */
  diskBytes: number;
  /** How often the disk budget is checked. */
  diskCheckMs: number;
  /** Default cap on what one command's output streams to logs. */
  outputLimitBytes: number;
}

/** Inside every sandbox: /job and /job/in belong to root, /job/out to the job's user. */
export const JOB_IN = '/job/in';
export const JOB_OUT = '/job/out';

export function jobLayout(): InputEntry[] {
  return [
    { type: 'dir', path: '/job', mode: 0o755, uid: 0 },
    { type: 'dir', path: JOB_IN, mode: 0o755, uid: 0 },
    { type: 'dir', path: JOB_OUT, mode: 0o755, uid: CONTAINER_UID },
  ];
}

/**
 * A host folder as inputs under `target`, owned by root (so read-only to the
 * job's user) with ordinary modes (0644, 0755), so that a copy the job makes
 * of them is its own to change.
 */
export function folderInputs(source: string, target: string): InputEntry[] {
  const out: InputEntry[] = [{ type: 'dir', path: target, mode: 0o755, uid: 0 }];
  for (const name of readdirSync(source).sort()) {
    const path = join(source, name);
    const st = lstatSync(path);
    if (st.isDirectory()) out.push(...folderInputs(path, `${target}/${name}`));
    else if (st.isFile()) out.push({ type: 'file', path: `${target}/${name}`, mode: (st.mode & 0o111) !== 0 ? 0o755 : 0o644, uid: 0, content: readFileSync(path) });
  }
  return out;
}

export class Sandbox {
  private running = false;
  private overBudget: number | null = null;

  private constructor(
    private readonly container: JobContainer,
    readonly name: string,
    private readonly limits: SandboxLimits,
  ) {}

  /** Creates the container (stopped) with the /job layout and the inputs in place. */
  static async create(runtime: ContainerRuntime, spec: ContainerSpec, inputs: readonly InputEntry[], limits: SandboxLimits): Promise<Sandbox> {
    const container = await runtime.create(spec);
    try {
      await container.put(packInputs([...jobLayout(), ...inputs]));
    } catch (e) {
      await container.dispose();
      throw e;
    }
    return new Sandbox(container, spec.name, limits);
  }

  get id(): string {
    return this.container.id;
  }

  /** More inputs (read-only to the job); only between stages. */
  async put(inputs: readonly InputEntry[]): Promise<void> {
    if (this.running) throw new PatchbayError('INTERNAL', `sandbox ${this.name}: inputs go in only between stages`);
    await this.container.put(packInputs(inputs));
  }

  /**
   * Runs `fn` with the container's processes up, then kills every process
   * in it, whatever `fn` did. Throws JOB_LIMIT when the disk budget was
   * passed meanwhile.
   */
  async stage<T>(fn: (running: Running) => Promise<T>): Promise<T> {
    if (this.running) throw new PatchbayError('INTERNAL', `sandbox ${this.name}: a stage is already running`);
    this.running = true;
    try {
      await this.container.start();
    } catch (e) {
      this.running = false;
      throw e;
    }
    const watchdog = setInterval(() => { void this.checkDisk(); }, this.limits.diskCheckMs);
    const running: Running = {
      exec: (cmd, opts) => this.container.exec(cmd, { outputLimitBytes: this.limits.outputLimitBytes, ...opts }),
    };
    try {
      const value = await fn(running);
      await this.checkDisk();
      this.throwIfOverBudget();
      return value;
    } catch (e) {
      this.throwIfOverBudget();
      throw e;
    } finally {
      clearInterval(watchdog);
      await this.container.stop();
      this.running = false;
    }
  }

  private async checkDisk(): Promise<void> {
    if (this.overBudget !== null) return;
    let used: number;
    try {
      used = await this.container.diskUsage();
    } catch {
      return; // Gone (disposed at a deadline); the stage ends on its own.
    }
    if (used > this.limits.diskBytes) {
      this.overBudget = used;
      await this.container.stop();
    }
  }

  private throwIfOverBudget(): void {
    if (this.overBudget === null) return;
    throw new PatchbayError('JOB_LIMIT', `the job wrote ${formatBytes(this.overBudget)} to its container's disk, over its ${formatBytes(this.limits.diskBytes)} limit; its container was stopped`, {
      retryable: false,
      details: { limit: 'disk', usedBytes: this.overBudget },
    });
  }

  /**
   * Copies named files out of a folder of the stopped container into
   * `dest` (a host folder no container mounts), as `rename(name)`.
   */
  async collect(dir: string, rules: readonly CopyRule[], dest: string, rename: (name: string) => string = (n) => n): Promise<CopyOutcome[]> {
    if (this.running) throw new PatchbayError('INTERNAL', `sandbox ${this.name}: files come out only between stages`);
    const out: CopyOutcome[] = [];
    for (const rule of rules) {
      const archive = await this.container.archive(`${dir}/${rule.name}`);
      if (archive === null) {
        out.push({ name: rule.name, kept: false, reason: 'absent' });
        continue;
      }
      const outcome = await copyOne(archive, rule, join(dest, rename(rule.name)));
      out.push(outcome);
    }
    return out;
  }

  /** Saves its filesystem as an image; only between stages. */
  async commit(tag: string, labels: Record<string, string>): Promise<void> {
    if (this.running) throw new PatchbayError('INTERNAL', `sandbox ${this.name}: committed only between stages`);
    await this.container.commit(tag, labels);
  }

  async dispose(): Promise<void> {
    await this.container.dispose();
  }
}

/**
 * The attempt's artifacts: a folder created anew for it on the host, written
 * only by the host, served by the API. Nothing in it is a link.
 */
export class ArtifactsDir {
  private constructor(readonly path: string) {}

  /** jobs/<jobId>/attempt-<time>-<random>: a new folder for each attempt, never reused. */
  static create(jobsDir: string, jobId: string): ArtifactsDir {
    const parent = join(jobsDir, jobId);
    mkdirSync(parent, { recursive: true, mode: 0o755 });
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
    const path = mkdtempSync(join(parent, `attempt-${stamp}-`));
    // Readable by an API running as another user (mkdtemp makes it 0700).
    chmodSync(path, 0o755);
    return new ArtifactsDir(path);
  }

  file(name: string): string {
    if (name.includes('/') || name === '..' || name === '.') throw new PatchbayError('INTERNAL', `artifact name ${name} is not a plain file name`);
    return join(this.path, name);
  }

  /** Regular files only, by name. */
  list(): string[] {
    return readdirSync(this.path).filter((n) => lstatSync(join(this.path, n)).isFile()).sort();
  }

  /** A copied file's text ('' when it was not copied). */
  readText(name: string): string {
    const path = this.file(name);
    try {
      if (!lstatSync(path).isFile()) return '';
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  }
}

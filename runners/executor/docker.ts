/**
 * The only module that imports dockerode. The rest of the executor sees
 * narrow ports: ContainerRuntime (one method: create a hardened container),
 * LocalImages (what the image builder needs) and CollectableImages (what
 * garbage collection lists and removes).
 *
 * A job container shares no folder with the host that the host later opens:
 * inputs go in as a tar the engine extracts (before the container runs, or
 * while it is stopped), and outputs come out as a tar of one path at a time
 * (archive), read by container-files.ts, which keeps regular files only.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import Docker from 'dockerode';
import { PatchbayError, errorMessage } from '../../services/domain/errors.ts';
import { ByteBudget } from '../../services/domain/limits.ts';
import { identityAlive, processIdentity } from '../../services/platform/process.ts';

export interface Mount {
  /** Host path (bind) or volume name (volume). */
  source: string;
  target: string;
  readOnly: boolean;
  kind: 'bind' | 'volume';
}

export interface ContainerSpec {
  image: string;
  /** Shown in `docker ps`; patchbay-<role>-<id>. */
  name: string;
  labels: Record<string, string>;
  mounts: Mount[];
  memoryBytes: number;
  cpus: number;
  pids: number;
  /** Host devices passed through, e.g. /dev/kvm. */
  devices: string[];
  /** RLIMIT_FSIZE of every process in it (exec'd ones too): no file grows past this. */
  fileSizeBytes: number;
  /** Size of the tmpfs at /tmp (counted against the memory limit as well). */
  tmpBytes: number;
  /** The container's command; the runner image's own (sleep under tini) when absent. */
  command?: string[];
}

export interface ExecOptions {
  /** Output (stdout and stderr merged) as it arrives. */
  onOutput?: (text: string) => void;
  /** Killed (with the whole command tree) after this many seconds: exit 124. */
  timeoutSeconds?: number;
  env?: Record<string, string>;
  /** What onOutput receives is cut (with a marker) after this many bytes; the tail is kept either way. */
  outputLimitBytes?: number;
}

export interface ExecOutcome {
  exitCode: number;
  timedOut: boolean;
  /** The last 256 KiB of output. */
  tail: string;
}

export interface JobContainer {
  readonly id: string;
  /** Starts its processes (the image's command); its filesystem is kept from any earlier run. */
  start(): Promise<void>;
  /** Kills every process in it (SIGKILL) and waits until it has stopped; idempotent. */
  stop(): Promise<void>;
  /** Runs a command in the running container. */
  exec(cmd: readonly string[], opts?: ExecOptions): Promise<ExecOutcome>;
  /** Extracts a tar at / (owners and modes from its headers). */
  put(archive: Readable): Promise<void>;
  /** A tar of one path in it (links are not followed), or null when the path does not exist. */
  archive(path: string): Promise<Readable | null>;
  /** Bytes its writable layer holds. */
  diskUsage(): Promise<number>;
  /** Snapshot the container's filesystem as an image. */
  commit(tag: string, labels: Record<string, string>): Promise<void>;
  /** Kill and remove; idempotent, never throws. */
  dispose(): Promise<void>;
}

/** The one-method port through which jobs get containers (created stopped). */
export interface ContainerRuntime {
  create(spec: ContainerSpec): Promise<JobContainer>;
}

export interface LocalImages {
  /** The image id of a tag, or null when the engine does not have it. */
  imageId(tag: string): Promise<string | null>;
  /** Try to pull an image; false (not an error) when no registry has it. */
  tryPull(ref: string, onOutput: (line: string) => void): Promise<boolean>;
  tag(source: string, target: string): Promise<void>;
  build(opts: {
    contextDir: string;
    dockerfile: string;
    tag: string;
    buildArgs: Record<string, string>;
    labels: Record<string, string>;
    onOutput: (line: string) => void;
  }): Promise<void>;
  remove(tag: string): Promise<void>;
  /** Images whose labels include all of these. */
  list(labels: Record<string, string>): Promise<Array<{ id: string; tags: string[]; labels: Record<string, string>; created: number }>>;
}

/** An image as garbage collection sees it. */
export interface ImageRecord {
  id: string;
  tags: string[];
  labels: Record<string, string>;
  /** Seconds since the epoch. */
  created: number;
  /** Bytes of all its layers, shared ones included. */
  sizeBytes: number;
  /** Its layers (diff ids), bottom first: an image whose layers begin another's is its parent in content. */
  layers: string[];
}

/** The third narrow port, for garbage collection (gc.ts): what it lists and the one way it removes. */
export interface CollectableImages {
  /** Images whose labels include all of these, with their size and layers. */
  describe(labels: Record<string, string>): Promise<ImageRecord[]>;
  /** The image ids patchbay's containers (running or stopped) were created from. */
  imagesInUse(): Promise<Set<string>>;
  /**
   * Removes one tag (the image goes with its last tag), never forced: an
   * image a container was created from (anyone's) stays ('in-use').
   */
  removeUnused(tag: string): Promise<'removed' | 'in-use' | 'gone'>;
}

const TAIL_BYTES = 256 * 1024;

/** Every container patchbay starts carries its owner, so a dead owner's containers can be found. */
export const OWNER_LABEL = 'org.patchbay.owner';

/** No job's container lives longer than its job's deadline: past that (and a margin), anyone may remove it. */
export function orphanAgeSeconds(config: { job: { deadlineSeconds: number } }): number {
  return config.job.deadlineSeconds + 600;
}


function dockerError(what: string, e: unknown): PatchbayError {
  return new PatchbayError('DOCKER_FAILED', `docker: ${what}: ${errorMessage(e)}`, { cause: e, retryable: true });
}

/** "repo:tag" (the repo may hold a registry port's colon) into its parts. */
export function splitTag(image: string): { repo: string; tag: string } {
  const colon = image.lastIndexOf(':');
  if (colon <= 0 || image.slice(colon).includes('/')) return { repo: image, tag: 'latest' };
  return { repo: image.slice(0, colon), tag: image.slice(colon + 1) };
}

function listFiles(dir: string, root = dir): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listFiles(path, root));
    else out.push(relative(root, path));
  }
  return out;
}

class DockerJobContainer implements JobContainer {
  private disposed = false;

  constructor(
    private readonly docker: Docker,
    private readonly container: Docker.Container,
  ) {}

  get id(): string {
    return this.container.id;
  }

  async exec(cmd: readonly string[], opts: ExecOptions = {}): Promise<ExecOutcome> {
    const argv = opts.timeoutSeconds === undefined
      ? [...cmd]
      : ['timeout', '--kill-after=10', String(opts.timeoutSeconds), ...cmd];
    let tail = '';
    const decoder = new StringDecoder('utf8');
    const budget = opts.outputLimitBytes === undefined ? null : new ByteBudget(opts.outputLimitBytes, 'output');
    const onOutput = opts.onOutput;
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        const text = decoder.write(chunk);
        tail = (tail + text).slice(-TAIL_BYTES);
        if (onOutput) {
          const kept = budget === null ? text : budget.take(text).text;
          if (kept !== '') onOutput(kept);
        }
        done();
      },
    });
    try {
      const exec = await this.container.exec({
        Cmd: argv,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
      });
      const stream = await exec.start({ hijack: true, stdin: false });
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.demuxStream(stream, sink, sink);
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', reject);
      });
      const info = await exec.inspect();
      const exitCode = info.ExitCode ?? -1;
      const timedOut = opts.timeoutSeconds !== undefined && (exitCode === 124 || exitCode === 137);
      return { exitCode, timedOut, tail };
    } catch (e) {
      if (this.disposed) return { exitCode: -1, timedOut: false, tail };
      throw dockerError(`exec ${cmd.join(' ')}`, e);
    }
  }

  async start(): Promise<void> {
    try {
      await this.container.start();
    } catch (e) {
      throw dockerError('start container', e);
    }
  }

  async stop(): Promise<void> {
    try {
      await this.container.kill();
    } catch (e) {
      // 409: not running. 404: gone (disposed by a deadline).
      const code = (e as { statusCode?: number }).statusCode;
      if (code !== 409 && code !== 404) throw dockerError('kill container', e);
    }
    try {
      await this.container.wait({ condition: 'not-running' });
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw dockerError('wait for container', e);
    }
  }

  async put(archive: Readable): Promise<void> {
    try {
      await this.container.putArchive(archive, { path: '/' });
    } catch (e) {
      throw dockerError('put files into container', e);
    }
  }

  async archive(path: string): Promise<Readable | null> {
    try {
      const stream = await this.container.getArchive({ path });
      if (!(stream instanceof Readable)) throw new Error('the engine did not answer with a stream');
      return stream;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return null;
      throw dockerError(`archive ${path}`, e);
    }
  }

  async diskUsage(): Promise<number> {
    try {
      // The engine's ?size=1 (not in the typings): SizeRw is the writable layer.
      const info = (await this.container.inspect({ size: true } as unknown as Docker.ContainerInspectOptions)) as { SizeRw?: number };
      return info.SizeRw ?? 0;
    } catch (e) {
      throw dockerError('inspect container size', e);
    }
  }

  async commit(image: string, labels: Record<string, string>): Promise<void> {
    const { repo, tag } = splitTag(image);
    try {
      // The container's owner label is cleared: a container someone starts
      // by hand from the image must not look like this process's orphan.
      const all = { ...labels, [OWNER_LABEL]: '' };
      await this.container.commit({ repo, tag, pause: true, changes: Object.entries(all).map(([k, v]) => `LABEL ${k}=${JSON.stringify(v)}`) });
    } catch (e) {
      throw dockerError(`commit ${image}`, e);
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    try {
      await this.container.remove({ force: true, v: true });
    } catch {
      // Already gone (removed by a deadline, or the engine restarted).
    }
  }
}

export class DockerEngine implements ContainerRuntime, LocalImages, CollectableImages {
  private readonly docker: Docker;

  constructor(socketPath: string) {
    this.docker = new Docker({ socketPath });
  }

  /** Fails with a clear MISS-class error when the engine is not there. */
  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (e) {
      throw new PatchbayError('DOCKER_UNREACHABLE', `the Docker engine is not reachable (${errorMessage(e)}); run deploy/host/prepare.sh`, {
        cause: e,
        retryable: true,
      });
    }
  }

  async create(spec: ContainerSpec): Promise<JobContainer> {
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer({
        name: spec.name,
        Image: spec.image,
        ...(spec.command ? { Cmd: spec.command } : {}),
        Labels: { ...spec.labels, [OWNER_LABEL]: processIdentity() },
        NetworkDisabled: true,
        HostConfig: {
          NetworkMode: 'none',
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges'],
          Memory: spec.memoryBytes,
          MemorySwap: spec.memoryBytes,
          NanoCpus: Math.round(spec.cpus * 1e9),
          PidsLimit: spec.pids,
          ReadonlyRootfs: false,
          Init: false,
          AutoRemove: false,
          Mounts: spec.mounts.map((m) => ({
            Type: m.kind,
            Source: m.source,
            Target: m.target,
            ReadOnly: m.readOnly,
          })),
          Devices: spec.devices.map((d) => ({ PathOnHost: d, PathInContainer: d, CgroupPermissions: 'rwm' })),
          Ulimits: [{ Name: 'fsize', Soft: spec.fileSizeBytes, Hard: spec.fileSizeBytes }],
          Tmpfs: { '/tmp': `rw,exec,nosuid,nodev,size=${spec.tmpBytes}` },
        },
      });
    } catch (e) {
      throw dockerError(`create container from ${spec.image}`, e);
    }
    return new DockerJobContainer(this.docker, container);
  }

  /**
   * Removes patchbay's containers whose owner is gone: started on this host
   * by a process that no longer exists (a runner killed with SIGKILL, a
   * crashed CLI, a worker container restarted), or, when this process
   * cannot check the owner (another worker container, another host name),
   * older than `maxAgeSeconds` (no job's container lives that long). Returns
   * their names.
   */
  async reapOrphans(maxAgeSeconds: number): Promise<string[]> {
    const containers = await this.docker.listContainers({ all: true, filters: { label: [OWNER_LABEL] } });
    const reaped: string[] = [];
    for (const c of containers) {
      const owner = c.Labels[OWNER_LABEL] ?? '';
      if (owner === '') continue;
      const alive = identityAlive(owner);
      if (alive === true || (alive === null && Date.now() / 1000 - c.Created < maxAgeSeconds)) continue;
      try {
        await this.docker.getContainer(c.Id).remove({ force: true, v: true });
        reaped.push(c.Names[0]?.replace(/^\//, '') ?? c.Id);
      } catch {
        // Removed meanwhile by someone else.
      }
    }
    return reaped;
  }

  async imageId(tag: string): Promise<string | null> {
    try {
      const info = await this.docker.getImage(tag).inspect();
      return info.Id;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return null;
      throw dockerError(`inspect ${tag}`, e);
    }
  }

  async tryPull(ref: string, onOutput: (line: string) => void): Promise<boolean> {
    try {
      const stream = await this.docker.pull(ref);
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(stream, (err) => { if (err) reject(err); else resolve(); }, (ev: { status?: string }) => {
          if (ev.status) onOutput(ev.status);
        });
      });
      return true;
    } catch (e) {
      onOutput(`pull ${ref} failed: ${errorMessage(e)}`);
      return false;
    }
  }

  async tag(source: string, target: string): Promise<void> {
    const { repo, tag } = splitTag(target);
    try {
      await this.docker.getImage(source).tag({ repo, tag });
    } catch (e) {
      throw dockerError(`tag ${source} as ${target}`, e);
    }
  }

  async build(opts: Parameters<LocalImages['build']>[0]): Promise<void> {
    const state: { failure: string | null } = { failure: null };
    try {
      const stream = await this.docker.buildImage(
        { context: opts.contextDir, src: listFiles(opts.contextDir) },
        { t: opts.tag, dockerfile: opts.dockerfile, buildargs: opts.buildArgs, labels: opts.labels, rm: true, forcerm: true },
      );
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(
          stream,
          (err) => { if (err) reject(err); else resolve(); },
          (ev: { stream?: string; error?: string; errorDetail?: { message?: string } }) => {
            if (ev.stream) for (const line of ev.stream.split('\n')) if (line.trim() !== '') opts.onOutput(line);
            if (ev.error) state.failure = ev.errorDetail?.message ?? ev.error;
          },
        );
      });
    } catch (e) {
      throw dockerError(`build ${opts.tag}`, e);
    }
    if (state.failure !== null) {
      throw new PatchbayError('IMAGE_BUILD_FAILED', `building ${opts.tag} failed: ${state.failure}`, { retryable: true });
    }
  }

  /** Removes a volume (a benchmark's throwaway compiler cache); gone already is fine. */
  async removeVolume(name: string): Promise<void> {
    try {
      await this.docker.getVolume(name).remove();
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw dockerError(`remove volume ${name}`, e);
    }
  }

  async remove(tag: string): Promise<void> {
    try {
      await this.docker.getImage(tag).remove({ force: true });
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw dockerError(`remove ${tag}`, e);
    }
  }

  async describe(labels: Record<string, string>): Promise<ImageRecord[]> {
    const out: ImageRecord[] = [];
    for (const i of await this.list(labels)) {
      try {
        // By a tag when it has one: what the docker filter lets a compose worker inspect.
        const info = await this.docker.getImage(i.tags[0] ?? i.id).inspect();
        if (info.Id !== i.id) continue;
        out.push({ ...i, sizeBytes: info.Size, layers: info.RootFS.Layers ?? [] });
      } catch (e) {
        // Removed since it was listed.
        if ((e as { statusCode?: number }).statusCode !== 404) throw dockerError(`inspect ${i.id}`, e);
      }
    }
    return out;
  }

  async imagesInUse(): Promise<Set<string>> {
    try {
      // By the owner label, as reapOrphans lists them (what the docker filter lets a worker list).
      const containers = await this.docker.listContainers({ all: true, filters: { label: [OWNER_LABEL] } });
      return new Set(containers.map((c) => c.ImageID));
    } catch (e) {
      throw dockerError('list containers', e);
    }
  }

  async removeUnused(tag: string): Promise<'removed' | 'in-use' | 'gone'> {
    try {
      await this.docker.getImage(tag).remove({ force: false, noprune: false });
      return 'removed';
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode;
      if (code === 404) return 'gone';
      if (code === 409) return 'in-use';
      throw dockerError(`remove ${tag}`, e);
    }
  }

  async list(labels: Record<string, string>): Promise<Array<{ id: string; tags: string[]; labels: Record<string, string>; created: number }>> {
    const images = await this.docker.listImages({
      filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) },
    });
    // The engine sends null for untagged images, whatever the typings say.
    return images.map((i) => ({ id: i.Id, tags: (i.RepoTags as string[] | null) ?? [], labels: (i.Labels as Record<string, string> | null) ?? {}, created: i.Created }));
  }
}

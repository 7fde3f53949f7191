/**
 * A fake job container for unit tests of the stages and the guest runner
 * (the narrow port the executor talks to): its commands answer as a handler
 * says, and named files come out of it as the engine would hand them.
 */
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { ContainerRuntime, ContainerSpec, ExecOptions, ExecOutcome, JobContainer } from '../docker.ts';
import { Sandbox } from '../sandbox.ts';

export type Handler = (cmd: readonly string[], opts: ExecOptions) => ExecOutcome;

/** A container whose commands answer as `handler` says, recording each. */
export class ScriptedContainer implements JobContainer {
  readonly id = 'fake';
  readonly commands: string[] = [];
  constructor(private readonly handler: Handler, private readonly files: Record<string, string> = {}) {}
  start(): Promise<void> { return Promise.resolve(); }
  stop(): Promise<void> { return Promise.resolve(); }
  exec(cmd: readonly string[], opts: ExecOptions = {}): Promise<ExecOutcome> {
    this.commands.push(cmd.map((a) => a.replace(/^\/opt\/patchbay\/stages\//, '')).join(' '));
    return Promise.resolve(this.handler(cmd, opts));
  }
  put(archive: Readable): Promise<void> { archive.resume(); return Promise.resolve(); }
  archive(path: string): Promise<Readable | null> {
    const name = path.slice(path.lastIndexOf('/') + 1);
    const body = this.files[name];
    if (body === undefined) return Promise.resolve(null);
    const pack = tar.pack();
    pack.entry({ name }, body);
    pack.finalize();
    return Promise.resolve(pack);
  }
  diskUsage(): Promise<number> { return Promise.resolve(0); }
  commit(): Promise<void> { return Promise.resolve(); }
  dispose(): Promise<void> { return Promise.resolve(); }
}

export const fakeSpec = { image: 'x', name: 'fake', labels: {}, mounts: [], memoryBytes: 1, cpus: 1, pids: 1, devices: [], fileSizeBytes: 1, tmpBytes: 1 } satisfies ContainerSpec;

/** A sandbox over the fake container. */
export function fakeSandbox(c: JobContainer): Promise<Sandbox> {
  const runtime: ContainerRuntime = { create: () => Promise.resolve(c) };
  return Sandbox.create(runtime, fakeSpec, [], { diskBytes: 1e12, diskCheckMs: 60_000, outputLimitBytes: 1 << 20 });
}

/**
 * What every stage unit gets: the job's settings, its logs and events, its
 * artifacts folder, the abort check, and the result it adds its evidence to.
 * A stage ends early by throwing StageOutcome (its verdict) or any error
 * (infrastructure: MISS).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Logger } from 'pino';
import type { AccelMode } from '../accel.ts';
import type { VerdictPolicy } from '../../../services/domain/compare.ts';
import type { JobEnvironment, JobEvent, JobResult, StageName } from '../../../services/domain/job.ts';
import { ByteBudget } from '../../../services/domain/limits.ts';
import type { Status } from '../../../services/domain/status.ts';
import type { ArtifactsDir } from '../sandbox.ts';

export interface ExecutorSettings {
  cacheDir: string;
  imagesDir: string;
  /** The suites catalogue: each selected suite's folder goes into the job. */
  suitesDir: string;
  baseImage: string | null;
  /** Docker volume of the compiler cache: written by warm-base builds only, read-only to jobs. */
  ccacheVolume: string;
  /** Environment for host-side helpers (debootstrap, git). */
  hostEnv: NodeJS.ProcessEnv;
  job: {
    deadlineSeconds: number;
    applyTimeoutSeconds: number;
    buildTimeoutSeconds: number;
    bootTimeoutSeconds: number;
    memoryBytes: number;
    cpus: number;
    pids: number;
    accel: AccelMode;
    /** The flake rule: how often a differing test is re-run on each kernel, and when it is blamed. */
    verdict: VerdictPolicy;
    /** No file in a job container grows past this (RLIMIT_FSIZE). */
    fileSizeBytes: number;
    /** The tmpfs at /tmp. */
    tmpBytes: number;
    /** A job container's writable layer; past it the job ends (JOB_LIMIT). */
    diskBytes: number;
    /** Each log (a stage's output, the console, the KTAP channel) is cut here with a marker. */
    logLimitBytes: number;
    /** Binary artifacts (bzImage) larger than this are not kept. */
    artifactLimitBytes: number;
  };
}

/** Thrown inside a stage to end the job with a verdict for that stage. */
export class StageOutcome extends Error {
  constructor(
    readonly status: Status,
    readonly summary: string,
  ) {
    super(summary);
  }
}

/** The host-side log file of each stage (the guest's console comes out of the sandbox). */
const STAGE_LOG: Partial<Record<StageName, string>> = {
  setup: 'setup.log',
  apply: 'apply.log',
  build: 'build.log',
};

export class StageContext {
  private readonly files = new Map<string, { stream: WriteStream; budget: ByteBudget }>();

  constructor(
    readonly jobId: string,
    readonly settings: ExecutorSettings,
    readonly log: Logger,
    readonly artifacts: ArtifactsDir,
    readonly result: JobResult,
    private readonly onEvent: (e: JobEvent) => void,
    /** Throws the deadline's or the caller's reason once either fired. */
    readonly checkAborted: () => void,
  ) {}

  event(e: JobEvent): void {
    this.onEvent(e);
  }

  /** The result's environment, filled in as the stages learn it (what no stage learned stays null). */
  environment(): JobEnvironment {
    this.result.environment ??= { image: null, compiler: null, qemu: null, qemuCommand: null, config: null };
    return this.result.environment;
  }

  /** A stage's output: to its log file (capped, with a marker) and live to the caller. */
  stageLog(stage: StageName, text: string): void {
    const name = STAGE_LOG[stage];
    if (name !== undefined) {
      let f = this.files.get(name);
      if (!f) {
        f = { stream: createWriteStream(this.artifacts.file(name), { flags: 'wx', mode: 0o644 }), budget: new ByteBudget(this.settings.job.logLimitBytes, name) };
        this.files.set(name, f);
      }
      const kept = f.budget.take(text).text;
      if (kept !== '') f.stream.write(kept);
    }
    this.onEvent({ type: 'log', stage, text });
  }

  /** A line (newline added when missing) for the setup log. */
  setupLine(text: string): void {
    this.stageLog('setup', text.endsWith('\n') ? text : `${text}\n`);
  }

  async closeLogs(): Promise<void> {
    await Promise.all([...this.files.values()].map((f) => new Promise<void>((r) => f.stream.end(r))));
  }
}

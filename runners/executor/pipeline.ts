/**
 * One job, end to end, on a Docker host: images and warm base (setup), then
 * in a fresh hardened container started from the warm base: apply, build,
 * boot, test. Returns a JobResult; writes no database and knows no queue.
 * Every job has a deadline that kills its container.
 */
import { cpSync, createWriteStream, existsSync, readFileSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { SuiteManifest } from '../../services/catalog/suites.ts';
import type { Tree } from '../../services/catalog/trees.ts';
import {
  type BuildMode,
  parseBuildDiagnostics,
  parseGitAmFailure,
  planBuild,
  shouldRetryClean,
} from '../../services/domain/build.ts';
import { PatchbayError, errorMessage, isPatchbayError } from '../../services/domain/errors.ts';
import { compareWithBase, comparedVerdict } from '../../services/domain/compare.ts';
import { GUEST_MARKERS, type JobResult, type StageName, type StageRun, type TestResult, overallStatus } from '../../services/domain/job.ts';
import { type Series, seriesMbox } from '../../services/domain/series.ts';
import type { Status } from '../../services/domain/status.ts';
import type { TreeMirrors } from '../host/trees.ts';
import { type AccelMode, BASE_KERNEL, KVM_DEVICE, chooseAccel, kvmPresent } from './accel.ts';
import { BASE_KERNEL_COPY, BASE_SUITES_EXTRA, SERIES_KERNEL, SERIES_SUITES_EXTRA, compareAgainstBase } from './against-base.ts';
import { BaseRunCache, baseRunKey } from './base-runs.ts';
import { runGuest } from './guest.ts';
import type { ContainerRuntime, JobContainer, LocalImages } from './docker.ts';
import { GUEST_INPUTS, ensureImages, hashInputs } from './images.ts';
import { type JobDir, listArtifacts, makeJobDir } from './job-dir.ts';
import { ensureJobImage, ensureWarmBase, lastLines } from './warm-base.ts';

export interface ExecutorSettings {
  cacheDir: string;
  imagesDir: string;
  /** The suites catalogue: each selected suite's folder is copied into the job. */
  suitesDir: string;
  baseImage: string | null;
  /** Docker volume shared by builds as the compiler cache. */
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
    /** How many times a test whose outcome differs from the base is re-run on each kernel. */
    reruns: number;
  };
}

export interface ExecutorDeps {
  runtime: ContainerRuntime;
  images: LocalImages;
  mirrors: TreeMirrors;
  settings: ExecutorSettings;
  logger: Logger;
}

export interface JobInput {
  jobId: string;
  tree: Tree;
  /** An explicit base (commit-ish); else the series' base-commit; else the tree's ref. */
  base: string | null;
  series: Series;
  suites: readonly SuiteManifest[];
  /** The merged kernel config fragment every job of this catalogue uses. */
  kernelFragment: string;
}

export type JobEvent =
  | { type: 'stage-start'; stage: StageName }
  | { type: 'stage-end'; stage: StageName; status: Status; durationMs: number; summary: string }
  | { type: 'log'; stage: StageName; text: string };

const STAGE_LOG: Record<StageName, string> = {
  setup: 'setup.log',
  apply: 'apply.log',
  build: 'build.log',
  boot: 'console.log',
  test: 'console.log',
};

/** Stage bookkeeping: timing, logs and events for the stage under way. */
class StageTracker {
  private current: { stage: StageName; started: number } | null = null;

  constructor(
    private readonly runs: StageRun[],
    private readonly log: Logger,
    private readonly onEvent: (e: JobEvent) => void,
  ) {}

  running(): boolean {
    return this.current !== null;
  }

  begin(stage: StageName): void {
    this.current = { stage, started: Date.now() };
    this.log.info({ stage }, 'stage start');
    this.onEvent({ type: 'stage-start', stage });
  }

  end(status: Status, summary: string): void {
    if (!this.current) return;
    const run: StageRun = { stage: this.current.stage, status, durationMs: Date.now() - this.current.started, summary };
    this.runs.push(run);
    this.log.info({ stage: run.stage, status, durationMs: run.durationMs }, summary);
    this.onEvent({ type: 'stage-end', ...run });
    this.current = null;
  }
}

/** Thrown inside the pipeline to end it with a result for the current stage. */
class StageOutcome extends Error {
  constructor(
    readonly status: Status,
    readonly summary: string,
  ) {
    super(summary);
  }
}

export async function runJob(input: JobInput, deps: ExecutorDeps, onEvent: (e: JobEvent) => void, signal?: AbortSignal): Promise<JobResult> {
  const started = Date.now();
  const log = deps.logger.child({ jobId: input.jobId, series: input.series.title, tree: input.tree.name });
  const { settings } = deps;
  const dir = makeJobDir(join(settings.cacheDir, 'jobs', input.jobId));
  const result: JobResult = {
    jobId: input.jobId,
    status: 'MISS',
    stage: null,
    summary: '',
    tree: { name: input.tree.name, ref: input.tree.ref },
    baseCommit: null,
    headCommit: null,
    series: { title: input.series.title, version: input.series.version, patches: input.series.patches.length },
    suites: input.suites.map((s) => s.name),
    accel: null,
    buildMode: null,
    stages: [],
    results: [],
    base: null,
    crashes: [],
    applyFailure: null,
    buildErrors: [],
    error: null,
    artifactsDir: dir.out,
    artifacts: [],
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
  };

  let container: JobContainer | null = null;
  const logFiles = new Map<string, WriteStream>();
  const stageLog = (stage: StageName, text: string): void => {
    const name = STAGE_LOG[stage];
    let f = logFiles.get(name);
    if (!f) {
      f = createWriteStream(join(dir.out, name), { flags: 'a' });
      logFiles.set(name, f);
    }
    f.write(text);
    onEvent({ type: 'log', stage, text });
  };
  const stages = new StageTracker(result.stages, log, onEvent);
  const begin = (stage: StageName): void => { stages.begin(stage); };
  const end = (status: Status, summary: string): void => { stages.end(status, summary); };

  // The deadline (and a caller's abort) kill the container; whatever the
  // stage was doing then fails, and the job ends MISS with JOB_DEADLINE.
  const deadline = new AbortController();
  const timer = setTimeout(() => { deadline.abort(new PatchbayError('JOB_DEADLINE', `the job passed its ${settings.job.deadlineSeconds}s deadline; its container was killed`, { retryable: true })); }, settings.job.deadlineSeconds * 1000);
  const onAbort = (): void => { deadline.abort(new PatchbayError('JOB_CANCELLED', 'the job was cancelled', { retryable: false })); };
  signal?.addEventListener('abort', onAbort, { once: true });
  deadline.signal.addEventListener('abort', () => { void container?.dispose(); }, { once: true });
  const checkAborted = (): void => {
    if (deadline.signal.aborted) throw deadline.signal.reason;
  };

  try {
    // --- setup: images, tree mirror, base, warm base, accelerator ---------
    begin('setup');
    const setupLog = (text: string): void => { stageLog('setup', text.endsWith('\n') ? text : `${text}\n`); };
    const images = await ensureImages(deps.images, {
      imagesDir: settings.imagesDir,
      baseImage: settings.baseImage,
      env: settings.hostEnv,
      onLog: setupLog,
    });
    checkAborted();
    const mirror = await deps.mirrors.ensure(input.tree, setupLog);
    const base = await resolveBase(input, deps.mirrors, setupLog);
    result.baseCommit = base;
    checkAborted();
    const limits = { memoryBytes: settings.job.memoryBytes, cpus: settings.job.cpus, pids: settings.job.pids };
    const warm = await ensureWarmBase(deps.runtime, deps.images, {
      runnerImage: images.runner,
      runnerId: images.runnerId,
      toolchain: images.toolchain,
      treeName: input.tree.name,
      mirror,
      commit: base,
      fragment: input.kernelFragment,
      limits,
      buildTimeoutSeconds: settings.job.buildTimeoutSeconds,
      cacheDir: settings.cacheDir,
      ccacheVolume: settings.ccacheVolume,
      onLog: (t) => { stageLog('setup', t); },
    });
    checkAborted();
    const jobImage = await ensureJobImage(deps.images, warm, { tag: images.runner, id: images.runnerId, inputs: images.runnerInputs }, (t) => { stageLog('setup', t); });
    checkAborted();
    container = await deps.runtime.start({
      image: jobImage,
      name: `patchbay-job-${input.jobId}`,
      labels: { 'org.patchbay.role': 'job', 'org.patchbay.job': input.jobId },
      mounts: [
        { kind: 'bind', source: dir.root, target: '/job', readOnly: false },
        { kind: 'volume', source: settings.ccacheVolume, target: '/ccache', readOnly: false },
      ],
      devices: kvmPresent() && settings.job.accel !== 'tcg' ? [KVM_DEVICE] : [],
      ...limits,
    });
    const accel = await chooseAccel(settings.job.accel, container, join(settings.cacheDir, 'accel.json'), setupLog);
    result.accel = accel;
    // The base side of the comparison, prepared before the series changes the tree.
    for (const s of input.suites) cpSync(join(settings.suitesDir, s.name), join(dir.in, 'suites', s.name), { recursive: true });
    const box0 = container;
    const inContainer = async (what: string, cmd: string[], onLog: (t: string) => void, timeoutSeconds: number): Promise<{ ok: boolean; tail: string }> => {
      const r = await box0.exec(cmd, { onOutput: onLog, timeoutSeconds });
      checkAborted();
      if (r.exitCode !== 0 && r.timedOut) onLog(`patchbay: ${what} timed out after ${timeoutSeconds}s\n`);
      return { ok: r.exitCode === 0, tail: r.tail };
    };
    const saved = await inContainer('saving the base kernel', ['cp', BASE_KERNEL, BASE_KERNEL_COPY], setupLog, 60);
    if (!saved.ok) throw new PatchbayError('WARM_BASE_FAILED', `the warm base has no kernel at ${BASE_KERNEL}: ${lastLines(saved.tail, 3)}`, { retryable: true });
    // A suite's base results depend on the kernel (commit, config, toolchain),
    // what all guest runs share, and the suite's own folder: not on other suites.
    const guestInputs = hashInputs(settings.imagesDir, GUEST_INPUTS);
    const keyParts = { baseCommit: base, fragment: input.kernelFragment, toolchain: images.toolchain, guestInputs, accel };
    const suiteVersion = (s: SuiteManifest): string => hashInputs(settings.suitesDir, [s.name]);
    const cache = new BaseRunCache(join(settings.cacheDir, 'base-runs'));
    const baseUnavailable = new Map<string, string>();
    const treeBuilt = input.suites.filter((s) => (s.build.tree ?? []).length > 0);
    const needBase = treeBuilt.filter((s) => cache.get(baseRunKey({ ...keyParts, suite: s.name, suiteVersion: suiteVersion(s) })) === null);
    if (needBase.length > 0) {
      const built = await inContainer('building suites from the base tree', ['/opt/patchbay/stages/build-tree-suites.sh', BASE_SUITES_EXTRA, ...needBase.map((s) => s.name)], setupLog, settings.job.buildTimeoutSeconds);
      if (!built.ok) for (const s of needBase) baseUnavailable.set(s.name, `its build from the base tree failed: ${lastLines(built.tail, 2)}`);
    }
    end('PASS', `warm base ${warm.key}${warm.built ? ' (built now)' : ' (cached)'}, ${accel.toUpperCase()}, base ${base.slice(0, 12)}`);

    // --- apply -------------------------------------------------------------
    begin('apply');
    writeFileSync(join(dir.in, 'series.mbox'), Buffer.from(seriesMbox(input.series), 'latin1'));
    const applied = await container.exec(['/opt/patchbay/stages/apply.sh', '/job/in/series.mbox'], {
      onOutput: (t) => { stageLog('apply', t); },
      timeoutSeconds: settings.job.applyTimeoutSeconds,
    });
    checkAborted();
    if (applied.timedOut) throw new StageOutcome('MISS', `git am did not finish in ${settings.job.applyTimeoutSeconds}s`);
    if (applied.exitCode !== 0) {
      const failure = parseGitAmFailure(applied.tail);
      result.applyFailure = failure;
      const patch = failure.patchIndex !== null ? input.series.patches[failure.patchIndex - 1] : undefined;
      const which = patch
        ? `patch ${patch.counter}/${input.series.total} "${patch.subject.title}"`
        : `patch ${failure.patchIndex ?? '?'} "${failure.title ?? '?'}"`;
      throw new StageOutcome('FAIL', `${which} does not apply: ${failure.messages.slice(0, 3).join('; ') || lastLines(applied.tail, 3)}`);
    }
    const changed = readLines(join(dir.out, 'changed-files.txt'));
    result.headCommit = /HEAD ([0-9a-f]{40})/.exec(applied.tail)?.[1] ?? null;
    end('PASS', `${input.series.patches.length} patch(es) applied, ${changed.length} file(s) changed`);

    // --- build -------------------------------------------------------------
    begin('build');
    const plan = planBuild(changed);
    const box = container;
    const build = async (mode: BuildMode): Promise<{ ok: boolean; tail: string; timedOut: boolean }> => {
      result.buildMode = mode;
      stageLog('build', `patchbay: ${mode} build\n`);
      const r = await box.exec(['/opt/patchbay/stages/build.sh', ...(mode === 'clean' ? ['clean'] : [])], {
        onOutput: (t) => { stageLog('build', t); },
        timeoutSeconds: settings.job.buildTimeoutSeconds,
      });
      checkAborted();
      return { ok: r.exitCode === 0, tail: r.tail, timedOut: r.timedOut };
    };
    stageLog('build', `patchbay: ${plan.reason}\n`);
    let built = await build(plan.mode);
    if (!built.ok && !built.timedOut && plan.mode === 'incremental') {
      const diags = parseBuildDiagnostics(built.tail);
      if (shouldRetryClean(diags, changed)) {
        stageLog('build', 'patchbay: incremental build failed outside the files the series changed; retrying from clean\n');
        built = await build('clean');
      }
    }
    if (built.timedOut) throw new StageOutcome('MISS', `the build did not finish in ${settings.job.buildTimeoutSeconds}s`);
    if (!built.ok) {
      result.buildErrors = parseBuildDiagnostics(built.tail).filter((d) => d.severity === 'error');
      const first = result.buildErrors[0];
      throw new StageOutcome(
        'FAIL',
        first
          ? `${first.file}${first.line !== null ? `:${first.line}` : ''}: ${first.message}${result.buildErrors.length > 1 ? ` (+${result.buildErrors.length - 1} more)` : ''}`
          : `the build failed: ${lastLines(built.tail, 3)}`,
      );
    }
    end('PASS', `${result.buildMode} build`);

    // --- suites built from the tree under test ------------------------------
    const seriesUnbuilt = new Map<string, string>();
    if (treeBuilt.length > 0) {
      stageLog('build', 'patchbay: building suites from the tree under test\n');
      for (const s of treeBuilt) {
        const r = await inContainer(`building suite ${s.name}`, ['/opt/patchbay/stages/build-tree-suites.sh', SERIES_SUITES_EXTRA, s.name], (t) => { stageLog('build', t); }, settings.job.buildTimeoutSeconds);
        if (!r.ok) seriesUnbuilt.set(s.name, lastLines(r.tail, 6));
      }
    }
    const runnable = input.suites.filter((s) => !seriesUnbuilt.has(s.name));

    // --- boot + test (one QEMU run; the init marker splits the stages) -----
    begin('boot');
    const live = { sawInit: false, pending: '' };
    const guest = await runGuest(container, dir, {
      name: 'series',
      accel,
      kernel: SERIES_KERNEL,
      plan: runnable.map((suite) => ({ suite, tests: [] })),
      suiteExtra: SERIES_SUITES_EXTRA,
      bootTimeoutSeconds: settings.job.bootTimeoutSeconds,
      onOutput: (t) => {
        onEvent({ type: 'log', stage: live.sawInit ? 'test' : 'boot', text: t });
        if (!live.sawInit) {
          live.pending = (live.pending + t).slice(-4096);
          if (live.pending.includes(GUEST_MARKERS.init)) {
            live.sawInit = true;
            end('PASS', 'booted to init');
            begin('test');
          }
        }
      },
    });
    checkAborted();
    result.crashes = guest.crashes;
    const seriesResults: TestResult[] = [
      ...guest.results,
      ...[...seriesUnbuilt].map(([suite, tail]) => ({ suite, test: '(build)', status: 'FAIL' as const, detail: `building the suite from the tree under test failed:\n${tail}` })),
    ];
    if (!live.sawInit) {
      result.results = compareWithBase({ series: seriesResults, base: null });
      end(guest.boot.status, guest.boot.summary);
    } else {
      // The boot looked fine live; a splat before init still fails it.
      if (guest.boot.status !== 'PASS') {
        result.stages.push({ stage: 'boot', status: guest.boot.status, durationMs: 0, summary: guest.boot.summary });
      }
      const compared = await compareAgainstBase({
        jobId: input.jobId,
        container,
        dirs: dir,
        accel,
        bootTimeoutSeconds: settings.job.bootTimeoutSeconds,
        reruns: settings.job.reruns,
        suites: runnable,
        series: seriesResults,
        keyParts,
        suiteVersion,
        unavailable: baseUnavailable,
        cache,
        log: (t) => { onEvent({ type: 'log', stage: 'test', text: t }); },
        checkAborted,
      });
      result.results = compared.results;
      result.base = compared.base;
      const verdict = comparedVerdict(compared.results);
      end(verdict.status, verdict.summary);
    }
  } catch (e) {
    const reason: unknown = deadline.signal.aborted ? deadline.signal.reason : e;
    if (reason instanceof StageOutcome) {
      end(reason.status, reason.summary);
    } else {
      const err = isPatchbayError(reason) ? reason : new PatchbayError('INTERNAL', errorMessage(reason), { cause: reason });
      result.error = { code: err.code, message: err.message };
      log.error({ err: { code: err.code, message: err.message } }, 'job failed');
      if (stages.running()) end('MISS', err.message);
      else result.stages.push({ stage: 'setup', status: 'MISS', durationMs: 0, summary: err.message });
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    await container?.dispose();
    await Promise.all([...logFiles.values()].map((f) => new Promise<void>((r) => f.end(r))));
  }

  const verdict = overallStatus(result.stages);
  result.status = verdict.status;
  result.stage = verdict.stage;
  result.summary = verdict.summary;
  result.durationMs = Date.now() - started;
  writeResult(dir, result);
  return result;
}

async function resolveBase(input: JobInput, mirrors: TreeMirrors, onLog: (line: string) => void): Promise<string> {
  if (input.base !== null) {
    const sha = await mirrors.resolve(input.tree, input.base);
    if (sha === null) {
      throw new PatchbayError('BASE_UNKNOWN', `base "${input.base}" is not a commit in tree ${input.tree.name}`, { retryable: false });
    }
    return sha;
  }
  if (input.series.baseCommit !== null) {
    const sha = await mirrors.resolve(input.tree, input.series.baseCommit);
    if (sha !== null) {
      onLog(`base: the series' base-commit ${sha.slice(0, 12)}`);
      return sha;
    }
    onLog(`base: the series' base-commit ${input.series.baseCommit} is not in ${input.tree.name}; using ${input.tree.ref}`);
  }
  const sha = await mirrors.resolve(input.tree, input.tree.ref);
  if (sha === null) throw new PatchbayError('BASE_UNKNOWN', `ref ${input.tree.ref} of tree ${input.tree.name} does not resolve`, { retryable: true });
  onLog(`base: ${input.tree.ref} = ${sha.slice(0, 12)}`);
  return sha;
}

function readText(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

function readLines(path: string): string[] {
  return readText(path).split('\n').filter((l) => l !== '');
}

function writeResult(dir: JobDir, result: JobResult): void {
  result.artifacts = listArtifacts(dir).filter((n) => n !== 'result.json').concat('result.json').sort();
  writeFileSync(join(dir.out, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
}

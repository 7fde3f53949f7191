/**
 * One job, end to end, on a Docker host: a short sequence of stage units
 * (stages/): setup, apply, build, boot and test. Each attempt runs in
 * sandboxes of its own (see sandbox.ts) and writes its artifacts into a new
 * folder that no container can reach. Returns a JobResult; writes no
 * database and knows no queue. Every job has a deadline that kills its
 * containers.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { SuiteManifest } from '../../services/catalog/suites.ts';
import type { Tree } from '../../services/catalog/trees.ts';
import { PatchbayError, errorMessage, isPatchbayError } from '../../services/domain/errors.ts';
import { type JobEvent, type JobResult, type StageName, type StageRun, blankResult, overallStatus } from '../../services/domain/job.ts';
import { prerequisitesApplied } from '../../services/domain/prerequisites.ts';
import type { Series } from '../../services/domain/series.ts';
import type { Status } from '../../services/domain/status.ts';
import { type TestSelector, checkTestSelectors } from '../../services/domain/test-filter.ts';
import type { TreeMirrors } from '../host/trees.ts';
import type { ContainerRuntime, LocalImages } from './docker.ts';
import { type ToolVersionCache, configEnvironment, initialEnvironment } from './environment.ts';
import { ArtifactsDir, type Sandbox } from './sandbox.ts';
import { applyStage } from './stages/apply.ts';
import { bootAndTestStages } from './stages/boot-test.ts';
import { buildStage } from './stages/build.ts';
import { type ExecutorSettings, StageContext, StageOutcome } from './stages/context.ts';
import { setupStage } from './stages/setup.ts';

export type { ExecutorSettings } from './stages/context.ts';

export interface ExecutorDeps {
  runtime: ContainerRuntime;
  images: LocalImages;
  mirrors: TreeMirrors;
  settings: ExecutorSettings;
  logger: Logger;
  /** The compiler's and QEMU's version lines per image id (JobResult.environment), read once per process; absent: read for every job. */
  toolVersions?: ToolVersionCache;
}

export interface JobInput {
  jobId: string;
  tree: Tree;
  /** An explicit base (commit-ish); else the series' base-commit; else the tree's ref. */
  base: string | null;
  series: Series;
  /**
   * Patches not yet in the tree that the series needs (b4's
   * prerequisite-patch-id / prerequisite-message-id), in apply order; a cover
   * letter is never applied. Null when none. They are applied on the base in
   * both sandboxes: the base kernel every comparison uses is base +
   * prerequisites, and the series goes on top of them.
   */
  prerequisites: Series | null;
  suites: readonly SuiteManifest[];
  /** The merged kernel config fragment every job of this catalogue uses. */
  kernelFragment: string;
  /**
   * A test filter (`patchbay run --test SUITE/TEST`): each suite named here
   * runs only these tests (and their subtests), on the series' kernel and on
   * the base alike, and its base runs are cached under a key of their own
   * (base-runs.ts). Every suite named must be in `suites`; a suite not named
   * runs whole. Absent or empty: every suite whole.
   */
  only?: readonly TestSelector[];
}

/** Stage bookkeeping: timing, logs and events for the stage under way. */
export class StageTracker {
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

export async function runJob(input: JobInput, deps: ExecutorDeps, onEvent: (e: JobEvent) => void, signal?: AbortSignal): Promise<JobResult> {
  const started = Date.now();
  const log = deps.logger.child({ jobId: input.jobId, series: input.series.title, tree: input.tree.name });
  const { settings } = deps;
  const artifacts = ArtifactsDir.create(join(settings.cacheDir, 'jobs'), input.jobId);
  const result = emptyResult(input, started, artifacts.path, settings);

  // The deadline (and a caller's abort) remove the sandboxes; whatever the
  // stage was doing then fails, and the job ends MISS with JOB_DEADLINE.
  const sandboxes: Sandbox[] = [];
  const deadline = new AbortController();
  const timer = setTimeout(() => { deadline.abort(new PatchbayError('JOB_DEADLINE', `the job passed its ${settings.job.deadlineSeconds}s deadline; its containers were killed`, { retryable: true })); }, settings.job.deadlineSeconds * 1000);
  const onAbort = (): void => { deadline.abort(new PatchbayError('JOB_CANCELLED', 'the job was cancelled', { retryable: false })); };
  signal?.addEventListener('abort', onAbort, { once: true });
  deadline.signal.addEventListener('abort', () => { for (const s of sandboxes) void s.dispose(); }, { once: true });
  const checkAborted = (): void => {
    if (deadline.signal.aborted) throw deadline.signal.reason;
  };
  const ctx = new StageContext(input.jobId, settings, log, artifacts, result, onEvent, checkAborted);
  const stages = new StageTracker(result.stages, log, onEvent);

  try {
    stages.begin('setup');
    checkOnly(input);
    const prepared = await setupStage(input, deps, ctx, (s) => {
      sandboxes.push(s);
      if (deadline.signal.aborted) void s.dispose();
    });
    stages.end('PASS', prepared.summary);

    stages.begin('apply');
    const applied = await applyStage(prepared.series, input, ctx);
    result.headCommit = applied.headCommit;
    stages.end('PASS', applied.summary);

    stages.begin('build');
    // The build sees the prerequisites' files changed too (a header or the
    // build system they touched); what the series changed stays its own.
    const built = await buildStage(prepared.series, [...new Set([...prepared.prerequisitesChanged, ...applied.changed])], input.suites, ctx);
    stages.end('PASS', built.summary);

    await bootAndTestStages(prepared, input.suites, built.unbuilt, stages, ctx);
  } catch (e) {
    const reason: unknown = deadline.signal.aborted ? deadline.signal.reason : e;
    if (reason instanceof StageOutcome) {
      stages.end(reason.status, reason.summary);
    } else {
      const err = isPatchbayError(reason) ? reason : new PatchbayError('INTERNAL', errorMessage(reason), { cause: reason });
      result.error = { code: err.code, message: err.message };
      log.error({ err: { code: err.code, message: err.message } }, 'job failed');
      if (stages.running()) stages.end('MISS', err.message);
      else result.stages.push({ stage: 'setup', status: 'MISS', durationMs: 0, summary: err.message });
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    await Promise.all(sandboxes.map((s) => s.dispose()));
    await ctx.closeLogs();
  }

  const verdict = overallStatus(result.stages);
  result.status = verdict.status;
  result.stage = verdict.stage;
  result.summary = verdict.summary;
  result.durationMs = Date.now() - started;
  result.artifacts = [...artifacts.list().filter((n) => n !== 'result.json'), 'result.json'].sort();
  writeFileSync(artifacts.file('result.json'), `${JSON.stringify(result, null, 2)}\n`, { flag: 'wx', mode: 0o644 });
  return result;
}

/** The test filter names suites of the job only, by the rules a selector is parsed with. */
function checkOnly(input: JobInput): void {
  const only = input.only ?? [];
  checkTestSelectors(only);
  const names = new Set(input.suites.map((s) => s.name));
  const stray = [...new Set(only.map((k) => k.suite).filter((s) => !names.has(s)))];
  if (stray.length > 0) {
    throw new PatchbayError('TEST_FILTER_INVALID', `the test filter names suite(s) ${stray.join(', ')}, which the job does not run (${[...names].join(', ')})`, { retryable: false });
  }
}

function emptyResult(input: JobInput, started: number, artifactsDir: string, settings: ExecutorSettings): JobResult {
  return blankResult({
    jobId: input.jobId,
    tree: { name: input.tree.name, ref: input.tree.ref },
    series: { title: input.series.title, version: input.series.version, patches: input.series.patches.length },
    prerequisites: input.prerequisites === null ? null : prerequisitesApplied(input.prerequisites),
    suites: input.suites.map((s) => s.name),
    artifactsDir,
    startedAt: new Date(started).toISOString(),
    // Filled in as the stages learn it; the config's recipe is known now.
    environment: initialEnvironment(configEnvironment(input.kernelFragment, settings)),
  });
}

/**
 * build: make bzImage in the series' sandbox (incremental on the warm base,
 * clean when the series touches the build system, or when an incremental
 * build fails in a way the warm base may explain: a stale dependency, or
 * errors only outside what the series changed), then the suites that build
 * from the tree under test. The kernel and its .config come out as capped
 * regular files.
 * FAIL only with a compiler, linker, Kconfig or modpost diagnostic; a build
 * that fails without one, runs out of disk or memory, is killed or times
 * out is a retryable error (MISS).
 * The base sandbox's build of base + prerequisite patches (in setup) is the
 * same make, judged the same way, except that its diagnostic is never the
 * series': PREREQUISITES_BUILD (buildBaseWithPrerequisites).
 */
import type { SuiteManifest } from '../../../services/catalog/suites.ts';
import { type BuildMode, type CompilerDiagnostic, analyzeBuildFailure, formatDiagnostics, planBuild, shouldRetryClean } from '../../../services/domain/build.ts';
import { PatchbayError } from '../../../services/domain/errors.ts';
import { SERIES_SUITES_EXTRA } from '../against-base.ts';
import { artifactSha256 } from '../environment.ts';
import { JOB_OUT, type Running, type Sandbox } from '../sandbox.ts';
import { lastLines } from '../warm-base.ts';
import { type StageContext, StageOutcome } from './context.ts';

export interface Built {
  mode: BuildMode;
  /**
   * Suites whose build from the tree under test failed with a compiler or
   * linker diagnostic: the diagnostics (as the compiler prints them), then
   * the end of the build's output.
   */
  unbuilt: Map<string, string>;
  summary: string;
}

interface MakeRun {
  mode: BuildMode;
  ok: boolean;
  tail: string;
  timedOut: boolean;
  exitCode: number;
  seconds: number;
}

/**
 * make bzImage as planBuild says for `changed` (in /work/build: the kernel
 * is then /work/build/arch/x86/boot/bzImage, and a copy in JOB_OUT), and
 * once more from clean when an incremental build fails in a way the warm
 * base may explain (shouldRetryClean). `onMode` hears each build's mode.
 */
async function makeKernel(c: Running, changed: readonly string[], ctx: StageContext, log: (text: string) => void, onMode: (mode: BuildMode) => void): Promise<MakeRun> {
  const timeout = ctx.settings.job.buildTimeoutSeconds;
  const plan = planBuild(changed);
  log(`patchbay: ${plan.reason}\n`);
  const make = async (mode: BuildMode): Promise<MakeRun> => {
    onMode(mode);
    log(`patchbay: ${mode} build\n`);
    const started = Date.now();
    const r = await c.exec(['/opt/patchbay/stages/build.sh', ...(mode === 'clean' ? ['clean'] : [])], { onOutput: log, timeoutSeconds: timeout, env: READ_ONLY_CCACHE });
    ctx.checkAborted();
    return { mode, ok: r.exitCode === 0, tail: r.tail, timedOut: r.timedOut, exitCode: r.exitCode, seconds: (Date.now() - started) / 1000 };
  };
  let built = await make(plan.mode);
  if (!built.ok && !built.timedOut && plan.mode === 'incremental') {
    const failure = analyzeBuildFailure(built.tail);
    if (shouldRetryClean(failure, changed)) {
      log(failure.stale !== null
        ? `patchbay: the warm base has a stale dependency (${failure.stale}); retrying from clean\n`
        : 'patchbay: incremental build failed outside the files the series changed; retrying from clean\n');
      built = await make('clean');
    }
  }
  return built;
}

/**
 * A failed build as evidence: the compiler's, linker's, Kconfig's or
 * modpost's diagnostics, or (no evidence about the code: a timeout, a kill,
 * a machine out of resources, no diagnostic) a retryable error.
 */
function failedBuild(built: MakeRun, what: string, limit: number): { errors: CompilerDiagnostic[]; first: CompilerDiagnostic } | PatchbayError {
  if (built.timedOut) return timedOutOrKilled('BUILD', what, built, limit);
  const failure = analyzeBuildFailure(built.tail);
  if (failure.environment !== null) {
    return new PatchbayError('BUILD_ENVIRONMENT', `${what} ran out of disk, memory or processes, or a tool in it was killed, which says nothing about the code: ${failure.environment}`, { retryable: true });
  }
  const first = failure.errors[0];
  if (!first) {
    // No diagnostic: killed for memory, a full disk, a tool that broke. Not the code's fault on this evidence.
    return new PatchbayError('BUILD_NO_DIAGNOSTIC', `${what} failed without a compiler, linker or Kconfig diagnostic: ${lastLines(built.tail, 3)}`, { retryable: true });
  }
  return { errors: failure.errors, first };
}

const firstDiagnostic = (errors: readonly CompilerDiagnostic[], first: CompilerDiagnostic): string =>
  `${first.file}${first.line !== null ? `:${first.line}` : ''}: ${first.message}${errors.length > 1 ? ` (+${errors.length - 1} more)` : ''}`;

export async function buildStage(box: Sandbox, changed: readonly string[], suites: readonly SuiteManifest[], ctx: StageContext): Promise<Built> {
  const timeout = ctx.settings.job.buildTimeoutSeconds;
  const log = (t: string): void => { ctx.stageLog('build', t); };
  const outcome = await box.stage(async (c) => {
    const built = await makeKernel(c, changed, ctx, log, (mode) => { ctx.result.buildMode = mode; });
    const unbuilt = built.ok ? await buildTreeSuites(c, suites, ctx) : new Map<string, string>();
    return { built, unbuilt };
  });
  const { built } = outcome;
  if (built.timedOut || !built.ok) {
    const failure = failedBuild(built, 'the build', timeout);
    if (failure instanceof PatchbayError) throw failure;
    ctx.result.buildErrors = failure.errors;
    throw new StageOutcome('FAIL', firstDiagnostic(failure.errors, failure.first));
  }
  const j = ctx.settings.job;
  const copied = await box.collect(JOB_OUT, [
    { name: 'bzImage', maxBytes: j.artifactLimitBytes, truncate: false },
    { name: 'kernel.config', maxBytes: j.logLimitBytes, truncate: true },
  ], ctx.artifacts.path);
  for (const c of copied) if (!c.kept) log(`patchbay: ${c.name} was not kept: ${c.reason}\n`);
  // The recorded config's hash: of the .config the host copied out whole (never of one cut at its limit).
  const config = ctx.environment().config;
  if (config) config.sha256 = copied.some((c) => c.name === 'kernel.config' && c.kept && !c.truncated) ? artifactSha256(ctx.artifacts.path, 'kernel.config') : null;
  return { mode: built.mode, unbuilt: outcome.unbuilt, summary: `${built.mode} build` };
}

/**
 * The base kernel with its prerequisite patches applied (in the base
 * sandbox, in setup): the same make as the series' build, on the same warm
 * base, so the base kernel (BASE_KERNEL, /work/build's bzImage, which make
 * rebuilds in place) is base + prerequisites. A diagnostic is
 * PREREQUISITES_BUILD: the prerequisites do not build on this base, which is
 * not the series' fault and which a retry does not change (MISS, not
 * retried). Anything else is the same retryable error a series build gets.
 * Returns the build's mode and seconds.
 */
export async function buildBaseWithPrerequisites(box: Sandbox, changed: readonly string[], patches: number, baseCommit: string, ctx: StageContext): Promise<{ mode: BuildMode; seconds: number }> {
  const log = (t: string): void => { ctx.stageLog('setup', t); };
  const what = `the build of the base ${baseCommit.slice(0, 12)} with its ${patches} prerequisite patch(es)`;
  const built = await box.stage((c) => makeKernel(c, changed, ctx, log, () => undefined));
  if (built.timedOut || !built.ok) {
    const failure = failedBuild(built, what, ctx.settings.job.buildTimeoutSeconds);
    if (failure instanceof PatchbayError) throw failure;
    throw new PatchbayError('PREREQUISITES_BUILD', `the base ${baseCommit.slice(0, 12)} with its ${patches} prerequisite patch(es) does not build, so the series cannot be tested: ${formatDiagnostics(failure.errors, 3).replaceAll('\n', '; ')}`, {
      retryable: false,
      details: { errors: failure.errors.slice(0, 20) },
    });
  }
  log(`patchbay: the base kernel is now the base with its prerequisite patches (${built.mode} build, ${Math.round(built.seconds)}s)\n`);
  return { mode: built.mode, seconds: built.seconds };
}

/**
 * A series build reads the compiler cache and never writes it: the volume
 * is mounted read-only, and ccache keeps its temporary files in /tmp.
 */
export const READ_ONLY_CCACHE: Record<string, string> = { CCACHE_READONLY: 'true', CCACHE_TEMPDIR: '/tmp/ccache', CCACHE_NOSTATS: 'true' };

/** build-tree-suites.sh's exit when its harness failed rather than a suite's build (images/runner/stages/build-tree-suites.sh). */
export const TREE_SUITES_HARNESS_FAILED = 125;

/**
 * An exec the executor's timeout wrapper reports as timed out (exit 124 or
 * 137): past its limit it timed out; before it, something else killed it
 * (SIGKILL: the OOM killer, most likely). Both are retryable.
 */
function timedOutOrKilled(prefix: string, what: string, r: { exitCode: number; seconds: number }, limit: number): PatchbayError {
  if (r.exitCode === 137 && r.seconds < limit) {
    return new PatchbayError(`${prefix}_KILLED`, `${what} was killed (SIGKILL) after ${Math.round(r.seconds)}s, before its ${limit}s limit: out of memory?`, { retryable: true });
  }
  return new PatchbayError(`${prefix}_TIMEOUT`, `${what} did not finish in ${limit}s`, { retryable: true });
}

/**
 * The suites that build from the tree under test. A failure with a compiler
 * or linker diagnostic is evidence: the suite gets a `(build)` row carrying
 * the diagnostics (whether the base tree builds it is for the comparison
 * to say). A timeout, a kill, a failure without any diagnostic, a machine
 * out of resources or a failed harness is not: a retryable error (MISS).
 */
async function buildTreeSuites(c: Running, suites: readonly SuiteManifest[], ctx: StageContext): Promise<Map<string, string>> {
  const unbuilt = new Map<string, string>();
  const treeBuilt = suites.filter((s) => (s.build.tree ?? []).length > 0);
  if (treeBuilt.length === 0) return unbuilt;
  ctx.stageLog('build', 'patchbay: building suites from the tree under test\n');
  for (const s of treeBuilt) {
    const timeout = ctx.settings.job.buildTimeoutSeconds;
    const started = Date.now();
    const r = await c.exec(['/opt/patchbay/stages/build-tree-suites.sh', SERIES_SUITES_EXTRA, s.name], {
      onOutput: (t) => { ctx.stageLog('build', t); },
      timeoutSeconds: timeout,
      env: READ_ONLY_CCACHE,
    });
    ctx.checkAborted();
    if (r.exitCode === 0) continue;
    const what = `building suite ${s.name} from the tree under test`;
    if (r.timedOut) throw timedOutOrKilled('SUITE_BUILD', what, { exitCode: r.exitCode, seconds: (Date.now() - started) / 1000 }, timeout);
    if (r.exitCode === TREE_SUITES_HARNESS_FAILED) {
      const said = [...r.tail.matchAll(/^patchbay: build-tree-suites harness failed: (.*)$/gm)].at(-1)?.[1];
      throw new PatchbayError('SUITE_BUILD_FAILED', `${what}: the harness failed, not the suite's build: ${said ?? lastLines(r.tail, 3)}`, { retryable: true });
    }
    const failure = analyzeBuildFailure(r.tail);
    if (failure.environment !== null) {
      throw new PatchbayError('SUITE_BUILD_FAILED', `${what} ran out of disk, memory or processes, or a tool in it was killed, which says nothing about the code: ${failure.environment}`, { retryable: true });
    }
    if (failure.errors.length === 0) {
      throw new PatchbayError('SUITE_BUILD_FAILED', `${what} failed without a compiler or linker diagnostic (exit ${r.exitCode}): ${lastLines(r.tail, 3)}`, { retryable: true });
    }
    ctx.stageLog('build', `patchbay: suite ${s.name} does not build from the tree under test: ${formatDiagnostics(failure.errors, 1)}\n`);
    unbuilt.set(s.name, `${formatDiagnostics(failure.errors)}\n\n${lastLines(r.tail, 6)}`);
  }
  return unbuilt;
}

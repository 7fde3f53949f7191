/**
 * build: make bzImage in the series' sandbox (incremental on the warm base,
 * clean when the series touches the build system or an incremental build
 * fails outside what it changed), then the suites that build from the tree
 * under test. The kernel and its .config come out as capped regular files.
 * FAIL only with a compiler, linker or Kconfig diagnostic.
 */
import type { SuiteManifest } from '../../../services/catalog/suites.ts';
import { type BuildMode, parseBuildDiagnostics, planBuild, shouldRetryClean } from '../../../services/domain/build.ts';
import { PatchbayError } from '../../../services/domain/errors.ts';
import { SERIES_SUITES_EXTRA } from '../against-base.ts';
import { JOB_OUT, type Running, type Sandbox } from '../sandbox.ts';
import { lastLines } from '../warm-base.ts';
import { type StageContext, StageOutcome } from './context.ts';

export interface Built {
  mode: BuildMode;
  /** Suites whose build from the tree under test failed, with the end of its output. */
  unbuilt: Map<string, string>;
  summary: string;
}

export async function buildStage(box: Sandbox, changed: readonly string[], suites: readonly SuiteManifest[], ctx: StageContext): Promise<Built> {
  const timeout = ctx.settings.job.buildTimeoutSeconds;
  const log = (t: string): void => { ctx.stageLog('build', t); };
  const plan = planBuild(changed);
  log(`patchbay: ${plan.reason}\n`);
  const outcome = await box.stage(async (c) => {
    const make = async (mode: BuildMode): Promise<{ mode: BuildMode; ok: boolean; tail: string; timedOut: boolean }> => {
      ctx.result.buildMode = mode;
      log(`patchbay: ${mode} build\n`);
      const r = await c.exec(['/opt/patchbay/stages/build.sh', ...(mode === 'clean' ? ['clean'] : [])], { onOutput: log, timeoutSeconds: timeout, env: READ_ONLY_CCACHE });
      ctx.checkAborted();
      return { mode, ok: r.exitCode === 0, tail: r.tail, timedOut: r.timedOut };
    };
    let built = await make(plan.mode);
    if (!built.ok && !built.timedOut && plan.mode === 'incremental' && shouldRetryClean(parseBuildDiagnostics(built.tail), changed)) {
      log('patchbay: incremental build failed outside the files the series changed; retrying from clean\n');
      built = await make('clean');
    }
    const unbuilt = built.ok ? await buildTreeSuites(c, suites, ctx) : new Map<string, string>();
    return { built, unbuilt };
  });
  const { built } = outcome;
  if (built.timedOut) throw new PatchbayError('BUILD_TIMEOUT', `the build did not finish in ${timeout}s`, { retryable: true });
  if (!built.ok) {
    ctx.result.buildErrors = parseBuildDiagnostics(built.tail).filter((d) => d.severity === 'error');
    const first = ctx.result.buildErrors[0];
    if (!first) {
      // No diagnostic: killed for memory, a full disk, a tool that broke. Not the series' fault on this evidence.
      throw new PatchbayError('BUILD_NO_DIAGNOSTIC', `the build failed without a compiler, linker or Kconfig diagnostic: ${lastLines(built.tail, 3)}`, { retryable: true });
    }
    const more = ctx.result.buildErrors.length > 1 ? ` (+${ctx.result.buildErrors.length - 1} more)` : '';
    throw new StageOutcome('FAIL', `${first.file}${first.line !== null ? `:${first.line}` : ''}: ${first.message}${more}`);
  }
  const j = ctx.settings.job;
  const copied = await box.collect(JOB_OUT, [
    { name: 'bzImage', maxBytes: j.artifactLimitBytes, truncate: false },
    { name: 'kernel.config', maxBytes: j.logLimitBytes, truncate: true },
  ], ctx.artifacts.path);
  for (const c of copied) if (!c.kept) log(`patchbay: ${c.name} was not kept: ${c.reason}\n`);
  return { mode: built.mode, unbuilt: outcome.unbuilt, summary: `${built.mode} build` };
}

/**
 * A series build reads the compiler cache and never writes it: the volume
 * is mounted read-only, and ccache keeps its temporary files in /tmp.
 */
export const READ_ONLY_CCACHE: Record<string, string> = { CCACHE_READONLY: 'true', CCACHE_TEMPDIR: '/tmp/ccache', CCACHE_NOSTATS: 'true' };

async function buildTreeSuites(c: Running, suites: readonly SuiteManifest[], ctx: StageContext): Promise<Map<string, string>> {
  const unbuilt = new Map<string, string>();
  const treeBuilt = suites.filter((s) => (s.build.tree ?? []).length > 0);
  if (treeBuilt.length === 0) return unbuilt;
  ctx.stageLog('build', 'patchbay: building suites from the tree under test\n');
  for (const s of treeBuilt) {
    const timeout = ctx.settings.job.buildTimeoutSeconds;
    const r = await c.exec(['/opt/patchbay/stages/build-tree-suites.sh', SERIES_SUITES_EXTRA, s.name], {
      onOutput: (t) => { ctx.stageLog('build', t); },
      timeoutSeconds: timeout,
      env: READ_ONLY_CCACHE,
    });
    ctx.checkAborted();
    if (r.exitCode !== 0 && r.timedOut) ctx.stageLog('build', `patchbay: building suite ${s.name} timed out after ${timeout}s\n`);
    if (r.exitCode !== 0) unbuilt.set(s.name, lastLines(r.tail, 6));
  }
  return unbuilt;
}

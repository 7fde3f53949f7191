/**
 * boot and test: one QEMU boot of the series' kernel in its sandbox (the
 * guest init's marker splits the two stages live), then the comparison with
 * the base kernel, which boots only in the base sandbox.
 */
import type { SuiteManifest } from '../../../services/catalog/suites.ts';
import { type ComparedResult, comparedVerdict, withoutBase } from '../../../services/domain/compare.ts';
import { GUEST_MARKERS, type TestResult } from '../../../services/domain/job.ts';
import { describeBase } from '../../../services/domain/prerequisites.ts';
import { filterRows, unanswered } from '../../../services/domain/test-filter.ts';
import { SERIES_KERNEL, SERIES_SUITES_EXTRA, compareAgainstBase } from '../against-base.ts';
import { planFor, runGuest } from '../guest.ts';
import type { StageTracker } from '../pipeline.ts';
import type { Prepared } from './setup.ts';
import type { StageContext } from './context.ts';

export async function bootAndTestStages(
  prepared: Prepared,
  suites: readonly SuiteManifest[],
  unbuilt: ReadonlyMap<string, string>,
  stages: StageTracker,
  ctx: StageContext,
): Promise<void> {
  const { settings } = ctx;
  const runnable = suites.filter((s) => !unbuilt.has(s.name));
  stages.begin('boot');
  const live = { sawInit: false, pending: '' };
  const guest = await runGuest(prepared.series, ctx.artifacts, {
    name: 'series',
    accel: prepared.accel,
    kernel: SERIES_KERNEL,
    plan: planFor(runnable, prepared.only),
    suiteExtra: SERIES_SUITES_EXTRA,
    onQemuCommand: (command) => { ctx.environment().qemuCommand = command; },
    bootTimeoutSeconds: settings.job.bootTimeoutSeconds,
    initramfsLimitBytes: settings.job.artifactLimitBytes,
    onOutput: (t) => {
      ctx.event({ type: 'log', stage: live.sawInit ? 'test' : 'boot', text: t });
      if (!live.sawInit) {
        live.pending = (live.pending + t).slice(-4096);
        if (live.pending.includes(GUEST_MARKERS.init)) {
          live.sawInit = true;
          stages.end('PASS', 'booted to init');
          stages.begin('test');
        }
      }
    },
  }, settings.job.logLimitBytes);
  ctx.checkAborted();
  ctx.result.crashes = guest.crashes;
  ctx.result.ktapProblems = guest.ktapProblems;
  const unbuiltRows: TestResult[] = [...unbuilt].map(([suite, tail]) => ({ suite, test: '(build)', status: 'FAIL' as const, detail: `building the suite from the tree under test failed:\n${tail}` }));
  // A filtered run keeps the named tests' rows (a suite's program may run every test anyway).
  const results: TestResult[] = filterRows(guest.results, prepared.only);
  if (!live.sawInit) {
    ctx.result.results = withoutBase([...results, ...unbuiltRows]);
    stages.end(guest.boot.status, guest.boot.summary);
    return;
  }
  const nothing = unanswered(results, prepared.only).filter((k) => runnable.some((s) => s.name === k.suite));
  if (nothing.length > 0) ctx.event({ type: 'log', stage: 'test', text: `patchbay: the test filter names ${nothing.map((k) => `${k.suite}/${k.test}`).join(', ')}, which printed no result on the series' kernel\n` });
  // The boot looked fine live; a splat before init still fails it.
  if (guest.boot.status !== 'PASS') {
    ctx.result.stages.push({ stage: 'boot', status: guest.boot.status, durationMs: 0, summary: guest.boot.summary });
  }
  const compared = await compareAgainstBase({
    jobId: ctx.jobId,
    series: prepared.series,
    base: prepared.base,
    artifacts: ctx.artifacts,
    logLimitBytes: settings.job.logLimitBytes,
    accel: prepared.accel,
    bootTimeoutSeconds: settings.job.bootTimeoutSeconds,
    policy: settings.job.verdict,
    suites: runnable,
    results,
    completed: guest.completed,
    splats: guest.splats,
    keyParts: prepared.keyParts,
    suiteVersion: prepared.suiteVersion,
    unavailable: prepared.baseUnavailable,
    cache: prepared.cache,
    only: prepared.only,
    log: (t) => { ctx.event({ type: 'log', stage: 'test', text: t }); },
    checkAborted: () => { ctx.checkAborted(); },
  });
  ctx.result.results = [...compared.results, ...unbuiltRows.map((r) => suiteBuildCompared(r, prepared.baseUnavailable.has(r.suite)))];
  ctx.result.splats = compared.splats;
  // The comparison's base is the commit (the cache key's baseCommit also
  // names the prerequisites' hash), with the prerequisite patches on it.
  ctx.result.base = { ...compared.base, commit: prepared.baseCommit, prerequisites: prepared.prerequisites, kernel: describeBase(prepared.baseCommit, prepared.prerequisites) };
  const verdict = comparedVerdict(compared.results, compared.splats);
  stages.end(verdict.status, verdict.summary);
}

/**
 * A suite the series' tree could not build, with a compiler diagnostic (a
 * build without one is MISS before this): the base tree built the same
 * suite, so the diagnostic is the series' (a compiler says the same again);
 * when the base could not build it either, there is nothing to compare.
 */
function suiteBuildCompared(row: TestResult, baseUnavailable: boolean): ComparedResult {
  const seriesRuns = { runs: 1, fails: 1, skips: 0, missing: 0 };
  if (baseUnavailable) return { ...row, baseStatus: null, comparison: 'no-base', seriesRuns, baseRuns: null };
  return { ...row, baseStatus: 'PASS', comparison: 'new-failure', seriesRuns, baseRuns: { runs: 1, fails: 0, skips: 0, missing: 0 } };
}

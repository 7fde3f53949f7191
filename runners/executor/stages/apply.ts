/**
 * apply: the series as an mbox (a read-only input), `git am -3` in the
 * series' sandbox; the changed files come out as a capped regular file.
 * FAIL only with git's own failure naming a patch (`Patch failed at NNNN`
 * with its error or CONFLICT lines, or `Patch is empty.`); anything else
 * (git killed, a broken repository, a full disk, the harness) is a
 * retryable APPLY_FAILED: MISS.
 */
import { applyEvidence, parseGitAmFailure } from '../../../services/domain/build.ts';
import { PatchbayError } from '../../../services/domain/errors.ts';
import { seriesMbox } from '../../../services/domain/series.ts';
import type { JobInput } from '../pipeline.ts';
import { JOB_IN, JOB_OUT, type Sandbox } from '../sandbox.ts';
import { lastLines } from '../warm-base.ts';
import { type StageContext, StageOutcome } from './context.ts';

export interface Applied {
  changed: string[];
  headCommit: string | null;
  summary: string;
}

const CHANGED_LIST = 'changed-files.txt';
/** apply.sh's exit when its harness failed rather than git on a patch (images/runner/stages/apply.sh). */
export const APPLY_HARNESS_FAILED = 125;

export async function applyStage(box: Sandbox, input: JobInput, ctx: StageContext): Promise<Applied> {
  const timeout = ctx.settings.job.applyTimeoutSeconds;
  await box.put([{ type: 'file', path: `${JOB_IN}/series.mbox`, mode: 0o444, uid: 0, content: Buffer.from(seriesMbox(input.series), 'latin1') }]);
  const applied = await box.stage((c) => c.exec(['/opt/patchbay/stages/apply.sh', `${JOB_IN}/series.mbox`], {
    onOutput: (t) => { ctx.stageLog('apply', t); },
    timeoutSeconds: timeout,
  }));
  ctx.checkAborted();
  if (applied.timedOut) throw new PatchbayError('APPLY_TIMEOUT', `git am did not finish in ${timeout}s`, { retryable: true });
  if (applied.exitCode === APPLY_HARNESS_FAILED) {
    const said = [...applied.tail.matchAll(/^patchbay: apply harness failed: (.*)$/gm)].at(-1)?.[1];
    throw new PatchbayError('APPLY_FAILED', `the apply stage failed, not git on a patch: ${said ?? lastLines(applied.tail, 3)}`, { retryable: true });
  }
  if (applied.exitCode !== 0) {
    const failure = parseGitAmFailure(applied.tail);
    const evidence = applyEvidence(applied.tail, failure);
    const patch = failure.patchIndex !== null ? input.series.patches[failure.patchIndex - 1] : undefined;
    if (!evidence.blame || !patch) {
      // Not evidence against the series: retried, never mailed.
      const why = evidence.blame ? `git named patch ${failure.patchIndex ?? '?'}, which the series does not have` : evidence.reason;
      throw new PatchbayError('APPLY_FAILED', `git am failed (exit ${applied.exitCode}) without evidence against a patch: ${why}: ${lastLines(applied.tail, 3)}`, { retryable: true });
    }
    ctx.result.applyFailure = failure;
    const which = `patch ${patch.counter}/${input.series.total} "${patch.subject.title}"`;
    throw new StageOutcome('FAIL', `${which} does not apply: ${failure.messages.slice(0, 3).join('; ')}`);
  }
  const [list] = await box.collect(JOB_OUT, [{ name: CHANGED_LIST, maxBytes: 4 * 1024 * 1024, truncate: false }], ctx.artifacts.path);
  if (list?.kept !== true) {
    throw new PatchbayError('APPLY_FAILED', `the list of changed files did not come out of the job: ${list?.kept === false ? list.reason : 'absent'}`, { retryable: true });
  }
  const changed = ctx.artifacts.readText(CHANGED_LIST).split('\n').filter((l) => l !== '');
  const headCommit = /HEAD ([0-9a-f]{40})/.exec(applied.tail)?.[1] ?? null;
  return { changed, headCommit, summary: `${input.series.patches.length} patch(es) applied, ${changed.length} file(s) changed` };
}

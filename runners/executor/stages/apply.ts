/**
 * apply: the series as an mbox (a read-only input), `git am -3` in the
 * series' sandbox; the changed files come out as a capped regular file.
 * FAIL only with git's own failure naming a patch.
 */
import { parseGitAmFailure } from '../../../services/domain/build.ts';
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

export async function applyStage(box: Sandbox, input: JobInput, ctx: StageContext): Promise<Applied> {
  const timeout = ctx.settings.job.applyTimeoutSeconds;
  await box.put([{ type: 'file', path: `${JOB_IN}/series.mbox`, mode: 0o444, uid: 0, content: Buffer.from(seriesMbox(input.series), 'latin1') }]);
  const applied = await box.stage((c) => c.exec(['/opt/patchbay/stages/apply.sh', `${JOB_IN}/series.mbox`], {
    onOutput: (t) => { ctx.stageLog('apply', t); },
    timeoutSeconds: timeout,
  }));
  ctx.checkAborted();
  if (applied.timedOut) throw new PatchbayError('APPLY_TIMEOUT', `git am did not finish in ${timeout}s`, { retryable: true });
  if (applied.exitCode !== 0) {
    const failure = parseGitAmFailure(applied.tail);
    if (failure.patchIndex === null && failure.messages.length === 0) {
      // No patch named and no message from git: not evidence against the series.
      throw new PatchbayError('APPLY_FAILED', `the apply stage failed without a message from git (exit ${applied.exitCode}): ${lastLines(applied.tail, 3)}`, { retryable: true });
    }
    ctx.result.applyFailure = failure;
    const patch = failure.patchIndex !== null ? input.series.patches[failure.patchIndex - 1] : undefined;
    const which = patch
      ? `patch ${patch.counter}/${input.series.total} "${patch.subject.title}"`
      : `patch ${failure.patchIndex ?? '?'} "${failure.title ?? '?'}"`;
    throw new StageOutcome('FAIL', `${which} does not apply: ${failure.messages.slice(0, 3).join('; ') || lastLines(applied.tail, 3)}`);
  }
  const [list] = await box.collect(JOB_OUT, [{ name: CHANGED_LIST, maxBytes: 4 * 1024 * 1024, truncate: false }], ctx.artifacts.path);
  if (list?.kept !== true) {
    throw new PatchbayError('APPLY_FAILED', `the list of changed files did not come out of the job: ${list?.kept === false ? list.reason : 'absent'}`, { retryable: true });
  }
  const changed = ctx.artifacts.readText(CHANGED_LIST).split('\n').filter((l) => l !== '');
  const headCommit = /HEAD ([0-9a-f]{40})/.exec(applied.tail)?.[1] ?? null;
  return { changed, headCommit, summary: `${input.series.patches.length} patch(es) applied, ${changed.length} file(s) changed` };
}

/**
 * apply: the series as an mbox (a read-only input), `git am -3` in the
 * series' sandbox; the changed files come out as a capped regular file.
 * FAIL only with git's own failure naming a patch (`Patch failed at NNNN`
 * with its error or CONFLICT lines, or `Patch is empty.`); anything else
 * (git killed, a broken repository, a full disk, the harness) is a
 * retryable APPLY_FAILED: MISS.
 *
 * Prerequisite patches (JobInput.prerequisites) go first, by a `git am` of
 * their own, in both sandboxes (applyPrerequisites; the base's in setup): a
 * prerequisite git fails on is never the series' fault, so it is MISS with
 * PREREQUISITES_APPLY (not retried: the same patches fail again), and the
 * series' changed files are what its own patches change on top of them.
 */
import { type ApplyFailure, applyEvidence, parseGitAmFailure } from '../../../services/domain/build.ts';
import { PatchbayError } from '../../../services/domain/errors.ts';
import { prerequisitesMbox } from '../../../services/domain/prerequisites.ts';
import { type Series, type SeriesPatch, seriesMbox } from '../../../services/domain/series.ts';
import type { ExecOutcome } from '../docker.ts';
import type { JobInput } from '../pipeline.ts';
import { JOB_IN, JOB_OUT, type Sandbox } from '../sandbox.ts';
import { lastLines } from '../warm-base.ts';
import { type StageContext, StageOutcome } from './context.ts';

export interface Applied {
  /** What the series' own patches changed (on top of its prerequisites, if any). */
  changed: string[];
  headCommit: string | null;
  summary: string;
}

const CHANGED_LIST = 'changed-files.txt';
/** apply.sh's exit when its harness failed rather than git on a patch (images/runner/stages/apply.sh). */
export const APPLY_HARNESS_FAILED = 125;
/** The most changed-file list that comes out of a sandbox. */
const CHANGED_LIST_LIMIT = 4 * 1024 * 1024;

/**
 * One mbox through apply.sh: put in read-only at JOB_IN/<name>, then `git
 * am -3` in a stage of its own. Throws (retryable) when git did not finish
 * or the harness failed; git's own verdict on a patch is the caller's to read.
 */
async function gitAm(box: Sandbox, name: string, mbox: Buffer, ctx: StageContext, log: (text: string) => void, what: string): Promise<ExecOutcome> {
  const timeout = ctx.settings.job.applyTimeoutSeconds;
  await box.put([{ type: 'file', path: `${JOB_IN}/${name}`, mode: 0o444, uid: 0, content: mbox }]);
  const applied = await box.stage((c) => c.exec(['/opt/patchbay/stages/apply.sh', `${JOB_IN}/${name}`], {
    onOutput: log,
    timeoutSeconds: timeout,
  }));
  ctx.checkAborted();
  if (applied.timedOut) throw new PatchbayError('APPLY_TIMEOUT', `git am${what} did not finish in ${timeout}s`, { retryable: true });
  if (applied.exitCode === APPLY_HARNESS_FAILED) {
    const said = [...applied.tail.matchAll(/^patchbay: apply harness failed: (.*)$/gm)].at(-1)?.[1];
    throw new PatchbayError('APPLY_FAILED', `the apply stage failed${what}, not git on a patch: ${said ?? lastLines(applied.tail, 3)}`, { retryable: true });
  }
  return applied;
}

/** apply.sh's list of changed files, out of the sandbox as the artifact `name`. */
async function changedFiles(box: Sandbox, ctx: StageContext, name: string): Promise<string[]> {
  const [list] = await box.collect(JOB_OUT, [{ name: CHANGED_LIST, maxBytes: CHANGED_LIST_LIMIT, truncate: false }], ctx.artifacts.path, () => name);
  if (list?.kept !== true) {
    throw new PatchbayError('APPLY_FAILED', `the list of changed files did not come out of the job: ${list?.kept === false ? list.reason : 'absent'}`, { retryable: true });
  }
  return ctx.artifacts.readText(name).split('\n').filter((l) => l !== '');
}

/**
 * What git's failure on the prerequisites means. With git's evidence against
 * a named prerequisite: PREREQUISITES_APPLY, naming it and quoting git; not
 * retried (the same patches on the same base fail again) and never the
 * series' fault. Without it (git killed, a full disk): APPLY_FAILED, retried.
 */
export function prerequisitesApplyError(applied: ExecOutcome, prerequisites: Series, baseCommit: string): PatchbayError {
  const named = patchGitNamed(applied, prerequisites.patches, { am: 'git am of the prerequisite patches', against: 'one', lacking: 'the prerequisites do not have' });
  if (named instanceof PatchbayError) return named;
  const { failure, patch } = named;
  const which = `prerequisite patch ${patch.counter}/${prerequisites.patches.length} "${patch.subject.title}" <${patch.message.messageId}>`;
  return new PatchbayError('PREREQUISITES_APPLY', `${which} does not apply on the base ${baseCommit.slice(0, 12)}, so the series cannot be tested; git am said: ${failure.messages.slice(0, 8).join('; ')}`, {
    retryable: false,
    details: { patchIndex: failure.patchIndex, title: patch.subject.title, messageId: patch.message.messageId, messages: failure.messages },
  });
}

/**
 * The patch of `patches` git am's failure names, with the failure; or,
 * without git's evidence against one of them (git killed, a full disk, a
 * number they do not have), a retryable APPLY_FAILED: never anyone's fault.
 */
function patchGitNamed(
  applied: ExecOutcome,
  patches: readonly SeriesPatch[],
  say: { am: string; against: string; lacking: string },
): { failure: ApplyFailure; patch: SeriesPatch } | PatchbayError {
  const failure = parseGitAmFailure(applied.tail);
  const evidence = applyEvidence(applied.tail, failure);
  const patch = failure.patchIndex !== null ? patches[failure.patchIndex - 1] : undefined;
  if (evidence.blame && patch) return { failure, patch };
  const why = evidence.blame ? `git named patch ${failure.patchIndex ?? '?'}, which ${say.lacking}` : evidence.reason;
  return new PatchbayError('APPLY_FAILED', `${say.am} failed (exit ${applied.exitCode}) without evidence against ${say.against}: ${why}: ${lastLines(applied.tail, 3)}`, { retryable: true });
}

/**
 * The prerequisites on the base in `box` (either sandbox), before anything
 * else is applied there. Returns the files they change when `listAs` names
 * the artifact to keep that list as, else nothing.
 */
export async function applyPrerequisites(
  box: Sandbox,
  prerequisites: Series,
  baseCommit: string,
  ctx: StageContext,
  log: (text: string) => void,
  listAs: string | null,
): Promise<string[]> {
  const n = prerequisites.patches.length;
  log(`patchbay: applying ${n} prerequisite patch(es) on the base ${baseCommit.slice(0, 12)}\n`);
  const applied = await gitAm(box, 'prerequisites.mbox', prerequisitesMbox(prerequisites), ctx, log, ' of the prerequisite patches');
  if (applied.exitCode !== 0) throw prerequisitesApplyError(applied, prerequisites, baseCommit);
  return listAs === null ? [] : changedFiles(box, ctx, listAs);
}

export async function applyStage(box: Sandbox, input: JobInput, ctx: StageContext): Promise<Applied> {
  const log = (t: string): void => { ctx.stageLog('apply', t); };
  if (input.prerequisites !== null) await applyPrerequisites(box, input.prerequisites, ctx.result.baseCommit ?? '?', ctx, log, null);
  const applied = await gitAm(box, 'series.mbox', Buffer.from(seriesMbox(input.series), 'latin1'), ctx, log, '');
  if (applied.exitCode !== 0) {
    // Without evidence against the series: retried, never mailed.
    const named = patchGitNamed(applied, input.series.patches, { am: 'git am', against: 'a patch', lacking: 'the series does not have' });
    if (named instanceof PatchbayError) throw named;
    const { failure, patch } = named;
    ctx.result.applyFailure = failure;
    const which = `patch ${patch.counter}/${input.series.total} "${patch.subject.title}"`;
    throw new StageOutcome('FAIL', `${which} does not apply: ${failure.messages.slice(0, 3).join('; ')}`);
  }
  // apply.sh lists what changed since the HEAD it started from: with
  // prerequisites, what the series' own patches change on top of them.
  const changed = await changedFiles(box, ctx, CHANGED_LIST);
  const headCommit = /HEAD ([0-9a-f]{40})/.exec(applied.tail)?.[1] ?? null;
  const on = input.prerequisites === null ? '' : ` on ${input.prerequisites.patches.length} prerequisite patch(es)`;
  return { changed, headCommit, summary: `${input.series.patches.length} patch(es) applied${on}, ${changed.length} file(s) changed` };
}

/** The plain-text results table the CLI ends with. */
import type { JobResult } from '../domain/job.ts';
import { countStatuses } from '../domain/job.ts';
import { formatTally } from '../domain/compare.ts';
import { describeBase, prerequisitesLine } from '../domain/prerequisites.ts';
import { formatDuration } from './progress.ts';

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n');
}

export function renderResult(r: JobResult): string {
  const out: string[] = [];
  out.push('');
  if (r.results.length > 0) {
    const rows = [['SUITE', 'TEST', 'STATUS', 'BASE', 'AGAINST BASE', 'FAILS:RUNS', 'DETAIL']];
    for (const t of r.results) {
      const runs = t.baseRuns ? `${formatTally(t.seriesRuns)}/${formatTally(t.baseRuns)}` : formatTally(t.seriesRuns);
      rows.push([t.suite, t.test, t.status, t.baseStatus ?? '-', t.comparison, runs, t.detail.split('\n')[0] ?? '']);
    }
    out.push(table(rows), '');
  }
  if (r.base) {
    const sources = r.base.suites.map((b) => `${b.suite} ${b.source === 'cached' ? `cached (job ${b.jobId ?? '?'})` : b.summary}`).join('; ');
    out.push(`base:   ${r.base.kernel ?? describeBase(r.base.commit, r.base.prerequisites ?? 0)}: ${sources}${r.base.rerun ? `; ${r.base.rerun.tests} differing test(s) re-run ${r.base.rerun.times}x on both kernels` : ''}`);
  }
  if ((r.ktapProblems ?? []).length > 0) out.push('KTAP problems (line numbers refer to ktap.txt):', ...(r.ktapProblems ?? []).map((p) => `  ${p}`));
  for (const x of r.splats ?? []) {
    out.push(`splat: ${x.comparison}: ${x.title} [${x.fingerprint}] in ${x.series.fails} of ${x.series.runs} series boot(s), ${x.base ? `${x.base.fails} of ${x.base.runs}` : 'no'} base boot(s); came in ${x.landed.join(', ')}`);
  }
  for (const c of r.crashes) {
    out.push(`crash: ${c.title}`, `  fingerprint ${c.fingerprint}${c.culprit ? `, culprit ${c.culprit}` : ''}`);
    if (c.frames.length > 0) out.push(`  call trace: ${c.frames.slice(0, 6).join(' <- ')}`);
  }
  if (r.applyFailure) {
    out.push('git am said:', ...r.applyFailure.messages.slice(0, 8).map((m) => `  ${m}`));
  }
  if (r.buildErrors.length > 0) {
    out.push('build errors:', ...r.buildErrors.slice(0, 8).map((d) => `  ${d.file}${d.line !== null ? `:${d.line}` : ''}${d.column !== null ? `:${d.column}` : ''}: ${d.message}`));
  }
  const stages = r.stages.map((s) => `${s.stage} ${s.status} ${formatDuration(s.durationMs)}`).join(', ');
  const counts = Object.entries(countStatuses(r.results)).map(([k, v]) => `${v} ${k}`).join(', ');
  out.push(`status: ${r.status}${r.stage ? ` at ${r.stage}` : ''}: ${r.summary}`);
  out.push(`stages: ${stages}`);
  if (counts) out.push(`tests:  ${counts}`);
  const prerequisites = prerequisitesLine(r.prerequisites);
  if (prerequisites !== null) out.push(`prerequisites: ${prerequisites}`);
  out.push(`tree:   ${r.tree.name} base ${r.baseCommit?.slice(0, 12) ?? '?'}${r.baseRule ? ` (${r.baseRule})` : ''}${r.headCommit ? ` -> ${r.headCommit.slice(0, 12)}` : ''}${r.accel ? `, ${r.accel.toUpperCase()}` : ''}${r.buildMode ? `, ${r.buildMode} build` : ''}`);
  if (r.error) out.push(`error:  [${r.error.code}] ${r.error.message}`);
  if (r.artifactsDir) out.push(`artifacts: ${r.artifactsDir} (${r.artifacts.join(', ')})`);
  out.push(`total:  ${formatDuration(r.durationMs)}`);
  return out.join('\n');
}

/**
 * A result report's body: the ReportInput (services/domain/report/model.ts)
 * gathered from the store (the job's recorded result, the answered mail,
 * the previous revision's run through the watcher's revision links), then
 * rendered with the templates.
 */
import { BLAMED } from '../domain/compare.ts';
import { PatchbayError } from '../domain/errors.ts';
import type { JobResult } from '../domain/job.ts';
import { parseMessage } from '../domain/mbox.ts';
import type { PreviousRun, ReportInput } from '../domain/report/model.ts';
import { renderReport } from '../domain/report/render.ts';
import type { TreeCatalog } from '../catalog/trees.ts';
import type { OutboxEntry, Store } from '../store/db.ts';
import type { ReportTemplates } from './templates.ts';

export interface ComposeContext {
  store: Store;
  trees: TreeCatalog;
  templates: ReportTemplates;
  robot: { name: string; email: string };
  /** The dashboard's public address, no trailing slash. */
  publicUrl: string;
}

const notRenderable = (entry: OutboxEntry, why: string): PatchbayError =>
  new PatchbayError('REPORT_RENDER_FAILED', `report ${entry.id}: ${why}`, { retryable: false });

/** The previous revision's newest run with a verdict (PASS or FAIL), through the watcher's revision links. */
export async function previousRun(store: Store, seriesId: string, version: number, publicUrl: string): Promise<PreviousRun | null> {
  const decision = await store.lore.decisionBySeries(seriesId);
  if (decision?.identity == null) return null;
  const earlier = (await store.lore.revisions(decision.identity))
    .filter((d) => d.version !== null && d.version < version && d.seriesId !== null)
    .sort((a, b) => (b.version ?? 0) - (a.version ?? 0));
  for (const d of earlier) {
    if (d.seriesId === null || d.version === null) continue;
    for (const job of await store.jobs.forSeries(d.seriesId)) {
      if (job.status !== 'PASS' && job.status !== 'FAIL') continue;
      const full = await store.jobs.get(job.id);
      if (full?.result == null) continue;
      return { version: d.version, jobId: job.id, url: `${publicUrl}/jobs/${job.id}`, result: full.result };
    }
  }
  return null;
}

export async function reportInput(entry: OutboxEntry, ctx: ComposeContext): Promise<ReportInput> {
  if (entry.jobId === null) throw notRenderable(entry, 'its job is gone');
  const job = await ctx.store.jobs.get(entry.jobId);
  if (job?.result == null) throw notRenderable(entry, `job ${entry.jobId} has no recorded result`);
  const series = await ctx.store.series.get(entry.seriesId);
  if (series === null) throw notRenderable(entry, `series ${entry.seriesId} is gone`);
  const [cover, patches] = await Promise.all([ctx.store.series.cover(entry.seriesId), ctx.store.series.patches(entry.seriesId)]);
  const answered = cover ?? patches[0];
  if (answered === undefined) throw notRenderable(entry, 'the series has no mail to answer');
  const mail = parseMessage(answered.raw.toString('latin1'));
  const result: JobResult = job.result;
  const tree = ctx.trees.trees.find((t) => t.name === job.tree);
  const blamed = result.results.filter((r) => BLAMED.has(r.comparison) && !r.test.startsWith('(')).map((r) => `${r.suite}/${r.test}`);
  return {
    result,
    series: {
      subject: mail.subject,
      messageId: mail.messageId,
      version: series.version,
      patches: patches.length,
      author: mail.from,
      inbox: entry.inbox,
    },
    runner: job.worker,
    jobUrl: `${ctx.publicUrl}/jobs/${job.id}`,
    previous: await previousRun(ctx.store, entry.seriesId, series.version, ctx.publicUrl),
    reproducer: {
      tree: { name: job.tree, url: tree?.url ?? `${job.tree} (imported by \`patchbay prepare\`; see deploy/trees.json)` },
      suites: [...job.suites].sort(),
      tests: [...new Set(blamed)].sort(),
    },
    robot: ctx.robot,
    messageId: entry.messageId,
  };
}

export function makeRenderer(ctx: ComposeContext): (entry: OutboxEntry) => Promise<string> {
  return async (entry) => renderReport(await reportInput(entry, ctx), ctx.templates).body;
}

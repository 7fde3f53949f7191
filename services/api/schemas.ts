/** TypeBox schemas shared by the routes: validation, types and OpenAPI at once. */
import { type Static, Type } from 'typebox';
import type { ComparedResult, SplatComparison } from '../domain/compare.ts';

export const ErrorBody = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }) });

export const Status = Type.Union([
  Type.Literal('queued'), Type.Literal('running'), Type.Literal('PASS'), Type.Literal('FAIL'),
  Type.Literal('ERROR'), Type.Literal('MISS'), Type.Literal('SKIP'), Type.Literal('cancelled'),
]);

export const JobSummary = Type.Object({
  id: Type.String(),
  seriesId: Type.String(),
  status: Status,
  stage: Type.Union([Type.String(), Type.Null()]),
  summary: Type.String(),
  tree: Type.String(),
  base: Type.Union([Type.String(), Type.Null()]),
  suites: Type.Array(Type.String()),
  createdAt: Type.String(),
  startedAt: Type.Union([Type.String(), Type.Null()]),
  finishedAt: Type.Union([Type.String(), Type.Null()]),
  /** Who runs it: the in-cluster queue, or lab runners. */
  pool: Type.Union([Type.Literal('queue'), Type.Literal('runners')]),
  /** What a lab runner must have to take it. */
  requires: Type.Object({}, { additionalProperties: true }),
  /** Where its latest attempt ran: a worker (host-pid) or "runner NAME"; null before any. */
  ranOn: Type.Union([Type.String(), Type.Null()]),
  /** Attempts started. */
  attempts: Type.Integer(),
  url: Type.String(),
  page: Type.String(),
});

export const SeriesSummary = Type.Object({
  id: Type.String(),
  title: Type.String(),
  version: Type.Integer(),
  total: Type.Integer(),
  isRfc: Type.Boolean(),
  rootMessageId: Type.String(),
  baseCommit: Type.Union([Type.String(), Type.Null()]),
  source: Type.String(),
  createdAt: Type.String(),
  url: Type.String(),
  page: Type.String(),
});

export const Paging = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
});

export const SubmitOptions = Type.Object({
  tree: Type.Optional(Type.String({ maxLength: 64 })),
  base: Type.Optional(Type.String({ maxLength: 200 })),
  suite: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Array(Type.String({ maxLength: 32 }), { maxItems: 16 })])),
  force: Type.Optional(Type.Boolean()),
  /** What the lab runner must have: kvm, arch=..., cores=N, memory-mb=N, label=value (services/domain/runners.ts). */
  runsOn: Type.Optional(Type.Union([Type.String({ maxLength: 120 }), Type.Array(Type.String({ maxLength: 120 }), { maxItems: 16 })])),
});

export const SubmitJson = Type.Object({
  messageId: Type.String({ minLength: 3, maxLength: 300 }),
  inbox: Type.String({ minLength: 8, maxLength: 500 }),
  tree: Type.Optional(Type.String({ maxLength: 64 })),
  base: Type.Optional(Type.String({ maxLength: 200 })),
  suites: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 16 })),
  force: Type.Optional(Type.Boolean()),
  runsOn: Type.Optional(Type.Array(Type.String({ maxLength: 120 }), { maxItems: 16 })),
}, { additionalProperties: false });

export const SubmitReply = Type.Object({
  created: Type.Boolean(),
  series: SeriesSummary,
  jobs: Type.Array(JobSummary),
});

const Tally = Type.Object({
  runs: Type.Integer({ description: 'runs the test was due in, the first run and re-runs' }),
  fails: Type.Integer({ description: 'runs that failed (FAIL or ERROR)' }),
  skips: Type.Integer({ description: 'runs that skipped' }),
  missing: Type.Integer({ description: 'finished runs of its suite without the test' }),
}, { description: 'a test\'s runs on one kernel: "fails:runs", with skipped and missing runs' });

export const TestResultView = Type.Object({
  suite: Type.String(),
  test: Type.String(),
  status: Type.String({ description: 'PASS, FAIL, ERROR or SKIP in the series\' first run' }),
  detail: Type.String(),
  baseStatus: Type.Union([Type.String(), Type.Null()], { description: 'the same test on the base kernel; null when the base has no such test or was not run' }),
  comparison: Type.Union([Type.Literal('new-failure'), Type.Literal('now-skips'), Type.Literal('now-missing'), Type.Literal('unconfirmed'), Type.Literal('pre-existing'), Type.Literal('fixed'), Type.Literal('flaky'), Type.Literal('unchanged'), Type.Literal('no-base')], { description: 'new-failure, now-skips and now-missing are blamed on the series (each reproduced); unconfirmed means its re-runs did not all happen; pre-existing, flaky, fixed and no-base are not blamed' }),
  seriesRuns: Tally,
  baseRuns: Type.Union([Tally, Type.Null()]),
});

export const SplatView = Type.Object({
  fingerprint: Type.String(),
  kind: Type.String(),
  title: Type.String(),
  culprit: Type.Union([Type.String(), Type.Null()]),
  landed: Type.Array(Type.String(), { description: 'where it came in the series\' boots: "suite/test", a suite, or "(boot)"' }),
  seriesBoots: Tally,
  baseBoots: Type.Union([Tally, Type.Null()]),
  comparison: Type.String({ description: 'as for a test; new-failure blames the series' }),
});

export function splatView(x: SplatComparison): Static<typeof SplatView> {
  return { fingerprint: x.fingerprint, kind: x.kind, title: x.title, culprit: x.culprit, landed: x.landed, seriesBoots: x.series, baseBoots: x.base, comparison: x.comparison };
}

export function testResultView(t: ComparedResult): Static<typeof TestResultView> {
  return { suite: t.suite, test: t.test, status: t.status, detail: t.detail, baseStatus: t.baseStatus, comparison: t.comparison, seriesRuns: t.seriesRuns, baseRuns: t.baseRuns };
}

export const BaseComparisonView = Type.Object({
  commit: Type.String(),
  /** Prerequisite patches applied on the commit to make the base kernel (absent in older results: none). */
  prerequisites: Type.Optional(Type.Integer()),
  /** The base kernel for people: "<commit> + N prerequisite patch(es)", or the commit. */
  kernel: Type.Optional(Type.String()),
  suites: Type.Array(
    Type.Object({
      suite: Type.String(),
      source: Type.Union([Type.Literal('cached'), Type.Literal('run'), Type.Literal('unavailable')]),
      jobId: Type.Union([Type.String(), Type.Null()]),
      summary: Type.String(),
    }),
  ),
  rerun: Type.Union([Type.Object({ tests: Type.Integer(), times: Type.Integer() }), Type.Null()]),
});

/** The prerequisite patches a job applied on the base before the series (JobResult.prerequisites). */
export const PrerequisitesView = Type.Object({
  patches: Type.Array(Type.Object({ title: Type.String(), messageId: Type.String() })),
  hash: Type.String(),
});

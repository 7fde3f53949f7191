/**
 * The lab-runner protocol over HTTPS: what a runner sends and what the API
 * answers, as TypeBox schemas (validation on both sides, types, OpenAPI).
 * The API validates every body a runner sends (a runner may be
 * compromised); the agent validates every answer.
 *
 *   POST /api/v1/runners/register        registration token -> credential (once)
 *   POST /api/v1/runner/hello            labels, capacity, warm bases, leases it still holds
 *   POST /api/v1/runner/claim            long poll: a job and its lease, or 204
 *   POST /api/v1/runner/heartbeat        renew leases; hear of cancels and drains
 *   POST /api/v1/runner/leases/:id/log   live log entries (capped per attempt)
 *   PUT  /api/v1/runner/leases/:id/artifacts/:name   one artifact, sha256-checked
 *   POST /api/v1/runner/leases/:id/result            the attempt's JobResult
 *   POST /api/v1/runner/leases/:id/release           no result: retry, released, cancelled
 *   POST /api/v1/runner/rotate           a new credential
 *
 * Every runner request carries `Authorization: Bearer pbr_...`.
 */
import { Type, type Static } from 'typebox';
import { COMPARISONS } from '../domain/compare.ts';
import { STATUSES, STAGES } from '../domain/status.ts';
import { LABEL_KEY_RE, LABEL_VALUE_RE } from '../domain/runners.ts';

const Str = (max: number) => Type.String({ maxLength: max });
const NullableStr = (max: number) => Type.Union([Str(max), Type.Null()]);
const Commit = Type.String({ pattern: '^[0-9a-f]{40}$' });
const TreeName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' });
const LabelKey = Type.String({ pattern: LABEL_KEY_RE.source });
const LabelValue = Type.String({ pattern: LABEL_VALUE_RE.source });
/** What a runner may call itself: a host-name-like word. */
export const RUNNER_NAME_RE = /^[a-z0-9][a-z0-9.-]{0,62}$/;
/** Artifact names: plain file names, no path. */
export const ARTIFACT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export const RunnerLabelsSchema = Type.Object({
  arch: Type.String({ pattern: '^[a-z0-9_]{1,32}$' }),
  kvm: Type.Boolean(),
  cores: Type.Integer({ minimum: 1, maximum: 4096 }),
  memoryMb: Type.Integer({ minimum: 1, maximum: 64 * 1024 * 1024 }),
  trees: Type.Array(TreeName, { maxItems: 64 }),
  extra: Type.Record(LabelKey, LabelValue, { maxProperties: 32 }),
}, { additionalProperties: false });

export const JobRequirementsSchema = Type.Object({
  arch: Type.Optional(Type.String({ pattern: '^[a-z0-9_]{1,32}$' })),
  kvm: Type.Optional(Type.Boolean()),
  minCores: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096 })),
  minMemoryMb: Type.Optional(Type.Integer({ minimum: 1 })),
  labels: Type.Optional(Type.Record(LabelKey, LabelValue, { maxProperties: 16 })),
}, { additionalProperties: false });

export const WarmBasesSchema = Type.Array(Type.Object({ tree: TreeName, commit: Commit }, { additionalProperties: false }), { maxItems: 200 });

export const RegisterRequest = Type.Object({
  token: Str(100),
  name: Type.String({ pattern: RUNNER_NAME_RE.source }),
  labels: RunnerLabelsSchema,
  capacity: Type.Integer({ minimum: 1, maximum: 64 }),
  version: NullableStr(64),
}, { additionalProperties: false });
export const RegisterReply = Type.Object({ id: Type.String(), name: Type.String(), credential: Type.String() });

export const HelloRequest = Type.Object({
  labels: RunnerLabelsSchema,
  capacity: Type.Integer({ minimum: 1, maximum: 64 }),
  version: NullableStr(64),
  warmBases: WarmBasesSchema,
  /** The leases it still holds (a restart holds none): the others are given up. */
  leases: Type.Array(Str(64), { maxItems: 64 }),
}, { additionalProperties: false });

/** The server's settings a runner follows. */
export const HelloReply = Type.Object({
  id: Type.String(),
  name: Type.String(),
  state: Type.Union([Type.Literal('active'), Type.Literal('draining')]),
  heartbeatSeconds: Type.Integer(),
  leaseSeconds: Type.Integer(),
  logLimitBytes: Type.Integer(),
  artifactLimitBytes: Type.Integer(),
  /** Leases it did not list that were given up (their jobs run again). */
  released: Type.Array(Type.String()),
});

export const ClaimRequest = Type.Object({
  warmBases: WarmBasesSchema,
  /** Seconds to wait for a job (at most the server's claim wait). */
  waitSeconds: Type.Integer({ minimum: 0, maximum: 60 }),
}, { additionalProperties: false });

/** A job as a runner gets it: the mail, not a parsed series (the runner parses it with the same code). */
export const LeasedJob = Type.Object({
  lease: Type.Object({ id: Type.String(), attempt: Type.Integer(), expiresAt: Type.String(), deadlineAt: Type.String() }),
  job: Type.Object({
    id: Type.String(),
    tree: Type.String(),
    base: Type.Union([Type.String(), Type.Null()]),
    suites: Type.Array(Type.String()),
    series: Type.Object({
      version: Type.Integer(),
      baseCommit: Type.Union([Type.String(), Type.Null()]),
      /** Each message as stored (latin1 bytes), base64; cover letter first when there is one. */
      messages: Type.Array(Type.String()),
    }),
    prerequisites: Type.Union([Type.Object({ messages: Type.Array(Type.String()) }), Type.Null()]),
  }),
  /** Whether the server chose it because this runner holds its warm base. */
  warm: Type.Boolean(),
});
export type LeasedJob = Static<typeof LeasedJob>;

export const HeartbeatRequest = Type.Object({
  leases: Type.Array(Str(64), { maxItems: 64 }),
  warmBases: Type.Optional(WarmBasesSchema),
}, { additionalProperties: false });
export const HeartbeatReply = Type.Object({
  leases: Type.Record(Type.String(), Type.Union([Type.Literal('ok'), Type.Literal('cancel'), Type.Literal('stale')])),
  /** An admin asked it to drain: finish what it holds, take nothing new. */
  drain: Type.Boolean(),
});

const StageNameSchema = Type.Enum(['setup', ...STAGES] as const);
export const LogRequest = Type.Object({
  entries: Type.Array(Type.Union([
    Type.Object({ kind: Type.Literal('log'), stage: StageNameSchema, text: Str(256 * 1024) }, { additionalProperties: false }),
    Type.Object({
      kind: Type.Literal('stage'), stage: StageNameSchema, phase: Type.Union([Type.Literal('start'), Type.Literal('end')]),
      status: Type.Optional(Type.Enum(STATUSES)), durationMs: Type.Optional(Type.Number({ minimum: 0 })), summary: Type.Optional(Str(4096)),
    }, { additionalProperties: false }),
  ]), { maxItems: 2000 }),
}, { additionalProperties: false });
export type LogRequest = Static<typeof LogRequest>;

export const ReleaseRequest = Type.Object({
  outcome: Type.Union([Type.Literal('retry'), Type.Literal('released'), Type.Literal('cancelled')]),
  reason: Str(2000),
}, { additionalProperties: false });

const StatusSchema = Type.Enum(STATUSES);
const TestStatusSchema = Type.Enum(['PASS', 'FAIL', 'ERROR', 'SKIP'] as const);
const Tally = Type.Object({ runs: Type.Integer({ minimum: 0 }), fails: Type.Integer({ minimum: 0 }), skips: Type.Integer({ minimum: 0 }), missing: Type.Integer({ minimum: 0 }) });
const ComparisonSchema = Type.Enum(COMPARISONS);
/** Nested records the service stores and renders but does not query: objects, bounded. */
const Loose = (max: number) => Type.Array(Type.Object({}, { additionalProperties: true }), { maxItems: max });

/**
 * A JobResult as a runner uploads it. What the store queries and the
 * verdict rests on is checked field by field; the rest is bounded. The
 * server sets jobId, artifactsDir and artifacts itself.
 */
export const UploadedResult = Type.Object({
  jobId: Str(64),
  status: StatusSchema,
  stage: Type.Union([StageNameSchema, Type.Null()]),
  summary: Str(4096),
  tree: Type.Object({ name: Str(64), ref: Str(256) }),
  baseCommit: Type.Union([Commit, Type.Null()]),
  baseRule: Type.Optional(Type.Union([Type.Literal('requested'), Type.Literal('base-commit'), Type.Literal('tree-ref')])),
  headCommit: Type.Union([Commit, Type.Null()]),
  series: Type.Union([Type.Object({ title: Str(1000), version: Type.Integer({ minimum: 1 }), patches: Type.Integer({ minimum: 0 }) }), Type.Null()]),
  prerequisites: Type.Optional(Type.Union([Type.Object({ patches: Type.Array(Type.Object({ title: Str(1000), messageId: Str(1000) }), { maxItems: 1000 }), hash: Str(64) }), Type.Null()])),
  suites: Type.Array(Str(64), { maxItems: 64 }),
  accel: Type.Union([Type.Literal('kvm'), Type.Literal('tcg'), Type.Null()]),
  buildMode: Type.Union([Str(32), Type.Null()]),
  stages: Type.Array(Type.Object({ stage: StageNameSchema, status: StatusSchema, durationMs: Type.Number({ minimum: 0 }), summary: Str(4096) }), { maxItems: 16 }),
  results: Type.Array(Type.Object({
    suite: Str(64), test: Str(512), status: TestStatusSchema, detail: Str(8192),
    baseStatus: Type.Union([TestStatusSchema, Type.Null()]), comparison: ComparisonSchema,
    seriesRuns: Tally, baseRuns: Type.Union([Tally, Type.Null()]),
  }), { maxItems: 20_000 }),
  base: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
  crashes: Loose(200),
  splats: Type.Optional(Loose(500)),
  ktapProblems: Type.Optional(Type.Array(Str(4096), { maxItems: 200 })),
  applyFailure: Type.Union([Type.Object({ patchIndex: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]), title: NullableStr(1000), messages: Type.Array(Str(4096), { maxItems: 200 }) }), Type.Null()]),
  buildErrors: Loose(500),
  error: Type.Union([Type.Object({ code: Type.String({ pattern: '^[A-Z][A-Z0-9_]{0,63}$' }), message: Str(8192) }), Type.Null()]),
  artifactsDir: NullableStr(4096),
  artifacts: Type.Array(Type.String({ pattern: ARTIFACT_NAME_RE.source }), { maxItems: 64 }),
  startedAt: Str(40),
  durationMs: Type.Number({ minimum: 0 }),
  environment: Type.Optional(Type.Object({}, { additionalProperties: true })),
});
export const ResultRequest = Type.Object({
  result: UploadedResult,
  /** sha256 of each artifact uploaded before it, by name: the server keeps only those that match. */
  artifacts: Type.Record(Type.String({ pattern: ARTIFACT_NAME_RE.source }), Type.String({ pattern: '^[0-9a-f]{64}$' }), { maxProperties: 64 }),
}, { additionalProperties: false });
export const ResultReply = Type.Object({
  /** recorded: the verdict is the job's; retry: infrastructure trouble, the job runs again (an attempt spent). */
  outcome: Type.Union([Type.Literal('recorded'), Type.Literal('retry')]),
  status: Type.String(),
});

/**
 * patchbay's configuration: one validated schema, built by one function from
 * an environment. Nothing else reads process.env; every module takes the
 * part of Config it needs.
 */
import { availableParallelism, homedir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { PatchbayError } from '../domain/errors.ts';
import { DEFAULT_POLICY } from '../domain/compare.ts';

const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/**
 * Garbage collection (runners/executor/README.md, "Garbage collection"), on
 * a worker and a lab runner alike: what has not been used for maxAgeDays
 * goes, and past budgetBytes the least recently used go first; nothing in
 * use (a container's image, a held lock, a running job's folder) ever goes.
 * 0 turns a limit off.
 */
const GcPolicySchema = Type.Object({
  maxAgeDays: Type.Number({ minimum: 0 }),
  budgetBytes: Type.Integer({ minimum: 0 }),
});
const GcConfigSchema = Type.Object({
  /** Minutes between collections; 0: never. */
  intervalMinutes: Type.Number({ minimum: 0 }),
  /** Warm-base images (patchbay/warm:*) with their job overlays (patchbay/job:*). */
  warmBases: GcPolicySchema,
  /** Base-run records (<cacheDir>/base-runs). */
  baseRuns: GcPolicySchema,
  /** Job folders, their artifacts with them (<cacheDir>/jobs). */
  jobs: GcPolicySchema,
});

function gcConfig(env: Readonly<Record<string, string | undefined>>): Static<typeof GcConfigSchema> {
  const bytes = (name: string, fallback: number, unit: number): number => Math.round(num(env, name, fallback) * unit);
  return {
    intervalMinutes: num(env, 'PATCHBAY_GC_INTERVAL_MINUTES', 60),
    warmBases: { maxAgeDays: num(env, 'PATCHBAY_GC_WARM_BASE_DAYS', 14), budgetBytes: bytes('PATCHBAY_GC_WARM_BASES_GB', 40, 1024 ** 3) },
    baseRuns: { maxAgeDays: num(env, 'PATCHBAY_GC_BASE_RUN_DAYS', 30), budgetBytes: bytes('PATCHBAY_GC_BASE_RUNS_MB', 512, 1024 ** 2) },
    jobs: { maxAgeDays: num(env, 'PATCHBAY_GC_JOB_DAYS', 14), budgetBytes: bytes('PATCHBAY_GC_JOBS_GB', 20, 1024 ** 3) },
  };
}

export const ConfigSchema = Type.Object({
  /** Caches and state outside the repo: tree mirrors, job folders, sources. */
  cacheDir: Type.String({ minLength: 1 }),
  /**
   * The tree mirrors (<name>.git), <cacheDir>/trees unless set: the compose
   * worker keeps its own cache and reads the host's mirrors, read-only, here.
   */
  mirrorsDir: Type.String({ minLength: 1 }),
  /** The project's own files (images/, deploy/). */
  repoRoot: Type.String({ minLength: 1 }),
  treesFile: Type.String({ minLength: 1 }),
  suitesDir: Type.String({ minLength: 1 }),
  imagesDir: Type.String({ minLength: 1 }),
  docker: Type.Object({
    socketPath: Type.String({ minLength: 1 }),
    /** The volume builds share as their compiler cache. */
    ccacheVolume: Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]+$' }),
    /** An image to try pulling as the base; on failure the base is built with debootstrap. */
    baseImage: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
    /**
     * Where `patchbay docker-filter` listens: the compose worker's only way
     * to the engine (socketPath is the engine's own socket, which it forwards to).
     */
    filterSocket: Type.String({ minLength: 1 }),
  }),
  job: Type.Object({
    /** Whole-job deadline: the container is killed when it passes. */
    deadlineSeconds: Type.Integer({ minimum: 60 }),
    applyTimeoutSeconds: Type.Integer({ minimum: 10 }),
    buildTimeoutSeconds: Type.Integer({ minimum: 60 }),
    bootTimeoutSeconds: Type.Integer({ minimum: 10 }),
    memoryBytes: Type.Integer({ minimum: 512 * 1024 * 1024 }),
    cpus: Type.Number({ minimum: 0.5 }),
    pids: Type.Integer({ minimum: 64 }),
    /** kvm, tcg, or auto (a probe boot decides). */
    accel: Type.Union([Type.Literal('auto'), Type.Literal('kvm'), Type.Literal('tcg')]),
    /**
     * The flake rule (services/domain/compare.ts, the README's "Verdict
     * rules"): a test that differs from the base is re-run `reruns` times on
     * each kernel, one boot each; it is blamed when a one-sided Fisher exact
     * test on its fails:runs gives p <= alpha; a p-value up to `borderline`
     * earns another round, while runs stay below `maxRuns`.
     */
    verdict: Type.Object({
      alpha: Type.Number({ exclusiveMinimum: 0, maximum: 0.5 }),
      borderline: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
      reruns: Type.Integer({ minimum: 0, maximum: 10 }),
      maxRuns: Type.Integer({ minimum: 1, maximum: 40 }),
    }),
    /**
     * No file in a job container grows past this (RLIMIT_FSIZE). QEMU keeps
     * the guest's memory (1 GiB) in a memfd, which the limit also bounds.
     */
    fileSizeBytes: Type.Integer({ minimum: 1536 * 1024 * 1024 }),
    /** The tmpfs at /tmp in a job container. */
    tmpBytes: Type.Integer({ minimum: 64 * 1024 * 1024 }),
    /** A job container's writable layer; past it the job ends (JOB_LIMIT). */
    diskBytes: Type.Integer({ minimum: 1024 * 1024 * 1024 }),
    /** Every log a job writes (stage output, console, KTAP, its log stream) is cut here with a marker. */
    logLimitBytes: Type.Integer({ minimum: 64 * 1024 }),
    /** Binary artifacts (bzImage) larger than this are not kept. */
    artifactLimitBytes: Type.Integer({ minimum: 1024 * 1024 }),
  }),
  /** PostgreSQL (postgresql://...) for the service's state; null: embedded PGlite under cacheDir. */
  databaseUrl: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
  /** Durable state of the embedded defaults (PGlite files). */
  dataDir: Type.String({ minLength: 1 }),
  redisUrl: Type.String({ pattern: '^rediss?://' }),
  /** Key prefix of every queue and stream: several deployments can share one Redis. */
  queuePrefix: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,31}$' }),
  api: Type.Object({
    host: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 0, maximum: 65535 }),
    /** Reading (jobs, series, logs, pages) without a token. */
    anonymousRead: Type.Boolean(),
    mboxLimitBytes: Type.Integer({ minimum: 1024 }),
    rateLimitPerMinute: Type.Integer({ minimum: 1 }),
    inboxTimeoutMs: Type.Integer({ minimum: 1000 }),
    /**
     * The only origins (scheme://host[:port]) a series is fetched from by
     * Message-ID: the caller names the inbox, and without a list the service
     * would fetch from wherever it can reach on their behalf.
     */
    inboxAllowlist: Type.Array(Type.String({ pattern: '^https?://[^/]+$' })),
    /**
     * Proxies whose X-Forwarded-For is believed (addresses or CIDRs, as
     * fastify's trustProxy takes them). Empty: the peer address is the client.
     */
    trustProxy: Type.Array(Type.String({ minLength: 1, maxLength: 64, pattern: '^[0-9a-fA-F:.]+(/[0-9]{1,3})?$' })),
    /** Live log streams (SSE) open at once, in all and per client (token, else address). */
    sseMaxTotal: Type.Integer({ minimum: 1 }),
    sseMaxPerClient: Type.Integer({ minimum: 1 }),
    /** Jobs one token may have queued or running at once (admin tokens are not limited). */
    activeJobsPerToken: Type.Integer({ minimum: 1 }),
  }),
  worker: Type.Object({
    concurrency: Type.Integer({ minimum: 1, maximum: 64 }),
    lockDurationMs: Type.Integer({ minimum: 1000 }),
    stalledIntervalMs: Type.Integer({ minimum: 500 }),
    maxStalledCount: Type.Integer({ minimum: 0 }),
    shutdownGraceMs: Type.Integer({ minimum: 0 }),
  }),
  /**
   * The lore watcher (services/lore/README.md): which inboxes it polls and
   * how politely, when a series counts as relevant, how long it waits for a
   * series to complete.
   */
  lore: Type.Object({
    /** Whether `serve --role all` runs the watcher (`--role lore` always does). */
    watch: Type.Boolean(),
    /** Inbox URLs (base URL + list name); each origin must be in api.inboxAllowlist. */
    inboxes: Type.Array(Type.String({ pattern: '^https?://[^/]+/.+' }), { minItems: 1 }),
    pollIntervalSeconds: Type.Integer({ minimum: 1 }),
    /** An incomplete revision with no new mail in its thread for this long is recorded incomplete. */
    settleSeconds: Type.Integer({ minimum: 0 }),
    /** Each poll lists from its cursor less this margin (clock skew, the inbox's indexing lag); duplicates are dropped by Message-ID. */
    overlapSeconds: Type.Integer({ minimum: 0 }),
    /** On first start, how far back an inbox is read. */
    lookbackSeconds: Type.Integer({ minimum: 0 }),
    /** The User-Agent of every request: who polls, and a contact address. */
    userAgent: Type.String({ minLength: 1, maxLength: 200 }),
    requestSpacingMs: Type.Integer({ minimum: 0 }),
    requestBudget: Type.Integer({ minimum: 1 }),
    requestAttempts: Type.Integer({ minimum: 1, maximum: 10 }),
    backoffBaseMs: Type.Integer({ minimum: 1 }),
    backoffMaxMs: Type.Integer({ minimum: 1 }),
    /** Path prefixes (a series touching one is tested) and subject tree tags (a series carrying one is). */
    relevantPaths: Type.Array(Type.String({ minLength: 1 })),
    relevantTags: Type.Array(Type.String({ minLength: 1 })),
    /**
     * Mail of threads with nothing left to judge, and the decisions on
     * discussions, are forgotten after this many days (series decisions,
     * the revision links, stay).
     */
    retentionDays: Type.Integer({ minimum: 1 }),
    /** The suites a series from the list runs; empty: those its changed paths select (the catalogue's `paths`). */
    suites: Type.Array(Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$' })),
    /** How many commits of each tree's ref the blob-id guess of a base walks. */
    baseHistoryDepth: Type.Integer({ minimum: 1, maximum: 100_000 }),
  }),
  /**
   * Mail reports (services/reporter/README.md): who the robot is, where
   * dry-run mail goes, the SMTP relay, how the sender retries, and the
   * per-inbox policy file.
   */
  report: Type.Object({
    /** Whether `serve --role all` runs the reporter (`--role reporter` always does). */
    enabled: Type.Boolean(),
    /** deploy/report-policy.json unless PATCHBAY_REPORT_POLICY. */
    policyFile: Type.String({ minLength: 1 }),
    /** The robot's From (and Reported-by:). */
    fromName: Type.String({ minLength: 1, maxLength: 100 }),
    fromAddress: Type.String({ pattern: '^[^\\s<>"(),;:@]+@[^\\s<>"(),;:@]+$' }),
    /** The domain of every report's Message-ID. */
    messageIdDomain: Type.String({ pattern: '^[a-zA-Z0-9.-]+$' }),
    /** The dashboard's public address: job links in reports. */
    publicUrl: Type.String({ pattern: '^https?://' }),
    /** Dry-run mail: one .eml per report. */
    outboxDir: Type.String({ minLength: 1 }),
    /**
     * smtp://[user:password@]host[:port] (STARTTLS when offered, required
     * with requireTls) or smtps:// (TLS from the start); null: nothing is
     * sent, every report is written to outboxDir whatever its policy.
     */
    smtpUrl: Type.Union([Type.String({ pattern: '^smtps?://' }), Type.Null()]),
    /** Refuse to send without TLS (STARTTLS or smtps). */
    requireTls: Type.Boolean(),
    /** A PEM file of CAs to trust for the relay's certificate (a private relay); null: the system's. */
    smtpCaFile: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
    pollIntervalMs: Type.Integer({ minimum: 50 }),
    /** A claimed report not marked sent within this long is in doubt (its sender died). */
    claimSeconds: Type.Integer({ minimum: 1 }),
    /** How long a report in doubt is looked for in the list's archive before it is sent again. */
    archiveWaitSeconds: Type.Integer({ minimum: 0 }),
    maxAttempts: Type.Integer({ minimum: 1, maximum: 100 }),
    backoffBaseMs: Type.Integer({ minimum: 1 }),
    backoffMaxMs: Type.Integer({ minimum: 1 }),
  }),
  gc: GcConfigSchema,
  /**
   * Lab runners (runners/agent, services/api/routes/runners.ts): which pool
   * new jobs go to, and how leases behave on the API side.
   */
  runners: Type.Object({
    /** Where a job without requirements goes: the in-cluster queue (workers) or lab runners. A job with requirements always goes to runners. */
    dispatch: Type.Union([Type.Literal('queue'), Type.Literal('runners')]),
    /** A lease lasts this long past its last renewal; a lapsed one's job runs again within two of these. */
    leaseSeconds: Type.Integer({ minimum: 2, maximum: 3600 }),
    /** How often a runner renews (and hears of cancels and drains): at most a third of leaseSeconds. */
    heartbeatSeconds: Type.Integer({ minimum: 1, maximum: 600 }),
    /** How long one claim request waits for a job before answering that there is none. */
    claimWaitSeconds: Type.Integer({ minimum: 0, maximum: 60 }),
    /** A job another live runner holds the warm base of is left to it this long. */
    affinityWaitSeconds: Type.Integer({ minimum: 0 }),
    /** A registration token is good this long. */
    registrationTtlSeconds: Type.Integer({ minimum: 60 }),
    /** What one artifact upload may be; past it 413. */
    artifactLimitBytes: Type.Integer({ minimum: 1024 }),
    /** Where results that runners uploaded are kept: <resultsDir>/<job>/<lease>/. */
    resultsDir: Type.String({ minLength: 1 }),
  }),
  /** The CLI as a client of a running service. */
  client: Type.Object({
    server: Type.String({ pattern: '^https?://' }),
    token: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
  }),
  /** Structured logs (JSON lines): this file, or standard output when null (PATCHBAY_LOG_FILE=-, for containers). */
  logFile: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l))),
});
export type Config = Static<typeof ConfigSchema>;

type Env = Readonly<Record<string, string | undefined>>;

/** A number setting (the schema says whether it must be whole). */
function num(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new PatchbayError('CONFIG_INVALID', `${name} must be a number, got "${raw}"`);
  return n;
}

const int = num;

/** A comma-separated list; unset or empty: none. */
function list(raw: string | undefined): string[] {
  return (raw ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

const GiB = 1024 * 1024 * 1024;

/**
 * A job's CPUs unless configured: all but a share left for the service, the
 * engine and Redis (half a CPU on two, one on four to eight, an eighth above).
 * Docker takes fractions (NanoCpus).
 */
export function defaultJobCpus(hostCpus: number): number {
  return Math.max(1, hostCpus - Math.max(0.5, Math.floor(hostCpus / 8), hostCpus >= 4 ? 1 : 0));
}

/** A job's memory unless configured: 6 GiB, but never more than the host's memory less 2 GiB (or a quarter). */
export function defaultJobMemory(hostBytes: number): number {
  const room = Math.max(2 * GiB, hostBytes / 4);
  return Math.max(512 * 1024 * 1024, Math.min(6 * GiB, Math.floor((hostBytes - room) / (1024 * 1024)) * 1024 * 1024));
}

/**
 * A comma-separated list of http(s) origins, normalised (lower case, default
 * port dropped); unset or empty: the fallback. A path is refused rather than
 * ignored: .../io-uring would read as a per-list limit the check does not make.
 */
function origins(env: Env, name: string, fallback: string[]): string[] {
  const entries = (env[name] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (entries.length === 0) return fallback;
  return entries.map((entry) => {
    let url: URL | null = null;
    try {
      url = new URL(entry);
    } catch {
      // reported below
    }
    if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== ''
      || url.pathname !== '/' || url.search !== '' || url.hash !== '') {
      throw new PatchbayError('CONFIG_INVALID', `${name}: "${entry}" is not an http(s) origin (scheme://host[:port])`);
    }
    return url.origin;
  });
}

/** What a series must touch to be tested, unless PATCHBAY_LORE_PATHS says otherwise. */
export const DEFAULT_RELEVANT_PATHS = [
  'io_uring/',
  'fs/fuse/',
  'include/uapi/linux/io_uring.h',
  'include/uapi/linux/io_uring/',
  'include/uapi/linux/fuse.h',
  'include/linux/io_uring',
  'tools/testing/selftests/filesystems/fuse/',
  'tools/testing/selftests/io_uring/',
] as const;

/** Builds and validates the configuration from an environment (default: none set). */
export function loadConfig(env: Env = {}): Config {
  const home = env.HOME ?? homedir();
  const cacheDir = resolve(env.PATCHBAY_CACHE ?? join(env.XDG_CACHE_HOME ?? join(home, '.cache'), 'patchbay'));
  const repoRoot = resolve(env.PATCHBAY_REPO_ROOT ?? REPO_ROOT);
  const dataDir = resolve(env.PATCHBAY_DATA ?? join(env.XDG_DATA_HOME ?? join(home, '.local', 'share'), 'patchbay'));
  const config = {
    cacheDir,
    mirrorsDir: resolve(env.PATCHBAY_MIRRORS ?? join(cacheDir, 'trees')),
    repoRoot,
    treesFile: resolve(env.PATCHBAY_TREES ?? join(repoRoot, 'deploy', 'trees.json')),
    suitesDir: resolve(env.PATCHBAY_SUITES ?? join(repoRoot, 'images', 'guest', 'suites')),
    imagesDir: join(repoRoot, 'images'),
    docker: {
      socketPath: env.DOCKER_SOCKET ?? '/var/run/docker.sock',
      ccacheVolume: env.PATCHBAY_CCACHE_VOLUME ?? 'patchbay-ccache',
      baseImage: env.BASE_IMAGE === undefined || env.BASE_IMAGE === '' ? null : env.BASE_IMAGE,
      filterSocket: resolve(env.PATCHBAY_DOCKER_FILTER_SOCKET ?? '/run/patchbay-docker/docker.sock'),
    },
    job: {
      deadlineSeconds: int(env, 'PATCHBAY_JOB_DEADLINE', 3600),
      applyTimeoutSeconds: int(env, 'PATCHBAY_APPLY_TIMEOUT', 300),
      buildTimeoutSeconds: int(env, 'PATCHBAY_BUILD_TIMEOUT', 2700),
      bootTimeoutSeconds: int(env, 'PATCHBAY_BOOT_TIMEOUT', 600),
      memoryBytes: int(env, 'PATCHBAY_JOB_MEMORY_MB', 0) * 1024 * 1024 || defaultJobMemory(totalmem()),
      cpus: int(env, 'PATCHBAY_JOB_CPUS', 0) || defaultJobCpus(availableParallelism()),
      pids: int(env, 'PATCHBAY_JOB_PIDS', 4096),
      accel: env.PATCHBAY_ACCEL ?? 'auto',
      verdict: {
        alpha: num(env, 'PATCHBAY_BLAME_ALPHA', DEFAULT_POLICY.alpha),
        borderline: num(env, 'PATCHBAY_BORDERLINE_P', DEFAULT_POLICY.borderline),
        reruns: int(env, 'PATCHBAY_RERUNS', DEFAULT_POLICY.reruns),
        maxRuns: int(env, 'PATCHBAY_MAX_RUNS', DEFAULT_POLICY.maxRuns),
      },
      fileSizeBytes: int(env, 'PATCHBAY_JOB_FILE_MB', 2048) * 1024 * 1024,
      tmpBytes: int(env, 'PATCHBAY_JOB_TMP_MB', 1024) * 1024 * 1024,
      diskBytes: int(env, 'PATCHBAY_JOB_DISK_MB', 16 * 1024) * 1024 * 1024,
      logLimitBytes: int(env, 'PATCHBAY_LOG_LIMIT_KB', 32 * 1024) * 1024,
      artifactLimitBytes: int(env, 'PATCHBAY_ARTIFACT_LIMIT_MB', 256) * 1024 * 1024,
    },
    databaseUrl: env.DATABASE_URL === undefined || env.DATABASE_URL === '' ? null : env.DATABASE_URL,
    dataDir,
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    queuePrefix: env.PATCHBAY_QUEUE_PREFIX ?? 'patchbay',
    api: {
      host: env.PATCHBAY_HOST ?? '127.0.0.1',
      port: int(env, 'PORT', 8080),
      anonymousRead: (env.PATCHBAY_ANONYMOUS_READ ?? 'true') !== 'false',
      mboxLimitBytes: int(env, 'PATCHBAY_MBOX_LIMIT_KB', 20 * 1024) * 1024,
      rateLimitPerMinute: int(env, 'PATCHBAY_RATE_LIMIT', 300),
      inboxTimeoutMs: int(env, 'PATCHBAY_INBOX_TIMEOUT_MS', 30_000),
      inboxAllowlist: origins(env, 'PATCHBAY_INBOX_ALLOW', ['https://lore.kernel.org']),
      trustProxy: list(env.PATCHBAY_TRUST_PROXY),
      sseMaxTotal: int(env, 'PATCHBAY_SSE_MAX', 256),
      sseMaxPerClient: int(env, 'PATCHBAY_SSE_PER_CLIENT', 8),
      activeJobsPerToken: int(env, 'PATCHBAY_ACTIVE_JOBS_PER_TOKEN', 8),
    },
    worker: {
      concurrency: int(env, 'PATCHBAY_WORKER_CONCURRENCY', 1),
      lockDurationMs: int(env, 'PATCHBAY_LOCK_MS', 120_000),
      stalledIntervalMs: int(env, 'PATCHBAY_STALLED_INTERVAL_MS', 30_000),
      maxStalledCount: int(env, 'PATCHBAY_MAX_STALLED', 2),
      shutdownGraceMs: int(env, 'PATCHBAY_SHUTDOWN_GRACE_MS', 60_000),
    },
    lore: {
      watch: (env.PATCHBAY_LORE_WATCH ?? 'false') === 'true',
      inboxes: list(env.PATCHBAY_LORE_INBOXES).length > 0
        ? list(env.PATCHBAY_LORE_INBOXES)
        : ['https://lore.kernel.org/io-uring/', 'https://lore.kernel.org/linux-fsdevel/'],
      pollIntervalSeconds: int(env, 'PATCHBAY_LORE_POLL_SECONDS', 300),
      settleSeconds: int(env, 'PATCHBAY_LORE_SETTLE_SECONDS', 300),
      overlapSeconds: int(env, 'PATCHBAY_LORE_OVERLAP_SECONDS', 600),
      lookbackSeconds: int(env, 'PATCHBAY_LORE_LOOKBACK_SECONDS', 6 * 3600),
      userAgent: env.PATCHBAY_LORE_USER_AGENT ?? `patchbay/0.1 (kernel CI for io_uring and FUSE; contact: ${env.PATCHBAY_LORE_CONTACT ?? 'root@localhost'})`,
      requestSpacingMs: int(env, 'PATCHBAY_LORE_SPACING_MS', 1000),
      requestBudget: int(env, 'PATCHBAY_LORE_BUDGET', 100),
      requestAttempts: int(env, 'PATCHBAY_LORE_ATTEMPTS', 4),
      backoffBaseMs: int(env, 'PATCHBAY_LORE_BACKOFF_MS', 2000),
      backoffMaxMs: int(env, 'PATCHBAY_LORE_BACKOFF_MAX_MS', 60_000),
      relevantPaths: list(env.PATCHBAY_LORE_PATHS).length > 0 ? list(env.PATCHBAY_LORE_PATHS) : [...DEFAULT_RELEVANT_PATHS],
      relevantTags: list(env.PATCHBAY_LORE_TAGS),
      suites: list(env.PATCHBAY_LORE_SUITES),
      baseHistoryDepth: int(env, 'PATCHBAY_LORE_BASE_DEPTH', 2000),
      retentionDays: int(env, 'PATCHBAY_LORE_RETENTION_DAYS', 30),
    },
    report: {
      enabled: (env.PATCHBAY_REPORT ?? 'true') !== 'false',
      policyFile: resolve(env.PATCHBAY_REPORT_POLICY ?? join(repoRoot, 'deploy', 'report-policy.json')),
      fromName: env.PATCHBAY_REPORT_FROM_NAME ?? 'patchbay',
      fromAddress: env.PATCHBAY_REPORT_FROM ?? 'patchbay@localhost',
      messageIdDomain: env.PATCHBAY_REPORT_DOMAIN ?? 'patchbay.localhost',
      publicUrl: (env.PATCHBAY_PUBLIC_URL ?? `http://127.0.0.1:${env.PORT ?? '8080'}`).replace(/\/+$/, ''),
      outboxDir: resolve(env.PATCHBAY_OUTBOX ?? join(dataDir, 'outbox')),
      smtpUrl: env.PATCHBAY_SMTP_URL === undefined || env.PATCHBAY_SMTP_URL === '' ? null : env.PATCHBAY_SMTP_URL,
      requireTls: (env.PATCHBAY_SMTP_REQUIRE_TLS ?? 'false') === 'true',
      smtpCaFile: env.PATCHBAY_SMTP_CA === undefined || env.PATCHBAY_SMTP_CA === '' ? null : resolve(env.PATCHBAY_SMTP_CA),
      pollIntervalMs: int(env, 'PATCHBAY_REPORT_POLL_MS', 2000),
      claimSeconds: int(env, 'PATCHBAY_REPORT_CLAIM_SECONDS', 120),
      archiveWaitSeconds: int(env, 'PATCHBAY_REPORT_ARCHIVE_WAIT_SECONDS', 600),
      maxAttempts: int(env, 'PATCHBAY_REPORT_ATTEMPTS', 8),
      backoffBaseMs: int(env, 'PATCHBAY_REPORT_BACKOFF_MS', 30_000),
      backoffMaxMs: int(env, 'PATCHBAY_REPORT_BACKOFF_MAX_MS', 3_600_000),
    },
    gc: gcConfig(env),
    runners: {
      dispatch: (env.PATCHBAY_DISPATCH ?? 'queue') as 'queue' | 'runners',
      leaseSeconds: int(env, 'PATCHBAY_LEASE_SECONDS', 60),
      heartbeatSeconds: int(env, 'PATCHBAY_HEARTBEAT_SECONDS', 3),
      claimWaitSeconds: int(env, 'PATCHBAY_CLAIM_WAIT_SECONDS', 25),
      affinityWaitSeconds: int(env, 'PATCHBAY_AFFINITY_WAIT_SECONDS', 600),
      registrationTtlSeconds: int(env, 'PATCHBAY_RUNNER_TOKEN_TTL_SECONDS', 24 * 3600),
      artifactLimitBytes: int(env, 'PATCHBAY_ARTIFACT_LIMIT_MB', 256) * 1024 * 1024,
      resultsDir: resolve(env.PATCHBAY_RESULTS ?? join(dataDir, 'runner-results')),
    },
    client: {
      server: env.PATCHBAY_SERVER ?? 'http://127.0.0.1:8080',
      token: env.PATCHBAY_TOKEN === undefined || env.PATCHBAY_TOKEN === '' ? null : env.PATCHBAY_TOKEN,
    },
    logFile: env.PATCHBAY_LOG_FILE === '-' ? null : resolve(env.PATCHBAY_LOG_FILE || join(cacheDir, 'log', 'patchbay.jsonl')),
    logLevel: env.PATCHBAY_LOG_LEVEL ?? 'info',
  };
  return validate(config);
}

export function validate(value: unknown): Config {
  if (Value.Check(ConfigSchema, value)) return value;
  const problems = [...Value.Errors(ConfigSchema, value)].slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message}`);
  throw new PatchbayError('CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`);
}

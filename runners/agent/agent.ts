/**
 * The lab runner (`patchbay runner --config FILE`): registers once with a
 * one-time token, then takes jobs from the API over HTTPS (a long-poll
 * claim), runs each with the same executor as the in-cluster worker on its
 * own Docker engine, streams the live log, renews the lease, uploads
 * artifacts (sha256-checked) and the result. It never sees Redis or the
 * database.
 *
 * Stopping: the first SIGTERM (or drain()) drains (takes nothing new,
 * finishes what runs, then exits); a second one (or stop()) stops at once,
 * handing running jobs back without spending their attempts. An API
 * restart or a lost network is waited out with backoff; a lease that
 * lapsed meanwhile is dropped (the server ran the job again elsewhere).
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { accessSync, constants, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { arch, availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Type, type Static } from 'typebox';
import { loadCatalogs, type Catalogs } from '../../services/catalog/load.ts';
import { PatchbayError, errorMessage, isPatchbayError } from '../../services/domain/errors.ts';
import type { JobEvent, JobResult } from '../../services/domain/job.ts';
import { type RunnerLabels, type WarmBaseHeld } from '../../services/domain/runners.ts';
import { prerequisitesFromStoredMail, seriesFromStoredMail } from '../../services/domain/series.ts';
import {
  ARTIFACT_NAME_RE, HeartbeatReply, HelloReply, LeasedJob, RegisterReply, ResultReply,
  type LogRequest,
} from '../../services/protocol/runners.ts';
import type { DockerEngine } from '../executor/docker.ts';
import { orphanAgeSeconds } from '../executor/docker.ts';
import { makeExecutorDeps } from '../executor/deps.ts';
import { startGarbageCollector } from '../executor/gc.ts';
import { IMAGE_LABEL } from '../executor/images.ts';
import { runJob, type ExecutorDeps, type JobInput } from '../executor/pipeline.ts';
import { RunnerClient } from './client.ts';
import type { RunnerConfig } from './config.ts';

const VERSION = 'patchbay-runner/0.1';
/** Abort reasons: why a running job was stopped. */
const CANCELLED = 'cancelled';
const STALE = 'stale';
const SHUTDOWN = 'shutdown';

type Settings = Pick<Static<typeof HelloReply>, 'heartbeatSeconds' | 'leaseSeconds' | 'logLimitBytes' | 'artifactLimitBytes'>;

interface Running {
  leaseId: string;
  jobId: string;
  stop: AbortController;
  done: Promise<void>;
}

export interface AgentDeps {
  config: RunnerConfig;
  logger: Logger;
  /** Tests and benches pass their own; default: the configuration's. */
  executor?: { deps: ExecutorDeps; engine: DockerEngine };
}

export class RunnerAgent {
  readonly #config: RunnerConfig;
  readonly #log: Logger;
  readonly #client: RunnerClient;
  readonly #deps: ExecutorDeps;
  readonly #engine: DockerEngine;
  readonly #catalogs: Catalogs;
  readonly #running = new Map<string, Running>();
  /** Stops claims and waits (drain, or a stop). */
  readonly #draining = new AbortController();
  /** Stops everything (a second signal). */
  readonly #stopping = new AbortController();
  /** An admin's drain, from the heartbeat. */
  #drainedByAdmin = false;
  #settings: Settings | null = null;
  #loop: Promise<void> | null = null;
  #wakeLoop: (() => void) | null = null;
  #name = '';
  #warm: { at: number; held: WarmBaseHeld[] } | null = null;

  constructor(deps: AgentDeps) {
    this.#config = deps.config;
    this.#log = deps.logger.child({ runner: deps.config.file.name });
    this.#client = new RunnerClient(deps.config.file.server, (what, why, inMs) => {
      this.#log.warn({ call: what, err: why, retryInMs: inMs }, 'the API did not answer; retrying');
    });
    const ex = deps.executor ?? makeExecutorDeps(deps.config.executor, deps.config.hostEnv, deps.logger);
    this.#deps = ex.deps;
    this.#engine = ex.engine;
    this.#catalogs = loadCatalogs(deps.config.executor);
    // Every request listens on these (AbortSignal.any): many at once is normal, not a leak.
    setMaxListeners(0, this.#draining.signal, this.#stopping.signal);
  }

  get name(): string {
    return this.#name;
  }

  /** Resolves when the runner has stopped taking jobs and every job it ran has reported or been handed back. */
  get stopped(): Promise<void> {
    return this.#loop ?? Promise.resolve();
  }

  /** Registers if it must, says hello, and starts taking jobs. Resolves when it runs. */
  async start(): Promise<void> {
    mkdirSync(this.#config.stateDir, { recursive: true, mode: 0o700 });
    const reaped = await this.#engine.reapOrphans(orphanAgeSeconds(this.#config.executor)).catch(() => []);
    if (reaped.length > 0) this.#log.warn({ reaped }, 'removed containers of runs that are gone');
    this.#client.credential = this.#readCredential() ?? (await this.#register());
    const hello = await this.#client.json('POST', '/api/v1/runner/hello', {
      labels: this.labels(), capacity: this.#config.file.capacity, version: VERSION,
      warmBases: await this.warmBases(), leases: [],
    }, HelloReply, { signal: this.#stopping.signal });
    if (hello === null) throw new PatchbayError('RUNNER_PROTOCOL', 'hello: no answer');
    this.#settings = hello;
    this.#name = hello.name;
    this.#drainedByAdmin = hello.state === 'draining';
    this.#log.info({ runnerId: hello.id, released: hello.released, state: hello.state, labels: this.labels() }, 'runner started');
    this.#loop = this.#run();
  }

  /** What it declares: the machine's, and the admin's from the configuration. */
  labels(): RunnerLabels {
    const l = this.#config.file.labels ?? {};
    const kvm = l.kvm === undefined || l.kvm === 'auto' ? kvmUsable() : l.kvm;
    const trees = l.trees ?? this.#catalogs.trees.trees.map((t) => t.name);
    return {
      arch: arch() === 'x64' ? 'x86_64' : arch() === 'arm64' ? 'aarch64' : arch(),
      kvm,
      cores: availableParallelism(),
      memoryMb: Math.floor(totalmem() / (1024 * 1024)),
      trees,
      extra: { ...l.extra },
    };
  }

  /**
   * The warm bases it holds: those it has used (its own record; another
   * runner may share the engine) that its engine still has.
   */
  async warmBases(): Promise<WarmBaseHeld[]> {
    // Asked at every heartbeat and claim: the engine is listed at most every 10 s, and again after a job.
    if (this.#warm !== null && Date.now() - this.#warm.at < 10_000) return this.#warm.held;
    const used = this.#readUsed();
    const images = used.length === 0 ? [] : await this.#engine.list({ [IMAGE_LABEL]: 'warm' }).catch(() => []);
    const held = used.filter((u) => images.some((i) => i.labels['org.patchbay.tree'] === u.tree && i.labels['org.patchbay.commit'] === u.commit));
    this.#warm = { at: Date.now(), held };
    return held;
  }

  /** Takes nothing new; resolves when what runs has finished and reported. */
  async drain(): Promise<void> {
    this.#draining.abort();
    this.#wakeLoop?.();
    await this.#loop;
  }

  /** Stops now: running jobs are stopped and handed back (no attempt spent). Idempotent. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    this.#draining.abort();
    for (const r of this.#running.values()) r.stop.abort(SHUTDOWN);
    this.#wakeLoop?.();
    await this.#loop;
  }

  // ---- the loop ----------------------------------------------------------

  async #run(): Promise<void> {
    const settings = this.#settings;
    if (settings === null) return;
    const beat = setInterval(() => { void this.#heartbeat(); }, settings.heartbeatSeconds * 1000);
    const reap = setInterval(() => {
      void this.#engine.reapOrphans(orphanAgeSeconds(this.#config.executor)).catch(() => []);
    }, 60_000);
    // Its own warm bases, base runs and job folders, by age and disk budget (PATCHBAY_GC_* in its settings).
    const gc = startGarbageCollector({ images: this.#engine, activeJobs: () => [...this.#running.values()].map((r) => r.jobId) }, this.#config.executor, this.#log);
    try {
      while (!this.#draining.signal.aborted) {
        if (this.#drainedByAdmin || this.#running.size >= this.#config.file.capacity) {
          await this.#waitForChange(settings.heartbeatSeconds * 1000);
          continue;
        }
        let leased: LeasedJob | null = null;
        try {
          leased = await this.#client.json('POST', '/api/v1/runner/claim', { warmBases: await this.warmBases(), waitSeconds: 25 }, LeasedJob,
            { signal: this.#draining.signal, timeoutMs: 60_000 });
        } catch (e) {
          if (this.#isDraining()) break;
          if (isPatchbayError(e) && (e.code === 'RUNNER_REVOKED' || e.code === 'RUNNER_AUTH_INVALID')) {
            this.#log.error({ code: e.code }, `${e.message}; the runner stops`);
            this.#stopping.abort();
            break;
          }
          this.#log.warn({ err: errorMessage(e) }, 'claim failed');
          await this.#waitForChange(5000);
          continue;
        }
        if (leased !== null) this.#startJob(leased);
      }
    } finally {
      // Draining: wait for every job (each reports or hands back on its own).
      await Promise.all([...this.#running.values()].map((r) => r.done));
      clearInterval(beat);
      clearInterval(reap);
      await gc.close();
      this.#log.info('runner stopped');
    }
  }

  /** Read through a call: the signal changes while the loop awaits. */
  #isDraining(): boolean {
    return this.#draining.signal.aborted;
  }

  #waitForChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const onAbort = (): void => { done(); };
      this.#draining.signal.addEventListener('abort', onAbort, { once: true });
      function done(): void { clearTimeout(t); resolve(); }
      this.#wakeLoop = () => { done(); };
    });
  }

  async #heartbeat(): Promise<void> {
    const settings = this.#settings;
    if (settings === null || this.#stopping.signal.aborted) return;
    try {
      const answer = await this.#client.json('POST', '/api/v1/runner/heartbeat', { leases: [...this.#running.keys()], warmBases: await this.warmBases() },
        HeartbeatReply, { retryForMs: settings.heartbeatSeconds * 1000, timeoutMs: settings.heartbeatSeconds * 1000 * 2 });
      if (answer === null) return;
      for (const [leaseId, state] of Object.entries(answer.leases)) {
        const r = this.#running.get(leaseId);
        if (r === undefined || state === 'ok' || r.stop.signal.aborted) continue;
        this.#log.warn({ jobId: r.jobId, leaseId, state }, state === 'cancel' ? 'cancel asked for; stopping the job' : 'the lease is no longer ours; stopping the job');
        r.stop.abort(state === 'cancel' ? CANCELLED : STALE);
      }
      if (answer.drain !== this.#drainedByAdmin) {
        this.#drainedByAdmin = answer.drain;
        this.#log.info({ drain: answer.drain }, answer.drain ? 'an admin drains this runner: no new jobs' : 'an admin resumed this runner');
        this.#wakeLoop?.();
      }
    } catch (e) {
      if (isPatchbayError(e) && (e.code === 'RUNNER_REVOKED' || e.code === 'RUNNER_AUTH_INVALID')) {
        this.#log.error({ code: e.code }, `${e.message}; stopping every job`);
        for (const r of this.#running.values()) r.stop.abort(STALE);
        this.#draining.abort();
        this.#wakeLoop?.();
        return;
      }
      this.#log.warn({ err: errorMessage(e) }, 'heartbeat failed; the leases last until they lapse');
    }
  }

  // ---- one job -------------------------------------------------------------

  #startJob(leased: LeasedJob): void {
    const stop = new AbortController();
    const entry: Running = { leaseId: leased.lease.id, jobId: leased.job.id, stop, done: Promise.resolve() };
    this.#running.set(leased.lease.id, entry);
    entry.done = this.#runJob(leased, stop).catch((e: unknown) => {
      this.#log.error({ jobId: leased.job.id, leaseId: leased.lease.id, err: errorMessage(e) }, 'the job could not be run or reported');
    }).finally(() => {
      this.#running.delete(leased.lease.id);
      this.#wakeLoop?.();
    });
  }

  async #runJob(leased: LeasedJob, stop: AbortController): Promise<void> {
    const settings = this.#settings;
    if (settings === null) return;
    const leaseId = leased.lease.id;
    const log = this.#log.child({ jobId: leased.job.id, leaseId, attempt: leased.lease.attempt });
    log.info({ warm: leased.warm }, 'running a job');
    const leasePath = `/api/v1/runner/leases/${leaseId}`;
    // What retrying can still deliver: the lease lasts leaseSeconds past the last renewal.
    const retryForMs = settings.leaseSeconds * 1000;
    const logs = new LogShipper(async (entries) => {
      await this.#client.json('POST', `${leasePath}/log`, { entries }, null, { retryForMs, signal: this.#stopping.signal });
    }, (e) => {
      if (isPatchbayError(e) && e.code === 'LEASE_STALE') { stop.abort(STALE); return; }
      log.warn({ err: errorMessage(e) }, 'log upload failed; continuing');
    });

    let input: JobInput;
    try {
      input = this.#jobInput(leased);
    } catch (e) {
      // The runner cannot run what it was given (a tree or suite it lacks): another runner may.
      log.error({ err: errorMessage(e) }, 'cannot run this job here');
      await this.#release(leasePath, 'retry', `runner ${this.#name}: ${errorMessage(e)}`, retryForMs);
      return;
    }
    const result = await runJob(input, this.#deps, (e: JobEvent) => { logs.push(e); }, stop.signal);
    await logs.close();

    if (stop.signal.aborted) {
      const why: unknown = stop.signal.reason;
      if (why === CANCELLED) await this.#release(leasePath, 'cancelled', 'cancelled on request', retryForMs);
      else if (why === SHUTDOWN) await this.#release(leasePath, 'released', `runner ${this.#name} is stopping`, 5000);
      else log.warn('the lease was lost; the result is dropped (the job runs again elsewhere)');
      return;
    }
    if (result.baseCommit !== null && result.stages.some((s) => s.stage !== 'setup')) this.#recordUsed({ tree: result.tree.name, commit: result.baseCommit });
    try {
      const artifacts = await this.#uploadArtifacts(leasePath, result, settings.artifactLimitBytes, retryForMs, log);
      const answer = await this.#client.json('POST', `${leasePath}/result`, { result, artifacts }, ResultReply, { retryForMs: 2 * retryForMs, signal: this.#stopping.signal });
      log.info({ status: result.status, outcome: answer?.outcome }, result.summary);
    } catch (e) {
      if (isPatchbayError(e) && e.code === 'LEASE_STALE') {
        log.warn('the lease lapsed before the result was taken; the job runs again elsewhere');
        return;
      }
      throw e;
    }
  }

  #jobInput(leased: LeasedJob): JobInput {
    const j = leased.job;
    const latin1 = (b64: string): string => Buffer.from(b64, 'base64').toString('latin1');
    return {
      jobId: j.id,
      tree: this.#catalogs.trees.get(j.tree),
      base: j.base,
      series: seriesFromStoredMail(j.series.messages.map(latin1), j.series.version, j.series.baseCommit),
      prerequisites: j.prerequisites === null ? null : prerequisitesFromStoredMail(j.prerequisites.messages.map(latin1)),
      suites: this.#catalogs.suites.select(j.suites),
      kernelFragment: this.#catalogs.kernelFragment,
    };
  }

  async #release(leasePath: string, outcome: 'retry' | 'released' | 'cancelled', reason: string, retryForMs: number): Promise<void> {
    try {
      await this.#client.json('POST', `${leasePath}/release`, { outcome, reason }, null, { retryForMs });
    } catch (e) {
      // Not told: the lease lapses and the job runs again all the same.
      this.#log.warn({ err: errorMessage(e), outcome }, 'could not hand the job back; its lease will lapse');
    }
  }

  /** Each artifact the executor wrote (its own folder, opened without following links), with its sha256. */
  async #uploadArtifacts(leasePath: string, result: JobResult, limit: number, retryForMs: number, log: Logger): Promise<Record<string, string>> {
    const sent: Record<string, string> = {};
    if (result.artifactsDir === null) return sent;
    for (const name of result.artifacts) {
      if (!ARTIFACT_NAME_RE.test(name)) continue;
      let data: Buffer;
      const fh = await open(join(result.artifactsDir, name), constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => null);
      if (fh === null) continue;
      try {
        const st = await fh.stat();
        if (!st.isFile() || st.size > limit) {
          log.warn({ artifact: name, bytes: st.size }, 'artifact not uploaded: not a file or over the limit');
          continue;
        }
        data = await fh.readFile();
      } finally {
        await fh.close();
      }
      const sha = createHash('sha256').update(data).digest('hex');
      try {
        await this.#client.upload(`${leasePath}/artifacts/${name}`, data, { 'x-content-sha256': sha }, { retryForMs, signal: this.#stopping.signal });
      } catch (e) {
        if (!(isPatchbayError(e) && e.code === 'ARTIFACT_EXISTS')) throw e;
      }
      sent[name] = sha;
    }
    return sent;
  }

  // ---- state on disk -------------------------------------------------------

  #readCredential(): string | null {
    try {
      const c = readFileSync(join(this.#config.stateDir, 'credential'), 'utf8').trim();
      return c === '' ? null : c;
    } catch {
      return null;
    }
  }

  async #register(): Promise<string> {
    const file = this.#config.file.registrationTokenFile;
    if (file === undefined) throw new PatchbayError('RUNNER_NOT_REGISTERED', `no credential in ${this.#config.stateDir} and no registrationTokenFile in the configuration: ask an admin for a token (patchbay runners token)`);
    let token: string;
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (e) {
      throw new PatchbayError('RUNNER_NOT_REGISTERED', `cannot read the registration token ${file}: ${errorMessage(e)}`);
    }
    const reply = await this.#client.json('POST', '/api/v1/runners/register', {
      token, name: this.#config.file.name, labels: this.labels(), capacity: this.#config.file.capacity, version: VERSION,
    }, RegisterReply, { signal: this.#stopping.signal });
    if (reply === null) throw new PatchbayError('RUNNER_PROTOCOL', 'register: no answer');
    writeAtomically(join(this.#config.stateDir, 'credential'), `${reply.credential}\n`);
    this.#log.info({ runnerId: reply.id }, 'registered');
    return reply.credential;
  }

  /** A new credential from the server, kept before it is first used (the old one works until then). */
  async rotate(): Promise<void> {
    const reply = await this.#client.json('POST', '/api/v1/runner/rotate', {}, HelloReplyCredential, {});
    if (reply === null) return;
    writeAtomically(join(this.#config.stateDir, 'credential'), `${reply.credential}\n`);
    this.#client.credential = reply.credential;
  }

  #readUsed(): WarmBaseHeld[] {
    try {
      const data = JSON.parse(readFileSync(join(this.#config.stateDir, 'warm-bases.json'), 'utf8')) as unknown;
      return Array.isArray(data) ? data.filter((w): w is WarmBaseHeld =>
        typeof w === 'object' && w !== null && typeof (w as WarmBaseHeld).tree === 'string' && /^[0-9a-f]{40}$/.test((w as WarmBaseHeld).commit)) : [];
    } catch {
      return [];
    }
  }

  #recordUsed(w: WarmBaseHeld): void {
    const used = this.#readUsed().filter((u) => !(u.tree === w.tree && u.commit === w.commit));
    writeAtomically(join(this.#config.stateDir, 'warm-bases.json'), JSON.stringify([w, ...used].slice(0, 200)));
    this.#warm = null;
  }
}

const HelloReplyCredential = Type.Object({ credential: Type.String() });

function kvmUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, path);
}

/**
 * The live log to the API in batches: what arrives within 500 ms (or 256
 * KiB) goes in one request, in order, one request at a time.
 */
class LogShipper {
  #pending: LogRequest['entries'] = [];
  #bytes = 0;
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly send: (entries: LogRequest['entries']) => Promise<void>,
    private readonly onError: (e: unknown) => void,
  ) {}

  push(e: JobEvent): void {
    if (e.type === 'log') {
      this.#pending.push({ kind: 'log', stage: e.stage, text: e.text.slice(0, 256 * 1024) });
      this.#bytes += e.text.length;
    } else if (e.type === 'stage-start') {
      this.#pending.push({ kind: 'stage', stage: e.stage, phase: 'start' });
    } else {
      this.#pending.push({ kind: 'stage', stage: e.stage, phase: 'end', status: e.status, durationMs: Math.max(0, e.durationMs), summary: e.summary.slice(0, 4096) });
    }
    if (this.#bytes > 256 * 1024 || this.#pending.length >= 1000) this.#flush();
    else this.#timer ??= setTimeout(() => { this.#flush(); }, 500);
  }

  #flush(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#bytes = 0;
    this.#chain = this.#chain.then(() => this.send(batch)).catch((e: unknown) => { this.onError(e); });
  }

  async close(): Promise<void> {
    this.#flush();
    await this.#chain;
  }
}

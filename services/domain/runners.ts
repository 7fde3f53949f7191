/**
 * Lab runners as data: what a runner declares it has (labels), what a job
 * needs (requirements), whether one satisfies the other, and which runner
 * should take a job when several could (the one that holds its warm base).
 * Pure: the store and the API decide with these, the agent declares with them.
 */
import type { JobResult } from './job.ts';
import { NOT_RETRIED_CODES, PatchbayError } from './errors.ts';

/** What a runner declares when it registers and each time it starts. */
export interface RunnerLabels {
  /** The machine's architecture as `uname -m` prints it (x86_64). */
  arch: string;
  /** True when its guests boot under KVM (a probe on the machine), false under TCG. */
  kvm: boolean;
  cores: number;
  memoryMb: number;
  /** The trees it mirrors (names from the tree catalogue): it takes jobs on these only. */
  trees: string[];
  /** The admin's own labels (`lab: fsdevel`, `gpu: none`): a job may ask for any of them. */
  extra: Record<string, string>;
}

/** What a job asks of the runner that takes it; every field optional. */
export interface JobRequirements {
  arch?: string;
  kvm?: boolean;
  minCores?: number;
  minMemoryMb?: number;
  /** Labels the runner must carry with these values. */
  labels?: Record<string, string>;
}

/** A warm base a runner holds: the base tree built at a commit (its configuration is the catalogue's). */
export interface WarmBaseHeld {
  tree: string;
  commit: string;
}

export const LABEL_KEY_RE = /^[a-z][a-z0-9._-]{0,39}$/;
export const LABEL_VALUE_RE = /^[A-Za-z0-9][A-Za-z0-9._:/+-]{0,79}$/;
/** A full commit id: warm bases are held, and routed, by exact commit. */
export const COMMIT_RE = /^[0-9a-f]{40}$/;

/** Why this runner may not take a job with these requirements on this tree; null when it may. */
export function unmetRequirement(labels: RunnerLabels, tree: string, req: JobRequirements): string | null {
  if (!labels.trees.includes(tree)) return `it does not mirror the tree ${tree}`;
  if (req.arch !== undefined && req.arch !== labels.arch) return `the job needs arch ${req.arch}, it is ${labels.arch}`;
  if (req.kvm === true && !labels.kvm) return 'the job needs KVM, it has none';
  if (req.minCores !== undefined && labels.cores < req.minCores) return `the job needs ${req.minCores} cores, it has ${labels.cores}`;
  if (req.minMemoryMb !== undefined && labels.memoryMb < req.minMemoryMb) return `the job needs ${req.minMemoryMb} MB of memory, it has ${labels.memoryMb}`;
  for (const [k, v] of Object.entries(req.labels ?? {})) {
    if (labels.extra[k] !== v) return `the job needs the label ${k}=${v}`;
  }
  return null;
}

export function holdsWarmBase(held: readonly WarmBaseHeld[], tree: string, commit: string | null): boolean {
  return commit !== null && held.some((w) => w.tree === tree && w.commit === commit);
}

/** A candidate job as the dispatcher sees it. */
export interface QueuedJob {
  id: string;
  tree: string;
  /** The commit its series applies to when known before it runs (requested, or the series' base-commit trailer); null: the tree's ref. */
  baseCommit: string | null;
  requires: JobRequirements;
  /** How long it has waited, in seconds. */
  waitedSeconds: number;
}

/** Another runner, live, as the dispatcher sees it when deciding whether to leave a job to it. */
export interface PeerRunner {
  labels: RunnerLabels;
  warmBases: readonly WarmBaseHeld[];
  /** Leases it holds below its capacity. */
  freeSlots: number;
}

/**
 * The job this runner should take, in queue order, or null. A job whose
 * warm base another live runner holds, one able to take it and with a
 * free slot, is left to that runner for up to `affinityWaitSeconds`, so a
 * base is built once per lab, not once per runner. A holder that is busy
 * does not hold a job back (whoever is free takes it), and past the wait
 * anyone able takes it.
 */
export function pickJob(
  me: { labels: RunnerLabels; warmBases: readonly WarmBaseHeld[] },
  queue: readonly QueuedJob[],
  peers: readonly PeerRunner[],
  affinityWaitSeconds: number,
): { job: QueuedJob; warm: boolean } | null {
  for (const job of queue) {
    if (unmetRequirement(me.labels, job.tree, job.requires) !== null) continue;
    const warm = holdsWarmBase(me.warmBases, job.tree, job.baseCommit);
    if (!warm && job.waitedSeconds < affinityWaitSeconds) {
      const leftToPeer = peers.some((p) =>
        p.freeSlots > 0 && holdsWarmBase(p.warmBases, job.tree, job.baseCommit) && unmetRequirement(p.labels, job.tree, job.requires) === null);
      if (leftToPeer) continue;
    }
    return { job, warm };
  }
  return null;
}

/**
 * What to do with an attempt's result: record it, or run the job again
 * (infrastructure trouble, MISS, with attempts left and a code retrying can
 * fix). The in-cluster worker and the runner API decide alike.
 */
export function attemptOutcome(result: Pick<JobResult, 'status' | 'error'>, attemptsLeft: number): 'record' | 'retry' {
  const retryable = result.status === 'MISS' && !NOT_RETRIED_CODES.has(result.error?.code ?? '');
  return retryable && attemptsLeft > 0 ? 'retry' : 'record';
}

/** The backoff before attempt n+1 (n >= 1): base doubling, as BullMQ's exponential backoff. */
export function retryDelayMs(attemptsMade: number, baseMs: number): number {
  return baseMs * 2 ** Math.max(0, attemptsMade - 1);
}

/**
 * Requirements as people write them (`--runs-on`, `?runsOn=`): `kvm`,
 * `arch=x86_64`, `cores=8` (at least), `memory-mb=16384` (at least), and
 * any other `key=value` as a label the runner must carry.
 * RUNS_ON_INVALID for anything else.
 */
export function parseRequirements(items: readonly string[]): JobRequirements {
  const req: JobRequirements = {};
  const bad = (item: string, why: string): PatchbayError =>
    new PatchbayError('RUNS_ON_INVALID', `runs-on "${item.slice(0, 80)}": ${why}`);
  const count = (item: string, v: string): number => {
    if (!/^[1-9][0-9]{0,8}$/.test(v)) throw bad(item, 'a whole number is needed');
    return Number(v);
  };
  for (const item of items) {
    if (item === 'kvm') { req.kvm = true; continue; }
    const eq = item.indexOf('=');
    if (eq < 0) throw bad(item, 'write kvm, arch=..., cores=N, memory-mb=N or label=value');
    const key = item.slice(0, eq);
    const value = item.slice(eq + 1);
    if (key === 'arch') {
      if (!/^[a-z0-9_]{1,32}$/.test(value)) throw bad(item, 'not an architecture name');
      req.arch = value;
    } else if (key === 'cores') req.minCores = count(item, value);
    else if (key === 'memory-mb') req.minMemoryMb = count(item, value);
    else {
      if (!LABEL_KEY_RE.test(key) || !LABEL_VALUE_RE.test(value)) throw bad(item, 'labels are lower-case words and plain values');
      req.labels = { ...req.labels, [key]: value };
    }
  }
  return req;
}

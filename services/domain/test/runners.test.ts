/**
 * Lab runners as data (domain/runners.ts): which runner may take which job,
 * which job a runner picks (queue order, warm-base affinity), and whether an
 * attempt's result is recorded or run again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NOT_RETRIED_CODES } from '../errors.ts';
import {
  type JobRequirements,
  type PeerRunner,
  type QueuedJob,
  type RunnerLabels,
  type WarmBaseHeld,
  attemptOutcome,
  holdsWarmBase,
  pickJob,
  retryDelayMs,
  unmetRequirement,
} from '../runners.ts';

const BASE = '0123456789abcdef0123456789abcdef01234567';
const OTHER = 'fedcba9876543210fedcba9876543210fedcba98';

function labels(over: Partial<RunnerLabels> = {}): RunnerLabels {
  return { arch: 'x86_64', kvm: true, cores: 8, memoryMb: 16384, trees: ['io_uring', 'fuse'], extra: {}, ...over };
}

function job(id: string, over: Partial<QueuedJob> = {}): QueuedJob {
  return { id, tree: 'io_uring', baseCommit: null, requires: {}, waitedSeconds: 0, ...over };
}

function me(l: RunnerLabels = labels(), warmBases: WarmBaseHeld[] = []): { labels: RunnerLabels; warmBases: WarmBaseHeld[] } {
  return { labels: l, warmBases };
}

function peer(l: RunnerLabels, warmBases: WarmBaseHeld[], freeSlots = 1): PeerRunner {
  return { labels: l, warmBases, freeSlots };
}

const WAIT = 600;

describe('unmetRequirement', () => {
  it('a runner takes nothing on a tree it does not mirror', () => {
    const why = unmetRequirement(labels({ trees: ['fuse'] }), 'io_uring', {});
    assert.ok(why !== null);
    assert.match(why, /io_uring/);
    assert.equal(unmetRequirement(labels({ trees: [] }), 'io_uring', {}), 'it does not mirror the tree io_uring');
    assert.equal(unmetRequirement(labels({ trees: ['fuse'] }), 'fuse', {}), null);
    // A tree name is matched whole, not as a prefix.
    assert.notEqual(unmetRequirement(labels({ trees: ['io_uring-7.1'] }), 'io_uring', {}), null);
    assert.notEqual(unmetRequirement(labels({ trees: ['io_uring'] }), 'io_uring-7.1', {}), null);
  });

  it('no requirements: any runner that mirrors the tree', () => {
    assert.equal(unmetRequirement(labels({ kvm: false, cores: 1, memoryMb: 512, arch: 'aarch64' }), 'io_uring', {}), null);
  });

  it('arch must be equal', () => {
    assert.equal(unmetRequirement(labels({ arch: 'x86_64' }), 'io_uring', { arch: 'x86_64' }), null);
    assert.match(unmetRequirement(labels({ arch: 'aarch64' }), 'io_uring', { arch: 'x86_64' }) ?? '', /arch x86_64/);
  });

  it('KVM: a job that needs it never goes to a runner without it; one that does not runs anywhere', () => {
    assert.match(unmetRequirement(labels({ kvm: false }), 'io_uring', { kvm: true }) ?? '', /KVM/);
    assert.equal(unmetRequirement(labels({ kvm: true }), 'io_uring', { kvm: true }), null);
    assert.equal(unmetRequirement(labels({ kvm: false }), 'io_uring', { kvm: false }), null);
    assert.equal(unmetRequirement(labels({ kvm: true }), 'io_uring', { kvm: false }), null);
    assert.equal(unmetRequirement(labels({ kvm: false }), 'io_uring', {}), null);
  });

  it('minCores and minMemoryMb are lower bounds, inclusive', () => {
    assert.equal(unmetRequirement(labels({ cores: 4 }), 'io_uring', { minCores: 4 }), null);
    assert.match(unmetRequirement(labels({ cores: 3 }), 'io_uring', { minCores: 4 }) ?? '', /4 cores, it has 3/);
    assert.equal(unmetRequirement(labels({ memoryMb: 8192 }), 'io_uring', { minMemoryMb: 8192 }), null);
    assert.match(unmetRequirement(labels({ memoryMb: 8191 }), 'io_uring', { minMemoryMb: 8192 }) ?? '', /8192 MB/);
  });

  it('extra labels: every one asked for, with its value', () => {
    const l = labels({ extra: { lab: 'fsdevel', gpu: 'none' } });
    assert.equal(unmetRequirement(l, 'io_uring', { labels: { lab: 'fsdevel' } }), null);
    assert.equal(unmetRequirement(l, 'io_uring', { labels: { lab: 'fsdevel', gpu: 'none' } }), null);
    assert.match(unmetRequirement(l, 'io_uring', { labels: { lab: 'netdev' } }) ?? '', /lab=netdev/);
    assert.match(unmetRequirement(l, 'io_uring', { labels: { lab: 'fsdevel', rack: 'b' } }) ?? '', /rack=b/);
    assert.notEqual(unmetRequirement(labels(), 'io_uring', { labels: { lab: 'fsdevel' } }), null);
    assert.equal(unmetRequirement(l, 'io_uring', { labels: {} }), null);
  });

  it('every requirement at once', () => {
    const req: JobRequirements = { arch: 'x86_64', kvm: true, minCores: 8, minMemoryMb: 16384, labels: { lab: 'fsdevel' } };
    assert.equal(unmetRequirement(labels({ extra: { lab: 'fsdevel' } }), 'io_uring', req), null);
    for (const over of [{ arch: 'riscv64' }, { kvm: false }, { cores: 7 }, { memoryMb: 16000 }, { extra: {} }, { trees: ['fuse'] }]) {
      assert.notEqual(unmetRequirement(labels({ extra: { lab: 'fsdevel' }, ...over }), 'io_uring', req), null, JSON.stringify(over));
    }
  });
});

describe('holdsWarmBase', () => {
  it('by tree and exact commit; an unknown commit is held by nobody', () => {
    const held = [{ tree: 'io_uring', commit: BASE }];
    assert.equal(holdsWarmBase(held, 'io_uring', BASE), true);
    assert.equal(holdsWarmBase(held, 'fuse', BASE), false);
    assert.equal(holdsWarmBase(held, 'io_uring', OTHER), false);
    assert.equal(holdsWarmBase(held, 'io_uring', null), false);
    assert.equal(holdsWarmBase([], 'io_uring', BASE), false);
  });
});

describe('pickJob', () => {
  it('an empty queue, or nothing it may take: null', () => {
    assert.equal(pickJob(me(), [], [], WAIT), null);
    assert.equal(pickJob(me(labels({ kvm: false })), [job('a', { requires: { kvm: true } }), job('b', { tree: 'net' })], [], WAIT), null);
  });

  it('queue order: the first job it may take, passing over those it may not', () => {
    const queue = [
      job('kvm', { requires: { kvm: true } }),
      job('tree', { tree: 'net' }),
      job('big', { requires: { minCores: 64 } }),
      job('first-fit'),
      job('second-fit'),
    ];
    assert.equal(pickJob(me(labels({ kvm: false })), queue, [], WAIT)?.job.id, 'first-fit');
    assert.equal(pickJob(me(labels({ kvm: true })), queue, [], WAIT)?.job.id, 'kvm');
    assert.equal(pickJob(me(labels({ kvm: true, trees: ['net'] })), queue, [], WAIT)?.job.id, 'tree');
  });

  it('warm: true when it holds the job\'s base, false otherwise', () => {
    const q = [job('a', { baseCommit: BASE })];
    assert.deepEqual(pickJob(me(labels(), [{ tree: 'io_uring', commit: BASE }]), q, [], WAIT), { job: q[0], warm: true });
    assert.deepEqual(pickJob(me(labels(), [{ tree: 'io_uring', commit: OTHER }]), q, [], WAIT), { job: q[0], warm: false });
    assert.deepEqual(pickJob(me(labels(), [{ tree: 'fuse', commit: BASE }]), q, [], WAIT), { job: q[0], warm: false });
  });

  it('affinity: a job whose warm base an able live peer holds is left to it until the wait has passed', () => {
    const holder = peer(labels(), [{ tree: 'io_uring', commit: BASE }]);
    const fresh = job('warm-elsewhere', { baseCommit: BASE, waitedSeconds: 10 });
    assert.equal(pickJob(me(), [fresh], [holder], WAIT), null);
    // The next job in the queue is not held back by it.
    const next = job('next', { baseCommit: OTHER });
    assert.equal(pickJob(me(), [fresh, next], [holder], WAIT)?.job.id, 'next');
    // Just under the wait: still left; at and past it: anyone able takes it (cold).
    assert.equal(pickJob(me(), [{ ...fresh, waitedSeconds: WAIT - 0.001 }], [holder], WAIT), null);
    assert.deepEqual(pickJob(me(), [{ ...fresh, waitedSeconds: WAIT }], [holder], WAIT), { job: { ...fresh, waitedSeconds: WAIT }, warm: false });
    assert.equal(pickJob(me(), [{ ...fresh, waitedSeconds: WAIT + 3600 }], [holder], WAIT)?.job.id, 'warm-elsewhere');
    // A wait of 0 turns affinity off.
    assert.equal(pickJob(me(), [fresh], [holder], 0)?.job.id, 'warm-elsewhere');
    // When this runner holds it too, it takes it at once.
    assert.deepEqual(pickJob(me(labels(), [{ tree: 'io_uring', commit: BASE }]), [fresh], [holder], WAIT), { job: fresh, warm: true });
    // A busy holder (no free slot) does not hold it back: a free runner takes it (a queue on one base uses every runner).
    assert.deepEqual(pickJob(me(), [fresh], [peer(labels(), [{ tree: 'io_uring', commit: BASE }], 0)], WAIT), { job: fresh, warm: false });
    // One free holder among busy ones is enough to leave it.
    assert.equal(pickJob(me(), [fresh], [peer(labels(), [{ tree: 'io_uring', commit: BASE }], 0), holder], WAIT), null);
  });

  it('affinity: a peer that could not take the job does not hold it back', () => {
    const fresh = job('j', { baseCommit: BASE, requires: { arch: 'x86_64', kvm: true, labels: { lab: 'fsdevel' } } });
    const held = [{ tree: 'io_uring', commit: BASE }];
    const able = labels({ extra: { lab: 'fsdevel' } });
    assert.equal(pickJob(me(able), [fresh], [peer(labels({ kvm: false, extra: { lab: 'fsdevel' } }), held)], WAIT)?.job.id, 'j', 'peer without KVM');
    assert.equal(pickJob(me(able), [fresh], [peer(labels({ extra: { lab: 'netdev' } }), held)], WAIT)?.job.id, 'j', 'peer with another lab label');
    assert.equal(pickJob(me(able), [fresh], [peer(labels({ trees: ['fuse'], extra: { lab: 'fsdevel' } }), held)], WAIT)?.job.id, 'j', 'peer that does not mirror the tree');
    assert.equal(pickJob(me(able), [fresh], [peer(labels({ arch: 'aarch64', extra: { lab: 'fsdevel' } }), held)], WAIT)?.job.id, 'j', 'peer of another arch');
    // One able holder among unable ones is enough to hold it back.
    assert.equal(pickJob(me(able), [fresh], [peer(labels({ kvm: false }), held), peer(able, held)], WAIT), null);
  });

  it('affinity: a peer holding another commit or another tree\'s base does not hold the job back', () => {
    const fresh = job('j', { baseCommit: BASE });
    assert.equal(pickJob(me(), [fresh], [peer(labels(), [{ tree: 'io_uring', commit: OTHER }])], WAIT)?.job.id, 'j');
    assert.equal(pickJob(me(), [fresh], [peer(labels(), [{ tree: 'fuse', commit: BASE }])], WAIT)?.job.id, 'j');
  });

  it('a job with an unknown base commit has no affinity', () => {
    const fresh = job('j', { baseCommit: null });
    // Even a peer claiming a warm base it cannot name does not hold it back.
    const holder = peer(labels(), [{ tree: 'io_uring', commit: BASE }]);
    assert.deepEqual(pickJob(me(), [fresh], [holder], WAIT), { job: fresh, warm: false });
    assert.deepEqual(pickJob(me(labels(), [{ tree: 'io_uring', commit: BASE }]), [fresh], [], WAIT), { job: fresh, warm: false });
  });

  it('does not reorder or change the queue it is given', () => {
    const queue = Object.freeze([job('a', { baseCommit: BASE }), job('b')].map((j) => Object.freeze(j)));
    const picked = pickJob(me(), queue, [peer(labels(), [{ tree: 'io_uring', commit: BASE }])], WAIT);
    assert.equal(picked?.job, queue[1]);
  });
});

describe('attemptOutcome', () => {
  const miss = (code: string | null): { status: 'MISS'; error: { code: string; message: string } | null } => ({
    status: 'MISS',
    error: code === null ? null : { code, message: 'm' },
  });

  it('MISS with a retryable code and attempts left: retry', () => {
    assert.equal(attemptOutcome(miss('DOCKER_UNAVAILABLE'), 1), 'retry');
    assert.equal(attemptOutcome(miss('LEASE_LAPSED'), 2), 'retry');
    assert.equal(attemptOutcome(miss(null), 1), 'retry');
  });

  it('MISS with no attempts left: record', () => {
    assert.equal(attemptOutcome(miss('DOCKER_UNAVAILABLE'), 0), 'record');
    assert.equal(attemptOutcome(miss('DOCKER_UNAVAILABLE'), -1), 'record');
  });

  it('MISS with a code a retry cannot fix: record, whatever is left', () => {
    assert.ok(NOT_RETRIED_CODES.size > 0);
    for (const code of NOT_RETRIED_CODES) assert.equal(attemptOutcome(miss(code), 5), 'record', code);
    assert.equal(attemptOutcome(miss('ACCEL_UNAVAILABLE'), 3), 'record');
  });

  it('any other verdict: record', () => {
    for (const status of ['PASS', 'FAIL', 'ERROR', 'SKIP'] as const) {
      assert.equal(attemptOutcome({ status, error: null }, 3), 'record', status);
      assert.equal(attemptOutcome({ status, error: { code: 'DOCKER_UNAVAILABLE', message: 'm' } }, 3), 'record', status);
    }
  });
});

describe('retryDelayMs', () => {
  it('the base after the first attempt, doubling after each', () => {
    assert.equal(retryDelayMs(1, 1000), 1000);
    assert.equal(retryDelayMs(2, 1000), 2000);
    assert.equal(retryDelayMs(3, 1000), 4000);
    assert.equal(retryDelayMs(5, 250), 4000);
  });

  it('0 attempts made is treated as the first; a base of 0 is no backoff', () => {
    assert.equal(retryDelayMs(0, 1000), 1000);
    assert.equal(retryDelayMs(4, 0), 0);
  });
});

/** The queue and log streams on a real Redis (started by deploy/host/prepare.sh), a unique queue per test. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { JobQueue } from '../job-queue.ts';
import { JobLogs } from '../logs.ts';
import { closeRedis, createRedis, pingRedis } from '../redis.ts';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const unique = (): string => `test-${randomBytes(4).toString('hex')}`;

describe('queue on a real Redis', () => {
  let redis: Redis;
  before(async () => {
    redis = createRedis(url, 'test');
    await pingRedis(redis);
  });
  after(async () => { await closeRedis(redis); });

  test('enqueueing the same job id twice queues it once', async () => {
    const q = new JobQueue(redis, { prefix: unique(), name: unique() });
    try {
      await q.enqueue('j-1');
      await q.enqueue('j-1');
      await q.enqueue('j-2');
      assert.deepEqual(await q.depth(), { waiting: 2, active: 0, delayed: 0, failed: 0 });
      assert.equal(await q.removeIfWaiting('j-1'), true);
      assert.equal(await q.removeIfWaiting('j-1'), false, 'already gone');
      assert.equal((await q.depth()).waiting, 1);
    } finally {
      await q.queue.obliterate({ force: true });
      await q.close();
    }
  });

  test('close is idempotent and bounded', async () => {
    const q = new JobQueue(redis, { prefix: unique() });
    const t0 = Date.now();
    await Promise.all([q.close(500), q.close(500)]);
    await q.close(500);
    assert.ok(Date.now() - t0 < 3000);
  });

  test('log streams replay from any id and wait for new entries', async () => {
    const logs = new JobLogs(redis, unique());
    const first = await logs.append('j-9', { kind: 'stage', stage: 'build', phase: 'start' });
    await logs.append('j-9', { kind: 'log', stage: 'build', text: '  CC io_uring/kbuf.o\n' });
    const all = await logs.read('j-9', '0');
    assert.deepEqual(all.map((e) => e.entry.kind), ['stage', 'log']);
    const after = await logs.read('j-9', first);
    assert.deepEqual(after.map((e) => e.entry), [{ kind: 'log', stage: 'build', text: '  CC io_uring/kbuf.o\n' }]);
    // A blocking read needs its own connection.
    const reader = redis.duplicate();
    try {
      const last = all[all.length - 1]?.id ?? '0';
      const waiting = new JobLogs(reader, (logs as unknown as { prefix: string }).prefix).read('j-9', last, { blockMs: 5000 });
      await new Promise((r) => setTimeout(r, 100));
      await logs.append('j-9', { kind: 'end', status: 'PASS' });
      const got = await waiting;
      assert.deepEqual(got.map((e) => e.entry), [{ kind: 'end', status: 'PASS' }]);
    } finally {
      await closeRedis(reader);
    }
    await logs.clear('j-9');
    assert.deepEqual(await logs.read('j-9', '0'), []);
  });
});

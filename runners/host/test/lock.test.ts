/**
 * The cross-process lock: one holder at a time; a holder known to be gone
 * (this host, no such process) is taken over at once; a holder this process
 * cannot check (another host name, as a worker container has) is waited for
 * while it touches its lock, and taken over once its heartbeat stops.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { identityAlive, processIdentity } from '../../../services/platform/process.ts';
import { withLock } from '../lock.ts';

const dir = mkdtempSync(join(tmpdir(), 'patchbay-lock-'));
const fast = { heartbeatMs: 50, staleMs: 400, pollMs: 50 };

/** A lock left as another holder would leave it. */
function planted(name: string, identity: string, ageMs = 0): string {
  const path = join(dir, name);
  mkdirSync(`${path}.lock`);
  writeFileSync(join(`${path}.lock`, 'owner'), identity);
  const t = new Date(Date.now() - ageMs);
  utimesSync(join(`${path}.lock`, 'owner'), t, t);
  return path;
}

describe('withLock', () => {
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  test('identities: this process is alive, a dead pid is not, another host cannot be told', () => {
    assert.equal(identityAlive(processIdentity()), true);
    assert.equal(identityAlive(`${hostname()}:999999999:1`), false);
    // This pid, but another start time: a process that had this pid before.
    assert.equal(identityAlive(`${hostname()}:${process.pid}:1`), false);
    assert.equal(identityAlive('some-container:7:123'), null);
  });

  test('one holder at a time', async () => {
    const path = join(dir, 'one');
    const order: string[] = [];
    await Promise.all(['a', 'b', 'c'].map((n) => withLock(path, () => undefined, async () => {
      order.push(`${n}+`);
      await sleep(60);
      order.push(`${n}-`);
    }, fast)));
    for (let i = 0; i < order.length; i += 2) assert.equal(order[i]?.[0], order[i + 1]?.[0], order.join(' '));
  });

  test('a holder known to be gone is taken over at once', async () => {
    const path = planted('dead', `${hostname()}:999999999:1`);
    let waited = false;
    assert.equal(await withLock(path, () => { waited = true; }, () => Promise.resolve(7), fast), 7);
    assert.equal(waited, false);
  });

  test('a holder on another host is waited for while its heartbeat goes on, then taken over when it stops', async () => {
    const path = planted('remote', 'worker-container:7:123');
    const owner = join(`${path}.lock`, 'owner');
    // The remote holder touches its lock for 600 ms (longer than staleMs), then dies.
    const beat = setInterval(() => { const now = new Date(); utimesSync(owner, now, now); }, 50);
    setTimeout(() => { clearInterval(beat); }, 600);
    const started = Date.now();
    let waited = false;
    await withLock(path, () => { waited = true; }, () => Promise.resolve(), fast);
    const took = Date.now() - started;
    assert.equal(waited, true);
    assert.ok(took >= 600 + fast.staleMs - 100, `took over after ${took} ms, while the holder was still beating`);
  });

  test('a lock whose holder this process cannot check and that is old is taken over', async () => {
    const path = planted('stale', 'worker-container:7:123', 10_000);
    assert.equal(await withLock(path, () => undefined, () => Promise.resolve('ok'), fast), 'ok');
  });

  test('the holder touches its lock while it holds it', async () => {
    const path = join(dir, 'long');
    const owner = join(`${path}.lock`, 'owner');
    await withLock(path, () => undefined, async () => {
      const t = new Date(Date.now() - 10_000);
      utimesSync(owner, t, t);
      await sleep(200);
      // What a waiter in another container would see: a fresh heartbeat.
      assert.ok(Date.now() - statSync(owner).mtimeMs < 150, 'the owner file was not touched');
    }, fast);
  });
});

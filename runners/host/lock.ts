/**
 * A cross-process lock on a path (mkdir is atomic). The holder writes its
 * identity (host, pid, start time) and touches it while it holds the lock.
 * A lock is taken over when its holder is known to be gone (same host, the
 * process is not there) or, when this process cannot tell (a holder in
 * another container or on another host sharing the folder), when its
 * heartbeat is older than `staleMs`. So a killed runner never wedges a key.
 */
import { mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { identityAlive, processIdentity } from '../../services/platform/process.ts';

export interface LockTiming {
  /** How often the holder touches its lock. */
  heartbeatMs: number;
  /** A lock whose holder this process cannot check, untouched this long, is stale. */
  staleMs: number;
  /** How often a waiter looks again. */
  pollMs: number;
}

const DEFAULT_TIMING: LockTiming = { heartbeatMs: 10_000, staleMs: 60_000, pollMs: 2000 };

function holderGone(dir: string, staleMs: number): boolean {
  const owner = join(dir, 'owner');
  let identity: string;
  let touched: number;
  try {
    identity = readFileSync(owner, 'utf8');
    touched = statSync(owner).mtimeMs;
  } catch {
    // No owner file: its holder is gone, or not yet written (the caller waited).
    return true;
  }
  const alive = identityAlive(identity);
  return alive === false || (alive === null && Date.now() - touched > staleMs);
}

export async function withLock<T>(path: string, onWait: () => void, fn: () => Promise<T>, timing: LockTiming = DEFAULT_TIMING): Promise<T> {
  const dir = `${path}.lock`;
  const owner = join(dir, 'owner');
  let announced = false;
  mkdirSync(dirname(dir), { recursive: true });
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(owner, processIdentity());
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // The holder may be between mkdir and writing its identity: give it a moment.
      await sleep(Math.min(500, timing.pollMs));
      if (holderGone(dir, timing.staleMs)) {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      if (!announced) {
        onWait();
        announced = true;
      }
      await sleep(timing.pollMs);
    }
  }
  const heartbeat = setInterval(() => {
    try {
      const now = new Date();
      utimesSync(owner, now, now);
    } catch {
      // Taken over meanwhile (we were thought gone); fn's result still stands.
    }
  }, timing.heartbeatMs);
  heartbeat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(heartbeat);
    rmSync(dir, { recursive: true, force: true });
  }
}

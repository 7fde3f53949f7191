/** Redis connections for BullMQ and the log streams. */
import { Redis } from 'ioredis';
import { PatchbayError, errorMessage } from '../domain/errors.ts';

export function createRedis(url: string, name: string, onError?: (message: string) => void): Redis {
  // BullMQ needs maxRetriesPerRequest: null for blocking connections; commands
  // wait for a reconnect instead of failing, so a Redis restart loses nothing.
  const redis = new Redis(url, { maxRetriesPerRequest: null, connectionName: `patchbay-${name}`, lazyConnect: false });
  // ioredis reconnects by itself; an outage is reported once, then every 30 s.
  let last = 0;
  redis.on('error', (e: Error) => {
    if (Date.now() - last < 30_000) return;
    last = Date.now();
    onError?.(`redis (${name}): ${e.message}; reconnecting`);
  });
  return redis;
}

/**
 * Redis refused a write because it is at maxmemory (noeviction: BullMQ's
 * keys must never be evicted, so a full Redis refuses instead).
 */
export function isRedisFull(e: unknown): boolean {
  return e instanceof Error && e.message.startsWith('OOM ');
}

export const REDIS_FULL_MESSAGE = 'the queue (Redis) is full: it is at its memory limit and takes no more';

export async function pingRedis(redis: Redis, timeoutMs = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.ping(),
      new Promise((_, reject) => { timer = setTimeout(() => { reject(new Error(`no answer in ${timeoutMs} ms`)); }, timeoutMs); }),
    ]);
  } catch (e) {
    throw new PatchbayError('REDIS_UNREACHABLE', `Redis is not reachable: ${errorMessage(e)}`, { retryable: true });
  } finally {
    clearTimeout(timer);
  }
}

/** quit(), bounded: a dead server must not hold shutdown hostage. */
export async function closeRedis(redis: Redis, timeoutMs = 2000): Promise<void> {
  if (redis.status === 'end') return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([redis.quit(), new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs); })]);
  } catch {
    // Already closing.
  } finally {
    clearTimeout(timer);
    // quit() may have timed out: drop the socket whatever its state.
    redis.disconnect();
  }
}

/**
 * Job logs and events on a Redis stream per job: the worker appends, the API
 * reads from any id (replay) and blocks for more (live). Capped in length and
 * kept for a week; the full log also stays in the job's artifacts.
 */
import type { Redis } from 'ioredis';

export type LogEntry =
  | { kind: 'log'; stage: string; text: string }
  | { kind: 'stage'; stage: string; phase: 'start' | 'end'; status?: string; durationMs?: number; summary?: string }
  | { kind: 'end'; status: string };

const MAX_ENTRIES = 200_000;
const TTL_SECONDS = 7 * 24 * 3600;

export class JobLogs {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(jobId: string): string {
    return `${this.prefix}:logs:${jobId}`;
  }

  async append(jobId: string, entry: LogEntry): Promise<string> {
    const key = this.key(jobId);
    const id = await this.redis.xadd(key, 'MAXLEN', '~', String(MAX_ENTRIES), '*', 'e', JSON.stringify(entry));
    if (entry.kind === 'end' || entry.kind === 'stage') await this.redis.expire(key, TTL_SECONDS);
    return id ?? '';
  }

  /**
   * Entries after `afterId` ('0' for all). With blockMs, waits that long for
   * new ones when there are none yet.
   */
  async read(jobId: string, afterId: string, opts: { blockMs?: number; count?: number } = {}): Promise<Array<{ id: string; entry: LogEntry }>> {
    const count = String(opts.count ?? 1000);
    const key = this.key(jobId);
    const res = opts.blockMs === undefined
      ? await this.redis.xread('COUNT', count, 'STREAMS', key, afterId)
      : await this.redis.xread('COUNT', count, 'BLOCK', String(opts.blockMs), 'STREAMS', key, afterId);
    const entries = res?.[0]?.[1] ?? [];
    return entries.map(([id, fields]) => ({ id, entry: JSON.parse(fields[1] ?? '{}') as LogEntry }));
  }

  async clear(jobId: string): Promise<void> {
    await this.redis.del(this.key(jobId));
  }
}

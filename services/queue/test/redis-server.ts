/**
 * A dedicated redis-server for a test, on deploy/redis.conf (AOF,
 * noeviction, maxmemory) in its own folder on a loopback port: for tests
 * that stop, restart or fill Redis, which the shared one must not suffer.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../..', import.meta.url));

export interface RedisServer {
  url: string;
  port: number;
  /** redis-cli against it; its standard output. */
  cli(...args: string[]): string;
  /** Starts it again on the same folder and port (after stop()). */
  start(): void;
  stop(): void;
  /** Stops it and removes its folder. */
  remove(): void;
}

export function startRedisServer(opts: { args?: readonly string[] } = {}): RedisServer {
  const dir = mkdtempSync(join(tmpdir(), 'patchbay-redis-'));
  const port = 16379 + Math.floor(Math.random() * 1000);
  const cli = (...args: string[]): string => spawnSync('redis-cli', ['-p', String(port), ...args]).stdout.toString();
  const start = (): void => {
    const r = spawnSync('redis-server', [join(root, 'deploy/redis.conf'), '--port', String(port), '--dir', dir, '--daemonize', 'yes',
      '--pidfile', join(dir, 'redis.pid'), '--logfile', join(dir, 'redis.log'), ...(opts.args ?? [])]);
    assert.equal(r.status, 0, r.stderr.toString());
    for (let i = 0; i < 50; i++) {
      if (cli('ping').includes('PONG')) return;
      spawnSync('sleep', ['0.1']);
    }
    throw new Error(`redis-server on port ${port} did not start`);
  };
  const stop = (): void => { cli('shutdown'); };
  start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    cli,
    start,
    stop,
    remove() {
      stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

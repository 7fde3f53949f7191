/**
 * A throwaway PostgreSQL server for integration tests: Debian's postgresql
 * package (installed when missing), a fresh cluster in a temp dir owned by
 * the postgres user, reachable only by a unix socket in that dir. stop()
 * shuts it down and removes everything.
 *
 *   const pg = await startPostgres();
 *   const store = await openDatabase({ databaseUrl: pg.url, dataDir });
 *   ...
 *   await pg.stop();
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../../platform/net.ts';

const run = promisify(execFile);

export interface PostgresServer {
  /** postgresql://postgres@/DB?host=SOCKETDIR&port=PORT */
  url: string;
  /** Idempotent. */
  stop(): Promise<void>;
}

/** The newest installed server's bin dir (/usr/lib/postgresql/N/bin), or null. */
function findBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? null : join(root, versions[0], 'bin');
}

async function apt(args: string[]): Promise<void> {
  await run('apt-get', args, {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    maxBuffer: 64 * 1024 * 1024,
  });
}

async function ensureInstalled(): Promise<string> {
  let bin = findBinDir();
  if (bin !== null) return bin;
  try {
    await apt(['install', '-y', '--no-install-recommends', 'postgresql']);
  } catch {
    await apt(['update']);
    await apt(['install', '-y', '--no-install-recommends', 'postgresql']);
  }
  bin = findBinDir();
  if (bin === null) throw new Error('installed the postgresql package, but found no initdb under /usr/lib/postgresql');
  return bin;
}

/** Runs a server binary as the postgres user (initdb and postgres refuse root). */
async function asPostgres(bin: string, tool: string, args: string[]): Promise<void> {
  const cmd = process.getuid?.() === 0 ? 'runuser' : join(bin, tool);
  const argv = process.getuid?.() === 0 ? ['-u', 'postgres', '--', join(bin, tool), ...args] : args;
  await run(cmd, argv, { cwd: '/', maxBuffer: 16 * 1024 * 1024 });
}

/**
 * A detached shell that outlives this process: when it is gone (killed, or
 * it never reached stop()), the server is stopped and its dir removed.
 */
function watchdog(bin: string, dir: string, data: string): void {
  const pgCtl = join(bin, 'pg_ctl');
  const stopCmd =
    process.getuid?.() === 0 ? `runuser -u postgres -- "${pgCtl}"` : `"${pgCtl}"`;
  const script = [
    `while kill -0 ${process.pid} 2>/dev/null && [ -d "${data}" ]; do sleep 2; done`,
    `[ -d "${data}" ] && ${stopCmd} -D "${data}" -m immediate -w stop >/dev/null 2>&1`,
    `rm -rf "${dir}"`,
  ].join('\n');
  const child = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore', cwd: '/' });
  child.unref();
}

export async function startPostgres(opts: { database?: string } = {}): Promise<PostgresServer> {
  const bin = await ensureInstalled();
  const dir = await mkdtemp(join(tmpdir(), 'pb-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  if (process.getuid?.() === 0) await run('chown', ['postgres:postgres', dir]);
  await chmod(dir, 0o700);

  let started = false;
  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (started) {
        await asPostgres(bin, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      }
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    await asPostgres(bin, 'initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    const port = await freePort();
    const options = `-k ${dir} -p ${port} -c listen_addresses='' -c fsync=off -c full_page_writes=off`;
    started = true;
    await asPostgres(bin, 'pg_ctl', ['-D', data, '-l', log, '-o', options, '-w', '-t', '60', 'start']);
    watchdog(bin, dir, data);

    const database = opts.database ?? 'patchbay_test';
    const admin = new pg.Client({ host: dir, port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    try {
      await admin.query(`create database "${database.replace(/"/g, '""')}"`);
    } finally {
      await admin.end();
    }
    const url = `postgresql://postgres@/${encodeURIComponent(database)}?host=${dir}&port=${port}`;
    return { url, stop };
  } catch (e) {
    const serverLog = await readFile(log, 'utf8').catch(() => '');
    await stop();
    throw new Error(`could not start a test PostgreSQL: ${String(e)}${serverLog === '' ? '' : `\n${serverLog}`}`, {
      cause: e,
    });
  }
}

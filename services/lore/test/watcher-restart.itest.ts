/**
 * The watcher as a process (`patchbay serve --role lore`) on PostgreSQL,
 * killed with SIGKILL during a poll and between polls, and started twice at
 * once: nothing lost, nothing queued twice, one watcher polling.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { openDatabase, type Store } from '../../store/db.ts';
import { startPostgres, type PostgresServer } from '../../store/test/postgres-server.ts';
import { type PublicInbox, startPublicInbox } from './public-inbox-server.ts';
import { type Mail, type TestTree, makeDiscussion, makeSeries, makeTestTree } from './traffic.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));

describe('lore watcher restarts', { timeout: 15 * 60_000 }, () => {
  let pg: PostgresServer;
  let pi: PublicInbox;
  let store: Store;
  let tree: TestTree;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const children: ChildProcess[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patchbay-lore-restart-'));
    pg = await startPostgres();
    pi = await startPublicInbox(['io-uring']);
    tree = makeTestTree(join(dir, 'tree'));
    const treesFile = join(dir, 'trees.json');
    writeFileSync(treesFile, JSON.stringify({ trees: tree.trees.trees }));
    env = {
      ...process.env,
      DATABASE_URL: pg.url,
      PATCHBAY_DATA: join(dir, 'data'),
      PATCHBAY_CACHE: join(dir, 'cache'),
      PATCHBAY_QUEUE_PREFIX: `lore-${randomBytes(3).toString('hex')}`,
      PATCHBAY_TREES: treesFile,
      PATCHBAY_MIRRORS: tree.mirrorsDir,
      PATCHBAY_INBOX_ALLOW: pi.origin,
      PATCHBAY_LORE_INBOXES: pi.url,
      PATCHBAY_LORE_POLL_SECONDS: '2',
      PATCHBAY_LORE_SPACING_MS: '300',
      PATCHBAY_LORE_OVERLAP_SECONDS: '3600',
      PATCHBAY_LORE_LOOKBACK_SECONDS: '3600',
      PATCHBAY_LORE_SETTLE_SECONDS: '3600',
      PATCHBAY_LORE_BUDGET: '1000',
      PATCHBAY_LORE_CONTACT: 'ci@patchbay.invalid',
      PATCHBAY_LOG_FILE: '-',
      PATCHBAY_LOG_LEVEL: 'warn',
    };
    store = await openDatabase({ databaseUrl: pg.url, dataDir: join(dir, 'test-data') });
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await store.close();
    pi.stop();
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function startWatcher(): ChildProcess {
    const c = spawn(process.execPath, [join(root, 'bin/patchbay.mjs'), 'serve', '--role', 'lore'], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
    c.stderr.on('data', (b: Buffer) => { process.stderr.write(`  [lore ${c.pid ?? '?'}] ${b.toString()}`); });
    children.push(c);
    return c;
  }

  function exited(c: ChildProcess): Promise<number | null> {
    return c.exitCode !== null || c.signalCode !== null ? Promise.resolve(c.exitCode) : new Promise((r) => { c.once('exit', (code) => { r(code); }); });
  }

  async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120_000, everyMs = 50): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await check();
      if (v !== undefined) return v;
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  const stored = async (): Promise<number> => Number((await sql<{ n: string }>`select count(*) as n from lore_messages`.execute(store.db)).rows[0]?.n ?? 0);
  const queued = async (): Promise<Array<{ root: string; job: string | null }>> =>
    (await store.db.selectFrom('lore_decisions').select(['root_message_id', 'job_id']).where('decision', '=', 'queued').execute()).map((r) => ({ root: r.root_message_id, job: r.job_id }));
  const jobs = async (): Promise<number> => Number((await sql<{ n: string }>`select count(*) as n from jobs`.execute(store.db)).rows[0]?.n ?? 0);

  it('killed during a poll and between polls: every message stored once, every series queued once', async () => {
    const series: Mail[][] = [0, 1, 2, 3].map((i) => makeSeries(tree, { id: `r${i}`, title: `io_uring: restart ${i}`, files: ['io_uring/kbuf.c', 'fs/fuse/dev.c', 'io_uring/rsrc.c'], cover: true, seed: 200 + i }));
    const talk = Array.from({ length: 400 }, (_, i) => makeDiscussion(`rt-${i}`, `talk ${i}`, `message ${i}`));
    const mail = [...talk.slice(0, 200), ...series.flat(), ...talk.slice(200)];
    pi.deliverMany(mail.map((m) => m.raw), { received: true });

    // Killed while its first poll is storing the mail (200 messages a batch, 300 ms between requests).
    const first = startWatcher();
    await waitFor('the first batch stored', async () => ((await stored()) > 0 ? true : undefined));
    first.kill('SIGKILL');
    await exited(first);
    const partial = await stored();
    assert.ok(partial > 0 && partial < mail.length, `killed mid-poll (${partial} of ${mail.length} stored)`);
    assert.equal((await store.lore.inbox(pi.url)).cursorAt, null, 'the cursor did not move');

    // The lease of the killed watcher runs out (2 intervals + 10 s); the next one resumes.
    const second = startWatcher();
    await waitFor('every series queued', async () => ((await queued()).length === 4 ? true : undefined), 180_000, 500);
    assert.equal(await stored(), mail.length);
    assert.deepEqual((await queued()).map((q) => q.root).sort(), series.map((s) => s[0]?.messageId).sort());
    assert.equal(await jobs(), 4);

    // Killed between polls: after a poll has ended.
    const polled = (await store.lore.inbox(pi.url)).lastOkAt?.getTime() ?? 0;
    await waitFor('another poll', async () => (((await store.lore.inbox(pi.url)).lastOkAt?.getTime() ?? 0) > polled ? true : undefined), 60_000, 100);
    second.kill('SIGKILL');
    await exited(second);
    const late = makeSeries(tree, { id: 'r-late', title: 'io_uring: after the restart', files: ['io_uring/kbuf.c'], seed: 299 });
    pi.deliverMany(late.map((m) => m.raw), { received: true });

    // Two watchers at once: one polls, the other waits for the lease.
    const third = startWatcher();
    const fourth = startWatcher();
    await waitFor('the late series queued', async () => ((await queued()).length === 5 ? true : undefined), 180_000, 500);
    await new Promise((r) => setTimeout(r, 6000)); // a few more polls by whichever holds the lease
    assert.equal(await stored(), mail.length + late.length);
    assert.equal((await queued()).length, 5);
    assert.equal(await jobs(), 5, 'no series queued twice');
    const holders = await store.db.selectFrom('lore_lease').select('holder').execute();
    assert.equal(holders.length, 1);
    assert.ok([third.pid, fourth.pid].some((pid) => holders[0]?.holder.includes(`-${pid ?? 0}-`)), 'the lease is one of theirs');

    // SIGTERM: both stop, within the bound, and the lease is let go.
    third.kill('SIGTERM');
    fourth.kill('SIGTERM');
    assert.deepEqual(await Promise.all([exited(third), exited(fourth)]), [0, 0]);
    assert.equal((await store.db.selectFrom('lore_lease').select('holder').execute()).length, 0);
  });
});

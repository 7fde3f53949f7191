/** The embedded database is opened by one process at a time; a dead owner does not lock it out. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../db.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));

function openElsewhere(dataDir: string): { status: number | null; stderr: string } {
  const script = `
    import { openDatabase } from './services/store/db.ts';
    try { const s = await openDatabase({ databaseUrl: null, dataDir: ${JSON.stringify(dataDir)} }); await s.close(); }
    catch (e) { process.stderr.write(e.code + ': ' + e.message); process.exit(3); }`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stderr: r.stderr };
}

test('a second process cannot open an embedded database that is open; it can once it is closed', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'patchbay-owner-'));
  try {
    const store = await openDatabase({ databaseUrl: null, dataDir: dir });
    const busy = openElsewhere(dir);
    assert.equal(busy.status, 3, busy.stderr);
    assert.match(busy.stderr, /^DATABASE_IN_USE: .* open in process \d+/);
    await store.close();
    const free = openElsewhere(dir);
    assert.equal(free.status, 0, free.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the owner file of a process that died does not lock the database', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'patchbay-owner-'));
  try {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(join(dir, 'pglite.owner'), dead.stdout);
    const store = await openDatabase({ databaseUrl: null, dataDir: dir });
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

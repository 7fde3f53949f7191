/**
 * The Docker port on the real engine: the hardening a job container gets,
 * exec timeouts, idempotent disposal, and reaping the containers of a runner
 * that was killed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../../services/config/config.ts';
import { DockerEngine, type JobContainer } from '../docker.ts';
import { ensureBaseImage } from '../images.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const config = loadConfig(process.env);
const engine = new DockerEngine(config.docker.socketPath);
let image = '';

const spec = (name: string) => ({
  image,
  name: `${name}-${process.pid}`,
  labels: { 'org.patchbay.role': 'test' },
  mounts: [],
  memoryBytes: 512 * 1024 * 1024,
  cpus: 1,
  pids: 128,
  devices: [],
  fileSizeBytes: 64 * 1024 * 1024,
  tmpBytes: 64 * 1024 * 1024,
  command: ['sleep', 'infinity'],
});

async function started(name: string): Promise<JobContainer> {
  const c = await engine.create(spec(name));
  await c.start();
  return c;
}

describe('Docker port', { timeout: 15 * 60_000 }, () => {
  let box: JobContainer;

  before(async () => {
    await engine.ping();
    image = await ensureBaseImage(engine, {
      imagesDir: config.imagesDir, baseImage: config.docker.baseImage, env: process.env,
      onLog: (l) => { process.stderr.write(`  ${l}\n`); },
    });
    box = await started('patchbay-test-hardening');
  });

  after(async () => { await box.dispose(); });

  test('a job container has no capabilities, no new privileges, no network, and its limits', async () => {
    const status = await box.exec(['cat', '/proc/self/status']);
    assert.equal(status.exitCode, 0, status.tail);
    assert.match(status.tail, /^CapEff:\s+0000000000000000$/m);
    assert.match(status.tail, /^CapBnd:\s+0000000000000000$/m);
    assert.match(status.tail, /^NoNewPrivs:\s+1$/m);
    const net = await box.exec(['ls', '/sys/class/net']);
    assert.deepEqual(net.tail.trim().split(/\s+/), ['lo']);
    const pids = await box.exec(['sh', '-c', 'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max']);
    assert.equal(pids.tail.trim(), '128');
    const mem = await box.exec(['sh', '-c', 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max']);
    assert.equal(Number(mem.tail.trim()), 512 * 1024 * 1024);
    // A user namespace (dockerd's userns-remap): uid 0 inside is not the host's uid 0.
    const map = await box.exec(['cat', '/proc/self/uid_map']);
    const [inside, outside] = map.tail.trim().split(/\s+/).map(Number);
    assert.equal(inside, 0);
    assert.ok((outside ?? 0) >= 65536, `uid 0 inside is host uid ${String(outside)}: ${map.tail}`);
    const write = await box.exec(['sh', '-c', 'echo x > /etc/hostname-test && chown 1:1 /etc/hostname-test']);
    assert.notEqual(write.exitCode, 0, 'chown needs CAP_CHOWN, which is dropped');
  });

  test('exec output streams and exit codes come back; a timeout kills the command', async () => {
    const chunks: string[] = [];
    const r = await box.exec(['sh', '-c', 'echo one; echo two >&2; exit 3'], { onOutput: (t) => { chunks.push(t); } });
    assert.equal(r.exitCode, 3);
    assert.match(chunks.join(''), /one/);
    assert.match(chunks.join(''), /two/);
    const t0 = Date.now();
    const slow = await box.exec(['sleep', '60'], { timeoutSeconds: 1 });
    assert.equal(slow.timedOut, true);
    assert.ok(Date.now() - t0 < 30_000, 'the timeout cut the command short');
  });

  test('dispose is idempotent and exec after it fails cleanly', async () => {
    const c = await started('patchbay-test-dispose');
    await c.dispose();
    await c.dispose();
    const r = await c.exec(['true']);
    assert.equal(r.exitCode, -1);
  });

  /** A child process that starts a container and is then killed without cleanup; its hostname may differ (a worker container's). */
  async function orphanOf(name: string, host?: string): Promise<string> {
    const script = `
      import { DockerEngine } from './runners/executor/docker.ts';
      const e = new DockerEngine(${JSON.stringify(config.docker.socketPath)});
      const c = await e.create(${JSON.stringify({ ...spec(name), image })});
      await c.start();
      process.stdout.write(c.id + '\\n');
      setInterval(() => {}, 1000);
    `;
    const node = [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script];
    // Another host name: a UTS namespace of its own (as a worker container has).
    const argv = host === undefined ? node : ['unshare', '--uts', 'sh', '-c', `hostname ${host} && exec "$@"`, 'sh', ...node];
    const child = spawn(argv[0] ?? '', argv.slice(1), { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    const id = await new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (b: Buffer) => { resolve(b.toString().trim()); });
      child.once('exit', (code) => { reject(new Error(`child exited ${code}`)); });
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    return id;
  }

  test('containers of a runner killed with SIGKILL are reaped, live ones are not', async () => {
    const id = await orphanOf('patchbay-test-orphan');
    const reaped = await engine.reapOrphans(3600);
    assert.ok(reaped.some((n) => n.startsWith('patchbay-test-orphan')), `reaped: ${reaped.join(', ')}`);
    assert.ok(!reaped.some((n) => n.startsWith('patchbay-test-hardening')), 'a live owner\'s container stays');
    const again = await box.exec(['true']);
    assert.equal(again.exitCode, 0);
    assert.ok(id.length > 0);
  });

  test('a container whose owner cannot be checked (another host name) stays until it is older than any job', async () => {
    await orphanOf('patchbay-test-foreign', `patchbay-test-${process.pid}`);
    assert.ok(!(await engine.reapOrphans(3600)).some((n) => n.startsWith('patchbay-test-foreign')), 'a young container of another host was removed');
    const reaped = await engine.reapOrphans(0);
    assert.ok(reaped.some((n) => n.startsWith('patchbay-test-foreign')), `reaped: ${reaped.join(', ')}`);
    assert.ok(!reaped.some((n) => n.startsWith('patchbay-test-hardening')), 'a live owner\'s container stays');
  });
});

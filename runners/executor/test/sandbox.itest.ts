/**
 * The job sandbox on the real Docker engine, attacked from inside as a
 * series' Makefile would (the runner image, its unprivileged user): links
 * and special files planted where artifacts are copied from, inputs
 * rewritten, processes left behind between stages, the compiler cache
 * written, output and files without end. Each attack's outcome is asserted
 * on the host side. (The same attacks through a whole job: hostile.itest.ts.)
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../../services/config/config.ts';
import { isPatchbayError } from '../../../services/domain/errors.ts';
import { DockerEngine, type ContainerSpec } from '../docker.ts';
import { ensureImages } from '../images.ts';
import { ArtifactsDir, JOB_IN, JOB_OUT, Sandbox, type SandboxLimits } from '../sandbox.ts';
import { READ_ONLY_CCACHE } from '../stages/build.ts';

const config = loadConfig(process.env);
const engine = new DockerEngine(config.docker.socketPath);
const MiB = 1024 * 1024;
const id = randomBytes(3).toString('hex');
const volume = `patchbay-test-ccache-${id}`;
const host = mkdtempSync(join(tmpdir(), 'patchbay-sandbox-'));
// A host file that must never come back as an artifact.
const secret = join(host, 'admin-token');
const secretText = `secret-${randomBytes(8).toString('hex')}`;
let image = '';

const limits: SandboxLimits = { diskBytes: 256 * MiB, diskCheckMs: 500, outputLimitBytes: 256 * 1024 };
const spec = (name: string, ccache: 'ro' | 'rw'): ContainerSpec => ({
  image,
  name: `patchbay-test-${name}-${id}`,
  labels: { 'org.patchbay.role': 'test' },
  mounts: [{ kind: 'volume', source: volume, target: '/ccache', readOnly: ccache === 'ro' }],
  memoryBytes: 1024 * MiB,
  cpus: 1,
  pids: 256,
  devices: [],
  fileSizeBytes: 64 * MiB,
  tmpBytes: 64 * MiB,
});
const sh = (script: string): string[] => ['bash', '-c', script];

describe('the job sandbox under attack from inside', { timeout: 20 * 60_000 }, () => {
  const boxes: Sandbox[] = [];
  const make = async (name: string, ccache: 'ro' | 'rw' = 'ro', inputs: Parameters<typeof Sandbox.create>[2] = []): Promise<Sandbox> => {
    const box = await Sandbox.create(engine, spec(name, ccache), inputs, limits);
    boxes.push(box);
    return box;
  };

  before(async () => {
    await engine.ping();
    writeFileSync(secret, secretText, { mode: 0o600 });
    const images = await ensureImages(engine, {
      imagesDir: config.imagesDir, baseImage: config.docker.baseImage, env: process.env,
      onLog: (l) => { process.stderr.write(`  ${l}\n`); },
    });
    image = images.runner;
  });

  after(async () => {
    await Promise.all(boxes.map((b) => b.dispose()));
    await engine.removeVolume(volume);
    rmSync(host, { recursive: true, force: true });
  });

  test('links, hard links and FIFOs planted as artifacts are refused; only regular files come out', async () => {
    const box = await make('links');
    const planted = await box.stage((c) => c.exec(sh(`
      set -e; cd ${JOB_OUT}
      echo 'KTAP version 1' > ktap.txt
      ln -s ${secret} console.log
      ln -s /etc/shadow kernel.config
      ln -s / bzImage
      echo data > real; ln real build.log
      mkfifo changed-files.txt
      mkdir initramfs.cpio.gz
    `)));
    assert.equal(planted.exitCode, 0, planted.tail);
    const art = ArtifactsDir.create(join(host, 'jobs'), 'links');
    const names = ['ktap.txt', 'console.log', 'kernel.config', 'bzImage', 'build.log', 'changed-files.txt', 'initramfs.cpio.gz', 'missing.txt'];
    const out = await box.collect(JOB_OUT, names.map((name) => ({ name, maxBytes: MiB, truncate: true })), art.path);
    const by = new Map(out.map((o) => [o.name, o]));
    assert.equal(by.get('ktap.txt')?.kept, true);
    // A hard link to the job's own file comes out as a copy of its content (a
    // tar of one path holds a regular file): the job's own data, nothing else.
    assert.equal(by.get('build.log')?.kept, true);
    assert.equal(readFileSync(art.file('build.log'), 'utf8'), 'data\n');
    for (const [name, why] of [['console.log', /symbolic link/], ['kernel.config', /symbolic link/], ['bzImage', /symbolic link/], ['changed-files.txt', /FIFO/], ['initramfs.cpio.gz', /folder/], ['missing.txt', /absent/]] as const) {
      const o = by.get(name);
      assert.equal(o?.kept, false, name);
      assert.match(o.reason, why, name);
    }
    assert.deepEqual(art.list(), ['build.log', 'ktap.txt']);
    for (const name of readdirSync(art.path)) {
      assert.ok(lstatSync(join(art.path, name)).isFile(), `${name} is a regular file`);
      assert.ok(!readFileSync(join(art.path, name), 'utf8').includes(secretText), `${name} does not hold the host secret`);
    }
  });

  test('inputs are read-only to the job: neither rewritten nor swapped for its own', async () => {
    const box = await make('inputs', 'ro', [{ type: 'file', path: `${JOB_IN}/series.mbox`, mode: 0o444, uid: 0, content: 'the real series\n' }]);
    const r = await box.stage((c) => c.exec(sh(`
      id -u
      echo forged > ${JOB_IN}/series.mbox && echo WROTE
      rm -f ${JOB_IN}/series.mbox && echo REMOVED
      mv ${JOB_IN} /job/old && echo MOVED
      mkdir -p /tmp/x && mv /tmp/x ${JOB_IN}/x && echo ADDED
      cat ${JOB_IN}/series.mbox
    `)));
    assert.match(r.tail, /^1000$/m);
    assert.doesNotMatch(r.tail, /WROTE|REMOVED|MOVED|ADDED/);
    assert.match(r.tail, /the real series/);
  });

  test('no process a stage started survives into the next stage', async () => {
    const box = await make('procs');
    await box.stage(async (c) => {
      const r = await c.exec(sh('setsid nohup sleep 100001 >/dev/null 2>&1 & disown; sleep 0.5; pgrep -f "sleep 10000[1]" >/dev/null && echo STARTED'));
      assert.match(r.tail, /STARTED/);
    });
    await box.stage(async (c) => {
      const r = await c.exec(sh('pgrep -f "sleep 10000[1]" && echo SURVIVED || echo GONE; ls /tmp'));
      assert.match(r.tail, /GONE/);
      assert.doesNotMatch(r.tail, /SURVIVED/);
    });
  });

  test('the compiler cache: a series build reads it and cannot add to it or change it', async () => {
    const c = 'int f(int x) { return x * 3; }\n';
    const compile = (box: Sandbox, env: Record<string, string>) => box.stage((r) => r.exec(sh(`printf '%s' '${c}' > /tmp/a.c && ccache gcc -c /tmp/a.c -o /tmp/a.o && echo BUILT; ccache -s -v 2>/dev/null | grep -iE '^ *(hits|misses|direct|preprocessed)' || true`), { env }));
    // A trusted writer (a warm-base build) fills the cache.
    const writer = await make('ccache-writer', 'rw');
    assert.match((await compile(writer, {})).tail, /BUILT/);
    const count = async (box: Sandbox): Promise<string> => box.stage(async (r) => (await r.exec(sh('find /ccache -type f | grep -v -e stats -e /tmp/ | sort | xargs -r md5sum'))).tail);
    const before = await count(writer);
    assert.notEqual(before.trim(), '', 'the writer put entries in the cache');
    const series = await make('ccache-series', 'ro');
    const attack = await series.stage((r) => r.exec(sh('touch /ccache/poison && echo POISONED; for f in $(find /ccache -type f | head -3); do echo x >> "$f" && echo ALTERED; done; true')));
    assert.doesNotMatch(attack.tail, /POISONED|ALTERED/);
    assert.match(attack.tail, /Read-only file system/);
    // A series build with the job's settings compiles (a hit, and a miss it does not store).
    const built = await series.stage((r) => r.exec(sh(`printf '%s' '${c}' > /tmp/a.c && ccache gcc -c /tmp/a.c -o /tmp/a.o && printf 'int g(void){return 7;}\\n' > /tmp/b.c && ccache gcc -c /tmp/b.c -o /tmp/b.o && echo BUILT`), { env: READ_ONLY_CCACHE }));
    assert.match(built.tail, /BUILT/, built.tail);
    assert.equal(await count(writer), before, 'the cache is exactly what the trusted writer left');
  });

  test('output without end is cut at its limit with a marker; the job goes on', async () => {
    const box = await make('flood');
    const seen: string[] = [];
    const r = await box.stage((c) => c.exec(sh('head -c 50000000 /dev/zero | tr "\\0" x; echo; echo END'), { onOutput: (t) => { seen.push(t); } }));
    assert.equal(r.exitCode, 0);
    const text = seen.join('');
    assert.ok(Buffer.byteLength(text) < limits.outputLimitBytes + 1024, `streamed ${Buffer.byteLength(text)} bytes`);
    assert.match(text, /patchbay: output cut at 256 KiB/);
    assert.match(r.tail, /END/, 'the tail still has the end of the output');
  });

  test('no file grows past the file-size limit, nor /tmp past its size', async () => {
    const box = await make('files');
    const r = await box.stage((c) => c.exec(sh(`
      dd if=/dev/zero of=${JOB_OUT}/huge bs=1M count=100 2>&1 | tail -1; stat -c 'huge %s' ${JOB_OUT}/huge
      dd if=/dev/zero of=/tmp/a bs=1M count=40 status=none; dd if=/dev/zero of=/tmp/b bs=1M count=40 2>&1 | head -3
    `)));
    assert.match(r.tail, /huge 67108864/, r.tail);
    assert.match(r.tail, /No space left on device/, r.tail);
  });

  test('a job filling its disk is stopped at its budget with JOB_LIMIT', async () => {
    const box = await make('disk');
    const t0 = Date.now();
    const err = await box.stage((c) => c.exec(sh(`for i in $(seq 1 100); do dd if=/dev/zero of=${JOB_OUT}/f$i bs=1M count=60 status=none || exit 1; done; echo FILLED`))).then(() => null, (e: unknown) => e);
    assert.ok(isPatchbayError(err), `threw ${String(err)}`);
    assert.equal(err.code, 'JOB_LIMIT');
    assert.match(err.message, /over its 256 MiB limit/);
    assert.ok(Number(err.details.usedBytes) < 2048 * MiB, `${String(err.details.usedBytes)} bytes written before the stop`);
    assert.ok(Date.now() - t0 < 120_000, 'stopped well before it wrote 6 GB');
  });
});

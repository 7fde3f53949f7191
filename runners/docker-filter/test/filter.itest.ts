/**
 * The Docker API filter on the real engine: the executor's own code
 * (DockerEngine, Sandbox) works through it, from create to commit to
 * removal; what a compromised worker would send instead is refused, and the
 * engine shows nothing was made or touched.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import tar from 'tar-stream';
import { loadConfig } from '../../../services/config/config.ts';
import { DockerEngine, OWNER_LABEL, type ContainerSpec } from '../../executor/docker.ts';
import { ensureImages } from '../../executor/images.ts';
import { JOB_IN, JOB_OUT, Sandbox } from '../../executor/sandbox.ts';
import { DockerFilter } from '../proxy.ts';
import { filterRules } from '../rules.ts';

const config = loadConfig(process.env);
const direct = new DockerEngine(config.docker.socketPath);
const MiB = 1024 * 1024;
const id = randomBytes(3).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'patchbay-filter-'));
const cacheDir = join(dir, 'cache');
const mirror = join(cacheDir, 'trees', 'tree.git');
const listen = join(dir, 'docker.sock');
const volume = `patchbay-test-ccache-${id}`;
const warmTag = `patchbay/warm:test-${id}`;
let image = '';
let filter: DockerFilter | null = null;
const viaFilter = new DockerEngine(listen);

interface Reply { status: number; body: string }

/** One raw HTTP request on a Unix socket: the bytes a compromised worker could send. */
function request(socketPath: string, method: string, path: string, body?: string | Buffer, upgrade = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { Host: 'docker' };
    // A string is JSON; a Buffer is a tar (a build context).
    if (body !== undefined) Object.assign(headers, { 'Content-Type': typeof body === 'string' ? 'application/json' : 'application/x-tar', 'Content-Length': Buffer.byteLength(body) });
    // As dockerode asks for an exec's output (hijack).
    if (upgrade) Object.assign(headers, { Connection: 'Upgrade', Upgrade: 'tcp' });
    const req = http.request({ socketPath, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => { text += b.toString(); });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: text }); });
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '(upgraded)' });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const spec = (name: string): ContainerSpec => ({
  image,
  name: `patchbay-test-filter-${name}-${id}`,
  labels: { 'org.patchbay.role': 'test' },
  mounts: [
    { kind: 'volume', source: volume, target: '/ccache', readOnly: true },
    { kind: 'bind', source: mirror, target: '/trees/tree.git', readOnly: true },
  ],
  memoryBytes: 512 * MiB,
  cpus: 1,
  pids: 128,
  devices: [],
  fileSizeBytes: 64 * MiB,
  tmpBytes: 16 * MiB,
});

/** The create body DockerEngine.create sends, with some change made to it. */
function createBody(change: (b: { HostConfig: Record<string, unknown> } & Record<string, unknown>) => void): string {
  const body = {
    Image: image,
    Labels: { [OWNER_LABEL]: `attacker:${id}` },
    NetworkDisabled: true,
    HostConfig: { NetworkMode: 'none', CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], Memory: 256 * MiB, MemorySwap: 256 * MiB, NanoCpus: 1e9, PidsLimit: 64 } as Record<string, unknown>,
  };
  change(body);
  return JSON.stringify(body);
}

describe('the Docker API filter on the real engine', { timeout: 10 * 60_000 }, () => {
  before(async () => {
    await direct.ping();
    mkdirSync(mirror, { recursive: true });
    symlinkSync('/etc', join(cacheDir, 'trees', 'etc.git'));
    image = (await ensureImages(direct, {
      imagesDir: config.imagesDir, baseImage: config.docker.baseImage, env: process.env,
      onLog: (l) => { process.stderr.write(`  ${l}\n`); },
    })).runner;
    const rules = filterRules({ mirrorsDir: join(cacheDir, 'trees'), docker: { ...config.docker, ccacheVolume: volume } });
    filter = await DockerFilter.start({ listen, upstream: config.docker.socketPath, rules, logger: pino({ level: 'silent' }) });
  });

  after(async () => {
    await filter?.close();
    await filter?.close(); // idempotent
    await direct.remove(warmTag);
    await direct.removeVolume(volume);
    rmSync(dir, { recursive: true, force: true });
  });

  test('the executor works through it: sandbox, exec, copy in and out, disk usage, commit, lists, removal', async () => {
    await viaFilter.ping();
    assert.ok((await viaFilter.imageId(image)) !== null);
    const box = await Sandbox.create(viaFilter, spec('ok'), [{ type: 'file', path: `${JOB_IN}/series.mbox`, mode: 0o644, uid: 0, content: Buffer.from('From x\n') }], { diskBytes: 256 * MiB, diskCheckMs: 500, outputLimitBytes: 64 * 1024 });
    try {
      let printed = '';
      const outcome = await box.stage((c) => c.exec(['bash', '-c', `cat /job/in/series.mbox; ls /trees/tree.git >/dev/null; echo 'KTAP version 1' > ${JOB_OUT}/ktap.txt`], { onOutput: (t) => { printed += t; } }));
      assert.equal(outcome.exitCode, 0, outcome.tail);
      assert.equal(printed, 'From x\n');
      const out = mkdtempSync(join(dir, 'out-'));
      // A path that is not there is the engine's 404, passed through ("absent").
      const got = await box.collect(JOB_OUT, [{ name: 'ktap.txt', maxBytes: MiB, truncate: true }, { name: 'none', maxBytes: MiB, truncate: true }], out);
      assert.deepEqual(got.map((g) => [g.name, g.kept]), [['ktap.txt', true], ['none', false]]);
      await box.commit(warmTag, { 'org.patchbay.image': 'warm', 'org.patchbay.test': id });
      assert.ok((await viaFilter.imageId(warmTag)) !== null);
      const listed = await viaFilter.list({ 'org.patchbay.image': 'warm', 'org.patchbay.test': id });
      assert.deepEqual(listed.map((i) => i.tags), [[warmTag]]);
      assert.deepEqual(await viaFilter.reapOrphans(3600), []);
    } finally {
      await box.dispose();
    }
    assert.equal((await request(config.docker.socketPath, 'GET', `/containers/patchbay-test-filter-ok-${id}/json`)).status, 404);
  });

  test('create bodies the executor never sends are refused, and no container is made', async () => {
    const attempts: Array<[string, string, RegExp]> = [
      ['privileged', createBody((b) => { b.HostConfig.Privileged = true; }), /"Privileged" is not allowed/],
      ['privileged, lower case', createBody((b) => { b.HostConfig.privileged = true; }), /"privileged" is not allowed/],
      ['privileged, escaped', createBody(() => undefined).replace('"NetworkMode"', '"\\u0050rivileged":true,"NetworkMode"'), /"Privileged" is not allowed/],
      ['host root bound', createBody((b) => { b.HostConfig.Binds = ['/:/host']; }), /"Binds"/],
      ['the engine socket', createBody((b) => { b.HostConfig.Mounts = [{ Type: 'bind', Source: config.docker.socketPath, Target: '/s', ReadOnly: true }]; }), /outside/],
      ['a mirror link to /etc', createBody((b) => { b.HostConfig.Mounts = [{ Type: 'bind', Source: join(cacheDir, 'trees', 'etc.git'), Target: '/e', ReadOnly: true }]; }), /goes through a link/],
      ['host network', createBody((b) => { b.HostConfig.NetworkMode = 'host'; }), /NetworkMode/],
      ['capabilities', createBody((b) => { b.HostConfig.CapAdd = ['SYS_ADMIN']; }), /"CapAdd"/],
      ['foreign image', createBody((b) => { b.Image = 'debian:bookworm'; }), /not one of patchbay's images/],
    ];
    for (const [what, body, why] of attempts) {
      const reply = await request(listen, 'POST', `/containers/create?name=patchbay-test-filter-evil-${id}`, body);
      assert.equal(reply.status, 403, `${what}: ${reply.body}`);
      assert.match((JSON.parse(reply.body) as { message: string }).message, why, what);
    }
    const noPrefix = await request(listen, 'POST', `/containers/create?name=evil-${id}`, createBody(() => undefined));
    assert.equal(noPrefix.status, 403);
    // The engine has neither.
    assert.equal((await request(config.docker.socketPath, 'GET', `/containers/patchbay-test-filter-evil-${id}/json`)).status, 404);
    assert.equal((await request(config.docker.socketPath, 'GET', `/containers/evil-${id}/json`)).status, 404);
  });

  test('calls on containers that are not patchbay\'s are refused, and the container is untouched', async () => {
    // A container someone else runs on this engine (made directly, not through the filter).
    const name = `other-${id}`;
    const made = await request(config.docker.socketPath, 'POST', `/containers/create?name=${name}`, JSON.stringify({ Image: image, Cmd: ['sleep', '600'], HostConfig: { NetworkMode: 'none' } }));
    assert.equal(made.status, 201, made.body);
    try {
      assert.equal((await request(config.docker.socketPath, 'POST', `/containers/${name}/start`)).status, 204);
      const execMade = await request(config.docker.socketPath, 'POST', `/containers/${name}/exec`, JSON.stringify({ Cmd: ['true'] }));
      const execId = (JSON.parse(execMade.body) as { Id: string }).Id;
      const fullId = (JSON.parse(made.body) as { Id: string }).Id;
      const calls: Array<[string, string, string?, boolean?]> = [
        ['POST', `/containers/${name}/exec`, JSON.stringify({ Cmd: ['cat', '/etc/shadow'], AttachStdout: true })],
        ['POST', `/containers/${fullId}/kill`],
        ['DELETE', `/containers/${name}?force=true`],
        ['GET', `/containers/${name}/archive?path=%2Fetc%2Fshadow`],
        ['PUT', `/containers/${name}/archive?path=%2F`],
        ['GET', `/containers/${name}/json`],
        ['POST', `/commit?container=${name}&repo=patchbay%2Fwarm&tag=stolen-${id}`],
        ['POST', `/exec/${execId}/start`, JSON.stringify({ Detach: false }), true],
      ];
      for (const [method, path, body, upgrade] of calls) {
        const reply = await request(listen, method, path, body, upgrade);
        assert.equal(reply.status, 403, `${method} ${path}: ${reply.status} ${reply.body}`);
        assert.match(reply.body, /is not one of patchbay's/);
      }
      const info = JSON.parse((await request(config.docker.socketPath, 'GET', `/containers/${name}/json`)).body) as { State: { Running: boolean } };
      assert.equal(info.State.Running, true);
      assert.equal(await direct.imageId(`patchbay/warm:stolen-${id}`), null);
    } finally {
      await request(config.docker.socketPath, 'DELETE', `/containers/${name}?force=true`);
    }
  });

  test('no builds but the job-image overlay, no pulls, no other endpoints, no router tricks', async () => {
    const post = (path: string, body: Buffer): Promise<Reply> => request(listen, 'POST', path, body);
    // A build context with a Dockerfile of the worker's own choosing.
    const pack = tar.pack();
    pack.entry({ name: 'Dockerfile' }, `FROM ${image}\nRUN cat /etc/hostname > /leak\n`);
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const b of pack as AsyncIterable<Buffer>) chunks.push(b);
    const evilContext = Buffer.concat(chunks);
    const intoRunner = await post(`/build?t=patchbay/runner:evil-${id}`, evilContext);
    assert.equal(intoRunner.status, 403);
    assert.match(intoRunner.body, /not one of patchbay's images/);
    const args = encodeURIComponent(JSON.stringify({ WARM: `patchbay/warm:x-${id}`, RUNNER: image }));
    const otherFile = await post(`/build?t=patchbay/job:evil-${id}&dockerfile=Dockerfile&buildargs=${args}`, evilContext);
    assert.equal(otherFile.status, 403);
    assert.match(otherFile.body, /must hold the job-image Dockerfile and nothing else/);
    for (const [method, path, status] of [
      ['POST', '/images/create?fromImage=alpine&tag=latest', 403],
      ['POST', '/volumes/create', 403],
      ['GET', '/containers/json?all=1', 403],
      ['GET', '/info', 403],
      ['POST', '/containers/patchbay-x/../../build', 400],
      ['POST', '/containers/patchbay-x/%2E%2E/%2E%2E/build', 400],
    ] as const) {
      const reply = await request(listen, method, path, method === 'POST' ? '{}' : undefined);
      assert.equal(reply.status, status, `${method} ${path}: ${reply.body}`);
    }
    assert.equal(await direct.imageId(`patchbay/runner:evil-${id}`), null);
    assert.equal(await direct.imageId(`patchbay/job:evil-${id}`), null);
  });
});

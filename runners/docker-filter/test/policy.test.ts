/**
 * The filter's policy, request line by request line: the calls the executor
 * makes pass in a canonical form; the ones a compromised worker would make
 * to get out (privileged containers, host binds, other containers, image
 * builds, crafted JSON and paths) are refused with a reason.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkCreateBody, checkExecBody, route, type FilterRules, type Plan } from '../policy.ts';

const rules: FilterRules = {
  namePrefix: 'patchbay-',
  ownerLabel: 'org.patchbay.owner',
  imageRepos: ['patchbay/runner', 'patchbay/warm'],
  commitRepos: ['patchbay/warm'],
  bindRoots: ['/cache/trees'],
  volumes: ['patchbay-ccache'],
  devices: ['/dev/kvm'],
  overlay: { repo: 'patchbay/job', dockerfile: 'FROM x\n', args: { WARM: 'patchbay/warm', RUNNER: 'patchbay/runner' } },
};

/** What runners/executor/docker.ts sends for a job container (dockerode adds the name). */
const createBody = (): Record<string, unknown> => ({
  name: 'patchbay-job-1',
  Image: 'patchbay/warm:18ee02b423bb0ad7',
  Labels: { 'org.patchbay.owner': 'host:42', 'org.patchbay.role': 'series' },
  NetworkDisabled: true,
  HostConfig: {
    NetworkMode: 'none',
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    Memory: 6442450944,
    MemorySwap: 6442450944,
    NanoCpus: 2000000000,
    PidsLimit: 4096,
    ReadonlyRootfs: false,
    Init: false,
    AutoRemove: false,
    Mounts: [
      { Type: 'volume', Source: 'patchbay-ccache', Target: '/ccache', ReadOnly: true },
      { Type: 'bind', Source: '/cache/trees/linux.git', Target: '/trees/tree.git', ReadOnly: true },
    ],
    Devices: [{ PathOnHost: '/dev/kvm', PathInContainer: '/dev/kvm', CgroupPermissions: 'rwm' }],
    Ulimits: [{ Name: 'fsize', Soft: 2147483648, Hard: 2147483648 }],
    Tmpfs: { '/tmp': 'rw,exec,nosuid,nodev,size=1073741824' },
  },
});

function allowed(method: string, url: string): Plan {
  const d = route(method, url, rules);
  assert.ok(d.allow, `${method} ${url} refused: ${d.allow ? '' : d.reason}`);
  return d.plan;
}

function refused(method: string, url: string, why: RegExp): void {
  const d = route(method, url, rules);
  assert.ok(!d.allow, `${method} ${url} was allowed`);
  assert.match(d.reason, why);
}

/** The create body with one change, checked. */
function createWith(change: (b: Record<string, unknown> & { HostConfig: Record<string, unknown> }) => void): () => unknown {
  const body = createBody() as Record<string, unknown> & { HostConfig: Record<string, unknown> };
  change(body);
  return () => checkCreateBody(body, rules);
}

describe('docker filter policy: the executor\'s calls', () => {
  test('container create passes with the query cut to the name and the body re-serialised as checked', () => {
    // dockerode puts every option in the query string too.
    const plan = allowed('POST', '/v1.41/containers/create?name=patchbay-job-1&Image=patchbay%2Fwarm%3Ax&HostConfig=%7B%7D');
    assert.equal(plan.path, '/v1.41/containers/create?name=patchbay-job-1');
    assert.ok(plan.body.kind === 'json');
    const out = plan.body.check(createBody());
    const expected = createBody();
    delete expected.name;
    assert.deepEqual(out, expected);
  });

  test('per-container calls name the container to check and keep only the known query', () => {
    const cases: Array<[string, string, string]> = [
      ['POST', '/containers/patchbay-job-1/start', '/containers/{container}/start'],
      ['POST', '/containers/abc123/kill?', '/containers/{container}/kill'],
      ['POST', '/containers/abc123/wait?condition=not-running', '/containers/{container}/wait?condition=not-running'],
      ['GET', '/containers/abc123/json?size=true', '/containers/{container}/json?size=true'],
      ['GET', '/containers/abc123/archive?path=%2Fjob%2Fout%2Fktap.txt', '/containers/{container}/archive?path=%2Fjob%2Fout%2Fktap.txt'],
      ['PUT', '/containers/abc123/archive?path=%2F', '/containers/{container}/archive?path=%2F'],
      ['DELETE', '/containers/abc123?force=true&v=true', '/containers/{container}?force=true&v=true'],
      ['POST', '/containers/abc123/exec', '/containers/{container}/exec'],
    ];
    for (const [method, url, path] of cases) {
      const plan = allowed(method, url);
      assert.equal(plan.path, path, url);
      assert.ok(plan.container === 'patchbay-job-1' || plan.container === 'abc123');
    }
    assert.equal(allowed('PUT', '/containers/abc123/archive?path=%2F').body.kind, 'stream');
    assert.equal(allowed('POST', '/containers/abc123/start').body.kind, 'none');
  });

  test('exec start upgrades, names the exec instance, and gets a fixed body', () => {
    const id = 'a'.repeat(64);
    const plan = allowed('POST', `/exec/${id}/start`);
    assert.equal(plan.hijack, true);
    assert.equal(plan.exec, id);
    assert.deepEqual(plan.body.kind === 'json' ? plan.body.check({ hijack: true, stdin: false }) : null, { Detach: false, Tty: false });
    assert.equal(allowed('GET', `/exec/${id}/json`).exec, id);
  });

  test('commit to the warm-base repository with LABEL changes only', () => {
    const plan = allowed('POST', '/commit?container=abc&repo=patchbay%2Fwarm&tag=k1&pause=true&changes=LABEL%20org.patchbay.image%3D%22warm%22%0ALABEL%20org.patchbay.owner%3D%22%22');
    assert.equal(plan.container, 'abc');
    assert.match(plan.path, /^\/commit\?container=\{container\}&repo=patchbay%2Fwarm&tag=k1&pause=true&changes=LABEL/);
    assert.equal(plan.body.kind, 'none');
  });

  test('reads: ping, images of patchbay, lists filtered by patchbay labels', () => {
    allowed('GET', '/_ping');
    allowed('HEAD', '/_ping');
    allowed('GET', '/images/patchbay/warm:18ee02b423bb0ad7/json');
    allowed('GET', `/containers/json?all=true&filters=${encodeURIComponent('{"label":["org.patchbay.owner"]}')}`);
    allowed('GET', `/images/json?filters=${encodeURIComponent('{"label":["org.patchbay.image=warm","org.patchbay.runner=sha256:1"]}')}`);
  });
});

describe('docker filter policy: what a compromised worker would ask', () => {
  test('privileges in the create body are refused, whatever their spelling', () => {
    const cases: Array<[string, () => unknown, RegExp]> = [
      ['Privileged', createWith((b) => { b.HostConfig.Privileged = true; }), /"Privileged" is not allowed/],
      ['lower-case key (Go matches keys case-insensitively)', createWith((b) => { b.HostConfig.privileged = true; }), /"privileged" is not allowed/],
      ['CapAdd', createWith((b) => { b.HostConfig.CapAdd = ['SYS_ADMIN']; }), /"CapAdd"/],
      ['CapDrop other than ALL', createWith((b) => { b.HostConfig.CapDrop = ['NET_RAW']; }), /CapDrop/],
      ['host network', createWith((b) => { b.HostConfig.NetworkMode = 'host'; }), /NetworkMode/],
      ['host pid namespace', createWith((b) => { b.HostConfig.PidMode = 'host'; }), /"PidMode"/],
      ['user namespace off', createWith((b) => { b.HostConfig.UsernsMode = 'host'; }), /"UsernsMode"/],
      ['seccomp off', createWith((b) => { b.HostConfig.SecurityOpt = ['no-new-privileges', 'seccomp=unconfined']; }), /SecurityOpt/],
      ['Binds', createWith((b) => { b.HostConfig.Binds = ['/:/host']; }), /"Binds"/],
      ['bind of /', createWith((b) => { b.HostConfig.Mounts = [{ Type: 'bind', Source: '/', Target: '/host', ReadOnly: true }]; }), /normalised absolute path/],
      ['bind outside the mirrors', createWith((b) => { b.HostConfig.Mounts = [{ Type: 'bind', Source: '/var/run/docker.sock', Target: '/s', ReadOnly: true }]; }), /outside \/cache\/trees/],
      ['bind escaping with ..', createWith((b) => { b.HostConfig.Mounts = [{ Type: 'bind', Source: '/cache/trees/../../etc', Target: '/e', ReadOnly: true }]; }), /normalised/],
      ['writable bind of a mirror', createWith((b) => { b.HostConfig.Mounts = [{ Type: 'bind', Source: '/cache/trees/linux.git', Target: '/t', ReadOnly: false }]; }), /read-only/],
      ['another volume', createWith((b) => { b.HostConfig.Mounts = [{ Type: 'volume', Source: 'db-data', Target: '/d' }]; }), /volume "db-data"/],
      ['volume driver options (a bind in disguise)', createWith((b) => { b.HostConfig.Mounts = [{ Type: 'volume', Source: 'patchbay-ccache', Target: '/c', VolumeOptions: { DriverConfig: { Options: { device: '/', o: 'bind' } } } }]; }), /"VolumeOptions"/],
      ['a tmpfs mount elsewhere', createWith((b) => { b.HostConfig.Mounts = [{ Type: 'tmpfs', Target: '/x' }]; }), /Type/],
      ['another device', createWith((b) => { b.HostConfig.Devices = [{ PathOnHost: '/dev/sda', PathInContainer: '/dev/sda', CgroupPermissions: 'rwm' }]; }), /device "\/dev\/sda"/],
      ['a foreign image', createWith((b) => { b.Image = 'debian:bookworm'; }), /not one of patchbay's images/],
      ['an image by registry', createWith((b) => { b.Image = 'evil.example/patchbay/warm:x'; }), /not one of patchbay's images/],
      ['no owner label', createWith((b) => { b.Labels = { 'org.patchbay.role': 'x' }; }), /owner/],
      ['network enabled', createWith((b) => { b.NetworkDisabled = false; }), /NetworkDisabled/],
      ['an entrypoint', createWith((b) => { b.Entrypoint = ['/bin/sh']; }), /"Entrypoint"/],
      ['a user', createWith((b) => { b.User = 'root'; }), /"User"/],
      ['unlimited memory', createWith((b) => { b.HostConfig.Memory = 0; }), /Memory must be a positive/],
      ['swap', createWith((b) => { b.HostConfig.MemorySwap = -1; }), /MemorySwap/],
      ['sysctls', createWith((b) => { b.HostConfig.Sysctls = { 'kernel.core_pattern': '|/tmp/x' }; }), /"Sysctls"/],
    ];
    for (const [what, check, why] of cases) assert.throws(check, why, what);
  });

  test('a key written with a \\u escape or given twice is refused or collapsed before the engine sees it', () => {
    const plan = allowed('POST', '/containers/create?name=patchbay-job-1');
    assert.ok(plan.body.kind === 'json');
    const check = plan.body.check;
    // JSON.parse decodes the escape: the key is "Privileged" and is refused.
    const escaped = JSON.stringify(createBody()).replace('"NetworkMode"', '"\\u0050rivileged":true,"NetworkMode"');
    assert.throws(() => check(JSON.parse(escaped)), /"Privileged" is not allowed/);
    // Duplicate keys: the parser keeps the last, and only that value is checked and sent.
    const dup = JSON.stringify(createBody()).replace('"NetworkMode":"none"', '"NetworkMode":"host","NetworkMode":"none"');
    const out = JSON.stringify(check(JSON.parse(dup)));
    assert.equal(out.match(/NetworkMode/g)?.length, 1);
    assert.doesNotMatch(out, /"NetworkMode":"host"/);
    // Two different names: the query's and the body's.
    assert.throws(() => check({ ...createBody(), name: 'patchbay-other' }), /two different names/);
  });

  test('exec is never privileged, as another user, with a TTY or stdin', () => {
    assert.deepEqual(checkExecBody({ Cmd: ['true'], AttachStdout: true, AttachStderr: true, Tty: false, Env: ['A=1'] }), {
      Cmd: ['true'], AttachStdout: true, AttachStderr: true, Tty: false, Env: ['A=1'],
    });
    assert.throws(() => checkExecBody({ Cmd: ['sh'], Privileged: true }), /"Privileged"/);
    assert.throws(() => checkExecBody({ Cmd: ['sh'], User: '0' }), /"User"/);
    assert.throws(() => checkExecBody({ Cmd: ['sh'], Tty: true }), /Tty/);
    assert.throws(() => checkExecBody({ Cmd: [] }), /empty/);
    const start = allowed('POST', `/exec/${'b'.repeat(64)}/start`);
    assert.ok(start.body.kind === 'json');
    const check = start.body.check;
    assert.throws(() => check({ stdin: true }), /stdin/);
  });

  test('commits only into warm bases, and only labels', () => {
    refused('POST', '/commit?container=abc&repo=patchbay%2Frunner&tag=x', /repo "patchbay\/runner"/);
    refused('POST', '/commit?container=abc&repo=patchbay%2Fwarm&tag=x&changes=CMD%20%5B%22sh%22%5D', /not a LABEL/);
    refused('POST', '/commit?container=abc&repo=patchbay%2Fwarm&tag=x&changes=LABEL%20a%3D%22b%22%0AUSER%20root', /not a LABEL/);
    refused('POST', '/commit?container=abc&repo=patchbay%2Fwarm&tag=x&container=def', /given twice/);
  });

  test('no builds, pulls, volumes, networks, other endpoints or unfiltered lists', () => {
    refused('POST', '/v1.41/images/create?fromImage=alpine', /patchbay prepare/);
    refused('POST', '/volumes/create', /not a call the executor makes/);
    refused('POST', '/networks/create', /not a call/);
    refused('POST', '/containers/abc/update', /not a call/);
    refused('POST', '/containers/abc/attach?stream=1', /not a call/);
    refused('GET', '/containers/json?all=true', /filtered by the label org.patchbay.owner/);
    refused('GET', '/images/json', /filtered by the label org.patchbay.image/);
    refused('GET', '/images/debian:bookworm/json', /not one of patchbay's images/);
    refused('DELETE', '/images/patchbay/warm:x', /not a call/);
    refused('POST', '/containers/abc/kill?signal=SIGSTOP', /signal/);
    refused('PUT', '/containers/abc/archive?path=%2Fetc', /path must be "\/"/);
    refused('POST', '/containers/create?name=evil', /must start with patchbay-/);
  });

  test('the one build is the job-image overlay: its repository, its arguments, its Dockerfile', () => {
    const args = (a: unknown): string => encodeURIComponent(JSON.stringify(a));
    const ok = `t=patchbay%2Fjob%3Ak-r&dockerfile=Dockerfile&buildargs=${args({ WARM: 'patchbay/warm:k', RUNNER: 'patchbay/runner:r' })}&labels=${args({ 'org.patchbay.image': 'job' })}&rm=true&forcerm=true`;
    const plan = allowed('POST', `/build?${ok}`);
    assert.deepEqual(plan.body, { kind: 'context', dockerfile: 'FROM x\n' });
    refused('POST', '/build?t=patchbay%2Frunner%3Aevil&dockerfile=Dockerfile', /not one of patchbay's images/);
    refused('POST', `/build?t=patchbay%2Fjob%3Ax&dockerfile=Dockerfile&buildargs=${args({ WARM: 'debian:bookworm', RUNNER: 'patchbay/runner:r' })}`, /buildargs.WARM/);
    refused('POST', `/build?t=patchbay%2Fjob%3Ax&dockerfile=Dockerfile&buildargs=${args({ WARM: 'patchbay/warm:k', RUNNER: 'patchbay/runner:r', HTTP_PROXY: 'x' })}`, /"HTTP_PROXY" is not allowed/);
    refused('POST', `/build?${ok}&networkmode=host`, /"networkmode" is not allowed/);
    refused('POST', `/build?${ok}&remote=https%3A%2F%2Fexample.invalid%2Fctx.tar`, /"remote" is not allowed/);
    refused('POST', '/build?t=patchbay%2Fjob%3Ax&dockerfile=..%2FDockerfile', /dockerfile/);
  });

  test('paths that a router would clean into another endpoint are refused', () => {
    refused('POST', '/containers/patchbay-x/../../build', /path/);
    refused('POST', '/containers/patchbay-x/%2e%2e/%2e%2e/build', /path/);
    refused('POST', '//build', /path/);
    refused('GET', '/containers/patchbay x/json', /path/);
    refused('POST', '/v1.41/./build', /path/);
  });
});

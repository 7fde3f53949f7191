/**
 * deploy/runner: the example configuration is valid against RunnerFileSchema,
 * and the systemd unit runs the runner on the config path, state folder and
 * drain timeout the example and the README document.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseRunnerFile } from '../config.ts';

const root = new URL('../../..', import.meta.url).pathname;
const example = join(root, 'deploy/runner/runner.example.json');
const unit = readFileSync(join(root, 'deploy/runner/patchbay-runner.service'), 'utf8');
const CONFIG_PATH = '/etc/patchbay/runner.json';

/** The unit's settings: key -> values, in order (comments and sections left out). */
function settings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) out.set(m[1], [...(out.get(m[1]) ?? []), m[2]]);
  }
  return out;
}

test('deploy/runner/runner.example.json is a valid runner configuration', () => {
  const file = parseRunnerFile(readFileSync(example, 'utf8'), example);
  assert.match(file.server, /^https:\/\//, 'a lab runner reaches the API over HTTPS');
  assert.equal(file.stateDir, '/var/lib/patchbay-runner', "the unit's StateDirectory");
  assert.ok(file.registrationTokenFile?.startsWith('/etc/patchbay/'));
  assert.equal(file.labels?.kvm, 'auto');
  const compose = join(root, 'deploy/runner/compose-runner.json');
  assert.equal(parseRunnerFile(readFileSync(compose, 'utf8'), compose).stateDir, '/var/lib/patchbay-runner', 'the compose runner\'s file too');
});

test('the example is refused when it is wrong (the schema is what checks it)', () => {
  const good = JSON.parse(readFileSync(example, 'utf8')) as Record<string, unknown>;
  for (const bad of [{ ...good, capacity: 0 }, { ...good, name: 'has spaces' }, { ...good, unknown: 1 }, { ...good, settings: { HOME: '/' } }, { ...good, labels: { extra: { 'Bad Key': 'x' } } }]) {
    assert.throws(() => parseRunnerFile(JSON.stringify(bad), 'bad.json'), { code: 'CONFIG_INVALID' });
  }
});

test('the systemd unit runs `patchbay runner --config` on the documented path, drains on SIGTERM, restarts on failure', () => {
  const s = settings(unit);
  const [exec] = s.get('ExecStart') ?? [];
  assert.ok(exec !== undefined);
  assert.match(exec, /bin\/patchbay\.mjs runner --config (\S+)$/);
  assert.equal(/--config (\S+)$/.exec(exec)?.[1], CONFIG_PATH);
  assert.match(readFileSync(join(root, 'README.md'), 'utf8'), new RegExp(CONFIG_PATH.replaceAll('.', '\\.')), 'the README names the same path');
  assert.deepEqual(s.get('Restart'), ['on-failure']);
  assert.deepEqual(s.get('KillSignal'), ['SIGTERM']);
  const deadline = JSON.parse(readFileSync(example, 'utf8')) as { settings?: Record<string, string>; shutdownGraceSeconds?: number };
  const drain = Math.max(Number(deadline.settings?.PATCHBAY_JOB_DEADLINE ?? 3600), deadline.shutdownGraceSeconds ?? 0);
  assert.ok(Number(s.get('TimeoutStopSec')?.[0]) > drain, 'stop waits longer than a drain');
  assert.deepEqual(s.get('StateDirectory'), ['patchbay-runner']);
  assert.ok(s.get('SupplementaryGroups')?.[0]?.split(' ').includes('docker'));
  assert.match(unit, /systemctl kill/, 'the note on stopping at once');
});

test('deploy/runner/install.sh writes a valid configuration with this machine\'s server, name, capacity, labels and trees, and the token, 0600', () => {
  const dir = mkdtempSync(join(tmpdir(), 'patchbay-install-'));
  try {
    const r = spawnSync('bash', [join(root, 'deploy/runner/install.sh'), '--root', dir, '--server', 'https://ci.example.org', '--name', 'lab-box-3',
      '--capacity', '4', '--label', 'lab=fsdevel', '--label', 'rack=r2', '--tree', 'linux-7.1.y', 'pbrt_token'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const file = parseRunnerFile(readFileSync(join(dir, 'etc/patchbay/runner.json'), 'utf8'), 'runner.json');
    assert.equal(file.server, 'https://ci.example.org');
    assert.equal(file.name, 'lab-box-3');
    assert.equal(file.capacity, 4);
    assert.deepEqual(file.labels, { kvm: 'auto', extra: { lab: 'fsdevel', rack: 'r2' }, trees: ['linux-7.1.y'] });
    const token = join(dir, 'etc/patchbay/registration-token');
    assert.equal(readFileSync(token, 'utf8'), 'pbrt_token\n');
    assert.equal(statSync(token).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(dir, 'etc/systemd/system/patchbay-runner.service'), 'utf8'), unit);
    // Without a token or a name: usage, exit 2, nothing half-written matters.
    assert.equal(spawnSync('bash', [join(root, 'deploy/runner/install.sh'), '--root', dir, '--server', 'https://x']).status, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

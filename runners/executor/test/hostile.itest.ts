/**
 * A hostile series through the whole job on the real pipeline: its fuse
 * selftest Makefile (built from the tree by the fuse suite, no clean kernel
 * build) plants links to host files where artifacts are made, writes to the
 * compiler cache, replaces every kernel it can reach, leaves a process
 * behind to forge the guest's KTAP, and prints without end. The job must
 * come out with its real verdict, regular-file artifacts only, an unchanged
 * cache and base, and logs within their limit. (fixtures/README.md)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../../services/config/config.ts';
import { patchbayRun } from './patchbay-run.ts';

const config = loadConfig(process.env);

function ccacheFiles(): string[] {
  const r = spawnSync('docker', ['volume', 'inspect', '-f', '{{.Mountpoint}}', config.docker.ccacheVolume], { encoding: 'utf8' });
  const mount = r.stdout.trim();
  if (r.status !== 0 || mount === '') return [];
  const f = spawnSync('find', [mount, '-type', 'f', '!', '-path', '*/tmp/*', '!', '-name', 'stats', '-printf', '%P %s %T@\\n'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return f.stdout.split('\n').filter((l) => l !== '').sort();
}

describe('a hostile series on the real pipeline', { timeout: 60 * 60_000 }, () => {
  test('links, cache and base poisoning, a forging leftover process and a flood all fail; the verdict is its own', { timeout: 60 * 60_000 }, async () => {
    const before = ccacheFiles();
    const limitKb = 1024;
    const { code, result } = await patchbayRun('hostile-fuse-makefile.mbox', ['--suite', 'fuse'], { PATCHBAY_LOG_LIMIT_KB: String(limitKb) });
    assert.equal(code, 0, result.summary);
    assert.equal(result.status, 'PASS', `${result.summary}\n${JSON.stringify(result.stages)}`);
    assert.deepEqual(result.stages.map((s) => s.stage), ['setup', 'apply', 'build', 'boot', 'test']);
    const dir = result.artifactsDir ?? '';

    // Only regular files came out, none of them holding what a link pointed at.
    assert.ok(result.artifacts.length >= 5, result.artifacts.join(', '));
    for (const name of result.artifacts) {
      const st = lstatSync(join(dir, name));
      assert.ok(st.isFile(), `${name} is a regular file`);
      const text = readFileSync(join(dir, name)).toString('latin1');
      assert.ok(!text.includes('root:x:0:0:'), `${name} holds no passwd file`);
    }
    assert.ok(!result.artifacts.includes('kernel.config'), 'the link planted as kernel.config was refused');
    assert.ok(!result.artifacts.includes('passwd.txt'), 'a file the job named itself is not an artifact');
    JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8'));

    // The flood is cut at the limit, with a marker.
    const buildLog = readFileSync(join(dir, 'build.log'), 'utf8');
    assert.ok(Buffer.byteLength(buildLog) <= limitKb * 1024 + 512, `build.log is ${Buffer.byteLength(buildLog)} bytes`);
    assert.match(buildLog, /patchbay: build\.log cut at 1 MiB/);

    // The process the build left behind did not live into the boot.
    const ktap = readFileSync(join(dir, 'ktap.txt'), 'utf8');
    assert.match(ktap, /^ok 1 fuse/m);
    assert.ok(!ktap.includes('forged-by-build'), 'no forged KTAP line');

    // The compiler cache is as the warm-base builds left it.
    const after = ccacheFiles();
    assert.ok(!after.some((l) => l.includes('poison')), 'no file planted in the cache');
    assert.deepEqual(after, before, 'the cache was not changed by the series');

    // The base ran (or was cached) untouched: the fuse tests compare as on a clean base.
    const fuse = result.base?.suites.find((s) => s.suite === 'fuse');
    assert.ok(fuse && (fuse.source === 'run' || fuse.source === 'cached'), JSON.stringify(result.base));
    assert.ok(result.results.length > 3, 'the fuse suite ran');
    for (const r of result.results) {
      assert.equal(r.comparison, 'unchanged', JSON.stringify(r));
      assert.equal(r.baseStatus, r.status, JSON.stringify(r));
    }
  });
});

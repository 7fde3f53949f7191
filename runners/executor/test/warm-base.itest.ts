/**
 * Warm bases that last (issue 14): an edit of the guest init builds a new
 * runner image (its last layers only) and a job image over the same warm
 * base, whose image id is unchanged: no cold kernel build. Reuses the warm
 * base of the fixture tests' base (fixtures.itest.ts) and never builds one
 * (test/guest-edit.ts refuses to).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../../services/config/config.ts';
import { DockerEngine, type JobContainer } from '../docker.ts';
import { IMAGE_LABEL } from '../images.ts';
import { type GuestEdit, editGuestAndPrepare } from './guest-edit.ts';

const config = loadConfig(process.env);
const engine = new DockerEngine(config.docker.socketPath);
const nonce = randomBytes(6).toString('hex');
const usedDir = mkdtempSync(join(tmpdir(), 'patchbay-warm-used-'));

describe('a guest-init edit and the warm base', { timeout: 20 * 60_000 }, () => {
  let edit: GuestEdit | null = null;
  const containers: JobContainer[] = [];
  after(async () => {
    for (const c of containers) await c.dispose();
    await edit?.cleanup();
    rmSync(usedDir, { recursive: true, force: true });
  });

  test('does not rebuild the warm base: the same image id, built: false; the job image is a new overlay with the edited init', async () => {
    await engine.ping();
    edit = await editGuestAndPrepare(engine, config, { nonce, usedDir });
    process.stderr.write(`  runner image from the edited copy: ${(edit.runnerMs / 1000).toFixed(1)} s; warm base found and job image laid over it: ${(edit.jobImageMs / 1000).toFixed(1)} s\n`);
    const { before, after: edited, key, warmId, warm, jobImage } = edit;

    // The edit reached the runner image and the base runs' key part, not the toolchain.
    assert.notEqual(edited.runner, before.runner);
    assert.notEqual(edited.runnerId, before.runnerId);
    assert.equal(edited.toolchain, before.toolchain);
    assert.notEqual(edited.guestInputs, before.guestInputs, 'base runs of the old guest do not stand for the new one');

    // The warm base: found, not built; the very same image.
    assert.equal(warm.built, false);
    assert.equal(warm.key, key);
    assert.equal(warm.image, `patchbay/warm:${key}`);
    assert.equal(await engine.imageId(warm.image), warmId, 'the warm base\'s image id is unchanged');
    assert.ok(!edit.log.some((l) => /building warm base/.test(l)), edit.log.join(''));

    // The job image: a new overlay of the edited runner's /opt/patchbay on that warm base.
    assert.equal(jobImage, `patchbay/job:${key}-${edited.runnerInputs}`);
    const jobId = await engine.imageId(jobImage);
    assert.ok(jobId !== null && jobId !== warmId);
    const [described] = await engine.describe({ [IMAGE_LABEL]: 'job', 'org.patchbay.warm': key, 'org.patchbay.runner': edited.runnerId });
    assert.ok(described !== undefined && described.tags.includes(jobImage), 'labelled with its warm base and runner image');
    const warmLayers = (await engine.describe({ [IMAGE_LABEL]: 'warm' })).find((i) => i.id === warmId)?.layers ?? [];
    assert.ok(warmLayers.length > 0 && warmLayers.every((l, n) => described.layers[n] === l), 'the warm base\'s layers, with the overlay on top');

    const c = await engine.create({
      image: jobImage, name: `patchbay-test-guest-edit-${nonce}`, labels: { 'org.patchbay.role': 'test' }, mounts: [],
      memoryBytes: 512 * 1024 * 1024, cpus: 1, pids: 64, devices: [], fileSizeBytes: 64 * 1024 * 1024, tmpBytes: 64 * 1024 * 1024,
    });
    containers.push(c);
    await c.start();
    const init = await c.exec(['tail', '-n', '1', '/opt/patchbay/guest/init']);
    assert.equal(init.exitCode, 0, init.tail);
    assert.equal(init.tail.trim(), edit.line, 'the job image holds the edited init');
    // ... and the warm base's kernel tree, as built.
    const tree = await c.exec(['test', '-f', '/work/build/arch/x86/boot/bzImage']);
    assert.equal(tree.exitCode, 0, 'the warm base\'s build is in the job image');
    await c.stop();

    // Each use is recorded for garbage collection.
    assert.ok(existsSync(join(usedDir, key)));
    assert.ok(existsSync(join(usedDir, `${key}-${edited.runnerInputs}`)));
    assert.equal(await engine.imageId(warm.image), warmId);
  });
});

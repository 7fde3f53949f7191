/**
 * The image keys: which edits under images/ reach which key (the warm base's
 * toolchain, the base runs' guest inputs, the runner image's tag), and the
 * runner image's hashes come from the very files it is built from.
 */
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { LocalImages } from '../docker.ts';
import {
  GUEST_INPUTS, GUEST_INPUTS_LABEL, IMAGE_LABEL, INPUTS_LABEL, RUNNER_CONTEXT, TOOLCHAIN_INPUTS, TOOLCHAIN_LABEL,
  ensureRunnerImage, hashInputs,
} from '../images.ts';
import { warmBaseKey } from '../warm-base.ts';

const IMAGES = fileURLToPath(new URL('../../../images', import.meta.url));
const BASE_ID = 'sha256:' + 'b'.repeat(64);

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** A copy of the repository's images/ folder to edit. */
function copyOfImages(): string {
  const dir = mkdtempSync(join(tmpdir(), 'patchbay-images-'));
  dirs.push(dir);
  cpSync(IMAGES, dir, { recursive: true });
  return dir;
}

const keysOf = (dir: string): { toolchain: string; warm: string; guest: string; runner: string } => {
  const toolchain = hashInputs(dir, TOOLCHAIN_INPUTS, [BASE_ID]);
  return {
    toolchain,
    warm: warmBaseKey({ toolchain, treeName: 'linux-7.1.y', commit: 'c'.repeat(40), fragment: 'CONFIG_IO_URING=y\n' }),
    guest: hashInputs(dir, GUEST_INPUTS),
    runner: hashInputs(dir, RUNNER_CONTEXT, [BASE_ID]),
  };
};

describe('which edits reach which key', () => {
  const before = keysOf(IMAGES);

  for (const [what, edit] of [
    ['the guest init', 'guest/init'],
    ['the guest library', 'guest/lib/ktap.sh'],
    ['a suite', 'guest/suites/smoke/manifest.json'],
    ['boot.sh', 'runner/stages/boot.sh'],
    ['apply.sh', 'runner/stages/apply.sh'],
    ['build-tree-suites.sh', 'runner/stages/build-tree-suites.sh'],
  ] as const) {
    it(`an edit of ${what} keeps the warm-base key and changes the runner image`, () => {
      const dir = copyOfImages();
      appendFileSync(join(dir, edit), edit.endsWith('.json') ? ' ' : '\n# an edit\n');
      const now = keysOf(dir);
      assert.equal(now.toolchain, before.toolchain);
      assert.equal(now.warm, before.warm);
      assert.notEqual(now.runner, before.runner);
    });
  }

  it('an edit of the guest init or a guest-run stage changes the base runs\' guest inputs; a suite or apply.sh does not', () => {
    for (const [edit, changes] of [['guest/init', true], ['runner/stages/boot.sh', true], ['guest/suites/smoke/manifest.json', false], ['runner/stages/apply.sh', false]] as const) {
      const dir = copyOfImages();
      appendFileSync(join(dir, edit), ' ');
      assert.equal(keysOf(dir).guest !== before.guest, changes, edit);
    }
  });

  it('an edit of a toolchain input (a kernel-building stage, the Dockerfile) changes the warm-base key', () => {
    for (const edit of TOOLCHAIN_INPUTS) {
      const dir = copyOfImages();
      appendFileSync(join(dir, edit), '\n# an edit\n');
      assert.notEqual(keysOf(dir).warm, before.warm, edit);
    }
  });

  it('an exec bit counts (a stage made non-executable is a different input)', () => {
    const dir = copyOfImages();
    const path = join(dir, 'runner/stages/build.sh');
    chmodSync(path, statSync(path).mode & ~0o111);
    assert.notEqual(keysOf(dir).toolchain, before.toolchain);
  });
});

/** LocalImages in memory: builds record the context they were given (its files, read at build time). */
class FakeImages implements LocalImages {
  readonly images = new Map<string, { id: string; labels: Record<string, string> }>();
  readonly builds: Array<{ tag: string; init: string; labels: Record<string, string> }> = [];
  /** Runs inside build(), before the context is read: an edit made while the image builds. */
  duringBuild: () => void = () => undefined;

  imageId(tag: string): Promise<string | null> {
    if (tag.startsWith('patchbay/base:')) return Promise.resolve(BASE_ID);
    return Promise.resolve(this.images.get(tag)?.id ?? null);
  }
  tryPull(): Promise<boolean> { return Promise.resolve(false); }
  tag(): Promise<void> { return Promise.resolve(); }
  build(opts: Parameters<LocalImages['build']>[0]): Promise<void> {
    this.duringBuild();
    this.builds.push({ tag: opts.tag, init: readFileSync(join(opts.contextDir, 'guest/init'), 'utf8'), labels: opts.labels });
    this.images.set(opts.tag, { id: `sha256:${String(this.builds.length).padStart(64, '0')}`, labels: opts.labels });
    return Promise.resolve();
  }
  remove(): Promise<void> { return Promise.resolve(); }
  list(labels: Record<string, string>): Promise<Array<{ id: string; tags: string[]; labels: Record<string, string>; created: number }>> {
    return Promise.resolve([...this.images].filter(([, i]) => Object.entries(labels).every(([k, v]) => i.labels[k] === v))
      .map(([tag, i]) => ({ id: i.id, tags: [tag], labels: i.labels, created: 0 })));
  }
}

describe('the runner image and its keys come from one copy of images/', () => {
  const opts = (imagesDir: string): Parameters<typeof ensureRunnerImage>[2] => ({ imagesDir, baseImage: null, env: {}, onLog: () => undefined });

  it('an edit made while the image builds reaches neither the image nor its keys', async () => {
    const dir = copyOfImages();
    const fake = new FakeImages();
    const original = readFileSync(join(dir, 'guest/init'), 'utf8');
    const expected = keysOf(dir);
    fake.duringBuild = () => { appendFileSync(join(dir, 'guest/init'), '\n# edited while the runner image builds\n'); };
    const runner = await ensureRunnerImage(fake, 'patchbay/base:x', opts(dir));
    const [built] = fake.builds;
    assert.ok(built && fake.builds.length === 1);
    assert.equal(built.init, original, 'the engine built the files that were hashed');
    assert.equal(runner.guestInputs, expected.guest);
    assert.equal(runner.toolchain, expected.toolchain);
    assert.equal(runner.tag, `patchbay/runner:${expected.runner}`);
    assert.deepEqual(built.labels, {
      [IMAGE_LABEL]: 'runner', [INPUTS_LABEL]: expected.runner, [TOOLCHAIN_LABEL]: expected.toolchain, [GUEST_INPUTS_LABEL]: expected.guest,
    });
    // The edited tree is another runner image, with its own guest inputs.
    const next = await ensureRunnerImage(fake, 'patchbay/base:x', opts(dir));
    assert.notEqual(next.tag, runner.tag);
    assert.notEqual(next.guestInputs, runner.guestInputs);
    assert.equal(next.toolchain, runner.toolchain);
  });

  it('an existing image\'s keys are read from its labels; one from before the labels gets them from the copy', async () => {
    const dir = copyOfImages();
    const fake = new FakeImages();
    const k = keysOf(dir);
    fake.images.set(`patchbay/runner:${k.runner}`, { id: 'sha256:1', labels: { [IMAGE_LABEL]: 'runner', [INPUTS_LABEL]: k.runner, [GUEST_INPUTS_LABEL]: 'recorded' } });
    const r = await ensureRunnerImage(fake, 'patchbay/base:x', opts(dir));
    assert.deepEqual(r, { tag: `patchbay/runner:${k.runner}`, id: 'sha256:1', inputs: k.runner, toolchain: k.toolchain, guestInputs: 'recorded' });
    assert.equal(fake.builds.length, 0, 'nothing built');
  });

  it('the keys are the ones hashed from images/ before the copy existed (cached base runs and warm bases stay valid)', async () => {
    const fake = new FakeImages();
    const k = keysOf(IMAGES);
    const r = await ensureRunnerImage(fake, 'patchbay/base:x', opts(IMAGES));
    assert.deepEqual({ inputs: r.inputs, toolchain: r.toolchain, guestInputs: r.guestInputs }, { inputs: k.runner, toolchain: k.toolchain, guestInputs: k.guest });
  });
});

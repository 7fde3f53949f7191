/**
 * Benchmark, in one run on one machine:
 *   1. a cold base build (fresh compiler cache, a config key no other run has),
 *   2. the patchbay job for the passing fixture on that warm base,
 *   3. the same steps typed by hand in a container from the same warm image
 *      (git am, make bzImage, qemu with the job's own initramfs),
 * and the ratios between them. Writes bench/results/pipeline-<date>.json.
 *
 * Run: npm run bench   (takes about 20 minutes on 2 cores)
 *      npm run bench -- --reuse-warm   (the job and by-hand steps only, on the
 *      warm base and compiler cache the tests use; about 2 minutes)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureImages } from '../runners/executor/images.ts';
import { runJob } from '../runners/executor/pipeline.ts';
import { ensureWarmBase, warmLocksDir, warmUsedDir } from '../runners/executor/warm-base.ts';
import { loadConfig } from '../services/config/config.ts';
import { parseMbox } from '../services/domain/mbox.ts';
import { assembleSeries, seriesMbox } from '../services/domain/series.ts';
import { makeExecutorDeps } from '../runners/executor/deps.ts';
import { loadCatalogs } from '../services/catalog/load.ts';
import { makeLogger } from '../services/platform/logger.ts';
import { Sandbox } from '../runners/executor/sandbox.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const say = (s: string): void => { process.stderr.write(`bench: ${s}\n`); };
const seconds = (ms: number): number => Math.round(ms / 100) / 10;

async function timed<T>(what: string, fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  say(`${what} ...`);
  const t0 = performance.now();
  const value = await fn();
  const ms = performance.now() - t0;
  say(`${what}: ${seconds(ms)} s`);
  return { value, ms };
}

async function main(): Promise<void> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const reuseWarm = process.argv.includes('--reuse-warm');
  const env = reuseWarm ? process.env : { ...process.env, PATCHBAY_CCACHE_VOLUME: `patchbay-ccache-bench-${stamp.toLowerCase()}` };
  const config = loadConfig(env);
  const catalogs = loadCatalogs(config);
  const logger = makeLogger(config);
  const { deps, engine } = makeExecutorDeps(config, env, logger);
  await engine.ping();
  const tree = catalogs.trees.get('linux-7.1.y');
  // A config line no other run has: a new warm-base key, so the build is cold.
  const fragment = reuseWarm ? catalogs.kernelFragment : `${catalogs.kernelFragment}CONFIG_LOCALVERSION="-bench"\n# bench ${stamp}\n`;
  const series = assembleSeries(parseMbox(readFileSync(join(root, 'fixtures/series/pass-kbuf-pin.mbox')).toString('latin1')));
  const quiet = (): void => undefined;

  const images = await ensureImages(engine, { imagesDir: config.imagesDir, baseImage: config.docker.baseImage, env, onLog: quiet });
  const mirror = await deps.mirrors.ensure(tree, quiet);
  const commit = await deps.mirrors.resolve(tree, series.baseCommit ?? tree.ref);
  if (commit === null) throw new Error('base commit not found');
  const limits = { memoryBytes: config.job.memoryBytes, cpus: config.job.cpus, pids: config.job.pids, fileSizeBytes: config.job.fileSizeBytes, tmpBytes: config.job.tmpBytes };
  const sandbox = { diskBytes: config.job.diskBytes, diskCheckMs: 5000, outputLimitBytes: config.job.logLimitBytes };

  const cold = await timed(reuseWarm ? 'warm base (reused)' : 'cold base build (empty ccache)', () => ensureWarmBase(engine, engine, {
    runnerImage: images.runner, runnerId: images.runnerId, toolchain: images.toolchain, treeName: tree.name, mirror, commit, fragment, limits, sandbox,
    buildTimeoutSeconds: config.job.buildTimeoutSeconds, locksDir: warmLocksDir(config.cacheDir), usedDir: warmUsedDir(config.cacheDir), ccacheVolume: config.docker.ccacheVolume, onLog: quiet,
  }));

  const job = await timed('patchbay job, passing fixture, warm base', () => runJob(
    { jobId: `bench-${stamp}`, tree, base: null, series, prerequisites: null, suites: catalogs.suites.select(['smoke']), kernelFragment: fragment },
    deps,
    quiet,
  ));
  if (job.value.status !== 'PASS') throw new Error(`the bench job did not pass: ${job.value.summary}`);
  const stage = (name: string): number => job.value.stages.find((s) => s.stage === name)?.durationMs ?? 0;

  // By hand: the same image, the same commands a developer would type.
  const initramfs = join(job.value.artifactsDir ?? '', 'initramfs.cpio.gz');
  const box = await Sandbox.create(engine, {
    image: cold.value.image, name: `patchbay-bench-${process.pid}`, labels: { 'org.patchbay.role': 'bench' },
    mounts: [{ kind: 'volume', source: config.docker.ccacheVolume, target: '/ccache', readOnly: false }],
    devices: [], ...limits,
  }, [
    { type: 'file', path: '/job/in/series.mbox', mode: 0o444, uid: 0, content: Buffer.from(seriesMbox(series), 'latin1') },
    { type: 'file', path: '/job/in/initramfs.cpio.gz', mode: 0o444, uid: 0, content: readFileSync(initramfs) },
  ], sandbox);
  const hand: Record<string, number> = {};
  try {
    await box.stage(async (c) => { for (const [name, cmd] of [
      ['git am', 'cd /work/linux && git am -3 --patch-format=mboxrd /job/in/series.mbox'],
      // The invocation the tree was configured and built with (another CC would
      // rebuild everything), compiling for real: the job's objects are in the
      // cache by now. In the full run the job's own compiles are cache misses
      // (a fresh cache holding the base only), so both sides compile the same
      // files; with --reuse-warm the job may hit the cache and look faster.
      ['make', 'CCACHE_DISABLE=1 make -C /work/linux O=/work/build ARCH=x86_64 CC="ccache gcc" HOSTCC="ccache gcc" -j$(nproc) bzImage >/dev/null'],
      ['qemu', 'timeout 300 qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024 -display none -monitor none -no-reboot '
        + '-kernel /work/build/arch/x86/boot/bzImage -initrd /job/in/initramfs.cpio.gz '
        + '-append "console=ttyS0 rdinit=/init panic=-1" -serial stdio -serial null </dev/null | grep -q "all suites done"'],
    ] as const) {
      const t = await timed(`by hand: ${name}`, () => c.exec(['bash', '-c', cmd]));
      if (t.value.exitCode !== 0) throw new Error(`by hand: ${name} failed: ${t.value.tail.slice(-500)}`);
      hand[name] = t.ms;
    } });
  } finally {
    await box.dispose();
  }
  const handTotal = Object.values(hand).reduce((a, b) => a + b, 0);
  const jobWork = stage('apply') + stage('build') + stage('boot') + stage('test');

  const figures = {
    date: new Date().toISOString(),
    machine: { cpus: config.job.cpus, accel: job.value.accel },
    coldBaseBuildS: reuseWarm ? null : seconds(cold.ms),
    job: { totalS: seconds(job.ms), setupS: seconds(stage('setup')), applyS: seconds(stage('apply')), buildS: seconds(stage('build')), bootAndTestS: seconds(stage('boot') + stage('test')) },
    byHand: { gitAmS: seconds(hand['git am'] ?? 0), makeS: seconds(hand.make ?? 0), qemuS: seconds(hand.qemu ?? 0), totalS: seconds(handTotal) },
    ratios: {
      coldBuildOverWarmJob: reuseWarm ? null : Math.round((cold.ms / job.ms) * 10) / 10,
      jobStagesOverByHand: Math.round((jobWork / handTotal) * 100) / 100,
      jobTotalOverByHand: Math.round((job.ms / handTotal) * 100) / 100,
    },
  };
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  const out = join(root, 'bench', 'results', `pipeline-${stamp.slice(0, 10)}${reuseWarm ? '-warm' : ''}.json`);
  writeFileSync(out, `${JSON.stringify(figures, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\nwritten to ${out}\n`);

  if (!reuseWarm) {
    await engine.remove(cold.value.image);
    await engine.removeVolume(config.docker.ccacheVolume);
  }
  logger.flush();
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});

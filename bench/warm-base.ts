/**
 * Benchmark: from an edit of the guest init to a job image ready, now that
 * warm bases are keyed on what changes the kernel build (issue 14): the
 * runner image rebuilt from the edited images/ (its last layers) and the
 * current /opt/patchbay laid over the existing warm base. Each round edits a
 * fresh copy of images/ (runners/executor/test/guest-edit.ts) and removes
 * what it built afterwards. It never builds a warm base: the fixture tree's
 * must exist (the engine tests leave it) and its key must not change.
 *
 * Before the key change, the same edit changed the warm-base key (it held
 * the runner image id), so the job waited for the runner image and then a
 * cold warm-base build; that figure is not measured again here (a cold
 * build is 12 minutes of a shared machine) but read from the newest
 * `npm run bench` result with a cold build (bench/results/pipeline-*.json).
 *
 * Writes bench/results/warm-base-<date>.json.
 * Run: npm run bench:warm-base [-- --rounds N]   (about a minute a round on 2 cores)
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DockerEngine } from '../runners/executor/docker.ts';
import { editGuestAndPrepare } from '../runners/executor/test/guest-edit.ts';
import { loadConfig } from '../services/config/config.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const say = (s: string): void => { process.stderr.write(`bench: ${s}\n`); };
const seconds = (ms: number): number => Math.round(ms / 100) / 10;
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};

/** The newest measured cold warm-base build: its seconds and the file it is from. */
function coldBuildFigure(): { seconds: number; from: string } | null {
  const dir = join(root, 'bench', 'results');
  for (const name of readdirSync(dir).filter((n) => /^pipeline-\d{4}-\d{2}-\d{2}\.json$/.test(n)).sort().reverse()) {
    const figures = JSON.parse(readFileSync(join(dir, name), 'utf8')) as { coldBaseBuildS?: number | null };
    if (typeof figures.coldBaseBuildS === 'number') return { seconds: figures.coldBaseBuildS, from: `bench/results/${name}` };
  }
  return null;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
  const rounds = Math.max(1, Number(values.rounds));
  const config = loadConfig(process.env);
  const engine = new DockerEngine(config.docker.socketPath);
  await engine.ping();
  const usedDir = mkdtempSync(join(tmpdir(), 'patchbay-bench-warm-used-'));
  const runs: Array<{ runnerImageS: number; jobImageS: number; totalS: number; warmBaseBuilt: boolean; warmBaseIdUnchanged: boolean }> = [];
  try {
    for (let n = 1; n <= rounds; n++) {
      say(`round ${n}/${rounds}: guest/init edited, runner image and job image ...`);
      const edit = await editGuestAndPrepare(engine, config, { nonce: `bench-${randomBytes(6).toString('hex')}`, usedDir });
      try {
        const warmId = await engine.imageId(edit.warm.image);
        runs.push({
          runnerImageS: seconds(edit.runnerMs),
          jobImageS: seconds(edit.jobImageMs),
          totalS: seconds(edit.runnerMs + edit.jobImageMs),
          warmBaseBuilt: edit.warm.built,
          warmBaseIdUnchanged: warmId === edit.warmId,
        });
        say(`round ${n}: runner image ${seconds(edit.runnerMs)} s, warm base found + job image ${seconds(edit.jobImageMs)} s`);
      } finally {
        await edit.cleanup();
      }
    }
  } finally {
    rmSync(usedDir, { recursive: true, force: true });
  }
  const after = median(runs.map((r) => r.totalS));
  const cold = coldBuildFigure();
  const before = cold === null ? null : Math.round((median(runs.map((r) => r.runnerImageS)) + cold.seconds) * 10) / 10;
  const figures = {
    date: new Date().toISOString(),
    machine: { cpus: config.job.cpus },
    rounds: runs,
    after: { guestEditToJobImageS: after, runnerImageS: median(runs.map((r) => r.runnerImageS)), jobImageS: median(runs.map((r) => r.jobImageS)) },
    before: cold === null ? null : {
      guestEditToJobImageS: before,
      coldWarmBaseBuildS: cold.seconds,
      coldWarmBaseBuildFrom: cold.from,
      note: 'not measured here: the runner image (measured above) plus a cold warm-base build as `npm run bench` measured it (an empty compiler cache)',
    },
    beforeOverAfter: before === null || after === 0 ? null : Math.round((before / after) * 10) / 10,
  };
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  const out = join(root, 'bench', 'results', `warm-base-${figures.date.slice(0, 10)}.json`);
  writeFileSync(out, `${JSON.stringify(figures, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\nwritten to ${out}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});

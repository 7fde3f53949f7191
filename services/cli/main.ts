/**
 * The `patchbay` command. Wiring only: parse arguments, load config and
 * catalogues, call the executor, print.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runJob } from '../../runners/executor/pipeline.ts';
import { loadConfig } from '../config/config.ts';
import { errorMessage, isPatchbayError } from '../domain/errors.ts';
import { parseMbox } from '../domain/mbox.ts';
import { assembleSeries } from '../domain/series.ts';
import { Progress } from './progress.ts';
import { renderResult } from './results-table.ts';
import { loadCatalogs, makeExecutorDeps, makeLogger } from './wiring.ts';

const USAGE = `usage: patchbay <command> [options]

commands:
  run --tree NAME --mbox FILE [--suite NAME ...] [--base COMMIT] [--json] [-v]
        apply a series to a tree, build, boot it in QEMU and run the suites
  trees [--json]        list the configured trees
  suites [--json]       list the test suites

exit status: 0 when a job ran (whatever its verdict) , 1 for MISS
(infrastructure trouble), 2 for bad input or usage.`;

class UsageError extends Error {}

export function newJobId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

async function cmdRun(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      tree: { type: 'string' },
      mbox: { type: 'string' },
      suite: { type: 'string', multiple: true },
      base: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
    },
    strict: true,
  });
  if (values.mbox === undefined) throw new UsageError('run: --mbox FILE is required');
  const config = loadConfig(process.env);
  const catalogs = loadCatalogs(config);
  const tree = catalogs.trees.get(values.tree ?? catalogs.trees.trees[0]?.name ?? '');
  const suites = catalogs.suites.select(values.suite ?? ['smoke']);
  const series = assembleSeries(parseMbox(readFileSync(values.mbox).toString('latin1')));
  const logger = makeLogger(config);
  const { deps, engine } = makeExecutorDeps(config, process.env, logger);
  await engine.ping();
  const err = process.stderr;
  for (const name of await engine.reapOrphans()) err.write(`patchbay: removed ${name}, left behind by a runner that is gone\n`);

  const jobId = newJobId();
  err.write(`patchbay: job ${jobId}: "${series.title}" v${series.version}, ${series.patches.length} patch(es) on ${tree.name}, suites ${suites.map((s) => s.name).join(', ')}\n`);
  const progress = new Progress(err, values.verbose);
  const abort = new AbortController();
  const onSignal = (): void => { abort.abort(); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const result = await runJob(
      { jobId, tree, base: values.base ?? null, series, suites, kernelFragment: catalogs.kernelFragment },
      deps,
      (e) => { progress.handle(e); },
      abort.signal,
    );
    progress.close();
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else process.stdout.write(`${renderResult(result)}\n`);
    return result.status === 'MISS' ? 1 : 0;
  } finally {
    progress.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    logger.flush();
  }
}

function cmdTrees(argv: string[]): number {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, strict: true });
  const { trees } = loadCatalogs(loadConfig(process.env));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(trees.trees, null, 2)}\n`);
    return 0;
  }
  for (const t of trees.trees) {
    const source = t.url ?? (t.import ? `import: Debian source ${t.import.debianSource.package} ${t.import.debianSource.version}` : '');
    process.stdout.write(`${t.name.padEnd(16)} ${t.ref.padEnd(12)} ${source}${t.description ? `\n${' '.repeat(17)}${t.description}` : ''}\n`);
  }
  return 0;
}

function cmdSuites(argv: string[]): number {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, strict: true });
  const { suites } = loadCatalogs(loadConfig(process.env));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(suites.suites, null, 2)}\n`);
    return 0;
  }
  for (const s of suites.suites) process.stdout.write(`${s.name.padEnd(10)} ${String(s.timeoutSeconds).padStart(5)}s  ${s.description}\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await cmdRun(rest);
      case 'trees':
        return cmdTrees(rest);
      case 'suites':
        return cmdSuites(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e instanceof Error && 'code' in e && String((e as { code: unknown }).code).startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`patchbay: ${e.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (isPatchbayError(e)) {
      process.stderr.write(`patchbay: error [${e.code}]: ${e.message}\n`);
      return e.retryable ? 1 : 2;
    }
    process.stderr.write(`patchbay: internal error: ${errorMessage(e)}\n`);
    return 1;
  }
}

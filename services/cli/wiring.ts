/**
 * Builds the executor's dependencies from the configuration: the one place
 * the CLI turns config into live objects.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { SuiteCatalog } from '../catalog/suites.ts';
import { TreeCatalog } from '../catalog/trees.ts';
import type { Config } from '../config/config.ts';
import { mergeFragments } from '../domain/kconfig.ts';
import { DockerEngine } from '../../runners/executor/docker.ts';
import type { ExecutorDeps } from '../../runners/executor/pipeline.ts';
import { TreeMirrors } from '../../runners/host/trees.ts';

export interface Catalogs {
  trees: TreeCatalog;
  suites: SuiteCatalog;
  /** guest.config + every suite's kconfig: one warm base serves any suite selection. */
  kernelFragment: string;
}

export function loadCatalogs(config: Config): Catalogs {
  const trees = TreeCatalog.load(config.treesFile);
  const suites = SuiteCatalog.load(config.suitesDir);
  const guestConfig = join(config.imagesDir, 'guest', 'guest.config');
  const kernelFragment = mergeFragments([
    { from: guestConfig, text: readFileSync(guestConfig, 'utf8') },
    ...suites.suites.map((s) => ({ from: `suite ${s.name}`, text: s.kconfig.join('\n') })),
  ]);
  return { trees, suites, kernelFragment };
}

/** Structured logs go to a file (the terminal shows progress), or to standard output in a container. */
export function makeLogger(config: Config): Logger {
  const dest = config.logFile === null ? pino.destination({ dest: 1, sync: false }) : pino.destination({ dest: config.logFile, sync: false, mkdir: true });
  return pino({ level: config.logLevel, base: { pid: process.pid } }, dest);
}

export function makeExecutorDeps(config: Config, hostEnv: NodeJS.ProcessEnv, logger: Logger): { deps: ExecutorDeps; engine: DockerEngine } {
  const engine = new DockerEngine(config.docker.socketPath);
  const deps: ExecutorDeps = {
    runtime: engine,
    images: engine,
    mirrors: new TreeMirrors(config.mirrorsDir, config.cacheDir, hostEnv),
    logger,
    settings: {
      cacheDir: config.cacheDir,
      imagesDir: config.imagesDir,
      suitesDir: config.suitesDir,
      baseImage: config.docker.baseImage,
      ccacheVolume: config.docker.ccacheVolume,
      hostEnv,
      job: config.job,
    },
  };
  return { deps, engine };
}

/**
 * The executor's dependencies built from the configuration: the one place a
 * process (the CLI, the service, a bench) turns config into the engine,
 * the tree mirrors and the job settings.
 */
import type { Logger } from 'pino';
import type { Config } from '../../services/config/config.ts';
import { TreeMirrors } from '../host/trees.ts';
import { DockerEngine } from './docker.ts';
import { ToolVersionCache } from './environment.ts';
import type { ExecutorDeps } from './pipeline.ts';

export function makeExecutorDeps(config: Config, hostEnv: NodeJS.ProcessEnv, logger: Logger): { deps: ExecutorDeps; engine: DockerEngine } {
  const engine = new DockerEngine(config.docker.socketPath);
  const deps: ExecutorDeps = {
    runtime: engine,
    images: engine,
    mirrors: new TreeMirrors(config.mirrorsDir, config.cacheDir, hostEnv),
    logger,
    toolVersions: new ToolVersionCache(),
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

/**
 * A lab runner's configuration file (`patchbay runner --config FILE`),
 * validated whole when it is read. The executor's own settings (job limits,
 * CPUs, the Docker socket, caches) are the service's PATCHBAY_* settings,
 * given under `settings`; the runner keeps its cache (trees, warm bases,
 * base runs, job folders) under its state folder unless they say otherwise.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { loadConfig, type Config } from '../../services/config/config.ts';
import { PatchbayError, errorMessage } from '../../services/domain/errors.ts';
import { LABEL_KEY_RE, LABEL_VALUE_RE } from '../../services/domain/runners.ts';
import { RUNNER_NAME_RE } from '../../services/protocol/runners.ts';

export const RunnerFileSchema = Type.Object({
  /** The patchbay API (https://..., or http:// on loopback). */
  server: Type.String({ pattern: '^https?://[^/]+' }),
  /** What it is called on the runners page: a host-name-like word. */
  name: Type.String({ pattern: RUNNER_NAME_RE.source }),
  /** Its credential, job folders and caches live here. */
  stateDir: Type.String({ minLength: 1 }),
  /** A file holding a one-time registration token (`patchbay runners token`); read only while there is no credential yet. */
  registrationTokenFile: Type.Optional(Type.String({ minLength: 1 })),
  /** Jobs it runs at once. */
  capacity: Type.Integer({ minimum: 1, maximum: 64 }),
  labels: Type.Optional(Type.Object({
    /** auto: /dev/kvm can be opened for reading and writing. */
    kvm: Type.Optional(Type.Union([Type.Literal('auto'), Type.Boolean()])),
    /** The trees it takes jobs on (names from the tree catalogue); absent: every tree. */
    trees: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { maxItems: 64 })),
    /** The admin's own labels (lab, rack, ...), which a job may ask for with runs-on. */
    extra: Type.Optional(Type.Record(Type.String({ pattern: LABEL_KEY_RE.source }), Type.String({ pattern: LABEL_VALUE_RE.source }), { additionalProperties: false })),
  }, { additionalProperties: false })),
  /** PATCHBAY_* settings for the executor (PATCHBAY_JOB_CPUS, PATCHBAY_JOB_DEADLINE, DOCKER_SOCKET, ...). */
  settings: Type.Optional(Type.Record(Type.String({ pattern: '^(PATCHBAY_[A-Z0-9_]+|DOCKER_SOCKET)$' }), Type.String(), { additionalProperties: false })),
  /** How long a draining runner waits for its jobs at shutdown before handing them back; default the job deadline. */
  shutdownGraceSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
}, { additionalProperties: false });
export type RunnerFile = Static<typeof RunnerFileSchema>;

export interface RunnerConfig {
  file: RunnerFile;
  /** Absolute. */
  stateDir: string;
  /** The executor's configuration, built as the service builds its own. */
  executor: Config;
  /** The environment the executor's commands get. */
  hostEnv: NodeJS.ProcessEnv;
}

export function parseRunnerFile(text: string, where: string): RunnerFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new PatchbayError('CONFIG_INVALID', `${where} is not JSON: ${errorMessage(e)}`);
  }
  if (Value.Check(RunnerFileSchema, data)) return data;
  const problems = [...Value.Errors(RunnerFileSchema, data)].slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message}`);
  throw new PatchbayError('CONFIG_INVALID', `${where}: ${problems.join('; ')}`);
}

/** Reads and validates the file, and builds the executor's configuration from it and the environment. */
export function loadRunnerConfig(path: string, env: NodeJS.ProcessEnv): RunnerConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new PatchbayError('CONFIG_INVALID', `cannot read the runner configuration ${path}: ${errorMessage(e)}`);
  }
  const file = parseRunnerFile(text, path);
  const stateDir = isAbsolute(file.stateDir) ? file.stateDir : resolve(path, '..', file.stateDir);
  const hostEnv: NodeJS.ProcessEnv = {
    ...env,
    PATCHBAY_CACHE: join(stateDir, 'cache'),
    ...file.settings,
  };
  return { file, stateDir, executor: loadConfig(hostEnv), hostEnv };
}

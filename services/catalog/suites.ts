/**
 * Suites are data: one folder per suite under images/guest/suites with a
 * manifest.json (validated here) and the guest script that prints KTAP.
 * A bad manifest stops start-up with a message naming the file and field.
 */
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Static, Type } from 'typebox';
import { PatchbayError } from '../domain/errors.ts';
import { KCONFIG_LINE } from '../domain/kconfig.ts';
import { readValidatedJson } from './validated-json.ts';

export const SuiteManifestSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,31}$' }),
    description: Type.String(),
    /** The whole suite in the guest is killed after this many seconds (ERROR, not a hung job). */
    timeoutSeconds: Type.Integer({ minimum: 1, maximum: 7200 }),
    /** Each test of the suite is killed after this many seconds (for suites whose run.sh uses the guest's ktap.sh). */
    testTimeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 7200 })),
    /** Kernel config lines the suite needs, e.g. "CONFIG_IO_URING=y". */
    kconfig: Type.Array(Type.String({ pattern: KCONFIG_LINE.source })),
    build: Type.Object(
      {
        /** Commands run in the suite folder when the runner image is built. */
        image: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
        /**
         * Commands run in the job container after the kernel is built, once
         * for the tree under test and once for the base: cwd is the suite
         * folder, SRC the tree, OBJ its build folder, OUT an empty folder
         * whose files are laid over the suite's folder in the guest.
         */
        tree: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
      },
      { additionalProperties: false },
    ),
    /** The script the guest runs, relative to the suite folder; it prints KTAP. */
    run: Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }),
    /** Changed paths (prefixes) that make the suite relevant to a series. */
    paths: Type.Array(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
export type SuiteManifest = Static<typeof SuiteManifestSchema>;

export class SuiteCatalog {
  readonly suites: readonly SuiteManifest[];

  constructor(suites: readonly SuiteManifest[]) {
    this.suites = [...suites].sort((a, b) => a.name.localeCompare(b.name));
  }

  static load(dir: string): SuiteCatalog {
    if (!existsSync(dir)) throw new PatchbayError('SUITES_INVALID', `suites folder ${dir} does not exist`);
    const suites: SuiteManifest[] = [];
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const path = join(dir, entry.name, 'manifest.json');
      if (!existsSync(path)) throw new PatchbayError('SUITES_INVALID', `${join(dir, entry.name)}: no manifest.json`);
      const m = readValidatedJson(path, SuiteManifestSchema, 'SUITES_INVALID');
      if (m.name !== entry.name) {
        throw new PatchbayError('SUITES_INVALID', `${path}: name "${m.name}" differs from its folder "${entry.name}"`);
      }
      try {
        accessSync(join(dir, entry.name, m.run), constants.X_OK);
      } catch {
        throw new PatchbayError('SUITES_INVALID', `${path}: run script "${m.run}" is missing or not executable`);
      }
      if (m.testTimeoutSeconds !== undefined && m.testTimeoutSeconds > m.timeoutSeconds) {
        throw new PatchbayError('SUITES_INVALID', `${path}: testTimeoutSeconds (${m.testTimeoutSeconds}) exceeds timeoutSeconds (${m.timeoutSeconds})`);
      }
      suites.push(m);
    }
    if (suites.length === 0) throw new PatchbayError('SUITES_INVALID', `${dir}: no suites`);
    return new SuiteCatalog(suites);
  }

  get(name: string): SuiteManifest {
    const s = this.suites.find((x) => x.name === name);
    if (!s) {
      throw new PatchbayError('SUITE_UNKNOWN', `unknown suite "${name}"; known suites: ${this.names().join(', ')}`, {
        details: { suite: name },
      });
    }
    return s;
  }

  names(): string[] {
    return this.suites.map((s) => s.name);
  }

  /**
   * The suites a series' changed paths select (a path equal to or under one
   * of a suite's prefixes); every suite when none matches, so a series
   * elsewhere in the tree still gets the whole catalogue.
   */
  forPaths(paths: readonly string[]): SuiteManifest[] {
    const hit = this.suites.filter((s) => s.paths.some((prefix) => paths.some((p) => p === prefix || p.startsWith(prefix))));
    return hit.length > 0 ? hit : [...this.suites];
  }

  /** The named suites, in catalogue order, without repeats. */
  select(names: readonly string[]): SuiteManifest[] {
    const wanted = new Set(names.map((n) => this.get(n).name));
    return this.suites.filter((s) => wanted.has(s.name));
  }
}

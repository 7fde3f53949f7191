/**
 * The catalogues a process serves from: the trees, the suites, and the
 * kernel config fragment every job of them builds with.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/config.ts';
import { mergeFragments } from '../domain/kconfig.ts';
import { SuiteCatalog } from './suites.ts';
import { TreeCatalog } from './trees.ts';

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

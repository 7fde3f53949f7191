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

/**
 * The parts the kernel fragment is merged from, in order: the guest's
 * config, then each suite's `kconfig` (catalogue order). `path` is the file
 * each comes from (a suite's manifest.json).
 */
export function kernelFragmentParts(imagesDir: string, suitesDir: string, suites: SuiteCatalog): Array<{ from: string; path: string; text: string }> {
  const guestConfig = join(imagesDir, 'guest', 'guest.config');
  return [
    { from: guestConfig, path: guestConfig, text: readFileSync(guestConfig, 'utf8') },
    ...suites.suites.map((s) => ({ from: `suite ${s.name}`, path: join(suitesDir, s.name, 'manifest.json'), text: s.kconfig.join('\n') })),
  ];
}

export function loadCatalogs(config: Config): Catalogs {
  const trees = TreeCatalog.load(config.treesFile);
  const suites = SuiteCatalog.load(config.suitesDir);
  const kernelFragment = mergeFragments(kernelFragmentParts(config.imagesDir, config.suitesDir, suites));
  return { trees, suites, kernelFragment };
}

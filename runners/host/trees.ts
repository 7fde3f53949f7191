/**
 * Local mirrors of the configured trees, one bare repository each under
 * <mirrorsDir>/<name>.git (<cache>/trees by default). Job containers mount a
 * mirror read-only and fetch the base commit from it, so jobs never need
 * the network.
 *
 * A process may see the mirrors read-only (the compose worker: the host's
 * `patchbay prepare` keeps them), and owned by another user: git is told
 * that each mirror is a safe directory, and a read-only mirror is used as
 * it is, not fetched.
 */
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Tree } from '../../services/catalog/trees.ts';
import { PatchbayError } from '../../services/domain/errors.ts';
import { runCommand } from './command.ts';

const IMPORT_SCRIPT = fileURLToPath(new URL('./import-debian-source.sh', import.meta.url));

export class TreeMirrors {
  /** Fetches of a URL tree are at most this often. */
  private readonly fetched = new Map<string, number>();

  constructor(
    private readonly mirrorsDir: string,
    /** Where a Debian source import keeps its tarballs (<cacheDir>/sources). */
    private readonly cacheDir: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly refetchMs = 5 * 60_000,
  ) {}

  path(tree: Tree): string {
    return join(this.mirrorsDir, `${tree.name}.git`);
  }

  /** git's environment for one mirror: that repository is safe to read whoever owns it. */
  private gitEnv(repo: string): NodeJS.ProcessEnv {
    return { ...this.env, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'safe.directory', GIT_CONFIG_VALUE_0: repo };
  }

  private writable(repo: string): boolean {
    try {
      accessSync(repo, constants.W_OK);
      return true;
    } catch {
      return false;
    }
  }

  /** Creates or updates the mirror; returns its path. */
  async ensure(tree: Tree, onLine: (line: string) => void): Promise<string> {
    const repo = this.path(tree);
    mkdirSync(dirname(repo), { recursive: true });
    if (tree.import) {
      const { package: pkg, version } = tree.import.debianSource;
      const r = await runCommand('bash', [IMPORT_SCRIPT, pkg, version, repo, tree.ref], {
        env: { ...this.gitEnv(repo), PATCHBAY_CACHE: this.cacheDir },
        onLine,
      });
      if (r.code !== 0) {
        throw new PatchbayError('TREE_IMPORT_FAILED', `importing ${pkg} ${version} for tree ${tree.name} failed (exit ${r.code})`, {
          retryable: true,
          details: { output: r.output.slice(-2000) },
        });
      }
      return repo;
    }
    if (tree.url === undefined) throw new PatchbayError('TREES_INVALID', `tree ${tree.name} has no url`);
    const last = this.fetched.get(tree.name) ?? 0;
    if (!existsSync(repo)) {
      onLine(`cloning ${tree.url}`);
      await this.git(['clone', '--mirror', '--quiet', tree.url, repo], tree, onLine);
      await this.git(['--git-dir', repo, 'config', 'uploadpack.allowAnySHA1InWant', 'true'], tree, onLine);
    } else if (!this.writable(repo)) {
      if (last === 0) onLine(`${repo} is read-only here: used as it is (the host's \`patchbay prepare\` fetches it)`);
    } else if (Date.now() - last > this.refetchMs) {
      onLine(`fetching ${tree.url}`);
      await this.git(['--git-dir', repo, 'fetch', '--quiet', '--prune', 'origin'], tree, onLine);
    }
    this.fetched.set(tree.name, Date.now());
    return repo;
  }

  /** The full commit id a commit-ish names in the mirror, or null if it has no such commit. */
  async resolve(tree: Tree, commitish: string): Promise<string | null> {
    const repo = this.path(tree);
    const r = await runCommand('git', ['--git-dir', repo, 'rev-parse', '--verify', '--quiet', `${commitish}^{commit}`], {
      env: this.gitEnv(repo),
    });
    const sha = r.output.trim();
    return r.code === 0 && /^[0-9a-f]{40}$/.test(sha) ? sha : null;
  }

  private async git(args: string[], tree: Tree, onLine: (line: string) => void): Promise<void> {
    const r = await runCommand('git', args, { env: this.gitEnv(this.path(tree)), onLine });
    if (r.code !== 0) {
      throw new PatchbayError('TREE_FETCH_FAILED', `git ${args[0] === '--git-dir' ? args[2] : args[0]} for tree ${tree.name} failed: ${r.output.trim().split('\n').slice(-3).join(' / ')}`, {
        retryable: true,
      });
    }
  }
}

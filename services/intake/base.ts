/**
 * Which commit of which tree a series is applied to, chosen by a rule the
 * decision names, so that a report can say why it tested on that base (or
 * why it could not test at all). The rules, in order; the first that
 * decides wins:
 *
 *   requested    the caller (API, CLI) named a base: it must be a commit of
 *                the tree (the requested one, else the first that has it),
 *                else no base at all.
 *   (prerequisites) a series that names prerequisite patches
 *                (prerequisite-patch-id:, prerequisite-message-id:) cannot
 *                be tested without them: given none (the caller could not
 *                fetch them), no base. Given them, the rules below look for
 *                where the prerequisites and then the series apply: b4's
 *                base-commit of such a series is that commit; the blob guess
 *                reads the pre-images of the prerequisites and the series
 *                together; tree-map never guesses for such a series.
 *   base-commit  the series' base-commit: trailer, when a tree has that
 *                commit (the requested tree first, then catalog order; a
 *                short id must be unambiguous).
 *   blob-guess   the pre-image blob ids of the patches' "index" lines (the
 *                first touch of each path; created files are skipped), as
 *                b4 guesses a base: per tree, the newest of the last
 *                `historyDepth` commits of its ref, then of its
 *                `historyDepth` newest tags, at which every one matches.
 *   tree-map     deploy/trees.json's `match`: a subject tree tag names a
 *                tree, or (without tags) the requested tree, or the first
 *                tree whose path prefixes cover every path; that tree's ref.
 *                Tags that name no configured tree give no base.
 *
 * Git is reached through BaseGit, a narrow port over the tree mirrors;
 * mirrorGit() is the real one. Nothing from the series becomes a file path:
 * trees are named by the catalog, commit ids from the series are checked to
 * be hex before they reach git, and paths reach git only as literal
 * pathspecs after "--".
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Tree, TreeCatalog } from '../catalog/trees.ts';
import { PatchbayError } from '../domain/errors.ts';
import { diffFiles } from '../domain/patch.ts';
import type { Series } from '../domain/series.ts';

export type BaseRule = 'requested' | 'base-commit' | 'blob-guess' | 'tree-map';

export type BaseDecision =
  | {
      kind: 'found';
      tree: string;
      /** The full commit id. */
      commit: string;
      rule: BaseRule;
      /** Why, as a sentence for the report. */
      detail: string;
      /** The rules tried before this one, and why each did not decide. */
      tried: string[];
    }
  | {
      kind: 'no-base';
      reason: string;
      /** One line per rule tried and why it did not decide. */
      tried: string[];
    };

/** What a revision names in one tree. */
export type ResolvedCommit = { kind: 'commit'; sha: string } | { kind: 'missing' } | { kind: 'ambiguous' };

/**
 * The git reads the base choice needs, over the tree mirrors. Trees are
 * catalog names; commits given to recentCommits/blobsAt are full ids.
 */
export interface BaseGit {
  /** Whether the tree's mirror is here and `ref` names a commit in it. */
  hasRef(tree: string, ref: string): Promise<boolean>;
  /** The full id of the commit `rev` names (a short id must be unambiguous). */
  resolveCommit(tree: string, rev: string): Promise<ResolvedCommit>;
  /** Up to n commits reachable from ref, newest first (git rev-list order). */
  recentCommits(tree: string, ref: string, n: number): Promise<string[]>;
  /** The commits of the tree's n newest tags (by tag date), newest first. */
  recentTags(tree: string, n: number): Promise<Array<{ tag: string; commit: string }>>;
  /** The full blob id of each of `paths` that is a file at `commit`; paths that are not files there are absent. */
  blobsAt(tree: string, commit: string, paths: readonly string[]): Promise<Map<string, string>>;
}

// ---------------------------------------------------------------------------
// What the series says

const HEX_ID = /^[0-9a-f]{7,64}$/;
const FULL_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
/** A requested base: what intake accepts (a commit id or ref), and never an option. */
const REQUESTED_RE = /^[\w./~^-]{1,200}$/;
const MAX_PREREQS = 100;

/**
 * The "prerequisite-message-id: <id>" lines of the cover letter, else of
 * the first patch (as Series.prerequisitePatchIds are read), without repeats.
 */
export function prerequisiteMessageIds(series: Series): string[] {
  const read = (body: string): string[] =>
    [...body.matchAll(/^prerequisite-message-id:[ \t]*<?([^\s<>]{1,998})>?[ \t]*$/gim)].map((m) => m[1] ?? '');
  const fromCover = series.cover === null ? [] : read(series.cover.body);
  const first = series.patches[0];
  const ids = fromCover.length > 0 || first === undefined ? fromCover : read(first.message.body);
  return [...new Set(ids)].slice(0, MAX_PREREQS);
}

export interface PreImage {
  path: string;
  /** The abbreviated blob id the "index" line gives, lower case. */
  blob: string;
}

/**
 * The blobs the series expects in its base: each path's pre-image from the
 * first patch that touches it (a later patch expects what an earlier one
 * left, which no base has; b4 does the same). Created files have none.
 * `unindexed` counts touched files whose diff has no usable "index" line.
 */
export function preImageBlobs(series: Series): { preImages: PreImage[]; unindexed: number } {
  const seen = new Set<string>();
  const preImages: PreImage[] = [];
  let unindexed = 0;
  for (const patch of series.patches) {
    for (const f of diffFiles(patch.message.body, { blobs: true })) {
      const path = f.oldPath;
      const first = path !== null && !seen.has(path);
      if (path !== null) seen.add(path);
      if (f.newPath !== null) seen.add(f.newPath);
      if (!first) continue;
      const blob = f.oldBlob;
      if (blob === undefined || blob.length < 7) unindexed++;
      else if (!/^0+$/.test(blob)) preImages.push({ path, blob });
    }
  }
  return { preImages, unindexed };
}

/** Every path the series touches (old and new names). */
function touchedPaths(series: Series): string[] {
  const paths = new Set<string>();
  for (const p of series.patches) {
    for (const f of p.files) {
      if (f.oldPath !== null) paths.add(f.oldPath);
      if (f.newPath !== null) paths.add(f.newPath);
    }
  }
  return [...paths];
}

// ---------------------------------------------------------------------------
// The rules

export interface ResolveBaseOptions {
  trees: TreeCatalog;
  git: BaseGit;
  /** The tree the caller named, or null. */
  requestedTree: string | null;
  /** The base the caller named (a commit id or ref), or null. */
  requestedBase: string | null;
  /** How many of the newest commits of each tree's ref (and newest tags) the blob guess reads. */
  historyDepth: number;
  /** The prerequisite patches the series names, fetched (applied before it); absent or null: none fetched. */
  prerequisites?: Series | null;
}

const short = (sha: string): string => sha.slice(0, 12);
const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
/** "the one path … is" / "all 3 paths … are". */
const every = (n: number, noun: string): { all: string; be: string; es: string } =>
  n === 1 ? { all: `the one ${noun}`, be: 'is', es: 'es' } : { all: `all ${n} ${noun}s`, be: 'are', es: '' };
const listed = (items: readonly string[], max = 5): string =>
  items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`;

/**
 * Picks the base a series is applied to. A decision of no-base is a
 * verdict about the series (it cannot be tested here); git failing
 * (a timeout, a broken mirror) throws instead (PatchbayError
 * BASE_GIT_FAILED, retryable). A tree whose mirror is not here is passed
 * over, with a line in `tried`.
 */
export async function resolveBase(series: Series, opts: ResolveBaseOptions): Promise<BaseDecision> {
  const { trees, git } = opts;
  const tried: string[] = [];
  const noBase = (reason: string): BaseDecision => ({ kind: 'no-base', reason, tried });
  const found = (tree: Tree, commit: string, rule: BaseRule, detail: string): BaseDecision => ({
    kind: 'found',
    tree: tree.name,
    commit,
    rule,
    detail,
    tried,
  });

  let requested: Tree | null = null;
  if (opts.requestedTree !== null) {
    requested = trees.trees.find((t) => t.name === opts.requestedTree) ?? null;
    if (requested === null) {
      const line = `the requested tree "${opts.requestedTree.slice(0, 80)}" is not one of this service's trees (${listed(trees.trees.map((t) => t.name))})`;
      tried.push(`requested: ${line}`);
      return noBase(line);
    }
  }
  /** The requested tree first, then the catalog's order. */
  const order = requested === null ? [...trees.trees] : [requested, ...trees.trees.filter((t) => t !== requested)];

  // Whether a tree's mirror is here with its ref; asked once per tree.
  const availability = new Map<string, boolean>();
  const available = async (tree: Tree): Promise<boolean> => {
    let ok = availability.get(tree.name);
    if (ok === undefined) {
      ok = await git.hasRef(tree.name, tree.ref);
      availability.set(tree.name, ok);
    }
    return ok;
  };
  const unavailable = (tree: Tree): string => `${tree.name} has no mirror here with its ref ${tree.ref}`;

  // 1. requested
  if (opts.requestedBase !== null) {
    const rev = opts.requestedBase;
    if (!REQUESTED_RE.test(rev) || rev.startsWith('-')) {
      tried.push(`requested: "${rev.slice(0, 80)}" is not a commit id or ref`);
      return noBase(`the requested base "${rev.slice(0, 80)}" is not a commit id or ref`);
    }
    const where = requested === null ? order : [requested];
    const notes: string[] = [];
    for (const tree of where) {
      if (!(await available(tree))) {
        notes.push(unavailable(tree));
        continue;
      }
      const r = await git.resolveCommit(tree.name, rev);
      if (r.kind === 'commit') {
        return found(tree, r.sha, 'requested', `the requested base "${rev}" is commit ${short(r.sha)} of ${tree.name}`);
      }
      notes.push(r.kind === 'ambiguous' ? `"${rev}" is ambiguous in ${tree.name}` : `"${rev}" is not a commit of ${tree.name}`);
    }
    tried.push(`requested: ${notes.join('; ')}`);
    const in_ = requested === null ? `any of the trees (${listed(where.map((t) => t.name))})` : `tree ${requested.name}`;
    return noBase(`the requested base "${rev}" is not a commit of ${in_}: ${notes.join('; ')}`);
  }
  tried.push('requested: no base was requested');

  // (prerequisites) Never guessed around: the series does not apply without them.
  const prereqs = [
    ...series.prerequisitePatchIds.map((id) => `prerequisite-patch-id ${id}`),
    ...prerequisiteMessageIds(series).map((id) => `prerequisite-message-id <${id}>`),
  ];
  const pre = opts.prerequisites ?? null;
  if (prereqs.length > 0 && pre === null) {
    const line = `needs prerequisite patches (${listed(prereqs, 3)}), which were not fetched`;
    tried.push(`prerequisites: the series ${line}`);
    return noBase(line);
  }
  /** What is applied on the base: the prerequisites, then the series. */
  const applied: Series = pre === null ? series : { ...series, patches: [...pre.patches, ...series.patches] };
  const withPre = pre === null ? '' : ` (with ${plural(pre.patches.length, 'prerequisite patch', 'prerequisite patches')} applied first)`;
  if (pre !== null) tried.push(`prerequisites: ${plural(pre.patches.length, 'patch', 'patches')} fetched, applied before the series`);

  // 2. base-commit
  const bc = series.baseCommit;
  if (bc === null) {
    tried.push('base-commit: the series has no base-commit: trailer');
  } else if (!HEX_ID.test(bc)) {
    tried.push(`base-commit: "${bc.slice(0, 80)}" is not a commit id`);
  } else {
    const notes: string[] = [];
    for (const tree of order) {
      if (!(await available(tree))) {
        notes.push(unavailable(tree));
        continue;
      }
      const r = await git.resolveCommit(tree.name, bc);
      if (r.kind === 'commit') {
        return found(tree, r.sha, 'base-commit', `the series' base-commit ${bc} is commit ${short(r.sha)} of ${tree.name}${withPre}`);
      }
      notes.push(r.kind === 'ambiguous' ? `the short id is ambiguous in ${tree.name}` : `not in ${tree.name}`);
    }
    tried.push(`base-commit: ${bc} is in none of the trees (${notes.join('; ')})`);
  }

  // 4. blob-guess
  const blobLine = await guessFromBlobs(applied, order, git, opts.historyDepth, available, unavailable);
  if (typeof blobLine !== 'string') return found(blobLine.tree, blobLine.commit, 'blob-guess', `${blobLine.detail}${withPre}`);
  tried.push(`blob-guess: ${blobLine}`);
  // The patches name their pre-images and no commit here has them all: the
  // series is on something this service does not have (a newer tree, an
  // unmerged patch). A guess from tags or paths would test it on a base it
  // does not apply to and blame it for that.
  if (blobLine.startsWith(NO_TREE_HAS_BLOBS)) {
    return noBase(`the patches' pre-image blobs match no commit this service has, so it is based on something else (a newer tree, patches not merged): ${blobLine}`);
  }

  // 5. tree-map: a tree's ref is a guess; prerequisites need the commit they were written on.
  if (pre !== null) {
    tried.push('tree-map: not for a series with prerequisites (they apply where they were written, not on a guessed tip)');
    return noBase(`the series and its prerequisites name no base this service has: ${tried.slice(1).join('; ')}`);
  }
  const map = await mapTree(series, trees, requested, order, git, available, unavailable);
  if (map.kind === 'found') return found(map.tree, map.commit, 'tree-map', map.detail);
  tried.push(`tree-map: ${map.line}`);
  if (map.final) return noBase(map.line);

  // 6. nothing decided
  return noBase(`no rule named a base: ${tried.slice(1).join('; ')}`);
}

type Available = (tree: Tree) => Promise<boolean>;

/** The blob guess: a decision, or the line that says why it did not decide. */
async function guessFromBlobs(
  series: Series,
  order: readonly Tree[],
  git: BaseGit,
  historyDepth: number,
  available: Available,
  unavailable: (tree: Tree) => string,
): Promise<{ tree: Tree; commit: string; detail: string } | string> {
  const { preImages, unindexed } = preImageBlobs(series);
  if (preImages.length === 0) {
    return unindexed > 0
      ? `the patches carry no pre-image blob ids (${plural(unindexed, 'file')} without an "index" line, the rest created)`
      : 'the series only creates files: no pre-image blob to look for';
  }
  const depth = Math.floor(historyDepth);
  if (!(depth > 0)) return 'historyDepth is 0: no history is read';
  const paths = preImages.map((p) => p.path);
  const total = preImages.length;
  const notes: string[] = [];
  let checked = false;
  for (const tree of order) {
    if (!(await available(tree))) {
      notes.push(unavailable(tree));
      continue;
    }
    checked = true;
    const commits = await git.recentCommits(tree.name, tree.ref, depth);
    const candidates: Array<{ commit: string; label: string }> = commits.map((c, i) => ({
      commit: c,
      label: i === 0 ? `the tip of ${tree.ref}` : `the ${ordinal(i + 1)} newest commit of ${tree.ref}`,
    }));
    const known = new Set(commits);
    let tagCount = 0;
    for (const t of await git.recentTags(tree.name, depth)) {
      tagCount++;
      if (known.has(t.commit) || !FULL_ID.test(t.commit)) continue;
      known.add(t.commit);
      candidates.push({ commit: t.commit, label: `tag ${t.tag}` });
    }
    let best: { matched: number; commit: string; label: string } | null = null;
    for (const c of candidates) {
      const blobs = await git.blobsAt(tree.name, c.commit, paths);
      let matched = 0;
      for (const p of preImages) if (blobs.get(p.path)?.startsWith(p.blob) === true) matched++;
      if (matched === total) {
        const unindexedNote = unindexed > 0 ? ` (${plural(unindexed, 'file')} without an "index" line not checked)` : '';
        return {
          tree,
          commit: c.commit,
          detail:
            `a guess from blob ids: ${every(total, 'pre-image blob').all} of the series (${listed(paths, 3)}) match${every(total, '').es} ` +
            `commit ${short(c.commit)} of ${tree.name}, ${c.label}${unindexedNote}`,
        };
      }
      if (best === null || matched > best.matched) best = { matched, ...c };
    }
    const scope = `the last ${plural(commits.length, 'commit')} of ${tree.ref} and ${plural(tagCount, 'newest tag')}`;
    notes.push(
      best === null
        ? `${tree.name}: nothing to check in ${scope}`
        : `${tree.name}: no commit in ${scope} has all ${total}; best ${best.matched}/${total} at ${short(best.commit)} (${best.label})`,
    );
  }
  return checked ? `${NO_TREE_HAS_BLOBS}: ${notes.join('; ')}` : `no tree could be checked: ${notes.join('; ')}`;
}

const NO_TREE_HAS_BLOBS = 'no tree has every pre-image blob';

function ordinal(n: number): string {
  const mod100 = n % 100;
  const suffix = mod100 >= 11 && mod100 <= 13 ? 'th' : n % 10 === 1 ? 'st' : n % 10 === 2 ? 'nd' : n % 10 === 3 ? 'rd' : 'th';
  return `${n}${suffix}`;
}

/** The tree-map rule: a decision, or a line; `final` when it is a no-base on its own (a tree this service does not have). */
async function mapTree(
  series: Series,
  trees: TreeCatalog,
  requested: Tree | null,
  order: readonly Tree[],
  git: BaseGit,
  available: Available,
  unavailable: (tree: Tree) => string,
): Promise<{ kind: 'found'; tree: Tree; commit: string; detail: string } | { kind: 'line'; line: string; final: boolean }> {
  const onRef = async (tree: Tree, why: string): Promise<{ kind: 'found'; tree: Tree; commit: string; detail: string } | { kind: 'line'; line: string; final: boolean }> => {
    if (!(await available(tree))) return { kind: 'line', line: `${why}, but ${unavailable(tree)}`, final: false };
    const r = await git.resolveCommit(tree.name, tree.ref);
    if (r.kind !== 'commit') return { kind: 'line', line: `${why}, but its ref ${tree.ref} does not name one commit`, final: false };
    return { kind: 'found', tree, commit: r.sha, detail: `a guess from ${why}: on ${tree.ref} = ${short(r.sha)}` };
  };

  const tags = series.treeTags;
  if (tags.length > 0) {
    const named: Array<{ tag: string; tree: Tree }> = [];
    const unknown: string[] = [];
    for (const tag of tags) {
      const tree = trees.byTag(tag);
      if (tree === null) unknown.push(tag);
      else named.push({ tag, tree });
    }
    if (named.length === 0) {
      return {
        kind: 'line',
        line: `the series is for a tree this service does not have: its subject tag${tags.length === 1 ? '' : 's'} ${tags.map((t) => `[${t}]`).join(' ')} name${tags.length === 1 ? 's' : ''} none of ${listed(trees.trees.map((t) => t.name))}`,
        final: true,
      };
    }
    const pick = named.find((n) => n.tree === requested) ?? [...named].sort((a, b) => order.indexOf(a.tree) - order.indexOf(b.tree))[0];
    if (pick === undefined) throw new Error('unreachable: named is not empty');
    const also = unknown.length > 0 ? `; ${unknown.map((t) => `[${t}]`).join(' ')} named no tree` : '';
    const notRequested = requested !== null && requested !== pick.tree ? `; ${requested.name} was requested` : '';
    return onRef(pick.tree, `the subject tag [${pick.tag}], which names tree ${pick.tree.name}${also}${notRequested}`);
  }

  const paths = touchedPaths(series);
  const covers = (tree: Tree): string[] => {
    const prefixes = tree.match?.paths ?? [];
    return paths.filter((p) => !prefixes.some((prefix) => p === prefix || p.startsWith(prefix)));
  };
  if (requested !== null) {
    const outside = covers(requested);
    const how =
      outside.length === 0
        ? `${every(paths.length, 'path').all} under its match.paths`
        : `${outside.length} of ${plural(paths.length, 'path')} outside its match.paths (${listed(outside, 3)})`;
    return onRef(requested, `the request: tree ${requested.name} was named, no subject tag, ${how}`);
  }
  for (const tree of order) {
    if ((tree.match?.paths ?? []).length === 0) continue;
    if (covers(tree).length === 0) {
      const e = every(paths.length, 'path');
      return onRef(tree, `paths: ${e.all} of the series ${e.be} under ${tree.name}'s match.paths, and no subject tag names a tree`);
    }
  }
  const withPaths = order.filter((t) => (t.match?.paths ?? []).length > 0);
  return {
    kind: 'line',
    line:
      withPaths.length === 0
        ? 'no subject tag, and no tree has match.paths'
        : `no subject tag, and no tree's match.paths cover all ${plural(paths.length, 'path')} (${withPaths.map((t) => `${t.name} leaves out ${listed(covers(t), 3)}`).join('; ')})`,
    final: false,
  };
}

// ---------------------------------------------------------------------------
// The real port: git on the mirrors

export interface MirrorGitOptions {
  /** The environment git runs in (PATH, HOME); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Per git call; default 30 s. */
  timeoutMs?: number;
  /** stdout (and stderr) of one git call; default 16 MiB. */
  maxOutputBytes?: number;
}

const TREE_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** Pathspec bytes per ls-tree call: one call unless a series touches thousands of files. */
const ARGS_BUDGET = 100_000;

interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * BaseGit over the bare mirrors <mirrorsDir>/<tree>.git: git by execFile
 * (no shell), with argument arrays, a timeout and bounded output. The
 * environment makes each mirror a safe directory (another user may own it),
 * speaks C (messages are read), and reads pathspecs literally.
 */
export function mirrorGit(mirrorsDir: string, opts: MirrorGitOptions = {}): BaseGit {
  const timeout = opts.timeoutMs ?? 30_000;
  const maxBuffer = opts.maxOutputBytes ?? 16 * 1024 * 1024;

  const gitDir = (tree: string): string => {
    if (!TREE_NAME.test(tree)) throw new PatchbayError('TREE_UNKNOWN', `"${tree.slice(0, 80)}" is not a tree name`);
    return join(mirrorsDir, `${tree}.git`);
  };
  const checkRev = (rev: string): void => {
    if (!REQUESTED_RE.test(rev) || rev.startsWith('-')) throw new PatchbayError('BASE_INVALID', `"${rev.slice(0, 80)}" is not a commit id or ref`);
  };
  const checkFull = (commit: string): void => {
    if (!FULL_ID.test(commit)) throw new PatchbayError('BASE_INVALID', `"${commit.slice(0, 80)}" is not a full commit id`);
  };

  const run = (tree: string, args: readonly string[]): Promise<GitResult> => {
    const dir = gitDir(tree);
    const env: NodeJS.ProcessEnv = {
      ...(opts.env ?? process.env),
      LC_ALL: 'C',
      GIT_LITERAL_PATHSPECS: '1',
      GIT_TERMINAL_PROMPT: '0',
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'safe.directory',
      GIT_CONFIG_VALUE_0: dir,
    };
    return new Promise((resolve, reject) => {
      execFile('git', [`--git-dir=${dir}`, ...args], { env, timeout, maxBuffer, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err === null) {
          resolve({ code: 0, stdout, stderr });
          return;
        }
        if (typeof err.code === 'number' && err.killed !== true) {
          resolve({ code: err.code, stdout, stderr });
          return;
        }
        const why =
          err.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER'
            ? `wrote more than ${maxBuffer} bytes`
            : err.killed === true
              ? `timed out after ${timeout} ms`
              : err.message;
        reject(new PatchbayError('BASE_GIT_FAILED', `git ${args[0] ?? ''} on tree ${tree} failed: ${why}`, { retryable: true }));
      });
    });
  };
  const failed = (tree: string, args: readonly string[], r: GitResult): PatchbayError =>
    new PatchbayError('BASE_GIT_FAILED', `git ${args[0] ?? ''} on tree ${tree} failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-2).join(' / ').slice(0, 500)}`, {
      retryable: true,
    });

  return {
    async hasRef(tree, ref) {
      checkRev(ref);
      if (!existsSync(gitDir(tree))) return false;
      const r = await run(tree, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`]);
      return r.code === 0 && FULL_ID.test(r.stdout.trim());
    },

    async resolveCommit(tree, rev) {
      checkRev(rev);
      if (!existsSync(gitDir(tree))) return { kind: 'missing' };
      const r = await run(tree, ['rev-parse', '--verify', '--end-of-options', `${rev}^{commit}`]);
      const sha = r.stdout.trim();
      if (r.code === 0 && FULL_ID.test(sha)) return { kind: 'commit', sha };
      if (/short object ID \S+ is ambiguous/.test(r.stderr)) return { kind: 'ambiguous' };
      return { kind: 'missing' };
    },

    async recentCommits(tree, ref, n) {
      checkRev(ref);
      const count = Math.max(0, Math.min(Math.floor(n), 100_000));
      if (count === 0) return [];
      const args = ['rev-list', `--max-count=${count}`, '--end-of-options', `${ref}^{commit}`, '--'];
      const r = await run(tree, args);
      if (r.code !== 0) throw failed(tree, args, r);
      return r.stdout.split('\n').filter((l) => FULL_ID.test(l));
    },

    async recentTags(tree, n) {
      const count = Math.max(0, Math.min(Math.floor(n), 100_000));
      if (count === 0) return [];
      const args = [
        'for-each-ref',
        '--sort=-creatordate',
        `--count=${count}`,
        '--format=%(objecttype) %(objectname) %(*objecttype) %(*objectname) %(refname:strip=2)',
        'refs/tags/',
      ];
      const r = await run(tree, args);
      if (r.code !== 0) throw failed(tree, args, r);
      const out: Array<{ tag: string; commit: string }> = [];
      for (const line of r.stdout.split('\n')) {
        // Lightweight: "commit <id>   <name>"; annotated: "tag <id> commit <id> <name>".
        const m = /^(\w+) ([0-9a-f]+) (\w*) ([0-9a-f]*) (.+)$/.exec(line);
        if (m === null) continue;
        const [, type, id, peeledType, peeled, name] = m;
        if (type === 'commit' && id !== undefined && name !== undefined) out.push({ tag: name, commit: id });
        else if (peeledType === 'commit' && peeled !== undefined && name !== undefined) out.push({ tag: name, commit: peeled });
      }
      return out;
    },

    async blobsAt(tree, commit, paths) {
      checkFull(commit);
      const blobs = new Map<string, string>();
      const wanted = new Set(paths);
      // One call for all paths, unless they are too many for one argument list.
      const batches: string[][] = [];
      let batch: string[] = [];
      let bytes = 0;
      for (const p of wanted) {
        if (p === '' || p.includes('\0')) continue;
        if (batch.length > 0 && bytes + p.length > ARGS_BUDGET) {
          batches.push(batch);
          batch = [];
          bytes = 0;
        }
        batch.push(p);
        bytes += p.length + 1;
      }
      if (batch.length > 0) batches.push(batch);
      for (const b of batches) {
        const args = ['ls-tree', '-z', '--full-tree', commit, '--', ...b];
        const r = await run(tree, args);
        if (r.code !== 0) throw failed(tree, args.slice(0, 4), r);
        for (const entry of r.stdout.split('\0')) {
          // "<mode> <type> <id>\t<path>"
          const tab = entry.indexOf('\t');
          if (tab < 0) continue;
          const [, type, id] = entry.slice(0, tab).split(' ');
          const path = entry.slice(tab + 1);
          if (type === 'blob' && id !== undefined && wanted.has(path)) blobs.set(path, id);
        }
      }
      return blobs;
    },
  };
}

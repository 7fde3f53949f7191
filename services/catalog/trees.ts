/**
 * Trees are data: a name, where the git repository is, and the ref jobs
 * start from. A tree may also say how to import itself when it has no
 * reachable URL (Linux from Debian's source package, for offline hosts),
 * and which series it is for (`match`: subject tree tags and path
 * prefixes), the last rule of the base choice (services/intake/base.ts).
 */
import { type Static, Type } from 'typebox';
import { PatchbayError } from '../domain/errors.ts';
import { readValidatedJson } from './validated-json.ts';

const Name = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,62}$' });

export const TreeSchema = Type.Object(
  {
    name: Name,
    description: Type.Optional(Type.String()),
    /** A git URL (https, git, ssh, file). Absent when the tree is imported. */
    url: Type.Optional(Type.String({ minLength: 1 })),
    /** Branch or tag that jobs start from when a series names no base. */
    ref: Type.String({ minLength: 1 }),
    /**
     * Which series are for this tree when nothing better names a base (no
     * requested base, no base-commit the trees have, no blob match): subject
     * tree tags ("[PATCH io_uring-7.2 ...]": exact, any case; the tree's
     * own name counts too) and path prefixes ("fs/fuse/": every path a
     * series touches must start with one of them).
     */
    match: Type.Optional(
      Type.Object(
        {
          tags: Type.Optional(Type.Array(Type.String({ pattern: '^[^\\s\\[\\],;]{1,100}$' }), { maxItems: 100 })),
          paths: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 4096, pattern: '^[^/]' }), { maxItems: 1000 })),
        },
        { additionalProperties: false },
      ),
    ),
    /** How to create the local mirror without a URL. */
    import: Type.Optional(
      Type.Object(
        {
          debianSource: Type.Object(
            { package: Type.String({ minLength: 1 }), version: Type.String({ minLength: 1 }) },
            { additionalProperties: false },
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type Tree = Static<typeof TreeSchema>;

const TreesFileSchema = Type.Object(
  { trees: Type.Array(TreeSchema, { minItems: 1 }) },
  { additionalProperties: false },
);

export class TreeCatalog {
  readonly trees: readonly Tree[];

  constructor(trees: readonly Tree[]) {
    const seen = new Set<string>();
    for (const t of trees) {
      if (seen.has(t.name)) throw new PatchbayError('TREES_INVALID', `tree "${t.name}" is defined twice`);
      seen.add(t.name);
      if (t.url === undefined && t.import === undefined) {
        throw new PatchbayError('TREES_INVALID', `tree "${t.name}" has neither a url nor an import recipe`);
      }
    }
    // A subject tag names one tree: the same tag (or a tree's name) on two trees is ambiguous.
    const tagOwner = new Map<string, string>(trees.map((t) => [t.name.toLowerCase(), t.name]));
    for (const t of trees) {
      for (const tag of t.match?.tags ?? []) {
        const key = tag.toLowerCase();
        const owner = tagOwner.get(key);
        if (owner !== undefined && owner !== t.name) {
          throw new PatchbayError('TREES_INVALID', `tree "${t.name}": match tag "${tag}" already names tree "${owner}"`);
        }
        tagOwner.set(key, t.name);
      }
    }
    this.trees = trees;
  }

  static load(path: string): TreeCatalog {
    return new TreeCatalog(readValidatedJson(path, TreesFileSchema, 'TREES_INVALID').trees);
  }

  /** The tree a subject tree tag names (match.tags or the tree's name, any case), or null. */
  byTag(tag: string): Tree | null {
    const key = tag.toLowerCase();
    return this.trees.find((t) => t.name.toLowerCase() === key || (t.match?.tags ?? []).some((m) => m.toLowerCase() === key)) ?? null;
  }

  get(name: string): Tree {
    const tree = this.trees.find((t) => t.name === name);
    if (!tree) {
      throw new PatchbayError('TREE_UNKNOWN', `unknown tree "${name}"; known trees: ${this.trees.map((t) => t.name).join(', ')}`, {
        details: { tree: name },
      });
    }
    return tree;
  }
}

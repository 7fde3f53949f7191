/** Small helpers the series steps share. */
import type { MessageNode } from './model.ts';

export function time(node: MessageNode, missing: number): number {
  return node.msg.date?.getTime() ?? missing;
}

/** The later of two messages; b on a tie, and a dated one over an undated one. */
export function later(a: MessageNode, b: MessageNode): MessageNode {
  return time(b, -Infinity) >= time(a, -Infinity) ? b : a;
}

export function describe(node: MessageNode): string {
  return `"${node.msg.subject}" <${node.msg.messageId}>`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function byId(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** "3/5, 4/5" with the counters padded as git format-patch pads them. */
export function counters(list: readonly number[], total: number): string {
  const width = String(total).length;
  return list.map((c) => `${String(c).padStart(width, '0')}/${total}`).join(', ');
}

export interface Metadata {
  baseCommit: string | null;
  changeId: string | null;
  prereqs: string[];
}

/** The b4 lines of a cover letter or first patch: base-commit:, change-id:, prerequisite-patch-id:. */
export function metadata(body: string): Metadata {
  const base = /^base-commit:[ \t]*([0-9a-f]{7,64})\b/im.exec(body);
  const change = /^change-id:[ \t]+([A-Za-z0-9._@+-]+)/im.exec(body);
  const prereqs = [...body.matchAll(/^prerequisite-patch-id:[ \t]+([0-9a-f]{7,64})\b/gim)].map((m) => m[1] ?? '');
  return { baseCommit: base?.[1]?.toLowerCase() ?? null, changeId: change?.[1] ?? null, prereqs };
}

/** A title as identities compare it: case-folded, whitespace runs as one space. */
export function normalTitle(title: string): string {
  return title.normalize('NFKC').replace(/\s+/g, ' ').trim().toLowerCase();
}

/** seriesIdentity's rule: change-id: when there is one, else the title and the author's address. */
export function identityOf(changeId: string | null, title: string, email: string): string {
  if (changeId !== null) return `change-id:${changeId}`;
  return `subject:${email.trim().toLowerCase()}:${normalTitle(title)}`;
}

/**
 * The report templates' little language (the syntax is described for
 * people in render.ts and services/reporter/templates/README.md):
 *
 *   {{name}}                 a text value
 *   {{#name}}...{{/name}}    a section: printed when name is not empty, once
 *                            per item when it is a list (the item's names
 *                            are then in scope)
 *   {{^name}}...{{/name}}    printed only when name is empty
 *   {{>block}}               the template block.txt, on a line of its own
 *
 * A line holding nothing but a section tag or an include is dropped with its
 * line end, so sections that vanish leave no line behind; an include takes
 * the indentation of its line. A text value with several lines continues
 * each at the column its placeholder stood at.
 *
 * Templates are checked against a schema when they are parsed (unknown
 * names, a list used as text, an include of a missing block, sections left
 * open), so a maintainer's typo fails at load, not in a mail. Pure: no I/O.
 */
import { PatchbayError } from '../errors.ts';

/** What a name stands for: text, a flag, or items (a list, or one object) with names of their own. */
export type Field = 'text' | 'flag' | { readonly items: Schema };
export interface Schema {
  readonly [name: string]: Field;
}

export type Value = string | boolean | Context | readonly Context[] | null;
export interface Context {
  readonly [name: string]: Value;
}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'var'; name: string; line: number }
  | { kind: 'section'; name: string; inverted: boolean; children: Node[]; line: number }
  | { kind: 'include'; name: string; indent: string; line: number };

export interface Template {
  readonly name: string;
  readonly nodes: readonly Node[];
}

const NAME = '[A-Za-z][A-Za-z0-9-]*';
const TAG = new RegExp(`\\{\\{\\s*([#^/>]?)\\s*(${NAME})\\s*\\}\\}`, 'g');
const STANDALONE = new RegExp(`^([ \\t]*)\\{\\{\\s*([#^/>])\\s*(${NAME})\\s*\\}\\}[ \\t]*$`);

function templateError(file: string, line: number, message: string): PatchbayError {
  return new PatchbayError('REPORT_TEMPLATE', `${file}:${line}: ${message}`);
}

/** Parses one template (its file name for messages, e.g. "fail.txt"). */
export function parseTemplate(file: string, source: string): Template {
  const root: Node[] = [];
  const open: Array<{ name: string; line: number; children: Node[] }> = [];
  const into = (): Node[] => open[open.length - 1]?.children ?? root;
  const text = (s: string, line: number): void => {
    if (s === '') return;
    if (s.includes('{{') || s.includes('}}')) throw templateError(file, line, `a malformed tag: ${JSON.stringify(s.trim())}`);
    const nodes = into();
    const last = nodes[nodes.length - 1];
    if (last?.kind === 'text') last.text += s;
    else nodes.push({ kind: 'text', text: s });
  };
  const tag = (sigil: string, name: string, line: number, indent: string | null): void => {
    switch (sigil) {
      case '': into().push({ kind: 'var', name, line }); return;
      case '#':
      case '^': {
        const children: Node[] = [];
        into().push({ kind: 'section', name, inverted: sigil === '^', children, line });
        open.push({ name, line, children });
        return;
      }
      case '/': {
        const top = open.pop();
        if (top === undefined) throw templateError(file, line, `{{/${name}}} closes no section`);
        if (top.name !== name) throw templateError(file, line, `{{/${name}}} closes {{#${top.name}}} (line ${top.line})`);
        return;
      }
      case '>':
        if (indent === null) throw templateError(file, line, `{{>${name}}} must stand on a line of its own`);
        into().push({ kind: 'include', name, indent, line });
        return;
      default: throw templateError(file, line, `unknown tag {{${sigil}${name}}}`);
    }
  };
  const lines = source.replace(/\r\n/g, '\n').split('\n');
  lines.forEach((line, i) => {
    const n = i + 1;
    const end = i === lines.length - 1 ? '' : '\n';
    const alone = STANDALONE.exec(line);
    if (alone?.[2] !== undefined && alone[3] !== undefined) {
      tag(alone[2], alone[3], n, alone[1] ?? '');
      return;
    }
    let at = 0;
    for (const m of line.matchAll(TAG)) {
      text(line.slice(at, m.index), n);
      tag(m[1] ?? '', m[2] ?? '', n, null);
      at = m.index + m[0].length;
    }
    text(line.slice(at) + end, n);
  });
  const left = open.pop();
  if (left !== undefined) throw templateError(file, left.line, `{{#${left.name}}} is never closed`);
  return { name: file, nodes: root };
}

function lookupField(scopes: readonly Schema[], name: string): Field | undefined {
  for (let i = scopes.length - 1; i >= 0; i--) {
    const f = scopes[i]?.[name];
    if (f !== undefined) return f;
  }
  return undefined;
}

/**
 * Checks a template, and every block it includes, against the names the
 * renderer provides. `blocks` maps a block's name (its file name without
 * .txt) to its template.
 */
export function checkTemplate(t: Template, blocks: ReadonlyMap<string, Template>, schema: Schema): void {
  const walk = (tpl: Template, nodes: readonly Node[], scopes: readonly Schema[], via: readonly string[]): void => {
    for (const node of nodes) {
      switch (node.kind) {
        case 'text': break;
        case 'var': {
          const f = lookupField(scopes, node.name);
          if (f === undefined) throw templateError(tpl.name, node.line, `unknown name {{${node.name}}}`);
          if (f !== 'text') throw templateError(tpl.name, node.line, `{{${node.name}}} is ${f === 'flag' ? 'a flag' : 'a list'}: use it as a section, {{#${node.name}}}...{{/${node.name}}}`);
          break;
        }
        case 'section': {
          const f = lookupField(scopes, node.name);
          if (f === undefined) throw templateError(tpl.name, node.line, `unknown name {{#${node.name}}}`);
          const inner = typeof f === 'object' && !node.inverted ? [...scopes, f.items] : scopes;
          walk(tpl, node.children, inner, via);
          break;
        }
        case 'include': {
          const block = blocks.get(node.name);
          if (block === undefined) throw templateError(tpl.name, node.line, `{{>${node.name}}}: there is no ${node.name}.txt`);
          if (via.includes(node.name)) throw templateError(tpl.name, node.line, `{{>${node.name}}} includes itself (${[...via, node.name].join(' > ')})`);
          walk(block, block.nodes, scopes, [...via, node.name]);
          break;
        }
      }
    }
  };
  walk(t, t.nodes, [schema], [t.name.replace(/\.txt$/, '')]);
}

function lookup(scopes: readonly Context[], name: string, file: string, line: number): Value {
  for (let i = scopes.length - 1; i >= 0; i--) {
    const ctx = scopes[i];
    if (ctx !== undefined && Object.hasOwn(ctx, name)) return ctx[name] ?? null;
  }
  throw templateError(file, line, `nothing given for {{${name}}}`);
}

const isEmpty = (v: Value): boolean => v === null || v === false || v === '' || (Array.isArray(v) && v.length === 0);

/** Fills a checked template in; the text as the template lays it out (the caller wraps it). */
export function expandTemplate(t: Template, blocks: ReadonlyMap<string, Template>, context: Context): string {
  const expand = (tpl: Template, nodes: readonly Node[], scopes: readonly Context[], depth: number): string => {
    let out = '';
    for (const node of nodes) {
      switch (node.kind) {
        case 'text':
          out += node.text;
          break;
        case 'var': {
          const v = lookup(scopes, node.name, tpl.name, node.line);
          if (typeof v !== 'string') throw templateError(tpl.name, node.line, `{{${node.name}}} is not text`);
          const column = out.length - (out.lastIndexOf('\n') + 1);
          out += v.split('\n').join(`\n${' '.repeat(column)}`);
          break;
        }
        case 'section': {
          const v = lookup(scopes, node.name, tpl.name, node.line);
          if (node.inverted) {
            if (isEmpty(v)) out += expand(tpl, node.children, scopes, depth);
          } else if (Array.isArray(v)) {
            for (const item of v as readonly Context[]) out += expand(tpl, node.children, [...scopes, item], depth);
          } else if (typeof v === 'object' && v !== null) {
            out += expand(tpl, node.children, [...scopes, v as Context], depth);
          } else if (!isEmpty(v)) {
            out += expand(tpl, node.children, scopes, depth);
          }
          break;
        }
        case 'include': {
          const block = blocks.get(node.name);
          if (block === undefined || depth > 16) throw templateError(tpl.name, node.line, `{{>${node.name}}} cannot be included here`);
          const inner = expand(block, block.nodes, scopes, depth + 1);
          out += node.indent === '' ? inner : inner.replace(/^(?=[^\n])/gm, node.indent);
          break;
        }
      }
    }
    return out;
  };
  return expand(t, t.nodes, [context], 0);
}

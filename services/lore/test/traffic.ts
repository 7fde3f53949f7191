/**
 * Mail shaped like lore traffic, for the watcher's tests: a small kernel-like
 * tree made with git in a temporary folder (its mirror is what base
 * resolution reads), and series made from it by `git format-patch`, as their
 * authors make them (cover letters, threading, index lines, base-commit
 * trailers), then given their own Message-IDs, dates and encodings.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TreeCatalog } from '../../catalog/trees.ts';

export interface TestTree {
  work: string;
  mirrorsDir: string;
  name: string;
  /** The published tip (main) and its parent. */
  tip: string;
  first: string;
  /** A commit that is not in the mirror (an author's unpublished work). */
  unpublished: string;
  trees: TreeCatalog;
}

const FILES = ['io_uring/kbuf.c', 'io_uring/rsrc.c', 'fs/fuse/dev.c', 'fs/fuse/file.c', 'net/core/dev.c', 'include/uapi/linux/io_uring.h', 'Documentation/filesystems/fuse.rst'];

function git(cwd: string, args: readonly string[], env: Record<string, string> = {}): string {
  return execFileSync('git', args, {
    cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: 'Tree Keeper', GIT_AUTHOR_EMAIL: 'keeper@example.org', GIT_COMMITTER_NAME: 'Tree Keeper', GIT_COMMITTER_EMAIL: 'keeper@example.org', ...env },
  }).trim();
}

function fileBody(path: string, version: number): string {
  const lines = [`// SPDX-License-Identifier: GPL-2.0`, `/* ${path} */`];
  for (let i = 0; i < 40; i++) lines.push(`static int ${path.replace(/\W/g, '_')}_${i}(void) { return ${i + version}; }`);
  return `${lines.join('\n')}\n`;
}

export function makeTestTree(root: string, name = 'testtree'): TestTree {
  const work = join(root, 'work');
  mkdirSync(work, { recursive: true });
  git(work, ['init', '-q', '-b', 'main']);
  for (const f of FILES) {
    mkdirSync(join(work, f, '..'), { recursive: true });
    writeFileSync(join(work, f), fileBody(f, 0));
  }
  git(work, ['add', '-A']);
  git(work, ['commit', '-q', '-m', 'Linux 7.1-rc1']);
  const first = git(work, ['rev-parse', 'HEAD']);
  writeFileSync(join(work, 'io_uring/kbuf.c'), fileBody('io_uring/kbuf.c', 1));
  git(work, ['commit', '-q', '-am', 'io_uring/kbuf: tidy up']);
  const tip = git(work, ['rev-parse', 'HEAD']);
  git(work, ['checkout', '-q', '-b', 'unpublished']);
  writeFileSync(join(work, 'io_uring/kbuf.c'), fileBody('io_uring/kbuf.c', 7));
  writeFileSync(join(work, 'fs/fuse/dev.c'), fileBody('fs/fuse/dev.c', 7));
  git(work, ['commit', '-q', '-am', 'work in progress nobody published']);
  const unpublished = git(work, ['rev-parse', 'HEAD']);
  git(work, ['checkout', '-q', 'main']);
  const mirrorsDir = join(root, 'mirrors');
  mkdirSync(mirrorsDir, { recursive: true });
  // --no-local: only what main reaches goes into the mirror (a local clone would copy every object).
  execFileSync('git', ['clone', '-q', '--no-local', '--bare', '--single-branch', '-b', 'main', work, join(mirrorsDir, `${name}.git`)]);
  const trees = new TreeCatalog([{ name, ref: 'main', url: `file://${work}`, match: { paths: ['io_uring/', 'fs/fuse/', 'include/uapi/linux/io_uring.h'] } }]);
  return { work, mirrorsDir, name, tip, first, unpublished, trees };
}

export interface SeriesSpec {
  /** Unique per series: the branch name and the Message-ID prefix. */
  id: string;
  title: string;
  /** One path per patch, each changed once. */
  files: readonly string[];
  version?: number;
  cover?: boolean;
  /** Extra subject prefix words, e.g. "RFC", "RESEND", "io_uring-7.2". */
  prefix?: string;
  /** What the series is based on: the tip (default), its parent, or the unpublished commit. */
  on?: 'tip' | 'first' | 'unpublished';
  /** A base-commit: trailer (git format-patch --base). */
  baseTrailer?: boolean;
  author?: { name: string; email: string };
  /** Makes each patch's content differ between revisions. */
  seed?: number;
  /** The first message (cover, else patch 1) replies to this Message-ID. */
  inReplyTo?: string;
  /**
   * Written on top of another series (its `id`), which it names as its
   * prerequisite: by patch id (git format-patch --base writes a
   * base-commit: and a prerequisite-patch-id: line per patch of it, as b4
   * send does) or by the Message-ID of its first mail (only that line and
   * base-commit:); `unknown-patch-id` names a patch no inbox has.
   */
  after?: { id: string; by: 'patch-id' | 'message-id' | 'unknown-patch-id' };
}

export interface Mail {
  messageId: string;
  subject: string;
  raw: Buffer;
}

let clock = Date.now() - 3600_000;

/** The messages of a series, cover letter first, threaded as git send-email threads them. */
export function makeSeries(tree: TestTree, spec: SeriesSpec): Mail[] {
  const on = spec.on === 'first' ? tree.first : spec.on === 'unpublished' ? tree.unpublished : tree.tip;
  const author = spec.author ?? { name: 'Pat Author', email: 'pat@example.org' };
  const env = { GIT_AUTHOR_NAME: author.name, GIT_AUTHOR_EMAIL: author.email, GIT_COMMITTER_NAME: author.name, GIT_COMMITTER_EMAIL: author.email };
  const start = spec.after === undefined ? on : `s-${spec.after.id}`;
  git(tree.work, ['checkout', '-q', '-B', `s-${spec.id}`, start]);
  spec.files.forEach((f, i) => {
    writeFileSync(join(tree.work, f), fileBody(f, 100 + (spec.seed ?? 0) * 10 + i));
    git(tree.work, ['commit', '-q', '-am', `${f.split('/')[0] ?? 'x'}: ${spec.title} part ${i + 1}\n\nThis changes ${f} for ${spec.title}.\n\nSigned-off-by: ${author.name} <${author.email}>`], env);
  });
  const args = ['format-patch', '-q', '--stdout', '--thread=shallow', '--no-signature', '--zero-commit'];
  if (spec.cover === true) args.push('--cover-letter');
  if (spec.version !== undefined && spec.version > 1) args.push(`-v${spec.version}`);
  if (spec.prefix !== undefined) args.push(`--subject-prefix=${spec.prefix} PATCH`);
  if (spec.baseTrailer === true || spec.after !== undefined) args.push(`--base=${on}`);
  if (spec.files.length > 1 || spec.cover === true) args.push('-n');
  args.push(`${start}..HEAD`);
  let mbox = git(tree.work, args, env);
  if (spec.after?.by === 'message-id') {
    mbox = mbox.replace(/^prerequisite-patch-id: .*(?:\n|$)/gm, '').replace(/^(base-commit: .*)$/m, `$1\nprerequisite-message-id: <${spec.after.id}.0@example.org>`);
  } else if (spec.after?.by === 'unknown-patch-id') {
    mbox = mbox.replace(/^prerequisite-patch-id: [0-9a-f]{40}$/gm, `prerequisite-patch-id: ${'e'.repeat(40)}`);
  }
  git(tree.work, ['checkout', '-q', 'main']);
  const parts = mbox.split(/^From 0{40} Mon Sep 17 00:00:00 2001\n/m).filter((p) => p !== '');
  // Own Message-IDs and dates, threaded to the first message as --thread=shallow does.
  const ids = parts.map((_, i) => `${spec.id}.${i}@example.org`);
  return parts.map((text, i) => {
    let t = text.replace(/^Message-ID: <[^>]*>\n/mi, '').replace(/^In-Reply-To: <[^>]*>\n/mi, '').replace(/^References: <[^>]*>\n/mi, '');
    t = t.replace(/^Date: [^\n]*\n/m, '');
    clock += 1000;
    const parent = i === 0 ? spec.inReplyTo : ids[0];
    const head = [`Message-ID: <${ids[i]}>`, `Date: ${new Date(clock).toUTCString().replace('GMT', '+0000')}`, 'To: io-uring@patchbay.invalid'];
    if (parent !== undefined) head.push(`In-Reply-To: <${parent}>`, `References: <${parent}>`);
    if (spec.cover === true && i === 0) t = t.replace('*** SUBJECT HERE ***', spec.title).replace('*** BLURB HERE ***', `This series does ${spec.title}.`);
    const subject = /^Subject: ([^\n]*(?:\n [^\n]*)*)/m.exec(t)?.[1]?.replace(/\n /g, ' ') ?? '';
    return { messageId: ids[i] ?? '', subject, raw: Buffer.from(`${head.join('\n')}\n${t.endsWith('\n') ? t : `${t}\n`}`, 'utf8') };
  });
}

/** A reply to a message (review mail): quotes what it is given, adds a trailer or a comment. */
export function makeReply(to: Mail, opts: { id: string; from: string; body: string; quote?: string }): Mail {
  clock += 1000;
  const subject = `Re: ${to.subject}`;
  const quoted = (opts.quote ?? '').split('\n').map((l) => `> ${l}`).join('\n');
  const raw = [
    `From: Reviewer <${opts.from}>`, 'To: io-uring@patchbay.invalid', `Subject: ${subject}`, `Message-ID: <${opts.id}@example.org>`,
    `In-Reply-To: <${to.messageId}>`, `References: <${to.messageId}>`, `Date: ${new Date(clock).toUTCString().replace('GMT', '+0000')}`,
    'Content-Type: text/plain; charset=utf-8', '', `On a day, someone wrote:`, quoted, '', opts.body, '',
  ].join('\n');
  return { messageId: `${opts.id}@example.org`, subject, raw: Buffer.from(raw, 'utf8') };
}

/** A message that is not a patch and not in a series thread. */
export function makeDiscussion(id: string, subject: string, body: string): Mail {
  clock += 1000;
  const raw = [
    'From: Someone <someone@example.org>', 'To: io-uring@patchbay.invalid', `Subject: ${subject}`, `Message-ID: <${id}@example.org>`,
    `Date: ${new Date(clock).toUTCString().replace('GMT', '+0000')}`, '', body, '',
  ].join('\n');
  return { messageId: `${id}@example.org`, subject, raw: Buffer.from(raw, 'utf8') };
}

function splitMessage(raw: Buffer): { head: string; body: Buffer } {
  const text = raw.toString('latin1');
  const at = text.indexOf('\n\n');
  return { head: text.slice(0, at + 1), body: Buffer.from(text.slice(at + 2), 'latin1') };
}

function setHeader(head: string, name: string, value: string): string {
  const re = new RegExp(`^${name}:[^\\n]*(?:\\n[ \\t][^\\n]*)*\\n`, 'mi');
  return re.test(head) ? head.replace(re, `${name}: ${value}\n`) : `${head}${name}: ${value}\n`;
}

function qpEncode(body: Buffer): string {
  const out: string[] = [];
  for (const line of body.toString('latin1').split('\n')) {
    let enc = '';
    for (let i = 0; i < line.length; i++) {
      const c = line.charCodeAt(i);
      const last = i === line.length - 1;
      enc += c === 0x3d || c > 0x7e || (c < 0x20 && c !== 0x09) || (last && (c === 0x20 || c === 0x09)) ? `=${c.toString(16).toUpperCase().padStart(2, '0')}` : line.charAt(i);
    }
    const pieces: string[] = [];
    while (enc.length > 76) {
      let cut = 75;
      while (/=[0-9A-F]?$/.test(enc.slice(cut - 2, cut))) cut--;
      pieces.push(`${enc.slice(0, cut)}=`);
      enc = enc.slice(cut);
    }
    pieces.push(enc);
    out.push(...pieces);
  }
  return out.join('\n');
}

/** The same message with its body sent another way: quoted-printable, base64, format=flowed, or in ISO-8859-1. */
export function reencode(mail: Mail, how: 'qp' | 'base64' | 'flowed' | 'latin1'): Mail {
  const { head, body } = splitMessage(mail.raw);
  let h = head;
  let b: string;
  if (how === 'qp') {
    h = setHeader(setHeader(h, 'Content-Type', 'text/plain; charset=UTF-8'), 'Content-Transfer-Encoding', 'quoted-printable');
    b = qpEncode(body);
  } else if (how === 'base64') {
    h = setHeader(setHeader(h, 'Content-Type', 'text/plain; charset=UTF-8'), 'Content-Transfer-Encoding', 'base64');
    b = (body.toString('base64').match(/.{1,76}/g) ?? []).join('\n');
  } else if (how === 'flowed') {
    h = setHeader(setHeader(h, 'Content-Type', 'text/plain; charset=UTF-8; format=flowed'), 'Content-Transfer-Encoding', '8bit');
    b = body.toString('latin1');
  } else {
    h = setHeader(setHeader(h, 'Content-Type', 'text/plain; charset=ISO-8859-1'), 'Content-Transfer-Encoding', '8bit');
    b = Buffer.from(body.toString('utf8'), 'latin1').toString('latin1');
  }
  return { ...mail, raw: Buffer.from(`${h}\n${b}${b.endsWith('\n') ? '' : '\n'}`, 'latin1') };
}

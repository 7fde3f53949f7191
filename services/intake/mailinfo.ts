/**
 * What git itself reads in each patch mail. patchbay reads a patch's diff
 * from the body services/domain/mbox.ts decodes; the apply stage hands the
 * raw mails to `git am -3 --patch-format=mboxrd`, which splits them with
 * git mailsplit and reads each with git mailinfo. Where the two readings
 * differ (a diff in a MIME part patchbay does not read, headers git reads
 * differently, format=flowed), git's is the one that gets applied, so
 * checkWithGit runs git's own reading and takes its view.
 *
 * The commands are the ones git am runs, with git am's defaults:
 *   git mailsplit -d4 -o<dir> -b --mboxrd -- series.mbox
 *       (builtin/am.c split_mail_mbox; no --keep-cr: am.keepcr is unset)
 *   git mailinfo -u --no-scissors msg patch < 0001
 *       (builtin/am.c parse_mail: metainfo re-coded to UTF-8 (-u, am's
 *       default), no -k/-b (am's keep is KEEP_FALSE), no -m (am.messageid
 *       unset), scissors off (mailinfo.scissors unset), quoted CRs warned
 *       about, not stripped (mailinfo.quotedCr unset))
 * -k and -b only change the subject git keeps, never the patch; they are
 * not am's defaults, so they are not passed.
 *
 * The mail is attacker-controlled: it reaches git only on stdin and in a
 * file of a fresh temporary directory, which is git's working directory,
 * HOME and XDG_CONFIG_HOME, and is removed afterwards. No system or global
 * configuration is read (GIT_CONFIG_NOSYSTEM, GIT_CONFIG_GLOBAL inside the
 * directory), no repository is looked for above it (GIT_CEILING_DIRECTORIES)
 * and the environment is not inherited (only PATH). The whole check has
 * timeoutMs (a git past it is killed: MAILINFO_FAILED, retryable), and what
 * git writes (files and output together) maxBytes (past it: SERIES_TOO_LARGE;
 * git's output is a linear function of its input, at most a few times it,
 * so files are measured after each run and the output pipes while read).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { TextDecoder } from 'node:util';
import { PatchbayError } from '../domain/errors.ts';
import { diffFiles, type FileChange } from '../domain/patch.ts';
import { type MailMessage, toMboxrd } from '../domain/mbox.ts';
import { type Series, type SeriesPatch, seriesMbox } from '../domain/series.ts';
import { refusal } from '../domain/series/assemble.ts';

export interface GitCheckOptions {
  /** For the whole check; git is killed past it. */
  timeoutMs: number;
  /** What git may write in the whole check, its files and output together. */
  maxBytes: number;
}

interface GitRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Bytes git wrote to its pipes. */
  outputBytes: number;
}

/** stderr kept for a message: git's errors are a line or two. */
const STDERR_KEEP = 16 * 1024;

function infraError(message: string, details: Record<string, unknown>, cause?: unknown): PatchbayError {
  return new PatchbayError('MAILINFO_FAILED', message, { retryable: true, details, ...(cause === undefined ? {} : { cause }) });
}

function tooLarge(limit: number, what: string): PatchbayError {
  return new PatchbayError('SERIES_TOO_LARGE', `git's reading of the series is larger than ${limit} bytes (${what}); patchbay does not read further.`, {
    details: { limit },
  });
}

/** The environment git runs in: nothing of the service's, no configuration outside dir. */
function gitEnv(dir: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: dir,
    XDG_CONFIG_HOME: dir,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: join(dir, 'gitconfig'),
    GIT_CEILING_DIRECTORIES: dirname(dir),
    LC_ALL: 'C',
    LANG: 'C',
  };
}

/**
 * Runs git with stdin from a file (or none), until it exits or the deadline
 * passes (then it is killed); its pipes are read up to outputLimit bytes
 * together (past it, it is killed too).
 */
async function runGit(
  args: readonly string[],
  o: { dir: string; stdin: string | null; deadline: number; outputLimit: number },
): Promise<GitRun & { timedOut: boolean; overflow: boolean }> {
  const remaining = o.deadline - Date.now();
  if (remaining <= 0) return { code: null, signal: null, stdout: '', stderr: '', outputBytes: 0, timedOut: true, overflow: false };
  const input = o.stdin === null ? null : await open(o.stdin, 'r');
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn('git', args, { cwd: o.dir, env: gitEnv(o.dir), stdio: [input === null ? 'ignore' : input.fd, 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      let bytes = 0;
      let timedOut = false;
      let overflow = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, remaining);
      const take = (chunk: Buffer, keep: (c: Buffer) => void): void => {
        bytes += chunk.length;
        if (bytes > o.outputLimit) {
          if (!overflow) child.kill('SIGKILL');
          overflow = true;
          return;
        }
        keep(chunk);
      };
      const { stdout, stderr } = child;
      if (stdout === null || stderr === null) {
        child.kill('SIGKILL');
        throw new Error('git was started without its output pipes');
      }
      stdout.on('data', (c: Buffer) => { take(c, (k) => out.push(k)); });
      stderr.on('data', (c: Buffer) => {
        take(c, (k) => {
          if (err.length < STDERR_KEEP) err += k.toString('utf8').slice(0, STDERR_KEEP - err.length);
        });
      });
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: err, outputBytes: bytes, timedOut, overflow });
      });
    });
  } finally {
    await input?.close();
  }
}

const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true });

/** git's patch output: bytes as the mail had them after transfer decoding; read as UTF-8 when it is, else byte for byte. */
function patchText(bytes: Buffer): string {
  try {
    return UTF8_STRICT.decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

function sameFiles(a: readonly FileChange[], b: readonly FileChange[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((f, i) => {
    const g = b[i];
    return g !== undefined && f.oldPath === g.oldPath && f.newPath === g.newPath && f.binary === g.binary && f.added === g.added && f.removed === g.removed;
  });
}

function describeFiles(files: readonly FileChange[]): string {
  if (files.length === 0) return 'no diff';
  const names = files.map((f) => `${f.newPath ?? f.oldPath ?? '?'} (+${f.added}/-${f.removed}${f.binary ? ', binary' : ''})`);
  return names.length > 8 ? `${names.slice(0, 8).join(', ')} and ${names.length - 8} more` : names.join(', ');
}

/** The first line of git's complaint, for a message. */
function gitSaid(run: GitRun): string {
  const line = run.stderr.split('\n').map((l) => l.trim()).find((l) => l !== '');
  return line === undefined ? `exit ${run.code ?? run.signal ?? '?'}` : line.slice(0, 300);
}

/**
 * Reads every patch of the series as git am does and returns the series
 * with git's view of each patch's files (a new Series; the input is left as
 * it is). Where git reads the same files as patchbay, the patch is as it
 * was; where it reads other ones, git's are taken, with a note in
 * `problems`, and refused like assembleSeries refuses them (PATCH_BINARY,
 * PATCH_PATH_ESCAPES); where git reads no diff at all, SERIES_NO_DIFF. A
 * mail git mailinfo refuses to read is MBOX_MALFORMED. Failures of git or
 * of the machine are MAILINFO_FAILED (retryable); past opts.maxBytes,
 * SERIES_TOO_LARGE.
 */
export async function checkWithGit(series: Series, opts: GitCheckOptions): Promise<Series> {
  const deadline = Date.now() + opts.timeoutMs;
  const dir = await mkdtemp(join(tmpdir(), 'patchbay-mailinfo-'));
  try {
    return await check(series, opts, dir, deadline);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type Run = GitRun & { timedOut: boolean; overflow: boolean };
type Session = ReturnType<typeof gitSession>;

/** git in a temporary directory under one deadline and one byte budget, and how its failures read ("...; WHAT"). */
function gitSession(opts: GitCheckOptions, dir: string, deadline: number, what: string): {
  git: (args: readonly string[], stdin: string | null) => Promise<Run>;
  spend: (bytes: number, why: string) => void;
  failed: (step: string, run: Run, details?: Record<string, unknown>) => PatchbayError;
} {
  let used = 0;
  return {
    spend(bytes, why) {
      used += bytes;
      if (used > opts.maxBytes) throw tooLarge(opts.maxBytes, why);
    },
    failed(step, run, details = {}) {
      if (run.overflow) return tooLarge(opts.maxBytes, `${step}: its output`);
      if (run.timedOut) return infraError(`git ${step} did not finish within ${opts.timeoutMs} ms; ${what}`, { ...details, timeoutMs: opts.timeoutMs });
      return infraError(`git ${step} failed (${gitSaid(run)}); ${what}`, { ...details, code: run.code, signal: run.signal });
    },
    async git(args, stdin) {
      try {
        return await runGit(args, { dir, stdin, deadline, outputLimit: opts.maxBytes - used });
      } catch (e) {
        throw infraError(`git could not be run (${e instanceof Error ? e.message : String(e)}); ${what}`, { args: args.slice(0, 1) }, e);
      }
    },
  };
}

/** Writes the mails (an mboxrd) to a file and splits it as git am does; mail i (0-based) is at mailPath(i); count -1: git said no number. */
async function splitMails(mboxrd: string, dir: string, session: Session): Promise<{ count: number; mailPath: (i: number) => string }> {
  const mbox = join(dir, 'series.mbox');
  const split = join(dir, 'split');
  await writeFile(mbox, Buffer.from(mboxrd, 'latin1'));
  await mkdir(split);
  const run = await session.git(['mailsplit', '-d4', `-o${split}`, '-b', '--mboxrd', '--', mbox], null);
  if (run.code !== 0) throw session.failed('mailsplit', run);
  session.spend(run.outputBytes, 'git mailsplit');
  const count = Number(run.stdout.trim());
  return { count: Number.isFinite(count) ? count : -1, mailPath: (i) => join(split, String(i + 1).padStart(4, '0')) };
}

/**
 * `git patch-id --stable` of each mail's patch as git am reads it (git
 * mailinfo, then patch-id on the patch it writes): what b4's
 * prerequisite-patch-id lines name. null for a mail git reads no diff in.
 * The same sandbox and limits as checkWithGit; git's failures are
 * MAILINFO_FAILED (retryable).
 */
export async function patchIdsWithGit(messages: readonly MailMessage[], opts: GitCheckOptions): Promise<Array<string | null>> {
  const deadline = Date.now() + opts.timeoutMs;
  const dir = await mkdtemp(join(tmpdir(), 'patchbay-patch-id-'));
  try {
    const session = gitSession(opts, dir, deadline, 'the patch ids were not computed');
    const { count, mailPath } = await splitMails(toMboxrd(messages), dir, session);
    if (count !== messages.length) {
      throw new PatchbayError('MBOX_MALFORMED', `git splits ${messages.length} mails into ${count < 0 ? '?' : count}.`, { details: { mails: messages.length, gitMails: count < 0 ? null : count } });
    }
    const msg = join(dir, 'msg');
    const patchFile = join(dir, 'patch');
    const ids: Array<string | null> = [];
    for (let i = 0; i < count; i++) {
      const info = await session.git(['mailinfo', '-u', '--no-scissors', msg, patchFile], mailPath(i));
      if (info.code === 1 && !info.timedOut && !info.overflow) {
        ids.push(null); // git cannot read this mail: no patch of it can be a prerequisite
        continue;
      }
      if (info.code !== 0) throw session.failed('mailinfo', info, { mail: i + 1 });
      session.spend(info.outputBytes + (await stat(patchFile)).size, `git mailinfo on mail ${i + 1}`);
      const pid = await session.git(['patch-id', '--stable'], patchFile);
      if (pid.code !== 0) throw session.failed('patch-id', pid, { mail: i + 1 });
      ids.push(/^([0-9a-f]{40}|[0-9a-f]{64}) /.exec(pid.stdout)?.[1] ?? null);
    }
    return ids;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function check(series: Series, opts: GitCheckOptions, dir: string, deadline: number): Promise<Series> {
  const { total } = series;
  const { git, spend, failed } = gitSession(opts, dir, deadline, 'the series was not checked');

  // The mbox git am gets (services/domain/series.ts seriesMbox), split as git am splits it.
  const { count, mailPath } = await splitMails(seriesMbox(series), dir, { git, spend, failed });
  if (count !== series.patches.length) {
    throw new PatchbayError(
      'MBOX_MALFORMED',
      `git splits the series' ${series.patches.length} patch mails into ${count >= 0 ? count : '?'} mails; git am would not apply them as sent.`,
      { details: { patches: series.patches.length, gitMails: count >= 0 ? count : null } },
    );
  }

  const msg = join(dir, 'msg');
  const patchFile = join(dir, 'patch');
  const patches: SeriesPatch[] = [];
  const notes: string[] = [];
  let noDiff: PatchbayError | null = null;
  for (const [i, p] of series.patches.entries()) {
    const mail = mailPath(i);
    spend((await stat(mail)).size, `mail ${i + 1} as git mailsplit wrote it`);
    const where = `Patch ${p.counter}/${total} "${p.message.subject}"`;
    const details = { counter: p.counter, subject: p.message.subject, messageId: p.message.messageId };
    const run = await git(['mailinfo', '-u', '--no-scissors', msg, patchFile], mail);
    if (run.code === 1 && !run.timedOut && !run.overflow) {
      // mailinfo's own refusal ("cannot convert from X to UTF-8", "empty patch"): git am stops on this mail.
      throw new PatchbayError('MBOX_MALFORMED', `${where}: git cannot read the mail (${gitSaid(run)}); git am would stop on it.`, { details });
    }
    if (run.code !== 0) throw failed('mailinfo', run, details);
    const patchSize = (await stat(patchFile)).size;
    spend(run.outputBytes + (await stat(msg)).size + patchSize, `git mailinfo on patch ${p.counter}/${total}`);
    const gitFiles = diffFiles(patchText(await readFile(patchFile)));
    if (sameFiles(gitFiles, p.files)) {
      patches.push(p);
      continue;
    }
    if (gitFiles.length === 0) {
      noDiff ??= new PatchbayError(
        'SERIES_NO_DIFF',
        `${where}: git reads no diff in it (git am would stop on it: "Patch is empty"), though patchbay reads ${describeFiles(p.files)}; send the patch inline as git format-patch writes it.`,
        { details: { ...details, path: null, patchbay: p.files, git: [] } },
      );
      patches.push(p);
      continue;
    }
    notes.push(`patch ${p.counter}/${total}: git reads ${describeFiles(gitFiles)} where patchbay read ${describeFiles(p.files)}; git's reading is taken (it is what git am applies)`);
    patches.push({ ...p, files: gitFiles });
  }
  if (noDiff !== null) throw noDiff;
  // What only git sees is refused as assembleSeries refuses it.
  const refused = refusal(patches.filter((p, i) => p !== series.patches[i]), total);
  if (refused !== null) throw refused;
  return { ...series, patches, problems: [...series.problems, ...notes] };
}

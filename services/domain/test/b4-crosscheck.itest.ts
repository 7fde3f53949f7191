/**
 * The series rules against b4 itself: Debian's b4 0.12.0 (installed by
 * deploy/host/prepare.sh) runs `b4 am` offline on every mbox of
 * golden/series and fixtures/series and on the golden/mbox cases that are
 * series (MBOX_CASES), and assembleSeries reads the same file. The two must
 * agree on
 *
 * - the outcome: a series, an incomplete one (and which patches it lacks),
 *   or none (b4: "No patches found"; ours: SERIES_NO_PATCHES, or
 *   SERIES_NO_DIFF for the lone patch mail without a diff);
 * - the revision taken;
 * - the patches, in order, by Message-ID (b4's .mbx keeps each patch's);
 * - each patch's trailers, its own and those replies add (b4 writes them
 *   into the commit message; ours are series.patches[i].trailers).
 *
 * Where they differ on purpose, golden/b4-differences.json says so, case by
 * case: exactly what differs (a difference not listed fails, and so does a
 * listed one that is gone) and why, with the b4 function it comes from. A
 * case that differs and is not listed fails with both views side by side
 * and the entry that would list it.
 *
 * How b4 runs: `b4 -n --offline-mode --no-stdin am -t -m FILE -o OUTDIR`.
 * b4 0.12's -n before the subcommand is --no-interactive (after `am` it
 * would name the output); --offline-mode is what keeps it off the network;
 * --no-stdin stops it reading a Message-ID from stdin; -t gives a cover
 * letter's trailers to every patch, as patchbay does and b4 does by default
 * from 0.13.0 on (9a7cf48, "make -t,--apply-cover-trailers the default").
 * Its cwd is a temporary folder that is no git repository; HOME and the XDG
 * folders are in it, with a git config of its own (user.name and
 * user.email, which b4 0.12 cannot do without; no attestation; link masks
 * on a closed loopback port, so that no archive's address is in play); and
 * http(s)_proxy points at that closed port too: HTTP it tried would fail.
 * OUTDIR exists first (b4 0.12 crashes otherwise). b4 0.12 also crashes on
 * a folded Subject:, From: or Date: (get_am_message copies them raw into a
 * new message, and Python's email refuses the line break; newer b4 cleans
 * them first, 8c3166b, v0.13.0): the copy b4 reads has those three headers
 * unfolded, which changes no value.
 *
 * Each file gets a b4 process of its own, two or more at a time, forked by
 * b4-forked.py from one that has imported b4 (the import is most of what a
 * b4 process costs: dkim, dnspython and httpx, half a second), each calling
 * b4's console_scripts entry point as /usr/bin/b4 does. One case also runs
 * through the `b4` command itself, and the two must write and say the same.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PatchbayError } from '../errors.ts';
import { parseMbox } from '../mbox.ts';
import { assembleSeries } from '../series.ts';
import { GOLDEN_CASES } from './golden-cases.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const GOLDEN = join(import.meta.dirname, 'golden');
const DIFFERENCES_FILE = join(GOLDEN, 'b4-differences.json');
const B4_VERSION = '0.12.0';
/** A port nothing listens on (discard): where b4's proxy and link masks point. */
const CLOSED = 'http://127.0.0.1:9';
/** b4's Link: for a Message-ID (linkmask); added with -l only, and left out of the comparison anyway. */
const LINK_MASK = `${CLOSED}/r/%s`;

/**
 * The golden/mbox cases b4 is asked about: a thread of several mails, or one
 * patch mail whose series rules decide something (a patch in an attachment,
 * a refusal). Set aside, with why; every golden/mbox case is in one list.
 */
const MBOX_CASES = [
  'attachment-x-diff', 'binary-patch', 'crlf', 'incomplete-series', 'kmbuf-v3-thread', 'mboxrd-from-quoting',
  'multipart-attachment', 'no-diff', 'path-escape', 'rfc-resend-duplicate', 'rfc2047-author',
];
const MBOX_SET_ASIDE: Record<string, string> = {
  'base64-body': 'one inline patch, no reply: what it tests is decoding, checked against git mailinfo (services/intake/test/mailinfo.test.ts), which b4 am passes every patch through too',
  flowed: 'one inline patch: decoding, as above',
  'flowed-delsp': 'one inline patch: decoding, as above',
  'koi8r-body': 'one inline patch: decoding, as above',
  'latin1-body': 'one inline patch: decoding, as above',
  'multipart-no-close': 'one inline patch: decoding, as above',
  'qp-body': 'one inline patch: decoding, as above',
  'sjis-body': 'one inline patch: decoding, as above',
  'malformed-bare-diff': 'not an mbox: parseMbox refuses it before any series rule',
  'malformed-headerless-mbox': 'not an mbox: parseMbox refuses it before any series rule',
  'malformed-random-text': 'not an mbox: parseMbox refuses it before any series rule',
  'single-bare-patch': 'one mail without a "From " line, which b4 am -m does not read as an mbox',
};

interface Case {
  /** "series/NAME", "fixtures/NAME", "mbox/NAME". */
  name: string;
  path: string;
}

function mboxesIn(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.mbox')).map((f) => f.slice(0, -'.mbox'.length)).sort();
}

function allCases(): Case[] {
  const seriesDir = join(GOLDEN, 'series');
  const fixturesDir = join(ROOT, 'fixtures', 'series');
  return [
    ...mboxesIn(seriesDir).map((n) => ({ name: `series/${n}`, path: join(seriesDir, `${n}.mbox`) })),
    ...mboxesIn(fixturesDir).map((n) => ({ name: `fixtures/${n}`, path: join(fixturesDir, `${n}.mbox`) })),
    ...MBOX_CASES.map((n) => ({ name: `mbox/${n}`, path: join(GOLDEN, 'mbox', `${n}.mbox`) })),
  ];
}

// ---------------------------------------------------------------------------
// The two views of one mbox

/**
 * What a side makes of an mbox. outcome: "series"; for b4 "incomplete" (it
 * writes what it has and warns), "no patches", or "crash: <its last line>";
 * for ours the PatchbayError code assembleSeries throws.
 */
interface View {
  outcome: string;
  version: number | null;
  /** Message-IDs, in the order the patches apply (a series only). */
  patches: string[];
  /** Counters missing (an incomplete series only). */
  missing: number[];
  /** "Name: value" per patch, by Message-ID (a series only). */
  trailers: Record<string, string[]>;
}

function view(outcome: string, rest: Partial<View> = {}): View {
  return { outcome, version: null, patches: [], missing: [], trailers: {}, ...rest };
}

/** b4's outcome and the codes of ours that mean the same. */
const SAME_OUTCOME: Record<string, readonly string[]> = {
  series: ['series'],
  incomplete: ['SERIES_INCOMPLETE'],
  'no patches': ['SERIES_NO_PATCHES', 'SERIES_NO_DIFF'],
};

function oursView(text: string): View {
  try {
    const series = assembleSeries(parseMbox(text));
    return view('series', {
      version: series.version,
      patches: series.patches.map((p) => p.message.messageId),
      trailers: Object.fromEntries(series.patches.map((p) => [p.message.messageId, p.trailers.map((t) => `${t.name}: ${t.value}`)])),
    });
  } catch (e) {
    if (!(e instanceof PatchbayError)) throw e;
    if (e.code !== 'SERIES_INCOMPLETE') return view(e.code);
    const { version, missing } = e.details;
    return view(e.code, { version: typeof version === 'number' ? version : null, missing: Array.isArray(missing) ? missing.map(Number) : [] });
  }
}

/** One mail of b4's .mbx: headers (names lower-cased, unfolded), the body decoded. */
interface AmMail {
  headers: Map<string, string>;
  body: string;
}

/**
 * b4's .mbx (save_git_am_mbox): "From git@z Thu Jan  1 00:00:00 1970"
 * before each mail, no >From quoting, headers in UTF-8; the body as its
 * Content-Transfer-Encoding says.
 */
function readAmMbox(text: string): AmMail[] {
  return text
    .split(/^From git@z Thu Jan {2}1 00:00:00 1970\n/m)
    .slice(1)
    .map((chunk) => {
      const end = chunk.indexOf('\n\n');
      const head = end < 0 ? chunk : chunk.slice(0, end);
      const headers = new Map<string, string>();
      for (const line of head.replace(/\n[ \t]+/g, ' ').split('\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
      }
      let body = end < 0 ? '' : chunk.slice(end + 2);
      const cte = (headers.get('content-transfer-encoding') ?? '').toLowerCase();
      if (cte === 'base64') body = Buffer.from(body, 'base64').toString('utf8');
      else if (cte === 'quoted-printable') {
        const bytes = body.replace(/=\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
        body = Buffer.from(bytes, 'latin1').toString('utf8');
      }
      return { headers, body };
    });
}

/**
 * The trailers b4 wrote into a commit message: the last paragraph above
 * "---" (rebuild_message puts them there, after a blank line, or alone when
 * the message is nothing else), when every line of it is "Name: value" or a
 * "[...]" note under one; else there are none.
 */
function amTrailers(body: string): string[] {
  const message = body.split(/^---$/m)[0] ?? '';
  const paragraphs = message.replace(/^\n+|\n+$/g, '').split(/\n\n+/);
  const out: string[] = [];
  for (const line of (paragraphs[paragraphs.length - 1] ?? '').split('\n')) {
    const m = /^(\w\S*):\s+(\S.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) out.push(`${m[1]}: ${m[2]}`);
    else if (/^\s*\[[^\]]+\]\s*$/.test(line) && out.length > 0) out.push(`${out.pop() ?? ''}\n${line}`);
    else return [];
  }
  return out;
}

interface B4Run {
  code: number;
  stderr: string;
  /** The .mbx b4 wrote, and its file name. */
  mbxName: string | null;
  mbx: string;
}

function b4View(run: B4Run): View {
  const said = (re: RegExp): boolean => re.test(run.stderr);
  if (said(/^Traceback \(most recent call last\):$/m)) {
    const lines = run.stderr.trim().split('\n');
    return view(`crash: ${lines[lines.length - 1] ?? ''}`);
  }
  if (said(/^No patches found\.$/m) || said(/^All patches in series v\d+ are missing\.$/m)) return view('no patches');
  if (run.code !== 0 || run.mbxName === null) throw new Error(`b4 exited ${run.code} without an .mbx and without saying why:\n${run.stderr}`);
  // get_slug: "v2_..." for any revision but 1.
  const version = Number(/^v(\d+)_/.exec(run.mbxName)?.[1] ?? '1');
  if (said(/^WARNING: Thread incomplete!$/m)) {
    const missing = [...run.stderr.matchAll(/^ {2}ERROR: missing \[(\d+)\/\d+\]!$/gm)].map((m) => Number(m[1]));
    return view('incomplete', { version, missing });
  }
  const mails = readAmMbox(run.mbx).map((m) => ({ id: (m.headers.get('message-id') ?? '').replace(/^<|>$/g, ''), body: m.body }));
  return view('series', {
    version,
    patches: mails.map((m) => m.id),
    trailers: Object.fromEntries(mails.map((m) => [m.id, amTrailers(m.body).filter((t) => t !== `Link: ${LINK_MASK.replace('%s', m.id)}`)])),
  });
}

// ---------------------------------------------------------------------------
// Running b4

/**
 * The mbox as b4 0.12 can read it: each mail's Subject:, From: and Date: on
 * one line (see the top of this file); nothing else changes.
 */
function unfoldForB4(text: string): string {
  const out: string[] = [];
  let inHeaders = false;
  let unfolding = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('From ')) {
      inHeaders = true;
      unfolding = false;
    } else if (inHeaders && (line === '' || line === '\r')) {
      inHeaders = false;
    } else if (inHeaders && unfolding && /^[ \t]/.test(line)) {
      out[out.length - 1] = (out[out.length - 1] ?? '').replace(/\r$/, '') + line;
      continue;
    } else if (inHeaders) {
      unfolding = /^(?:subject|from|date):/i.test(line);
    }
    out.push(line);
  }
  return out.join('\n');
}

/** One b4 run: its folder (cwd, the mbox it reads, OUTDIR, what it prints) and arguments. */
interface Job {
  cwd: string;
  args: string[];
  stdout: string;
  stderr: string;
}

/** A folder for one run of b4 on a case: the unfolded copy, an OUTDIR that exists (b4 0.12 crashes otherwise). */
function jobFor(c: Case, dir: string): Job {
  const out = join(dir, 'out');
  mkdirSync(out, { recursive: true });
  const input = join(dir, 'in.mbox');
  writeFileSync(input, unfoldForB4(readFileSync(c.path, 'latin1')), 'latin1');
  return { cwd: dir, args: ['-n', '--offline-mode', '--no-stdin', 'am', '-t', '-m', input, '-o', out], stdout: join(dir, 'stdout'), stderr: join(dir, 'stderr') };
}

function runOf(job: Job, code: number): B4Run {
  const out = join(job.cwd, 'out');
  const mbxName = readdirSync(out).find((f) => f.endsWith('.mbx')) ?? null;
  return { code, stderr: readFileSync(job.stderr, 'utf8'), mbxName, mbx: mbxName === null ? '' : readFileSync(join(out, mbxName), 'utf8') };
}

/** The b4 on PATH, and the interpreter its "#!" line names. */
function b4Command(): { path: string; interpreter: string[] } {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const path = join(dir === '' ? '.' : dir, 'b4');
    if (!existsSync(path)) continue;
    const first = readFileSync(path, 'utf8').split('\n', 1)[0] ?? '';
    const interpreter = first.startsWith('#!') ? first.slice(2).trim().split(/\s+/) : [];
    assert.ok(interpreter.length > 0, `${path} is not a script with a "#!" line; Debian's b4 is a Python one`);
    return { path, interpreter };
  }
  throw new Error('b4 is not on PATH');
}

/** Every job through b4-forked.py, `limit` at a time; their exit codes in order. */
function runForked(interpreter: string[], jobs: readonly Job[], limit: number): Promise<number[]> {
  const [bin, ...args] = interpreter;
  if (bin === undefined) throw new Error('no interpreter');
  return new Promise((resolve, reject) => {
    const child = execFile(
      bin,
      [...args, join(import.meta.dirname, 'b4-forked.py'), String(limit)],
      { cwd: work, env: b4Env, encoding: 'utf8', timeout: 120_000, maxBuffer: 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err !== null) {
          reject(new Error(`b4-forked.py: ${err.message}\n${stderr}`));
          return;
        }
        resolve(JSON.parse(stdout) as number[]);
      },
    );
    child.stdin?.end(JSON.stringify(jobs));
  });
}

/** The b4 command itself, as a process of its own, on one job. */
function runDirect(job: Job): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('b4', job.args, { cwd: job.cwd, env: b4Env, encoding: 'utf8', timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') {
        reject(new Error(`b4: ${err.message}`));
        return;
      }
      writeFileSync(job.stdout, stdout);
      writeFileSync(job.stderr, stderr);
      resolve(err === null ? 0 : Number(err.code));
    }).stdin?.end();
  });
}

// ---------------------------------------------------------------------------
// The comparison

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * What differs between the views, by aspect, as golden/b4-differences.json
 * lists it; {} when they agree. Trailers: per patch both sides have, what
 * only one side has, or (the same ones) their order.
 */
function differences(b4: View, ours: View): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!(SAME_OUTCOME[b4.outcome] ?? []).includes(ours.outcome)) out.outcome = { b4: b4.outcome, ours: ours.outcome };
  if (b4.version !== null && ours.version !== null && b4.version !== ours.version) out.version = { b4: b4.version, ours: ours.version };
  if (!same(b4.missing, ours.missing)) out.missing = { b4: b4.missing, ours: ours.missing };
  if (!same(b4.patches, ours.patches)) out.patches = { b4: b4.patches, ours: ours.patches };
  const trailers: Record<string, unknown> = {};
  for (const id of b4.patches) {
    const x = b4.trailers[id];
    const y = ours.trailers[id];
    if (x === undefined || y === undefined || same(x, y)) continue;
    const b4Only = x.filter((t) => !y.includes(t));
    const oursOnly = y.filter((t) => !x.includes(t));
    trailers[id] = b4Only.length === 0 && oursOnly.length === 0 ? { order: { b4: x, ours: y } } : { b4Only, oursOnly };
  }
  if (Object.keys(trailers).length > 0) out.trailers = trailers;
  return out;
}

interface Listed {
  /** What differs, exactly as differences() says it. */
  differs: Record<string, unknown>;
  /** Whose rule it is: "patchbay" (ours on purpose), "b4 0.12" (newer b4 does what we do), "b4" (0.12 and current alike). */
  cause: 'patchbay' | 'b4 0.12' | 'b4';
  why: string;
  /** Where b4 decides it (b4/__init__.py of 0.12; the newer b4 too where it says so). */
  b4Source: string;
}

function sideBySide(b4: View, ours: View): string {
  const a = JSON.stringify(b4, null, 2).split('\n');
  const b = JSON.stringify(ours, null, 2).split('\n');
  const width = Math.max(12, ...a.map((l) => l.length));
  const rows = [`${`b4 ${B4_VERSION}`.padEnd(width)} | patchbay`, `${'-'.repeat(width)}-+-${'-'.repeat(12)}`];
  for (let i = 0; i < Math.max(a.length, b.length); i++) rows.push(`${(a[i] ?? '').padEnd(width)} | ${b[i] ?? ''}`);
  return rows.join('\n');
}

// ---------------------------------------------------------------------------

const CASES = allCases();
const LISTED = (JSON.parse(readFileSync(DIFFERENCES_FILE, 'utf8')) as { cases: Record<string, Listed> }).cases;
/** The case b4 also runs on as a command of its own: what it writes must be what the forked run writes. */
const DIRECT_CASE = 'series/partial-reroll';
let work = '';
let b4Env: NodeJS.ProcessEnv = {};
const views = new Map<string, { b4: View; ours: View }>();
let direct: { forked: Job; forkedCode: number; own: Job; ownCode: number } | null = null;

before(async () => {
  let version: string;
  try {
    version = execFileSync('b4', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 }).trim();
  } catch (e) {
    const why = e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e);
    throw new Error(`b4 is missing (${why}): deploy/host/prepare.sh installs Debian's b4 package, which this test runs`, { cause: e });
  }
  assert.equal(version, B4_VERSION, `b4 ${version} found; golden/b4-differences.json is written for Debian's b4 ${B4_VERSION}, which deploy/host/prepare.sh installs`);
  const { interpreter } = b4Command();
  work = mkdtempSync(join(tmpdir(), 'patchbay-b4-'));
  const home = join(work, 'home');
  mkdirSync(home);
  writeFileSync(
    join(home, '.gitconfig'),
    [
      '[user]',
      '\tname = patchbay b4 cross-check',
      '\temail = b4-crosscheck@patchbay.invalid',
      '[b4]',
      '\tattestation-policy = off',
      `\tlinkmask = ${LINK_MASK}`,
      `\tmidmask = ${CLOSED}/all/%s`,
      '',
    ].join('\n'),
  );
  b4Env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_STATE_HOME: join(home, '.local', 'state'),
    GIT_CONFIG_NOSYSTEM: '1',
    LANG: 'C.UTF-8',
    http_proxy: CLOSED,
    https_proxy: CLOSED,
    HTTP_PROXY: CLOSED,
    HTTPS_PROXY: CLOSED,
  };
  const jobs = CASES.map((c, i) => jobFor(c, join(work, 'forked', String(i))));
  const directCase = CASES.find((c) => c.name === DIRECT_CASE);
  assert.ok(directCase !== undefined, `${DIRECT_CASE} is a case`);
  const own = jobFor(directCase, join(work, 'direct'));
  const [codes, ownCode] = await Promise.all([runForked(interpreter, jobs, Math.max(2, availableParallelism())), runDirect(own)]);
  CASES.forEach((c, i) => {
    const job = jobs[i];
    const code = codes[i];
    if (job === undefined || code === undefined) throw new Error(`no b4 run for ${c.name}`);
    views.set(c.name, { b4: b4View(runOf(job, code)), ours: oursView(readFileSync(c.path, 'latin1')) });
    if (c === directCase) direct = { forked: job, forkedCode: code, own, ownCode };
  });
});

after(() => {
  if (work !== '') rmSync(work, { recursive: true, force: true });
});

test('b4 cross-check: b4 run as a command of its own writes what the forked run writes', () => {
  assert.ok(direct !== null);
  const { forked, forkedCode, own, ownCode } = direct;
  assert.equal(forkedCode, ownCode, 'exit code');
  const files = (job: Job): Record<string, string> =>
    Object.fromEntries(readdirSync(join(job.cwd, 'out')).sort().map((f) => [f, readFileSync(join(job.cwd, 'out', f), 'utf8')]));
  const a = files(forked);
  assert.ok(Object.keys(a).some((f) => f.endsWith('.mbx')), 'an .mbx');
  assert.deepEqual(a, files(own), 'what b4 wrote in OUTDIR');
  const said = (job: Job): string => readFileSync(job.stderr, 'utf8').replaceAll(job.cwd, 'DIR');
  assert.equal(said(forked), said(own), 'what b4 said');
  assert.match(said(own), /^Running in OFFLINE mode$/m);
  assert.doesNotMatch(said(own), /lore\.kernel\.org/, 'the link masks of its own config');
});

test('b4 cross-check: every golden/mbox case is asked, or set aside with a reason', () => {
  const placed = [...MBOX_CASES, ...Object.keys(MBOX_SET_ASIDE)].sort();
  assert.deepEqual(placed, [...GOLDEN_CASES.mbox].sort());
  assert.ok(CASES.length >= 30, `${CASES.length} cases`);
});

test('b4 cross-check: every listed difference is a case here, with its reason', () => {
  const names = new Set(CASES.map((c) => c.name));
  assert.deepEqual(Object.keys(LISTED).filter((n) => !names.has(n)), [], 'golden/b4-differences.json lists cases that are not here');
  for (const [name, entry] of Object.entries(LISTED)) {
    assert.ok(Object.keys(entry.differs).length > 0 && entry.why !== '' && entry.b4Source !== '', `${name}: what differs, why, and where b4 decides it`);
    assert.ok(['patchbay', 'b4 0.12', 'b4'].includes(entry.cause), `${name}: cause ${entry.cause}`);
  }
});

for (const c of CASES) {
  test(`b4 cross-check: ${c.name}`, () => {
    const v = views.get(c.name);
    assert.ok(v !== undefined, `no views of ${c.name}`);
    const found = differences(v.b4, v.ours);
    const listed = LISTED[c.name];
    const shown = `${sideBySide(v.b4, v.ours)}\nwhat differs (the "differs" of its entry): ${JSON.stringify(found, null, 2)}`;
    if (listed === undefined) {
      assert.deepEqual(found, {}, `b4 ${B4_VERSION} and patchbay differ on ${c.name}, and golden/b4-differences.json does not list it:\n${shown}`);
    } else {
      assert.deepEqual(found, listed.differs, `${c.name}: what differs from b4 ${B4_VERSION} is not what golden/b4-differences.json lists:\n${shown}`);
    }
  });
}

/**
 * The mail report on a job: a reply to the series, in plain text, made from
 * the job's recorded result and templates a maintainer can edit
 * (services/reporter/templates/). Pure: no I/O, no clock; the same input
 * gives the same bytes.
 *
 * Template syntax (services/reporter/templates/README.md says the same,
 * with every name the templates may use):
 *
 *   {{name}}                 the text value `name`. A value with several
 *                            lines continues each under the column the
 *                            placeholder stood at.
 *   {{#name}}...{{/name}}    a section: printed when `name` is not empty
 *                            (text that is not "", a flag that is set, one
 *                            item), and once per item for a list, with the
 *                            item's own names in scope. Empty: nothing.
 *   {{^name}}...{{/name}}    printed only when `name` is empty.
 *   {{>block}}               the template block.txt, on a line of its own,
 *                            indented as the tag is.
 *
 *   A line holding only a section tag or an include leaves no line behind.
 *   There is no escaping: no template needs a literal "{{".
 *
 * Layout, after the template is filled in (text.ts, layout()):
 *   - lines that start with a space or "|" are printed as they are:
 *     excerpts, logs and commands (indented by 4), quoted trailers ("| ");
 *   - every other line is prose, word-wrapped at 72 columns, never inside a
 *     word (a longer URL stands on a line of its own); a wrapped list item
 *     ("* ") or aligned "key:   value" line continues under its text;
 *   - trailing whitespace is removed, runs of blank lines become one, the
 *     body ends with one line end;
 *   - a line `b4 am` on the series would take for a trailer to add to the
 *     patches (e.g. a test that prints "Acked-by: X <x@y>") is quoted "| ".
 *
 * Everything taken from the job is untrusted: control characters but \n
 * and \t (and ANSI escape sequences whole) are removed, tabs are kept only
 * in excerpts, each excerpt is capped in lines and line length, all of them
 * share a byte budget, and the body stays under REPORT_MAX_BYTES.
 */
import { BLAMED, type Comparison, type ComparedResult, isFailure, type SplatComparison, type Tally } from '../compare.ts';
import type { CrashReport } from '../console.ts';
import type { JobResult } from '../job.ts';
import { formatBytes } from '../limits.ts';
import { PatchbayError } from '../errors.ts';
import type { PreviousRun, RenderedReport, ReportInput, RevisionDelta } from './model.ts';
import { checkTemplate, type Context, expandTemplate, parseTemplate, type Schema, type Template } from './template.ts';
import { bytes, cutChars, ExcerptBudget, excerptLines, formatDuration, layout, midEscape, oneLine, plural, sanitize, shellWord, wrapLine } from './text.ts';

/** The body's size limit in bytes (UTF-8). */
export const REPORT_MAX_BYTES = 64 * 1024;

/** How much of each thing a report shows. */
export const REPORT_LIMITS = {
  /** Bytes all excerpts of a report share (details, crash reports, git's and the compiler's messages). */
  excerptBudget: 40 * 1024,
  /** Lines of a failing test's output. */
  detailLines: 15,
  /** Lines of a kernel crash report. */
  crashLines: 30,
  /** Lines of git am's messages. */
  applyLines: 15,
  /** Compiler diagnostics. */
  diagnostics: 10,
  /** Characters of one excerpt line. */
  lineChars: 400,
  /** Blamed tests shown with their output; the rest are named. */
  blamedWithDetail: 10,
  /** Blamed kernel splats shown with their report. */
  splatsWithExcerpt: 5,
  /** Boot crashes shown. */
  bootCrashes: 3,
  /** Names in any one list (the rest counted). */
  listed: 30,
} as const;

const TEXT = 'text';
const FLAG = 'flag';

/** Every name the templates may use, and what it is (services/reporter/templates/README.md lists them). */
export const REPORT_SCHEMA: Schema = {
  revision: TEXT, version: TEXT, patches: TEXT, verdict: TEXT, summary: TEXT, subject: TEXT, author: TEXT,
  miss: FLAG, error: FLAG, skip: FLAG,
  verdictLine: TEXT, head: TEXT, tree: TEXT, base: TEXT, prerequisites: TEXT, tests: TEXT,
  config: TEXT, compiler: TEXT, qemu: TEXT, runner: TEXT, duration: TEXT,
  applyFailure: { items: { patch: TEXT, messages: TEXT } },
  buildFailure: { items: { mode: TEXT, diagnostics: TEXT } },
  bootFailure: { items: { summary: TEXT, crashes: { items: { kind: TEXT, title: TEXT, culprit: TEXT, fingerprint: TEXT, excerpt: TEXT } } } },
  blamed: { items: { count: TEXT, tests: { items: { name: TEXT, what: TEXT, tally: TEXT, detail: TEXT } }, more: TEXT } },
  splats: { items: { count: TEXT, items: { items: { kind: TEXT, title: TEXT, culprit: TEXT, fingerprint: TEXT, tally: TEXT, landed: TEXT, excerpt: TEXT } } } },
  notBlamed: { items: { entries: { items: { name: TEXT, what: TEXT, tally: TEXT } }, more: TEXT } },
  previous: { items: { previousRevision: TEXT, url: TEXT, stageChange: TEXT, fixed: TEXT, introduced: TEXT, stillFailing: TEXT, notRun: TEXT, same: TEXT } },
  reportedBy: TEXT, closes: TEXT,
  patchbayRun: TEXT, prerequisiteMbox: TEXT, image: TEXT, treeName: TEXT, treeUrl: TEXT, baseCommit: TEXT, inbox: TEXT,
  seriesFetch: TEXT, configSteps: TEXT, qemuCommand: TEXT, testFilter: TEXT, builds: FLAG, boots: FLAG,
  jobUrl: TEXT, robotName: TEXT, robotEmail: TEXT,
};

/** The templates a report is rendered with: pass.txt, fail.txt and other.txt, and the blocks they include. */
export interface ReportTemplates {
  readonly pass: Template;
  readonly fail: Template;
  readonly other: Template;
  readonly blocks: ReadonlyMap<string, Template>;
}

const TOP = ['pass', 'fail', 'other'] as const;

/**
 * Parses and checks the report templates, given as file name ("fail.txt")
 * to text; files not ending in .txt are ignored. Throws PatchbayError
 * REPORT_TEMPLATE naming the file and line of the first problem.
 */
export function parseReportTemplates(files: Readonly<Record<string, string>>): ReportTemplates {
  const blocks = new Map<string, Template>();
  for (const name of Object.keys(files).sort()) {
    if (!name.endsWith('.txt')) continue;
    blocks.set(name.slice(0, -'.txt'.length), parseTemplate(name, files[name] ?? ''));
  }
  const top = (name: (typeof TOP)[number]): Template => {
    const t = blocks.get(name);
    if (t === undefined) throw new PatchbayError('REPORT_TEMPLATE', `${name}.txt: missing (the report templates need ${TOP.map((n) => `${n}.txt`).join(', ')})`);
    checkTemplate(t, blocks, REPORT_SCHEMA);
    return t;
  };
  return { pass: top('pass'), fail: top('fail'), other: top('other'), blocks };
}

/** "Re: " and the subject as posted, unfolded and without control characters; never "Re: Re:". */
export function replySubject(subject: string): string {
  const s = cutChars(sanitize(subject).replace(/\n[ \t]*/g, ' ').trim(), 900, '...');
  return /^re:/i.test(s) ? s : `Re: ${s}`;
}

/**
 * Renders the report. The body is laid out as the header comment says and
 * is at most REPORT_MAX_BYTES: when the excerpts make it longer they get
 * less room, then none, and as a last resort the body is cut at a line end
 * with a line pointing at the job page.
 */
export function renderReport(input: ReportInput, templates: ReportTemplates): RenderedReport {
  const subject = replySubject(input.series.subject);
  const template = input.result.status === 'PASS' ? templates.pass : input.result.status === 'FAIL' ? templates.fail : templates.other;
  let body = '';
  for (const budget of [REPORT_LIMITS.excerptBudget, REPORT_LIMITS.excerptBudget / 4, 0]) {
    body = layout(expandTemplate(template, templates.blocks, reportContext(input, new ExcerptBudget(budget))));
    if (bytes(body) <= REPORT_MAX_BYTES) return { subject, body };
  }
  return { subject, body: capBody(body, oneLine(input.jobUrl, 2000)) };
}

/** The body as it is when within REPORT_MAX_BYTES; else cut at a line end, with a line that points at the job page. */
export function capBody(body: string, jobUrl: string): string {
  if (bytes(body) <= REPORT_MAX_BYTES) return body;
  const tail = ['', ...wrapLine(`[This report was cut at ${formatBytes(REPORT_MAX_BYTES)}. The job page has all of it: ${jobUrl}]`)].join('\n') + '\n';
  const room = REPORT_MAX_BYTES - bytes(tail);
  let out = '';
  for (const line of body.split('\n')) {
    if (bytes(out) + bytes(line) + 1 > room) break;
    out += `${line}\n`;
  }
  return out + tail;
}

const short = (commit: string): string => sanitize(commit).slice(0, 12);
const label = (r: { suite: string; test: string }): string => oneLine(`${r.suite}/${r.test}`, 160);

/** "failed 4 of 4 runs on the series, 0 of 4 on the base". */
export function tallyText(series: Tally, base: Tally | null, comparison: Comparison, unit: 'run' | 'boot' = 'run'): string {
  const what = (t: Tally): number => {
    if (comparison === 'now-skips') return t.skips;
    if (comparison === 'now-missing') return t.missing;
    return t.fails;
  };
  const verb = unit === 'boot' ? 'printed in'
    : comparison === 'now-skips' ? 'skipped in'
      : comparison === 'now-missing' ? 'missing from'
        : 'failed';
  const head = `${verb} ${what(series)} of ${plural(series.runs, unit)} ${unit === 'boot' ? 'of the series kernel' : 'on the series'}`;
  if (base === null) return `${head}; the base was not run`;
  return `${head}, ${what(base)} of ${base.runs} ${unit === 'boot' ? 'of the base kernel' : 'on the base'}`;
}

const WHAT: Record<Comparison, string> = {
  'new-failure': 'new failure',
  'now-skips': 'now skipped',
  'now-missing': 'no longer runs',
  unconfirmed: 'unconfirmed: its re-runs did not all happen',
  'pre-existing': 'pre-existing',
  fixed: 'fixed',
  flaky: 'flaky',
  unchanged: 'unchanged',
  'no-base': 'no base run to compare with',
};

const NOT_BLAMED: ReadonlySet<Comparison> = new Set(['pre-existing', 'flaky', 'unconfirmed', 'no-base']);

const splatName = (x: { kind: string; culprit: string | null; fingerprint: string }): string =>
  `kernel ${oneLine(x.kind, 40)} in ${oneLine(x.culprit ?? 'an unknown function', 120)} [${oneLine(x.fingerprint, 40)}]`;

/** A list of names, at most REPORT_LIMITS.listed, the rest counted. */
function nameList(names: readonly string[]): string {
  const shown = names.slice(0, REPORT_LIMITS.listed);
  const more = names.length - shown.length;
  return shown.join(', ') + (more > 0 ? `, and ${more} more` : '');
}

function excerpt(text: string, maxLines: number, where: string, budget: ExcerptBudget): string {
  return budget.take(excerptLines(text, maxLines, REPORT_LIMITS.lineChars, where), where).join('\n');
}

function crashOf(crashes: readonly CrashReport[], fingerprint: string): CrashReport | undefined {
  return crashes.find((c) => c.fingerprint === fingerprint);
}

function baseText(r: JobResult): string {
  if (r.baseCommit === null) return 'not recorded';
  const c = short(r.baseCommit);
  if (r.baseRule === 'requested') return `${c}, the base the job was asked to use`;
  if (r.baseRule === 'base-commit') return `${c}, from the series' base-commit`;
  if (r.baseRule === 'tree-ref') return `${c}, the tip of ${oneLine(r.tree.ref, 80)} (a guess: the series names no base-commit)`;
  return c;
}

function prerequisitesText(r: JobResult): string {
  const p = r.prerequisites;
  if (p === null || p === undefined || p.patches.length === 0) return '';
  const shown = p.patches.slice(0, REPORT_LIMITS.listed).map((x) => `"${oneLine(x.title)}" <${oneLine(x.messageId, 250)}>`);
  const more = p.patches.length - shown.length;
  return [
    `${plural(p.patches.length, 'patch', 'patches')}, on both kernels (sha256 ${short(p.hash)}):`,
    ...shown,
    ...(more > 0 ? [`and ${more} more`] : []),
  ].join('\n');
}

function testsText(r: JobResult): string {
  if (r.results.length === 0) {
    return r.stage !== null && r.stage !== 'test' ? `none ran (the job stopped at ${r.stage})` : 'no results';
  }
  const bySuite = new Map<string, ComparedResult[]>();
  for (const x of r.results) bySuite.set(x.suite, [...(bySuite.get(x.suite) ?? []), x]);
  const order = [...r.suites.filter((s) => bySuite.has(s)), ...[...bySuite.keys()].filter((s) => !r.suites.includes(s)).sort()];
  const lines = [...new Set(order)].slice(0, REPORT_LIMITS.listed).map((suite) => {
    const rows = bySuite.get(suite) ?? [];
    const n = (s: string): number => rows.filter((x) => x.status === s).length;
    const parts = [
      n('PASS') > 0 ? `${n('PASS')} passed` : '',
      n('FAIL') > 0 ? `${n('FAIL')} failed` : '',
      n('ERROR') > 0 ? plural(n('ERROR'), 'error') : '',
      n('SKIP') > 0 ? `${n('SKIP')} skipped` : '',
    ].filter((x) => x !== '');
    return `${oneLine(suite, 80)}: ${parts.join(', ')}`;
  });
  if (bySuite.size > REPORT_LIMITS.listed) lines.push(`and ${bySuite.size - REPORT_LIMITS.listed} more suites`);
  return lines.join('\n');
}

function configText(r: JobResult): string {
  const c = r.environment?.config;
  if (c === null || c === undefined) return 'not recorded';
  const fragments = c.fragments.length === 0 ? '' : c.fragments.length === 1 ? ` + ${oneLine(c.fragments[0] ?? '', 160)}` : ` + ${c.fragments.length} fragments (listed below)`;
  return `${oneLine(c.base, 80)}${fragments}${c.sha256 !== null ? `, .config sha256 ${short(c.sha256)}` : ''}`;
}

function qemuText(r: JobResult): string {
  const version = r.environment?.qemu;
  const v = version === null || version === undefined ? 'not recorded' : oneLine(version);
  return r.accel === null ? v : `${v}, ${r.accel.toUpperCase()}`;
}

/** The stage that decided a result, or null when it passed (or skipped). */
function decidingStage(r: JobResult): string | null {
  return r.status === 'PASS' || r.status === 'SKIP' ? null : r.stage;
}

function pastTense(r: JobResult): string {
  if (r.status === 'MISS') return 'reached no verdict (MISS)';
  switch (decidingStage(r)) {
    case null: return r.status === 'SKIP' ? 'skipped every test' : 'passed';
    case 'setup': return 'did not run (infrastructure trouble)';
    case 'apply': return 'did not apply';
    case 'build': return 'did not build';
    case 'boot': return r.crashes.length > 0 ? 'crashed at boot' : 'did not boot';
    case 'test': return r.status === 'ERROR' ? 'had tests that broke on their own (ERROR)' : 'failed tests';
    default: return `ended ${r.status} at ${r.stage ?? '?'}`;
  }
}

function presentTense(r: JobResult): string {
  if (r.status === 'MISS') return 'reaches no verdict (MISS)';
  switch (decidingStage(r)) {
    case null: return r.status === 'SKIP' ? 'applies, builds and boots, and skips every test' : 'applies, builds, boots and passes';
    case 'setup': return 'did not run (infrastructure trouble)';
    case 'apply': return 'does not apply';
    case 'build': return 'applies but does not build';
    case 'boot': return r.crashes.length > 0 ? 'builds but crashes at boot' : 'builds but does not boot';
    case 'test': return r.status === 'ERROR' ? 'boots, and has tests that break on their own (ERROR)' : 'boots, and fails tests';
    default: return `ends ${r.status} at ${r.stage ?? '?'}`;
  }
}

/** What a result blames on its series, by key: "suite/test" for tests, the fingerprint for kernel splats. */
function blamedOf(r: JobResult): Map<string, string> {
  const out = new Map<string, string>();
  for (const x of r.results) if (BLAMED.has(x.comparison)) out.set(`test:${x.suite}\0${x.test}`, label(x));
  for (const x of r.splats ?? []) if (BLAMED.has(x.comparison)) out.set(`splat:${x.fingerprint}`, splatName(x));
  return out;
}

const revisionOf = (n: number | null | undefined): string => (n === null || n === undefined ? 'this revision' : `v${n}`);

/**
 * How the current run compares with the previous revision's, test by test
 * (and kernel splat by fingerprint): what the previous run blamed that is
 * not blamed now (only when the current run ran that test, or ran tests at
 * all for a splat), what is blamed now and was not, what is blamed in
 * both; and one line when the stage that decided differs. Lists sorted.
 */
export function compareRevisions(previous: PreviousRun, current: JobResult): RevisionDelta {
  const before = blamedOf(previous.result);
  const now = blamedOf(current);
  const ran = new Set(current.results.map((x) => `test:${x.suite}\0${x.test}`));
  const tested = current.results.length > 0;
  const sorted = (keys: Iterable<string>, names: Map<string, string>): string[] =>
    [...new Set([...keys].map((k) => names.get(k) ?? k))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const fixed = [...before.keys()].filter((k) => !now.has(k) && (k.startsWith('splat:') ? tested : ran.has(k)));
  const introduced = [...now.keys()].filter((k) => !before.has(k));
  const still = [...now.keys()].filter((k) => before.has(k));
  const prevLabel = revisionOf(previous.version);
  const curLabel = revisionOf(current.series?.version);
  const differs = decidingStage(previous.result) !== decidingStage(current) || (previous.result.status === 'MISS') !== (current.status === 'MISS');
  return {
    previousVersion: previous.version,
    fixed: sorted(fixed, before),
    introduced: sorted(introduced, now),
    stillFailing: sorted(still, now),
    stageChange: differs ? `${prevLabel} ${pastTense(previous.result)}; ${curLabel} ${presentTense(current)}` : null,
  };
}

function previousContext(input: ReportInput): Context | null {
  const p = input.previous;
  if (p === null) return null;
  const delta = compareRevisions(p, input.result);
  const r = input.result;
  const blamedBefore = blamedOf(p.result);
  const ran = new Set(r.results.map((x) => `test:${x.suite}\0${x.test}`));
  const notRun = r.results.length === 0 ? [] : [...blamedBefore.entries()].filter(([k]) => k.startsWith('test:') && !ran.has(k)).map(([, v]) => v).sort();
  const prevLabel = revisionOf(p.version);
  const nothing = delta.stageChange === null && delta.fixed.length + delta.introduced.length + delta.stillFailing.length + notRun.length === 0;
  const same = !nothing ? '' : decidingStage(p.result) === null && decidingStage(r) === null ? `${prevLabel} ${pastTense(p.result)} too` : `${prevLabel} ${pastTense(p.result)} as well`;
  return {
    previousRevision: prevLabel,
    url: oneLine(p.url, 2000),
    stageChange: delta.stageChange ?? '',
    fixed: nameList(delta.fixed),
    introduced: nameList(delta.introduced),
    stillFailing: nameList(delta.stillFailing),
    notRun: nameList(notRun),
    same,
  };
}

function applyContext(input: ReportInput, budget: ExcerptBudget): Context | null {
  const a = input.result.applyFailure;
  if (a === null) return null;
  const title = a.title === null ? '' : ` "${oneLine(a.title)}"`;
  const patch = a.patchIndex === null ? 'A patch' : `Patch ${a.patchIndex}/${input.series.patches}${title}`;
  const messages = a.messages.length === 0 ? '(git printed no error line: the job page has its whole output)'
    : excerpt(a.messages.join('\n'), REPORT_LIMITS.applyLines, 'apply.log on the job page', budget);
  return { patch, messages };
}

function buildContext(input: ReportInput, budget: ExcerptBudget): Context | null {
  const r = input.result;
  if (r.buildErrors.length === 0 && !(r.stage === 'build' && r.status === 'FAIL')) return null;
  const errors = r.buildErrors.filter((d) => d.severity === 'error');
  const shown = errors.length > 0 ? errors : r.buildErrors;
  const lines = shown.slice(0, REPORT_LIMITS.diagnostics).map((d) => {
    const at = [d.file, d.line, d.line === null ? null : d.column].filter((x) => x !== null).join(':');
    return `${at}: ${d.severity}: ${d.message}`;
  });
  if (shown.length > lines.length) lines.push(`[... ${shown.length - lines.length} more: build.log on the job page]`);
  const diagnostics = lines.length === 0 ? `(no compiler diagnostic was recognised: ${oneLine(r.summary)})` : excerpt(lines.join('\n'), REPORT_LIMITS.diagnostics + 1, 'build.log on the job page', budget);
  return { mode: r.buildMode ?? '', diagnostics };
}

function bootContext(input: ReportInput, budget: ExcerptBudget): Context | null {
  const r = input.result;
  if (r.stage !== 'boot') return null;
  const crashes = r.crashes.filter((c, i) => r.crashes.findIndex((x) => x.fingerprint === c.fingerprint) === i).slice(0, REPORT_LIMITS.bootCrashes);
  const stage = r.stages.find((s) => s.stage === 'boot');
  const summary = crashes.length > 0 ? 'it crashed before reaching init.' : oneLine(stage?.summary ?? r.summary);
  return {
    summary,
    crashes: crashes.map((c) => ({
      kind: oneLine(c.kind, 40),
      title: oneLine(c.title),
      culprit: oneLine(c.culprit ?? 'an unknown function', 120),
      fingerprint: oneLine(c.fingerprint, 40),
      excerpt: excerpt(c.excerpt, REPORT_LIMITS.crashLines, 'console.log on the job page', budget),
    })),
  };
}

function blamedContext(input: ReportInput, budget: ExcerptBudget): Context | null {
  const blamed = input.result.results.filter((x) => BLAMED.has(x.comparison));
  if (blamed.length === 0) return null;
  const shown = blamed.slice(0, REPORT_LIMITS.blamedWithDetail);
  const rest = blamed.slice(shown.length).map((x) => `${label(x)} (${WHAT[x.comparison]})`);
  return {
    count: String(blamed.length),
    tests: shown.map((x) => ({
      name: label(x),
      what: WHAT[x.comparison],
      tally: tallyText(x.seriesRuns, x.baseRuns, x.comparison),
      detail: x.detail.trim() === '' ? '' : excerpt(x.detail, REPORT_LIMITS.detailLines, 'the job page has the whole output', budget),
    })),
    more: rest.length === 0 ? '' : `Also blamed, without their output here: ${nameList(rest)}.`,
  };
}

function splatsContext(input: ReportInput, budget: ExcerptBudget): Context | null {
  const r = input.result;
  const blamed = (r.splats ?? []).filter((x) => BLAMED.has(x.comparison));
  if (blamed.length === 0) return null;
  return {
    count: String(blamed.length),
    items: blamed.slice(0, REPORT_LIMITS.splatsWithExcerpt).map((x: SplatComparison) => {
      const crash = crashOf(r.crashes, x.fingerprint);
      return {
        kind: oneLine(x.kind, 40),
        title: oneLine(x.title),
        culprit: oneLine(x.culprit ?? 'an unknown function', 120),
        fingerprint: oneLine(x.fingerprint, 40),
        tally: tallyText(x.series, x.base, x.comparison, 'boot'),
        landed: x.landed.length === 0 ? 'boot' : nameList(x.landed.map((l) => oneLine(l, 160))),
        excerpt: crash === undefined ? '' : excerpt(crash.excerpt, REPORT_LIMITS.crashLines, 'console.log on the job page', budget),
      };
    }),
  };
}

function notBlamedContext(input: ReportInput): Context | null {
  const r = input.result;
  const tests = r.results
    .filter((x) => NOT_BLAMED.has(x.comparison) && (x.comparison !== 'no-base' || isFailure(x.status)))
    .map((x) => ({ name: label(x), what: WHAT[x.comparison], tally: tallyText(x.seriesRuns, x.baseRuns, x.comparison) }));
  const splats = (r.splats ?? [])
    .filter((x) => NOT_BLAMED.has(x.comparison))
    .map((x) => ({ name: splatName(x), what: WHAT[x.comparison], tally: tallyText(x.series, x.base, x.comparison, 'boot') }));
  const all = [...tests, ...splats];
  if (all.length === 0) return null;
  const entries = all.slice(0, REPORT_LIMITS.listed);
  return { entries, more: all.length > entries.length ? `and ${all.length - entries.length} more (the job page lists them)` : '' };
}

/**
 * The kernel config as configure.sh makes it: the base (tinyconfig), the
 * fragment merged in with merge_config.sh (the guest's config, then each
 * suite manifest's "kconfig" lines, files of patchbay's repository), then
 * olddefconfig; and the .config's hash to check it by.
 */
export function configRecipe(c: NonNullable<JobResult['environment']>['config']): string {
  if (c === null) return '# the kernel configuration was not recorded: the job page has kernel.config';
  const base = oneLine(c.base, 80);
  const out: string[] = [];
  const steps: string[] = [];
  let wrote = false;
  let jq: string[] = [];
  const flush = (): void => {
    if (jq.length === 0) return;
    steps.push(`jq -r '.kconfig[]' ${jq.join(' ')} ${wrote ? '>>' : '>'} fragment.config`);
    wrote = true;
    jq = [];
  };
  for (const f of c.fragments.slice(0, REPORT_LIMITS.listed).map((x) => oneLine(x, 200))) {
    if (f.startsWith('(')) {
      flush();
      steps.push(`# not a file: ${f}; the job page has kernel.config`);
      continue;
    }
    const path = `"$PATCHBAY"/${shellWord(f)}`;
    if (f.endsWith('.json')) {
      jq.push(path);
      continue;
    }
    flush();
    steps.push(`cat ${path} ${wrote ? '>>' : '>'} fragment.config`);
    wrote = true;
  }
  flush();
  if (wrote) out.push('# the fragment: these files of patchbay\'s repository ($PATCHBAY), in', '# order (a suite manifest gives its "kconfig" lines)', ...steps);
  else out.push(...steps);
  out.push(/^[A-Za-z0-9_]+config$/.test(base) ? `make ${base}` : `# the base configuration: ${base}`);
  if (wrote) out.push('scripts/kconfig/merge_config.sh -m .config fragment.config');
  out.push('make olddefconfig');
  if (c.sha256 !== null) out.push(`sha256sum .config    # ${oneLine(c.sha256, 64)}`);
  return out.join('\n');
}

function reproducerContext(input: ReportInput): Context {
  const r = input.result;
  const env = r.environment;
  const messageId = oneLine(input.series.messageId, 250);
  const inbox = input.series.inbox === null ? '' : oneLine(input.series.inbox, 500);
  const pre = r.prerequisites?.patches ?? [];
  const prerequisiteMbox = pre.slice(0, REPORT_LIMITS.listed)
    .map((p, i) => `b4 am -o - -P _ ${shellWord(oneLine(p.messageId, 250))} ${i === 0 ? '>' : '>>'} prerequisites.mbox`).join('\n');
  const treeName = oneLine(input.reproducer.tree.name, 80);
  const run = [
    'patchbay run',
    ...(inbox === '' ? ['--mbox series.mbox'] : [`--message-id ${shellWord(messageId)}`, `--inbox ${shellWord(inbox)}`]),
    `--tree ${shellWord(treeName)}`,
    ...(r.baseCommit === null ? [] : [`--base ${shellWord(oneLine(r.baseCommit, 64))}`]),
    ...(pre.length > 0 ? ['--prerequisites prerequisites.mbox'] : []),
    ...input.reproducer.suites.slice(0, REPORT_LIMITS.listed).map((s) => `--suite ${shellWord(oneLine(s, 80))}`),
    ...input.reproducer.tests.slice(0, REPORT_LIMITS.listed).map((t) => `--test ${shellWord(oneLine(t, 160))}`),
  ].join(' ');
  const seriesFetch = inbox === '' ? '' : `b4 am -o - -v ${input.series.version} ${shellWord(messageId)} > series.mbox`;
  const configSteps = configRecipe(env?.config ?? null);
  const q = env?.qemuCommand;
  const tests = input.reproducer.tests.length > 0 ? input.reproducer.tests : input.reproducer.suites;
  // The steps by hand go as far as the job did: a series that does not
  // apply needs no build, one that does not build no QEMU.
  const stopped = r.status === 'PASS' || r.status === 'SKIP' ? null : r.stage;
  return {
    builds: stopped !== 'apply',
    boots: stopped !== 'apply' && stopped !== 'build',
    patchbayRun: run,
    prerequisiteMbox,
    image: env?.image ? oneLine(env.image.tag, 200) : '(not recorded)',
    treeName,
    treeUrl: oneLine(input.reproducer.tree.url, 500),
    baseCommit: r.baseCommit === null ? '(not recorded)' : oneLine(r.baseCommit, 64),
    inbox,
    seriesFetch,
    configSteps,
    qemuCommand: q === null || q === undefined ? '# the QEMU command line was not recorded: the job page has the boot log' : cutChars(oneLine(q, 8000), 8000),
    testFilter: tests.length === 0 ? 'every suite' : nameList(tests.map((t) => oneLine(t, 160))),
  };
}

/** The names the templates fill in, from the input. */
export function reportContext(input: ReportInput, budget: ExcerptBudget = new ExcerptBudget(REPORT_LIMITS.excerptBudget)): Context {
  const r = input.result;
  const inbox = input.series.inbox;
  const closesBase = inbox === null ? null : oneLine(inbox, 500);
  const closes = closesBase === null ? oneLine(input.jobUrl, 2000) : `${closesBase.endsWith('/') ? closesBase : `${closesBase}/`}${midEscape(oneLine(input.messageId, 250))}/`;
  const verdictLine = r.status === 'PASS' || r.stage === null ? r.status : `${r.status} (${r.stage} stage)`;
  return {
    revision: `v${input.series.version}`,
    version: String(input.series.version),
    patches: plural(input.series.patches, 'patch', 'patches'),
    verdict: r.status,
    summary: oneLine(r.summary, 400),
    subject: oneLine(input.series.subject, 400),
    author: oneLine(input.series.author.name, 120),
    miss: r.status === 'MISS',
    error: r.status === 'ERROR',
    skip: r.status === 'SKIP',
    verdictLine,
    head: r.headCommit !== null ? short(r.headCommit) : r.stage === 'apply' ? 'none (the series did not apply)' : 'not recorded',
    tree: `${oneLine(r.tree.name, 80)} (${oneLine(r.tree.ref, 80)})`,
    base: baseText(r),
    prerequisites: prerequisitesText(r),
    tests: testsText(r),
    config: configText(r),
    compiler: r.environment?.compiler ? oneLine(r.environment.compiler) : 'not recorded',
    qemu: qemuText(r),
    runner: input.runner === null ? 'not recorded' : oneLine(input.runner, 120),
    duration: formatDuration(r.durationMs),
    applyFailure: applyContext(input, budget),
    buildFailure: buildContext(input, budget),
    bootFailure: bootContext(input, budget),
    blamed: blamedContext(input, budget),
    splats: splatsContext(input, budget),
    notBlamed: notBlamedContext(input),
    previous: previousContext(input),
    reportedBy: `${oneLine(input.robot.name, 120)} <${oneLine(input.robot.email, 250)}>`,
    closes,
    ...reproducerContext(input),
    jobUrl: oneLine(input.jobUrl, 2000),
    robotName: oneLine(input.robot.name, 120),
    robotEmail: oneLine(input.robot.email, 250),
  };
}

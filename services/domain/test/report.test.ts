import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ComparedResult, Tally } from '../compare.ts';
import type { JobResult } from '../job.ts';
import type { PreviousRun, ReportInput } from '../report/model.ts';
import { capBody, compareRevisions, parseReportTemplates, REPORT_MAX_BYTES, REPORT_SCHEMA, renderReport, replySubject } from '../report/render.ts';
import { b4WouldMisread, formatDuration, hangingIndent, layout, midEscape, sanitize, shellWord, WIDTH, wrapLine } from '../report/text.ts';
import { DEFAULT_TEMPLATES_DIR, loadReportTemplates } from '../../reporter/templates.ts';
import { errorCodeOf } from './error-code.ts';
import { goldenUpdateRequested } from './golden-cases.ts';

const GOLDEN = join(import.meta.dirname, 'golden', 'reports');
/** The report goldens, by name: NAME.input.json (a ReportInput) in, NAME.txt ("Subject: ...", a blank line, the body) out. */
const CASES = ['pass', 'fail-new-failures', 'fail-with-pre-existing', 'does-not-apply', 'build-failure', 'boot-crash', 'v2-fixes-v1', 'v3-new-failure'] as const;

const templates = loadReportTemplates();
const inputOf = (name: string): ReportInput => JSON.parse(readFileSync(join(GOLDEN, `${name}.input.json`), 'utf8')) as ReportInput;
const render = (input: ReportInput): string => {
  const r = renderReport(input, templates);
  return `Subject: ${r.subject}\n\n${r.body}`;
};

test('the report goldens folder holds exactly the listed cases, each with its expected text', () => {
  const files = readdirSync(GOLDEN).filter((f) => f.endsWith('.json') || f.endsWith('.txt')).sort();
  const expected = CASES.flatMap((c) => [`${c}.input.json`, `${c}.txt`]).sort();
  assert.deepEqual(files, expected);
});

for (const name of CASES) {
  test(`golden report: ${name}`, () => {
    const actual = render(inputOf(name));
    const path = join(GOLDEN, `${name}.txt`);
    if (goldenUpdateRequested()) writeFileSync(path, actual);
    assert.ok(existsSync(path), `missing ${path} (run with UPDATE_GOLDEN=1 outside CI, then review it)`);
    assert.equal(actual, readFileSync(path, 'utf8'));
  });
}

/** Every text rule, on one body. */
function assertTextRules(body: string, what: string): void {
  assert.ok(Buffer.byteLength(body, 'utf8') <= REPORT_MAX_BYTES, `${what}: ${Buffer.byteLength(body, 'utf8')} bytes`);
  assert.equal(Buffer.from(body, 'utf8').toString('utf8'), body, `${what}: valid UTF-8`);
  assert.ok(body.endsWith('\n') && !body.endsWith('\n\n'), `${what}: one line end at the end`);
  assert.ok(!body.startsWith('\n'), `${what}: no blank line first`);
  assert.ok(!body.includes('\n\n\n'), `${what}: no run of blank lines`);
  for (const [i, line] of body.split('\n').entries()) {
    const at = `${what}:${i + 1}: ${JSON.stringify(line.slice(0, 80))}`;
    assert.equal(line, line.trimEnd(), `trailing whitespace at ${at}`);
    // eslint-disable-next-line no-control-regex
    assert.ok(!/[\x00-\x08\x0a-\x1f\x7f-\x9f]/.test(line), `a control character at ${at}`);
    assert.ok(!b4WouldMisread(line), `b4 would take this for a trailer or a patch: ${at}`);
    if (!/^[ |]/.test(line)) {
      assert.ok(!line.includes('\t'), `a tab in prose at ${at}`);
      // Longer only when it is one word (a URL) after the indentation.
      if (Array.from(line).length > WIDTH) assert.ok(!/\S\s+\S/.test(line.slice(hangingIndent(line)).trim()), `prose over ${WIDTH} columns at ${at}`);
    }
  }
}

test('every golden report keeps the text rules: wrapped prose, logs as printed, no trailing space, no control character, under the size limit', () => {
  for (const name of CASES) assertTextRules(renderReport(inputOf(name), templates).body, name);
});

test('logs and commands longer than 72 columns are kept whole, never wrapped', () => {
  const boot = inputOf('boot-crash');
  const body = renderReport(boot, templates).body;
  const code = boot.result.crashes[0]?.excerpt.split('\n').find((l) => l.includes('Code: '));
  assert.ok(code !== undefined && code.length > WIDTH);
  assert.ok(body.split('\n').includes(`    ${code}`), 'the Code: line, whole, indented by 4');
  const qemu = boot.result.environment?.qemuCommand ?? '';
  assert.ok(qemu.length > 200);
  assert.ok(body.split('\n').includes(`    ${qemu}`), 'the QEMU command line on one line');
  const pass = renderReport(inputOf('pass'), templates).body;
  assert.match(pass, /^ {4}patchbay run --message-id 20261120-kbuf-pin-v2-0@patchbay\.invalid --inbox https:\/\/lore\.kernel\.org\/io-uring\/ --tree linux-7\.1\.y --base 0dfbac4f4be0f380cd34673a572ab902a33a82b2 --suite smoke$/m);
});

test('wrapping: at spaces only, never inside a word; a URL longer than the line stands alone; lists and aligned values continue under their text', () => {
  const url = `https://lore.kernel.org/io-uring/${'x'.repeat(80)}@patchbay.invalid/`;
  assert.deepEqual(wrapLine(`The job page is ${url} and more`), ['The job page is', url, 'and more']);
  const words = 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen';
  for (const l of wrapLine(words)) assert.ok(l.length <= WIDTH, l);
  assert.equal(wrapLine(words).join(' '), words, 'nothing lost, nothing broken');
  const item = wrapLine(`* kbuf/kbuf-unregister-busy (new failure): ${words}`);
  assert.ok(item.length > 1 && item.slice(1).every((l) => l.startsWith('  ') && !l.startsWith('   ')), item.join('\n'));
  const aligned = wrapLine(`config:         ${words}`);
  assert.ok(aligned.slice(1).every((l) => /^ {16}\S/.test(l)), aligned.join('\n'));
  assert.deepEqual(wrapLine('short'), ['short']);
  assert.equal(hangingIndent('key: value'), 0, 'one space after the colon is prose, not an aligned value');
});

test('layout: lines starting with a space or "|" are kept as printed; prose is wrapped; blank runs become one; one line end at the end', () => {
  const long = `    ${'x '.repeat(60)}end`;
  const text = `${'word '.repeat(30)}\n\n\n\n${long}\n| Closes: https://example.org/${'y'.repeat(90)}/\n\n\n`;
  const out = layout(text);
  assert.ok(out.split('\n').includes(long.trimEnd()));
  assert.ok(out.includes(`| Closes: https://example.org/${'y'.repeat(90)}/\n`));
  assert.ok(!out.includes('\n\n\n'));
  assert.ok(out.endsWith('/\n'));
  assert.ok((out.split('\n')[0]?.length ?? 0) <= WIDTH);
});

function failing(test: string, detail: string, comparison: ComparedResult['comparison'] = 'new-failure', series: Tally = { runs: 4, fails: 4, skips: 0, missing: 0 }, base: Tally | null = { runs: 4, fails: 0, skips: 0, missing: 0 }): ComparedResult {
  return { suite: 'kbuf', test, status: 'FAIL', detail, baseStatus: 'PASS', comparison, seriesRuns: series, baseRuns: base };
}

function withResults(input: ReportInput, results: ComparedResult[], extra: Partial<JobResult> = {}): ReportInput {
  return { ...input, result: { ...input.result, results, ...extra } };
}

test('control characters and ANSI escapes are stripped from what the job printed; tabs stay inside excerpts only', () => {
  const detail = '\x1b[31mFAIL\x1b[0m: got \x07-16\x00 (EBUSY)\r\n\tat step\x1b]0;title\x07 2\u202e\x9b\nok';
  const input = withResults(inputOf('fail-new-failures'), [failing('kbuf-unregister-busy', detail)]);
  const body = renderReport({ ...input, series: { ...input.series, author: { name: 'Grace\x1b[1m Hopper\x00', email: 'grace@patchbay.invalid' } } }, templates).body;
  assertTextRules(body, 'control characters');
  assert.ok(body.includes('    FAIL: got -16 (EBUSY)\n'), body);
  assert.ok(body.includes('    \tat step 2\n'), 'the tab inside the excerpt is kept, the OSC and the bidi override are gone');
  assert.ok(!body.includes('\x1b') && !body.includes('[31m') && !body.includes('\u202e'));
  assert.equal(sanitize('a\x1b[1;31mb\x1b[0mc\x1bMd\u2028e\ud800f'), 'abcd\ne\ufffdf');
});

test('the body stays under the size limit whatever the job printed, with the job page still linked', () => {
  const huge = 'x'.repeat(3000);
  const manyLines = Array.from({ length: 5000 }, (_, i) => `line ${i} ${huge}`).join('\n');
  const results = Array.from({ length: 400 }, (_, i) => failing(`test-${i}-${'n'.repeat(300)}`, manyLines));
  const base = inputOf('v3-new-failure');
  const crash = base.result.crashes[0];
  assert.ok(crash !== undefined);
  const crashes = Array.from({ length: 50 }, (_, i) => ({ ...crash, fingerprint: `${i}`.padStart(16, '0'), excerpt: manyLines }));
  const splats = crashes.map((c) => ({ fingerprint: c.fingerprint, kind: c.kind, title: c.title, culprit: c.culprit, landed: ['kbuf/x'], series: { runs: 4, fails: 4, skips: 0, missing: 0 }, base: { runs: 4, fails: 0, skips: 0, missing: 0 }, comparison: 'new-failure' as const }));
  const input = withResults(base, results, {
    crashes,
    splats,
    buildErrors: Array.from({ length: 500 }, (_, i) => ({ file: 'io_uring/kbuf.c', line: i, column: 1, severity: 'error' as const, message: huge })),
    applyFailure: { patchIndex: 2, title: huge, messages: Array.from({ length: 500 }, () => `error: ${huge}`) },
    prerequisites: { patches: Array.from({ length: 500 }, (_, i) => ({ title: huge, messageId: `${i}@x.invalid` })), hash: 'a'.repeat(64) },
  });
  const body = renderReport(input, templates).body;
  assert.ok(Buffer.byteLength(body, 'utf8') <= REPORT_MAX_BYTES, `${Buffer.byteLength(body, 'utf8')} bytes`);
  assertTextRules(body, 'huge');
  assert.ok(body.includes(input.jobUrl));
  assert.match(body, /^\| Reported-by: patchbay <ci@patchbay\.invalid>$/m);
  assert.match(body, /\[\.\.\. \d+ more lines/);
  assert.match(body, /and \d+ more/);
});

test('the last resort cuts the body at a line end within the limit and points at the job page', () => {
  const body = 'a line of text\n'.repeat(10_000);
  const cut = capBody(body, 'https://patchbay.example.org/jobs/1');
  assert.ok(Buffer.byteLength(cut, 'utf8') <= REPORT_MAX_BYTES);
  assert.match(cut, /a line of text\n\n\[This report was cut at 64 KiB\. The job page has all of it:\nhttps:\/\/patchbay\.example\.org\/jobs\/1\]\n$/);
  assert.equal(capBody('short\n', 'u'), 'short\n');
});

test('the subject: "Re: " and the subject as posted, never "Re: Re:", on one line', () => {
  assert.equal(replySubject('[PATCH v2 0/3] io_uring/kbuf: buffer ring pinning'), 'Re: [PATCH v2 0/3] io_uring/kbuf: buffer ring pinning');
  assert.equal(replySubject('Re: [PATCH] x'), 'Re: [PATCH] x');
  assert.equal(replySubject('RE: [PATCH] x'), 'RE: [PATCH] x');
  assert.equal(replySubject('re:[PATCH] x'), 're:[PATCH] x');
  assert.equal(replySubject('[PATCH] io_uring/kbuf: refuse to unregister a buffer ring that still\r\n holds buffers'), 'Re: [PATCH] io_uring/kbuf: refuse to unregister a buffer ring that still holds buffers');
  assert.equal(replySubject('[PATCH] a\r\nBcc: victim@example.org'), 'Re: [PATCH] a Bcc: victim@example.org', 'no header injection');
  assert.equal(replySubject('[PATCH]  two  spaces\tkept'), 'Re: [PATCH]  two  spaces\tkept');
  const input = inputOf('pass');
  assert.equal(renderReport({ ...input, series: { ...input.series, subject: 'Re: [PATCH v2 0/3] io_uring/kbuf: buffer ring pinning' } }, templates).subject, 'Re: [PATCH v2 0/3] io_uring/kbuf: buffer ring pinning');
});

test('Reported-by and Closes only on FAIL; Closes is the report in the series\' inbox, or the job page for an upload', () => {
  for (const name of CASES) {
    const input = inputOf(name);
    const body = renderReport(input, templates).body;
    if (input.result.status === 'FAIL') {
      assert.match(body, /^\| Reported-by: patchbay <ci@patchbay\.invalid>$/m, name);
      assert.ok(body.includes(`\n| Closes: https://lore.kernel.org/io-uring/${input.messageId}/\n`), name);
    } else {
      assert.ok(!body.includes('Reported-by'), name);
      assert.ok(!body.includes('Closes:'), name);
    }
  }
  for (const status of ['PASS', 'MISS', 'ERROR', 'SKIP'] as const) {
    const input = inputOf('fail-new-failures');
    const body = renderReport({ ...input, result: { ...input.result, status } }, templates).body;
    assert.ok(!body.includes('Reported-by'), status);
  }
  const upload = inputOf('fail-new-failures');
  const body = renderReport({ ...upload, series: { ...upload.series, inbox: null } }, templates).body;
  assert.ok(body.includes(`\n| Closes: ${upload.jobUrl}\n`));
  assert.match(body, /^ {4}patchbay run --mbox series\.mbox --tree linux-7\.1\.y /m);
  assert.ok(!body.includes('b4 am'), 'nothing to fetch: the mbox was uploaded');
  assert.match(body, /series\.mbox is\s+the mbox the series was uploaded as/);
  const odd = renderReport({ ...upload, messageId: 'a/b c%d@x' }, templates).body;
  assert.ok(odd.includes('| Closes: https://lore.kernel.org/io-uring/a%2Fb%20c%25d@x/\n'));
});

test('a job that reached no verdict renders harmlessly: unconfirmed differences listed as not blamed', () => {
  const input = inputOf('fail-new-failures');
  const unconfirmed = failing('kbuf-unregister-busy', 'FAIL: x', 'unconfirmed', { runs: 2, fails: 2, skips: 0, missing: 0 }, { runs: 1, fails: 0, skips: 0, missing: 0 });
  const body = renderReport(withResults(input, [unconfirmed], { status: 'MISS', summary: 'test: 1 difference(s) from the base could not be confirmed' }), templates).body;
  assertTextRules(body, 'MISS');
  assert.match(body, /^patchbay tested v1 of this series \(1 patch\): MISS$/m);
  assert.ok(body.replace(/\s+/g, ' ').includes('* kbuf/kbuf-unregister-busy (unconfirmed: its re-runs did not all happen): failed 2 of 2 runs on the series, 0 of 1 on the base'), body);
  assert.ok(!body.includes('Tests the series breaks'));
});

test('prerequisites: named in the status, fetched by b4, given to patchbay run and applied first by hand', () => {
  const input = inputOf('pass');
  const body = renderReport({ ...input, result: { ...input.result, prerequisites: { patches: [{ title: 'io_uring/kbuf: add buffer ring pinning/unpinning helpers', messageId: '20261120-kbuf-pin-v2-1@patchbay.invalid' }], hash: 'f'.repeat(64) } } }, templates).body;
  assertTextRules(body, 'prerequisites');
  assert.match(body, /^prerequisites: {2}1 patch, on both kernels \(sha256 ffffffffffff\):\n {16}"io_uring\/kbuf: add buffer ring pinning\/unpinning helpers" <20261120-kbuf-pin-v2-1@patchbay\.invalid>$/m);
  assert.match(body, /^ {4}b4 am -o - -P _ 20261120-kbuf-pin-v2-1@patchbay\.invalid > prerequisites\.mbox\n {4}patchbay run .* --prerequisites prerequisites\.mbox --suite smoke$/m);
  assert.match(body, /^ {4}git am prerequisites\.mbox\n {4}b4 am -o - -v 2 /m);
});

test('an environment the result did not record is "not recorded"', () => {
  const input = inputOf('pass');
  const old: JobResult = { ...input.result };
  delete old.environment;
  const body = renderReport({ ...input, runner: null, result: old }, templates).body;
  assertTextRules(body, 'no environment');
  for (const key of ['config', 'compiler', 'runner']) assert.match(body, new RegExp(`^${key}: +not recorded$`, 'm'), key);
  assert.match(body, /^qemu: +not recorded, TCG$/m);
  assert.match(body, /runner image \(not recorded\)/);
  assert.match(body, /# the QEMU command line was not recorded/);
});

test('a line b4 would take for a trailer to add to the patches is quoted, wherever it comes from', () => {
  const input = withResults(inputOf('fail-new-failures'), [failing('kbuf-unregister-busy', 'Acked-by: Mallory <mallory@evil.example>\n  Fixes: 0123456789ab ("x")\nReviewed-by: nobody\nLink: https://example.org/x\ndiff --git a/x b/x')]);
  const body = renderReport(input, templates).body;
  assert.ok(body.includes('\n    | Acked-by: Mallory <mallory@evil.example>\n'), body);
  assert.ok(body.includes('\n      | Fixes: 0123456789ab ("x")\n'));
  assert.ok(body.includes('\n    Reviewed-by: nobody\n'), 'no address, not a name b4 takes without one');
  assert.ok(body.includes('\n    Link: https://example.org/x\n'), 'b4 takes no trailer with a URL from a reply');
  assert.ok(body.includes('\n    diff --git a/x b/x\n'), 'indented: no diff to b4');
  assertTextRules(body, 'trailers');
  for (const [line, misread] of [
    ['Reported-by: patchbay <ci@patchbay.invalid>', true],
    ['  Signed-off-by: A <a@b.c>', true],
    ['| Reported-by: patchbay <ci@patchbay.invalid>', false],
    ['    | Acked-by: X <x@y.z>', false],
    ['Closes: https://lore.kernel.org/io-uring/x@y/', false],
    ['base-commit: 0dfbac4f4be0', true],
    ['base:           0dfbac4f4be0, from the series\' base-commit', false],
    ['Email: a@b.c', false],
    ['diff --git a/x b/x', true],
    ['<a@b.c>', true],
    ['FAIL: got -16: Device or resource busy', false],
  ] as const) assert.equal(b4WouldMisread(line), misread, line);
});

test('the same input gives the same bytes', () => {
  for (const name of CASES) assert.equal(render(inputOf(name)), render(inputOf(name)), name);
});

const tally = (runs: number, fails: number): Tally => ({ runs, fails, skips: 0, missing: 0 });
function run(version: number, opts: { status?: JobResult['status']; stage?: JobResult['stage']; blamed?: string[]; passing?: string[]; crashes?: number; splat?: string }): JobResult {
  const base = inputOf('fail-new-failures').result;
  const rows = [
    ...(opts.blamed ?? []).map((t) => failing(t, '')),
    ...(opts.passing ?? []).map((t): ComparedResult => ({ suite: 'kbuf', test: t, status: 'PASS', detail: '', baseStatus: 'PASS', comparison: 'unchanged', seriesRuns: tally(1, 0), baseRuns: tally(1, 0) })),
  ];
  const crash = inputOf('boot-crash').result.crashes[0];
  return {
    ...base,
    status: opts.status ?? 'FAIL',
    stage: opts.stage === undefined ? 'test' : opts.stage,
    series: { title: 't', version, patches: 1 },
    results: rows,
    crashes: crash === undefined ? [] : Array.from({ length: opts.crashes ?? 0 }, () => crash),
    splats: opts.splat === undefined ? [] : [{ fingerprint: opts.splat, kind: 'warning', title: 'WARNING: x', culprit: 'io_kbuf_commit', landed: ['kbuf/a'], series: tally(4, 4), base: tally(4, 0), comparison: 'new-failure' }],
  };
}
const prev = (result: JobResult): PreviousRun => ({ version: result.series?.version ?? 0, jobId: 'j', url: 'https://patchbay.example.org/jobs/j', result });

test('compareRevisions: fixed, new and still failing, test by test and splat by fingerprint; a line when the deciding stage differs', () => {
  const cases: Array<{ what: string; before: JobResult; now: JobResult; fixed: string[]; introduced: string[]; stillFailing: string[]; stageChange: string | null }> = [
    { what: 'v2 fixes v1', before: run(1, { blamed: ['a'] }), now: run(2, { status: 'PASS', stage: null, passing: ['a'] }), fixed: ['kbuf/a'], introduced: [], stillFailing: [], stageChange: 'v1 failed tests; v2 applies, builds, boots and passes' },
    { what: 'v3 breaks a new test', before: run(2, { status: 'PASS', stage: null, passing: ['a', 'b'] }), now: run(3, { blamed: ['b'], passing: ['a'] }), fixed: [], introduced: ['kbuf/b'], stillFailing: [], stageChange: 'v2 passed; v3 boots, and fails tests' },
    { what: 'mixed, sorted', before: run(1, { blamed: ['z', 'b', 'c'] }), now: run(2, { blamed: ['c', 'y', 'a'], passing: ['b', 'z'] }), fixed: ['kbuf/b', 'kbuf/z'], introduced: ['kbuf/a', 'kbuf/y'], stillFailing: ['kbuf/c'], stageChange: null },
    { what: 'a test the new run did not run is not fixed', before: run(1, { blamed: ['a'] }), now: run(2, { blamed: ['b'] }), fixed: [], introduced: ['kbuf/b'], stillFailing: [], stageChange: null },
    { what: 'v1 did not apply', before: run(1, { stage: 'apply' }), now: run(2, { blamed: ['a'] }), fixed: [], introduced: ['kbuf/a'], stillFailing: [], stageChange: 'v1 did not apply; v2 boots, and fails tests' },
    { what: 'v1 did not build, v2 passes', before: run(1, { stage: 'build' }), now: run(2, { status: 'PASS', stage: null, passing: ['a'] }), fixed: [], introduced: [], stillFailing: [], stageChange: 'v1 did not build; v2 applies, builds, boots and passes' },
    { what: 'v1 crashed at boot, v2 does not build', before: run(1, { stage: 'boot', crashes: 1 }), now: run(2, { stage: 'build' }), fixed: [], introduced: [], stillFailing: [], stageChange: 'v1 crashed at boot; v2 applies but does not build' },
    { what: 'v1 failed tests, v2 does not apply: nothing is called fixed', before: run(1, { blamed: ['a'] }), now: run(2, { stage: 'apply' }), fixed: [], introduced: [], stillFailing: [], stageChange: 'v1 failed tests; v2 does not apply' },
    { what: 'a splat fixed, one still there', before: run(1, { splat: 'aaaaaaaaaaaaaaaa' }), now: run(2, { status: 'PASS', stage: null, passing: ['a'] }), fixed: ['kernel warning in io_kbuf_commit [aaaaaaaaaaaaaaaa]'], introduced: [], stillFailing: [], stageChange: 'v1 failed tests; v2 applies, builds, boots and passes' },
    { what: 'the same splat in both', before: run(1, { splat: 'bbbbbbbbbbbbbbbb' }), now: run(2, { splat: 'bbbbbbbbbbbbbbbb', passing: ['a'] }), fixed: [], introduced: [], stillFailing: ['kernel warning in io_kbuf_commit [bbbbbbbbbbbbbbbb]'], stageChange: null },
    { what: 'both pass', before: run(1, { status: 'PASS', stage: null, passing: ['a'] }), now: run(2, { status: 'PASS', stage: null, passing: ['a'] }), fixed: [], introduced: [], stillFailing: [], stageChange: null },
    { what: 'v2 reached no verdict', before: run(1, { status: 'PASS', stage: null }), now: run(2, { status: 'MISS', stage: 'setup' }), fixed: [], introduced: [], stillFailing: [], stageChange: 'v1 passed; v2 reaches no verdict (MISS)' },
  ];
  for (const c of cases) {
    const d = compareRevisions(prev(c.before), c.now);
    assert.deepEqual({ fixed: d.fixed, introduced: d.introduced, stillFailing: d.stillFailing, stageChange: d.stageChange }, { fixed: c.fixed, introduced: c.introduced, stillFailing: c.stillFailing, stageChange: c.stageChange }, c.what);
    assert.equal(d.previousVersion, c.before.series?.version, c.what);
  }
});

test('templates: sections vanish without a line, lists repeat, values with lines keep their column, includes keep their indentation', () => {
  const t = parseReportTemplates({
    'pass.txt': 'first\n{{#prerequisites}}\nprerequisites:  {{prerequisites}}\n{{/prerequisites}}\n{{^runner}}no runner{{/runner}}\n  {{>footer}}\nlast {{#notBlamed}}{{#entries}}[{{name}}]{{/entries}}{{/notBlamed}}\n',
    'fail.txt': 'x\n',
    'other.txt': 'x\n',
    'footer.txt': 'a {{jobUrl}}\nb\n',
  });
  const input = inputOf('fail-with-pre-existing');
  const body = renderReport({ ...input, runner: 'w', result: { ...input.result, status: 'PASS', prerequisites: { patches: [{ title: 'T', messageId: 'm@x' }], hash: '0'.repeat(64) } } }, t).body;
  assert.equal(body, `first\nprerequisites:  1 patch, on both kernels (sha256 000000000000):\n                "T" <m@x>\n\n  a ${input.jobUrl}\n  b\nlast [kbuf/mshot-shutdown-race.t][kbuf/recvsend_bundle.t]\n`);
});

test('templates: a typo, a list used as text, a section left open or closed twice, a missing block or template fail at load, naming file and line', () => {
  const ok = { 'pass.txt': 'x\n', 'fail.txt': 'x\n', 'other.txt': 'x\n' };
  const problems: Array<[Record<string, string>, RegExp]> = [
    [{ ...ok, 'fail.txt': 'a\n{{verdcit}}\n' }, /^fail\.txt:2: unknown name \{\{verdcit\}\}$/],
    [{ ...ok, 'fail.txt': '{{blamed}}\n' }, /^fail\.txt:1: \{\{blamed\}\} is a list/],
    [{ ...ok, 'fail.txt': '{{miss}}\n' }, /^fail\.txt:1: \{\{miss\}\} is a flag/],
    [{ ...ok, 'fail.txt': '{{#blamed}}\n{{name}}\n' }, /^fail\.txt:1: \{\{#blamed\}\} is never closed$/],
    [{ ...ok, 'fail.txt': '{{#blamed}}\n{{/notBlamed}}\n' }, /^fail\.txt:2: \{\{\/notBlamed\}\} closes \{\{#blamed\}\} \(line 1\)$/],
    [{ ...ok, 'fail.txt': '{{/blamed}}\n' }, /^fail\.txt:1: \{\{\/blamed\}\} closes no section$/],
    [{ ...ok, 'fail.txt': '{{>nothere}}\n' }, /^fail\.txt:1: \{\{>nothere\}\}: there is no nothere\.txt$/],
    [{ ...ok, 'fail.txt': 'a {{>footer}}\n', 'footer.txt': 'x' }, /^fail\.txt:1: \{\{>footer\}\} must stand on a line of its own$/],
    [{ ...ok, 'fail.txt': '{{>a}}\n', 'a.txt': '{{>b}}\n', 'b.txt': '{{>a}}\n' }, /includes itself \(fail > a > b > a\)/],
    [{ ...ok, 'fail.txt': 'a {{ name\n' }, /^fail\.txt:1: a malformed tag/],
    [{ ...ok, 'fail.txt': '{{name}}\n' }, /^fail\.txt:1: unknown name \{\{name\}\}$/],
    [{ 'pass.txt': 'x', 'fail.txt': 'x' }, /^other\.txt: missing/],
  ];
  for (const [files, message] of problems) {
    assert.equal(errorCodeOf(() => parseReportTemplates(files)), 'REPORT_TEMPLATE', String(message));
    assert.throws(() => parseReportTemplates(files), { message });
  }
  // Inside a list, its items' names are in scope; outside, not.
  parseReportTemplates({ ...ok, 'fail.txt': '{{#blamed}}{{#tests}}{{name}}{{tally}}{{/tests}}{{count}}{{verdict}}{{/blamed}}\n' });
});

test('the shipped templates load, and their README names every name the renderer fills in', () => {
  assert.doesNotThrow(() => loadReportTemplates(DEFAULT_TEMPLATES_DIR));
  const readme = readFileSync(join(DEFAULT_TEMPLATES_DIR, 'README.md'), 'utf8');
  const names = (schema: typeof REPORT_SCHEMA): string[] => Object.entries(schema).flatMap(([k, f]) => [k, ...(typeof f === 'object' ? names(f.items) : [])]);
  for (const name of new Set(names(REPORT_SCHEMA))) assert.ok(readme.includes(`\`${name}\``), `README.md does not name \`${name}\``);
});

test('small formats: durations, shell words, Message-IDs in URLs', () => {
  assert.equal(formatDuration(754_000), '12m 34s');
  assert.equal(formatDuration(45_400), '45s');
  assert.equal(formatDuration(3_723_000), '1h 2m 3s');
  assert.equal(formatDuration(0), '0s');
  assert.equal(shellWord('20261120-kbuf-pin-v2-0@patchbay.invalid'), '20261120-kbuf-pin-v2-0@patchbay.invalid');
  assert.equal(shellWord('a b\'c$'), '\'a b\'\\\'\'c$\'');
  assert.equal(midEscape('20261120-kbuf-pin-v2-0@patchbay.invalid'), '20261120-kbuf-pin-v2-0@patchbay.invalid');
  assert.equal(midEscape('a/b c%d#é'), 'a%2Fb%20c%25d%23%C3%A9');
});

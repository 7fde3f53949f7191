/**
 * A parser for KTAP v1 (Documentation/dev-tools/ktap.rst) and the TAP 13
 * that kselftest prints.
 *
 * Nesting comes in two shapes, both handled at any depth:
 * - KTAP/KUnit: a subtest block is indented (two or four spaces, or a tab;
 *   the unit is taken from the block's first line) and starts with a version
 *   line or a "# Subtest: NAME" line (ktap.rst puts it after the version
 *   line, the guest's init before it: either order), or, for older and
 *   TAP 14 output, a plan or a result line.
 * - kselftest's runner: a test program's own TAP is printed with every line
 *   prefixed by "# " ("# TAP version 13", "# 1..3", "# ok 1 foo"). Such a
 *   block starts only at a version line, or, after the runner's
 *   "# selftests: DIR: PROG" line (a program run with KSFT_TAP_LEVEL set
 *   prints none), at a plan or result line. Anything else behind "# " is a
 *   diagnostic: a test's free-form output that happens to read "1..3" or
 *   "ok 1 foo" makes no subtests.
 * Either way the block's results become the children of the next result line
 * at the outer level, and a block whose result line never came (the output
 * ends inside it) becomes a test named by its "# Subtest:" line.
 *
 * Statuses follow ktap.rst: SKIP (with "ok" or "not ok") is SKIP, and so is
 * an "ok" whose subtest block planned "1..0 # SKIP why"; XFAIL and TODO fall
 * back to the result ("ok" PASS, "not ok" FAIL); TIMEOUT and ERROR are
 * ERROR.
 *
 * The guest's lib/ktap.sh may cut a long test output; it says so with a
 * diagnostic line starting KTAP_CUT_MARKER, and the blocks open at that line
 * then get no "(missing)" tests for what their plan names and the output no
 * longer holds (a problem says how many).
 *
 * The parser never throws and runs in time linear in its input (the output
 * of a kernel anyone may have written): whatever does not fit (kernel log
 * lines, blank lines, garbage) is kept as a diagnostic of the test it
 * appeared in, and what is wrong with the structure is written into
 * `problems`. Its caps (KTAP_MAX_CHARS, KTAP_MAX_LINE, KTAP_MAX_DEPTH,
 * KTAP_MAX_PROBLEMS) are far above what real KUnit and kselftest output
 * needs; where one cuts, a problem says so.
 */
import type { TestStatus } from './status.ts';

export type KtapDirective = 'SKIP' | 'TODO' | 'XFAIL' | 'TIMEOUT' | 'ERROR';

export interface KtapTest {
  /** The test number on the result line. */
  number: number | null;
  /** Description after the number, directive stripped, trimmed; a leading "- " removed. */
  name: string;
  /** "ok" vs "not ok". */
  ok: boolean;
  status: TestStatus;
  directive: KtapDirective | null;
  /**
   * Text after the "#" of the result line: after the directive keyword when
   * there is one ("SKIP no fuse" gives "no fuse"), or the whole diagnostic
   * data when there is none ("# exit=1" gives "exit=1"). "" if none. A bare
   * "# SKIP" whose subtest block said "1..0 # SKIP why" takes "why".
   */
  reason: string;
  /**
   * "# ..." lines (without the "# ") and unparsed lines belonging to this
   * test: those between the previous result at this level and this one, and
   * those a subtest block printed after its last result.
   */
  diagnostics: string[];
  children: KtapTest[];
  /**
   * 1-based line of the result line. For a synthesized test: the first line
   * of the orphaned subtest block (the truncated parent), or for "(missing)"
   * the Bail out! line or else the last line of the block it is missing from.
   */
  line: number;
}

export interface KtapDocument {
  /** The top-level version line, e.g. "KTAP version 1", "TAP version 13". */
  version: string | null;
  /** N from the top-level plan "1..N". */
  plan: number | null;
  tests: KtapTest[];
  /** Human-readable structural problems; subtests' problems are prefixed with their parent's name. */
  problems: string[];
}

export interface FlatResult {
  path: string[];
  status: TestStatus;
  detail: string;
}

/**
 * How much of the output is parsed (UTF-16 code units, which is bytes for
 * the ASCII KTAP is): real KUnit and kselftest runs print tens of KB to a few
 * MB. Past it the output is cut at a line end and a problem says so.
 */
export const KTAP_MAX_CHARS = 16 * 1024 * 1024;
/**
 * Longer lines are cut to this many characters before parsing (a problem
 * says how many were): real result and diagnostic lines are well under 1 KB.
 */
export const KTAP_MAX_LINE = 16 * 1024;
/**
 * Subtest blocks nested deeper than this are not descended into: their lines
 * stay diagnostics of the test at this depth and a problem says so. KUnit
 * nests two or three levels, kselftest's runner one more; every open level
 * costs a step for each line that reaches it, and a stack frame.
 */
export const KTAP_MAX_DEPTH = 64;
/**
 * How many problems a block lists; the rest are counted in one last line.
 * Every line of garbage may be a problem, and subtests' problems are copied
 * up to their parents with a prefix.
 */
export const KTAP_MAX_PROBLEMS = 1000;
/** A test name as it prefixes a subtest's problems, cut to this length. */
const PROBLEM_NAME = 200;

/** The name of a test a plan names and the output does not hold. */
export const KTAP_MISSING = '(missing)';
/** The name of an unfinished subtest block that no "# Subtest:" line (or kselftest header) named. */
export const KTAP_TRUNCATED = '(truncated)';
/**
 * How the guest's lib/ktap.sh starts the diagnostic line it puts where it
 * dropped lines of a test's output that included KTAP lines (results): the
 * blocks open there cannot be told complete.
 */
export const KTAP_CUT_MARKER = 'patchbay: output cut:';
/** How many problems ktapProblemLines() returns at most (the last then counts the rest). */
export const KTAP_PROBLEMS_SHOWN = 20;
/** A problem line, as ktapProblemLines() returns it, is cut to this length. */
const PROBLEM_LINE = 300;

/** How many diagnostic lines a flat result's detail carries at most. */
const DETAIL_LINES = 20;
/**
 * How many "(missing)" tests a document may synthesize for plans that name
 * more tests than came, all blocks together: a garbled plan
 * ("1..4294967295"), or a short line "1..9999" in each of many subtest
 * blocks, must not make millions. A block that would pass it gets a problem
 * instead. A real truncated run misses some hundreds.
 */
export const KTAP_MAX_MISSING = 10_000;

const VERSION_RE = /^(K?TAP version \d+)$/;
/*
 * PLAN_RE, BAIL_RE and SUBTEST_RE capture the rest of the line with
 * [\s\S]*, not .*: "\s*(.*)$" backtracks quadratically over a run of blanks
 * followed by a line break char that "." does not match (\r, U+2028). A line
 * whose capture holds one did not match the old "(.*)$" form and still does
 * not (matchLine()).
 */
const PLAN_RE = /^1\.\.(\d+)\s*(?:#\s*([\s\S]*))?$/;
const RESULT_RE = /^(not ok|ok)(?=\s|#|$)(.*)$/;
const BAIL_RE = /^Bail out!\s*([\s\S]*)$/;
const SUBTEST_RE = /^#\s*Subtest:\s*([\s\S]*)$/;
/** What "." does not match. */
const LINE_BREAK_RE = /[\n\r\u2028\u2029]/;
const DIRECTIVE_RE = /^(skip(?:ped)?|todo|xfail|timeout|error)(?![A-Za-z0-9_])[:\s]*(.*)$/i;
/** printk's "[   12.345678] ", optionally followed by a caller id "[    T1] ". */
const TIMESTAMP_RE = /^\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])? ?/;
/** kselftest's runner announces each program with this line before running it. */
const KSFT_HEADER_RE = /^selftests: \S+: \S+$/;

interface Line {
  no: number;
  text: string;
  /**
   * Set once the line was found to be an unindented line that is no KTAP:
   * it is that at every depth, so the blocks it is handed down to skip
   * reading it again (a line of noise may go down KTAP_MAX_DEPTH levels).
   */
  plain?: true;
}

/** re.exec(text), unless the last group holds a char "." does not match (see PLAN_RE). */
function matchLine(re: RegExp, text: string): RegExpExecArray | null {
  const m = re.exec(text);
  if (m === null) return null;
  const rest = m[m.length - 1];
  return rest !== undefined && LINE_BREAK_RE.test(rest) ? null : m;
}

interface Nested {
  kind: 'indent' | 'ksft';
  /** For 'indent': the whitespace every line of the block starts with. */
  prefix: string;
  child: BlockParser;
  firstLine: number;
}

interface Block {
  version: string | null;
  plan: number | null;
  tests: KtapTest[];
  /** At most KTAP_MAX_PROBLEMS. */
  problems: string[];
  /** How many more there were, with those of its subtest blocks. */
  unlisted: number;
  /** Diagnostics after the last result: they belong to the parent. */
  trailing: Line[];
  /** From a "# Subtest: NAME" line inside the block. */
  subtestName: string | null;
  /** Whether any KTAP line (version, plan, result, bail out) was seen. */
  sawKtap: boolean;
  /** The reason of a "1..0 # SKIP reason" plan. */
  skipAll: string | null;
  /** Line of the KTAP_CUT_MARKER inside the block; 0 if none. */
  cutLine: number;
}

interface ParsedResult {
  ok: boolean;
  number: number | null;
  name: string;
  directive: KtapDirective | null;
  reason: string;
}

export function parseKtap(input: string): KtapDocument {
  const notes: string[] = [];
  let text = input;
  if (text.length > KTAP_MAX_CHARS) {
    const end = text.lastIndexOf('\n', KTAP_MAX_CHARS);
    text = text.slice(0, end > 0 ? end : KTAP_MAX_CHARS);
    notes.push(`output longer than ${KTAP_MAX_CHARS} characters: only the first ${text.length} were parsed`);
  }
  let long = 0;
  let firstLong = 0;
  let lines: Line[] = text.split('\n').map((t, i) => {
    let line = t;
    if (line.length > KTAP_MAX_LINE) {
      if (long++ === 0) firstLong = i + 1;
      line = line.slice(0, KTAP_MAX_LINE);
    }
    // trimEnd, not /\s+$/: that regex is quadratic in a long run of blanks
    // that does not end the line.
    return { no: i + 1, text: line.trimEnd() };
  });
  if (long > 0) {
    notes.push(`${long} line${long === 1 ? '' : 's'} longer than ${KTAP_MAX_LINE} characters cut to that for parsing (the first: line ${firstLong})`);
  }

  // Output before the first top-level version line (boot log, shell noise)
  // is not part of the document. If the version line carries a printk
  // timestamp (KUnit at boot), every line's timestamp is dropped.
  const start = lines.findIndex((l) => VERSION_RE.test(l.text.replace(TIMESTAMP_RE, '')));
  if (start >= 0) {
    const first = lines[start];
    if (first !== undefined && TIMESTAMP_RE.test(first.text)) {
      lines = lines.map((l) => ({ no: l.no, text: l.text.replace(TIMESTAMP_RE, '') }));
    }
    lines = lines.slice(start);
  }

  const root = new BlockParser(true, 0, { missing: KTAP_MAX_MISSING });
  for (const line of lines) root.feed(line);
  const block = root.finish('no result in output (truncated?)');
  const problems = [...block.problems];
  if (block.unlisted > 0) problems.push(unlistedNote(block.unlisted));
  for (const n of notes) problems.push(n);
  if (!block.sawKtap) {
    problems.unshift('no KTAP output found');
  } else if (block.version === null) {
    problems.unshift('no version line ("KTAP version 1" or "TAP version 13") before the results');
  }
  return { version: block.version, plan: block.plan, tests: block.tests, problems };
}

function unlistedNote(n: number): string {
  return `${n} more problem${n === 1 ? '' : 's'} not listed`;
}
const UNLISTED_RE = /^(\d+) more problems? not listed$/;

/**
 * The document's problems for a reader: at most `max` lines, each cut to
 * PROBLEM_LINE characters, the last one counting those left out ("... and 37
 * more"). Line numbers in them are lines of the KTAP text parsed. Empty when
 * the KTAP was well formed.
 */
export function ktapProblemLines(problems: readonly string[], max: number = KTAP_PROBLEMS_SHOWN): string[] {
  // The parser's own "N more problems not listed" line counts, not lists.
  let total = 0;
  const listed: string[] = [];
  for (const p of problems) {
    const m = UNLISTED_RE.exec(p);
    if (m !== null) total += Number(m[1]);
    else listed.push(p);
  }
  total += listed.length;
  const room = total > max ? Math.max(0, max - 1) : max;
  const out = listed.slice(0, room).map((p) => (p.length > PROBLEM_LINE ? `${p.slice(0, PROBLEM_LINE - 1)}…` : p));
  if (total > out.length) out.push(`... and ${total - out.length} more problem${total - out.length === 1 ? '' : 's'}`);
  return out;
}

export function flattenKtap(doc: KtapDocument): FlatResult[] {
  const out: FlatResult[] = [];
  const walk = (tests: KtapTest[], parents: string[]): void => {
    const names = tests.map(displayName);
    const count = new Map<string, number>();
    for (const n of names) count.set(n, (count.get(n) ?? 0) + 1);
    tests.forEach((t, i) => {
      // Siblings sharing a name ("(missing)", unnamed results, sloppy
      // tests) are told apart by their number, so every path is unique.
      const base = names[i] ?? '';
      const path = [...parents, (count.get(base) ?? 0) > 1 ? `${base} #${t.number ?? i + 1}` : base];
      if (t.children.length === 0) {
        out.push({ path, status: t.status, detail: detailOf(t) });
        return;
      }
      walk(t.children, path);
      if (isBad(t.status) && !t.children.some((c) => isBad(c.status))) {
        out.push({ path, status: t.status, detail: detailOf(t) });
      }
    });
  };
  walk(doc.tests, []);
  return out;
}

function isBad(s: TestStatus): boolean {
  return s === 'FAIL' || s === 'ERROR';
}

function displayName(t: KtapTest): string {
  if (t.name !== '') return t.name;
  return t.number === null ? '(unnamed)' : `#${t.number}`;
}

function detailOf(t: KtapTest): string {
  const head = [t.directive ?? '', t.reason].filter((s) => s !== '').join(' ');
  const parts = head === '' ? [] : [head];
  if (t.status === 'FAIL' || t.status === 'ERROR') {
    const room = DETAIL_LINES - parts.length;
    parts.push(...t.diagnostics.slice(Math.max(0, t.diagnostics.length - room)));
  }
  return parts.join('\n');
}

/**
 * ktap.rst: SKIP goes with "ok" or "not ok"; XFAIL is an expected failure
 * that happened ("ok", as kselftest prints it), so "not ok # XFAIL" failed;
 * TODO is not recognized in KTAP, so the result stands; TIMEOUT and ERROR
 * (which go with "not ok") say the test broke rather than failed.
 */
export function statusOf(ok: boolean, directive: KtapDirective | null): TestStatus {
  switch (directive) {
    case 'SKIP':
      return 'SKIP';
    case 'TIMEOUT':
    case 'ERROR':
      return 'ERROR';
    case 'XFAIL':
    case 'TODO':
    case null:
      return ok ? 'PASS' : 'FAIL';
  }
}

/** Parses a result line such as "ok 1 - name # SKIP reason"; null if it is not one. */
export function parseResultLine(text: string): ParsedResult | null {
  const m = RESULT_RE.exec(text);
  if (m === null) return null;
  const ok = m[1] === 'ok';
  let rest = (m[2] ?? '').trim();
  let number: number | null = null;
  const num = /^(\d+)(?=\s|#|$)\s*/.exec(rest);
  if (num !== null) {
    number = Number(num[1]);
    rest = rest.slice(num[0].length);
  }
  const hash = unescapedHash(rest);
  const description = hash < 0 ? rest : rest.slice(0, hash);
  const comment = hash < 0 ? '' : rest.slice(hash + 1).trim();
  let name = description.replace(/\\#/g, '#').trim();
  if (name === '-') name = '';
  else if (name.startsWith('- ')) name = name.slice(2).trim();

  let directive: KtapDirective | null = null;
  let reason = comment;
  const d = DIRECTIVE_RE.exec(comment);
  if (d !== null) {
    directive = toDirective(d[1] ?? '');
    reason = (d[2] ?? '').trim();
  }
  return { ok, number, name, directive, reason };
}

function toDirective(word: string): KtapDirective {
  const w = word.toUpperCase();
  if (w.startsWith('SKIP')) return 'SKIP';
  if (w === 'TODO' || w === 'XFAIL' || w === 'TIMEOUT') return w;
  return 'ERROR';
}

function unescapedHash(s: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '#' && (i === 0 || s[i - 1] !== '\\')) return i;
  }
  return -1;
}

/** Whether a line, at its own level, is one that structures KTAP. */
function isKtapLine(text: string): boolean {
  return VERSION_RE.test(text) || matchLine(PLAN_RE, text) !== null || RESULT_RE.test(text);
}

/**
 * One block (the document, or a subtest block in it), fed line by line. A
 * subtest block is parsed as its lines come, by a child parser: nothing is
 * collected per level, so a line costs one pass per open level, and a line
 * of noise (Line.plain) goes down to the innermost open block in one walk.
 */
class BlockParser {
  private version: string | null = null;
  private plan: number | null = null;
  private readonly tests: KtapTest[] = [];
  private readonly problems: string[] = [];
  /** Problems past KTAP_MAX_PROBLEMS, counted. */
  private unlisted = 0;
  /** Whether the KTAP_MAX_DEPTH problem was written for this block. */
  private tooDeep = false;
  private pending: Line[] = [];
  private nested: Nested | null = null;
  /** From a "# Subtest: NAME" line inside the block. */
  private subtestName: string | null = null;
  private sawKtap = false;
  private bailOut: string | null = null;
  private readonly afterBail: Line[] = [];
  /** The reason of a "1..0 # SKIP reason" plan. */
  private skipAll: string | null = null;
  /** Diagnostics before the plan: they describe the block itself. */
  private readonly header: Line[] = [];
  /** The name a "# Subtest:" line gave the block that comes next at this level. */
  private nextName: string | null = null;
  /**
   * Whether kselftest's runner announced a program ("# selftests: DIR:
   * PROG") since the last result: its "# "-prefixed output may then start
   * at its plan (KSFT_TAP_LEVEL set: no version line).
   */
  private ksftHeader = false;
  /** Line of the first KTAP_CUT_MARKER seen while this block was open; 0 if none. */
  private cutLine = 0;
  /** A cut marker came since the last result: the next number is not checked for order. */
  private afterCut = false;
  private readonly seen = new Set<number>();
  private expected = 1;
  private lastLine = 0;
  private bailLine = 0;

  constructor(
    private readonly top: boolean,
    /** 0 for the document, 1 for a subtest block in it, and so on. */
    private readonly depth: number,
    /** What is left of KTAP_MAX_MISSING, shared by the document's blocks. */
    private readonly budget: { missing: number },
  ) {}

  /** Noise (Line.plain) goes to the innermost open block in one walk, as it would level by level. */
  private static sink(block: BlockParser, line: Line): void {
    for (let b = block; ; ) {
      if (b.bailOut !== null) {
        b.afterBail.push(line);
        return;
      }
      b.lastLine = line.no;
      const inner: Nested | null = b.nested;
      if (inner === null) {
        b.pending.push(line);
        return;
      }
      b = inner.child;
    }
  }

  feed(line: Line): void {
    if (line.plain === true) {
      BlockParser.sink(this, line);
      return;
    }
    if (this.bailOut !== null) {
      this.afterBail.push(line);
      return;
    }
    const raw = line.text;
    // Every line's text is trimmed at its end (parseKtap), and only its start
    // is ever cut, so a blank line is an empty one: no trim() per level.
    if (raw === '') return;
    this.lastLine = line.no;

    const nested = this.nested;
    if (nested !== null) {
      if (nested.kind === 'indent' && raw.startsWith(nested.prefix)) {
        nested.child.feed({ no: line.no, text: raw.slice(nested.prefix.length) });
        return;
      }
      if (nested.kind === 'ksft' && /^#(?: |$)/.test(raw)) {
        nested.child.feed({ no: line.no, text: raw.replace(/^# ?/, '') });
        return;
      }
      if (raw.startsWith(' ') || raw.startsWith('\t')) {
        // Indented differently from the open block: an unknown line inside it.
        nested.child.feed(line);
        return;
      }
    }

    const lead = /^[ \t]*/.exec(raw)?.[0] ?? '';
    const content = raw.slice(lead.length);

    if (lead !== '') {
      if (isKtapLine(content) || matchLine(SUBTEST_RE, content) !== null) {
        if (this.depth < KTAP_MAX_DEPTH) {
          this.open('indent', lead, { no: line.no, text: content });
        } else {
          this.noteTooDeep(line);
          this.pending.push(line);
        }
      } else if (content.startsWith('#')) {
        this.pending.push({ no: line.no, text: content.replace(/^# ?/, '') });
      } else {
        this.pending.push(line);
      }
      return;
    }

    const v = VERSION_RE.exec(content);
    if (v !== null) {
      if (this.version === null && !this.sawKtap) this.version = v[1] ?? null;
      else this.problem(`line ${line.no}: unexpected version line "${content}"`);
      this.sawKtap = true;
      return;
    }
    const p = matchLine(PLAN_RE, content);
    if (p !== null) {
      if (this.plan === null) this.plan = Number(p[1]);
      else this.problem(`line ${line.no}: second plan line "${content}"`);
      if (this.tests.length === 0 && nested === null) {
        // What a block prints before its plan ("# module: kbuf_kunit")
        // describes the block, not its first test. (A loop: push(...pending)
        // throws past some 100,000 arguments.)
        for (const l of this.pending) this.header.push(l);
        this.pending = [];
      }
      const comment = (p[2] ?? '').trim();
      if (comment !== '') {
        this.pending.push({ no: line.no, text: comment });
        // "1..0 # SKIP reason": kselftest's ksft_exit_skip() before any test.
        const d = DIRECTIVE_RE.exec(comment);
        if (d !== null && toDirective(d[1] ?? '') === 'SKIP') this.skipAll = (d[2] ?? '').trim();
      }
      this.sawKtap = true;
      return;
    }
    const r = parseResultLine(content);
    if (r !== null) {
      this.addResult(line, r);
      this.sawKtap = true;
      return;
    }
    const b = matchLine(BAIL_RE, content);
    if (b !== null) {
      this.bailOut = b[1] ?? '';
      this.bailLine = line.no;
      this.problem(`line ${line.no}: ${bailNote(this.bailOut)}`);
      this.sawKtap = true;
      return;
    }
    const s = matchLine(SUBTEST_RE, content);
    if (s !== null) {
      // Structural, not a diagnostic: it names a block. KUnit prints it
      // inside the block it names, TAP 14 just before it.
      const named = (s[1] ?? '').trim();
      if (this.subtestName === null && this.plan === null && this.tests.length === 0 && nested === null) this.subtestName = named;
      else this.nextName = named;
      return;
    }
    if (content.startsWith('#')) {
      const inner = content.replace(/^# ?/, '');
      // A program's own output starts a block at its version line (or, after
      // the runner's header, at its plan); other "# " lines that look like
      // KTAP are free-form output, diagnostics of the test.
      const opens = nested === null && (VERSION_RE.test(inner) || (this.ksftHeader && isKtapLine(inner)));
      if (opens && this.depth < KTAP_MAX_DEPTH) {
        this.open('ksft', '# ', { no: line.no, text: inner });
      } else {
        if (opens) this.noteTooDeep(line);
        if (nested === null && KSFT_HEADER_RE.test(inner)) this.ksftHeader = true;
        this.pending.push({ no: line.no, text: inner });
      }
      return;
    }
    if (content.startsWith(KTAP_CUT_MARKER)) this.markCut(line.no);
    // An unknown line: kernel log noise and the like. Inside an open block it
    // belongs to the test that block is running.
    line.plain = true;
    if (nested !== null) nested.child.feed(line);
    else this.pending.push(line);
  }

  finish(missingReason: string): Block {
    // A subtest block whose parent result never came: the output was cut off.
    const open = this.nested;
    if (open !== null) {
      this.nested = null;
      const sub = open.child.finish(missingReason);
      const name = sub.subtestName ?? this.nextName ?? headerName(this.pending) ?? KTAP_TRUNCATED;
      this.problem(`line ${open.firstLine}: subtest block "${name}" has no result line (output truncated?)`);
      this.subProblems(name, sub);
      const number = this.seen.has(this.expected) ? null : this.expected;
      if (number !== null) this.seen.add(number);
      this.tests.push({
        number,
        name,
        ok: false,
        status: 'ERROR',
        directive: null,
        reason: `no result line in output (${this.bailOut !== null ? bailNote(this.bailOut) : sub.cutLine > 0 ? `cut by the guest at line ${sub.cutLine}` : 'truncated?'})`,
        diagnostics: texts([...this.pending, ...sub.trailing]),
        children: sub.tests,
        line: open.firstLine,
      });
      this.pending = [];
    }

    const plan = this.plan;
    const tests = this.tests;
    if (plan !== null) {
      const reason = this.bailOut === null ? missingReason : `no result in output (${bailNote(this.bailOut)})`;
      const needed = plan - tests.length;
      if (needed > 0 && this.cutLine > 0 && this.bailOut === null) {
        // What the plan names may well be in the part the guest cut.
        const found = tests.length;
        this.problem(
          `plan 1..${plan} but ${found} result${found === 1 ? '' : 's'}: ${needed} not listed, ` +
            `the output was cut by the guest at line ${this.cutLine}`,
        );
      } else if (needed > this.budget.missing) {
        this.problem(`plan 1..${plan} but ${tests.length} results: too many missing to list`);
      } else if (needed > 0) {
        this.budget.missing -= needed;
        const free: number[] = [];
        for (let n = 1; n <= plan; n++) if (!this.seen.has(n)) free.push(n);
        const missing = free.slice(Math.max(0, free.length - needed));
        const line = this.bailOut === null ? this.lastLine : this.bailLine;
        const synth = (n: number): KtapTest => ({
          number: n,
          name: KTAP_MISSING,
          ok: false,
          status: 'ERROR',
          directive: null,
          reason,
          diagnostics: [],
          children: [],
          line,
        });
        // Each synthesized test goes before the first result numbered above
        // it: one merge, as missing is ascending (a findIndex and a splice
        // per missing test were quadratic).
        const merged: KtapTest[] = [];
        let next = 0;
        for (const t of tests) {
          for (let n = missing[next]; n !== undefined && t.number !== null && t.number > n; n = missing[++next]) merged.push(synth(n));
          merged.push(t);
        }
        for (let n = missing[next]; n !== undefined; n = missing[++next]) merged.push(synth(n));
        tests.length = 0;
        for (const t of merged) tests.push(t);
        const found = plan - needed;
        this.problem(
          `plan 1..${plan} but ${found} result${found === 1 ? '' : 's'}: ${needed} missing` +
            (this.bailOut === null ? ' (output truncated?)' : ' (after Bail out!)'),
        );
      } else if (needed < 0) {
        this.problem(`plan 1..${plan} but ${tests.length} results`);
      }
    }

    // After a Bail out! nothing is parsed; a subtest block hands what it
    // printed to its parent as diagnostics.
    const pending = this.bailOut === null ? this.pending : [...this.pending, ...this.afterBail];
    return {
      version: this.version,
      plan,
      tests,
      problems: this.problems,
      unlisted: this.unlisted,
      trailing: this.top ? [] : [...this.header, ...pending],
      subtestName: this.subtestName,
      sawKtap: this.sawKtap,
      skipAll: this.skipAll,
      cutLine: this.cutLine,
    };
  }

  /**
   * The guest cut the output here: this block and those open inside it may
   * miss results that are no longer in the output.
   */
  private markCut(no: number): void {
    if (this.cutLine === 0) this.cutLine = no;
    this.afterCut = true;
    // At most KTAP_MAX_DEPTH levels: no deeper block is ever opened.
    this.nested?.child.markCut(no);
  }

  private open(kind: Nested['kind'], prefix: string, first: Line): void {
    const child = new BlockParser(false, this.depth + 1, this.budget);
    this.nested = { kind, prefix, child, firstLine: first.no };
    child.feed(first);
  }

  private problem(p: string): void {
    if (this.problems.length < KTAP_MAX_PROBLEMS) this.problems.push(p);
    else this.unlisted++;
  }

  /** A subtest block's problems, each prefixed with the name of the test it belongs to. */
  private subProblems(name: string, sub: Block): void {
    const room = Math.max(0, KTAP_MAX_PROBLEMS - this.problems.length);
    const shown = name.length > PROBLEM_NAME ? `${name.slice(0, PROBLEM_NAME)}…` : name;
    const listed = sub.problems;
    for (let i = 0; i < listed.length && i < room; i++) this.problems.push(`${shown}: ${listed[i] ?? ''}`);
    this.unlisted += Math.max(0, listed.length - room) + sub.unlisted;
  }

  private noteTooDeep(line: Line): void {
    if (this.tooDeep) return;
    this.tooDeep = true;
    this.problem(`line ${line.no}: subtests nested deeper than ${KTAP_MAX_DEPTH} levels are not parsed; their lines are kept as diagnostics`);
  }

  private addResult(line: Line, r: ParsedResult): void {
    let children: KtapTest[] = [];
    let diagnostics = this.pending;
    const name = r.name;
    let reason = r.reason;
    let status = statusOf(r.ok, r.directive);
    if (r.ok && (r.directive === 'TIMEOUT' || r.directive === 'ERROR')) {
      this.problem(`line ${line.no}: "ok" with the ${r.directive} directive (ktap.rst pairs it with "not ok"): taken as ERROR`);
    }
    const nested = this.nested;
    if (nested !== null) {
      this.nested = null;
      const parentNote = [r.directive ?? '', r.reason].filter((s) => s !== '').join(' ');
      const sub = nested.child.finish(
        parentNote === '' ? 'no result in output (truncated?)' : `no result in output (parent: ${parentNote})`,
      );
      children = sub.tests;
      diagnostics = [...diagnostics, ...sub.trailing];
      this.subProblems(name || `#${r.number ?? '?'}`, sub);
      // kselftest's runner prints a bare "# SKIP" for exit code 4; the
      // program said why in its own "1..0 # SKIP reason".
      if (r.directive === 'SKIP' && reason === '' && sub.skipAll !== null) reason = sub.skipAll;
      // A plain "ok" over "1..0 # SKIP why": the test ran nothing (the
      // guest's init over a suite that skipped as a whole).
      if (r.ok && r.directive === null && sub.skipAll !== null && sub.tests.length === 0) {
        status = 'SKIP';
        reason = reason === '' ? sub.skipAll : `${sub.skipAll} (${reason})`;
      }
    }
    if (r.number !== null) {
      if (this.seen.has(r.number)) {
        this.problem(`line ${line.no}: duplicate test number ${r.number}`);
      } else if (r.number !== this.expected && !this.afterCut) {
        this.problem(`line ${line.no}: test number ${r.number} out of order (expected ${this.expected})`);
      }
      this.seen.add(r.number);
      this.expected = r.number + 1;
    } else {
      this.expected += 1;
    }
    this.tests.push({
      number: r.number,
      name,
      ok: r.ok,
      status,
      directive: r.directive,
      reason,
      diagnostics: texts(diagnostics),
      children,
      line: line.no,
    });
    this.pending = [];
    this.nextName = null;
    this.ksftHeader = false;
    this.afterCut = false;
  }
}

function bailNote(reason: string): string {
  return reason === '' ? 'Bail out!' : `Bail out! ${reason}`;
}

/** The name kselftest's runner gives a program it announced with "# selftests: DIR: PROG". */
function headerName(diags: Line[]): string | null {
  for (let i = diags.length - 1; i >= 0; i--) {
    const t = diags[i]?.text ?? '';
    if (KSFT_HEADER_RE.test(t)) return t;
  }
  return null;
}

function texts(lines: Line[]): string[] {
  return [...lines]
    .sort((a, b) => a.no - b.no)
    .map((l) => l.text)
    .filter((t) => t.trim() !== '');
}

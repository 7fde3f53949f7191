/**
 * A parser for KTAP v1 (Documentation/dev-tools/ktap.rst) and the TAP 13
 * that kselftest prints.
 *
 * Nesting comes in two shapes, both handled at any depth:
 * - KTAP/KUnit: a subtest block is indented (two or four spaces, or a tab;
 *   the unit is taken from the block's first line) and starts with a version
 *   line, a plan, a "# Subtest:" line or (old output) a result line.
 * - kselftest's runner: a test program's own TAP is printed with every line
 *   prefixed by "# " ("# TAP version 13", "# 1..3", "# ok 1 foo").
 * Either way the block's results become the children of the next result line
 * at the outer level.
 *
 * The parser never throws. Whatever does not fit (kernel log lines, blank
 * lines, garbage) is kept as a diagnostic of the test it appeared in, and
 * what is wrong with the structure is written into `problems`.
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

/** How many diagnostic lines a flat result's detail carries at most. */
const DETAIL_LINES = 20;
/** A garbled plan ("1..4294967295") must not make millions of synthetic tests. */
const MAX_MISSING = 10_000;

const VERSION_RE = /^(K?TAP version \d+)$/;
const PLAN_RE = /^1\.\.(\d+)\s*(?:#\s*(.*))?$/;
const RESULT_RE = /^(not ok|ok)(?=\s|#|$)(.*)$/;
const BAIL_RE = /^Bail out!\s*(.*)$/;
const SUBTEST_RE = /^#\s*Subtest:\s*(.*)$/;
const DIRECTIVE_RE = /^(skip(?:ped)?|todo|xfail|timeout|error)(?![A-Za-z0-9_])[:\s]*(.*)$/i;
/** printk's "[   12.345678] ", optionally followed by a caller id "[    T1] ". */
const TIMESTAMP_RE = /^\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])? ?/;
/** kselftest's runner announces each program with this line before running it. */
const KSFT_HEADER_RE = /^selftests: \S+: \S+$/;

interface Line {
  no: number;
  text: string;
}

interface Nested {
  kind: 'indent' | 'ksft';
  /** For 'indent': the whitespace every line of the block starts with. */
  prefix: string;
  lines: Line[];
  firstLine: number;
}

interface Block {
  version: string | null;
  plan: number | null;
  tests: KtapTest[];
  problems: string[];
  /** Diagnostics after the last result: they belong to the parent. */
  trailing: Line[];
  /** From a "# Subtest: NAME" line inside the block. */
  subtestName: string | null;
  /** Whether any KTAP line (version, plan, result, bail out) was seen. */
  sawKtap: boolean;
  /** The reason of a "1..0 # SKIP reason" plan. */
  skipAll: string | null;
}

interface ParsedResult {
  ok: boolean;
  number: number | null;
  name: string;
  directive: KtapDirective | null;
  reason: string;
}

export function parseKtap(text: string): KtapDocument {
  let lines: Line[] = text
    .split('\n')
    // trimEnd, not /\s+$/: that regex is quadratic in a long run of blanks
    // that does not end the line.
    .map((t, i) => ({ no: i + 1, text: t.trimEnd() }));

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

  const block = parseBlock(lines, { top: true, missingReason: 'no result in output (truncated?)' });
  const problems = [...block.problems];
  if (!block.sawKtap) {
    problems.unshift('no KTAP output found');
  } else if (block.version === null) {
    problems.unshift('no version line ("KTAP version 1" or "TAP version 13") before the results');
  }
  return { version: block.version, plan: block.plan, tests: block.tests, problems };
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

export function statusOf(ok: boolean, directive: KtapDirective | null): TestStatus {
  switch (directive) {
    case 'SKIP':
      return 'SKIP';
    case 'XFAIL':
      return 'PASS';
    case 'TODO':
      return ok ? 'PASS' : 'SKIP';
    case 'TIMEOUT':
    case 'ERROR':
      return 'ERROR';
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
  return VERSION_RE.test(text) || PLAN_RE.test(text) || RESULT_RE.test(text);
}

interface BlockOptions {
  top: boolean;
  /** The reason given to a synthesized "(missing)" test. */
  missingReason: string;
}

function parseBlock(lines: Line[], opts: BlockOptions): Block {
  let version: string | null = null;
  let plan: number | null = null;
  const tests: KtapTest[] = [];
  const problems: string[] = [];
  let pending: Line[] = [];
  let nested: Nested | null = null;
  let subtestName: string | null = null;
  let sawKtap = false;
  let bailOut: string | null = null;
  const afterBail: Line[] = [];
  /** The reason of a "1..0 # SKIP reason" plan. */
  let skipAll: string | null = null;
  /** Diagnostics before the plan: they describe the block itself. */
  const header: Line[] = [];
  /** The name a "# Subtest:" line gave the block that comes next at this level. */
  let nextName: string | null = null;
  const seen = new Set<number>();
  let expected = 1;
  let lastLine = 0;
  let bailLine = 0;

  const addResult = (line: Line, r: ParsedResult): void => {
    let children: KtapTest[] = [];
    let diagnostics = pending;
    const name = r.name;
    let reason = r.reason;
    if (nested !== null) {
      const parentNote = [r.directive ?? '', r.reason].filter((s) => s !== '').join(' ');
      const sub = parseBlock(nested.lines, {
        top: false,
        missingReason:
          parentNote === '' ? 'no result in output (truncated?)' : `no result in output (parent: ${parentNote})`,
      });
      children = sub.tests;
      diagnostics = [...diagnostics, ...sub.trailing];
      problems.push(...sub.problems.map((p) => `${name || `#${r.number ?? '?'}`}: ${p}`));
      // kselftest's runner prints a bare "# SKIP" for exit code 4; the
      // program said why in its own "1..0 # SKIP reason".
      if (r.directive === 'SKIP' && reason === '' && sub.skipAll !== null) reason = sub.skipAll;
      nested = null;
    }
    if (r.number !== null) {
      if (seen.has(r.number)) {
        problems.push(`line ${line.no}: duplicate test number ${r.number}`);
      } else if (r.number !== expected) {
        problems.push(`line ${line.no}: test number ${r.number} out of order (expected ${expected})`);
      }
      seen.add(r.number);
      expected = r.number + 1;
    } else {
      expected += 1;
    }
    tests.push({
      number: r.number,
      name,
      ok: r.ok,
      status: statusOf(r.ok, r.directive),
      directive: r.directive,
      reason,
      diagnostics: texts(diagnostics),
      children,
      line: line.no,
    });
    pending = [];
    nextName = null;
  };

  for (const line of lines) {
    if (bailOut !== null) {
      afterBail.push(line);
      continue;
    }
    const raw = line.text;
    if (raw.trim() === '') continue;
    lastLine = line.no;

    if (nested !== null) {
      if (nested.kind === 'indent' && raw.startsWith(nested.prefix)) {
        nested.lines.push({ no: line.no, text: raw.slice(nested.prefix.length) });
        continue;
      }
      if (nested.kind === 'ksft' && /^#(?: |$)/.test(raw)) {
        nested.lines.push({ no: line.no, text: raw.replace(/^# ?/, '') });
        continue;
      }
    }

    const lead = /^[ \t]*/.exec(raw)?.[0] ?? '';
    const content = raw.slice(lead.length);

    if (lead !== '') {
      if (nested !== null) {
        // Indented differently from the open block: an unknown line inside it.
        nested.lines.push(line);
      } else if (isKtapLine(content) || SUBTEST_RE.test(content)) {
        nested = { kind: 'indent', prefix: lead, lines: [{ no: line.no, text: content }], firstLine: line.no };
      } else if (content.startsWith('#')) {
        pending.push({ no: line.no, text: content.replace(/^# ?/, '') });
      } else {
        pending.push(line);
      }
      continue;
    }

    const v = VERSION_RE.exec(content);
    if (v !== null) {
      if (version === null && !sawKtap) version = v[1] ?? null;
      else problems.push(`line ${line.no}: unexpected version line "${content}"`);
      sawKtap = true;
      continue;
    }
    const p = PLAN_RE.exec(content);
    if (p !== null) {
      if (plan === null) plan = Number(p[1]);
      else problems.push(`line ${line.no}: second plan line "${content}"`);
      if (tests.length === 0 && nested === null) {
        // What a block prints before its plan ("# module: kbuf_kunit")
        // describes the block, not its first test.
        header.push(...pending);
        pending = [];
      }
      const comment = (p[2] ?? '').trim();
      if (comment !== '') {
        pending.push({ no: line.no, text: comment });
        // "1..0 # SKIP reason": kselftest's ksft_exit_skip() before any test.
        const d = DIRECTIVE_RE.exec(comment);
        if (d !== null && toDirective(d[1] ?? '') === 'SKIP') skipAll = (d[2] ?? '').trim();
      }
      sawKtap = true;
      continue;
    }
    const r = parseResultLine(content);
    if (r !== null) {
      addResult(line, r);
      sawKtap = true;
      continue;
    }
    const b = BAIL_RE.exec(content);
    if (b !== null) {
      bailOut = b[1] ?? '';
      bailLine = line.no;
      problems.push(`line ${line.no}: ${bailNote(bailOut)}`);
      sawKtap = true;
      continue;
    }
    const s = SUBTEST_RE.exec(content);
    if (s !== null) {
      // Structural, not a diagnostic: it names a block. KUnit prints it
      // inside the block it names, TAP 14 just before it.
      const named = (s[1] ?? '').trim();
      if (subtestName === null && plan === null && tests.length === 0 && nested === null) subtestName = named;
      else nextName = named;
      continue;
    }
    if (content.startsWith('#')) {
      const inner = content.replace(/^# ?/, '');
      if (nested === null && isKtapLine(inner)) {
        nested = { kind: 'ksft', prefix: '# ', lines: [{ no: line.no, text: inner }], firstLine: line.no };
      } else {
        pending.push({ no: line.no, text: inner });
      }
      continue;
    }
    // An unknown line: kernel log noise and the like. Inside an open block it
    // belongs to the test that block is running.
    if (nested !== null) nested.lines.push(line);
    else pending.push(line);
  }

  // A subtest block whose parent result never came: the output was cut off.
  if (nested !== null) {
    const open: Nested = nested;
    const sub = parseBlock(open.lines, { top: false, missingReason: opts.missingReason });
    const name = sub.subtestName ?? nextName ?? headerName(pending) ?? '(truncated)';
    problems.push(`line ${open.firstLine}: subtest block "${name}" has no result line (output truncated?)`);
    problems.push(...sub.problems.map((p) => `${name}: ${p}`));
    const number = seen.has(expected) ? null : expected;
    if (number !== null) seen.add(number);
    tests.push({
      number,
      name,
      ok: false,
      status: 'ERROR',
      directive: null,
      reason: `no result line in output (${bailOut === null ? 'truncated?' : bailNote(bailOut)})`,
      diagnostics: texts([...pending, ...sub.trailing]),
      children: sub.tests,
      line: open.firstLine,
    });
    pending = [];
  }

  if (plan !== null) {
    const missingReason = bailOut === null ? opts.missingReason : `no result in output (${bailNote(bailOut)})`;
    const needed = plan - tests.length;
    if (needed > MAX_MISSING) {
      problems.push(`plan 1..${plan} but ${tests.length} results: too many missing to list`);
    } else if (needed > 0) {
      const free: number[] = [];
      for (let n = 1; n <= plan; n++) if (!seen.has(n)) free.push(n);
      const missing = free.slice(Math.max(0, free.length - needed));
      for (const n of missing) {
        const synth: KtapTest = {
          number: n,
          name: '(missing)',
          ok: false,
          status: 'ERROR',
          directive: null,
          reason: missingReason,
          diagnostics: [],
          children: [],
          line: bailOut === null ? lastLine : bailLine,
        };
        const at = tests.findIndex((t) => t.number !== null && t.number > n);
        if (at < 0) tests.push(synth);
        else tests.splice(at, 0, synth);
      }
      const found = plan - needed;
      problems.push(
        `plan 1..${plan} but ${found} result${found === 1 ? '' : 's'}: ${needed} missing` +
          (bailOut === null ? ' (output truncated?)' : ' (after Bail out!)'),
      );
    } else if (needed < 0) {
      problems.push(`plan 1..${plan} but ${tests.length} results`);
    }
  }

  // After a Bail out! nothing is parsed; a subtest block hands what it
  // printed to its parent as diagnostics.
  if (bailOut !== null) pending = [...pending, ...afterBail];

  return {
    version,
    plan,
    tests,
    problems,
    trailing: opts.top ? [] : [...header, ...pending],
    subtestName,
    sawKtap,
    skipAll,
  };
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

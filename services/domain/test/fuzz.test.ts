/**
 * Generated hostile input for the parsers (issue 10): 100,000 inputs each
 * for mbox (and series assembly on what it gives), subjects, KTAP and
 * console logs. The inputs are made of each grammar's own tokens (result
 * lines, indentation, "# " prefixes, crash headlines, frames, patch mails,
 * replies, MIME parts) mixed with noise (any code point, blank runs, \r,
 * U+2028), so that they reach nested blocks, crash reports and series
 * assembly, not only the "not a KTAP line" path. Every input must be parsed
 * without a throw (mbox and series: a PatchbayError only, their documented
 * refusal) and within PER_INPUT_MS.
 *
 * The seed is fixed, so a run reproduces; on a failure fast-check prints the
 * seed, the path and the shrunk input. PATCHBAY_FUZZ_SEED=<n> tries another.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { findCrashes } from '../console.ts';
import { isPatchbayError } from '../errors.ts';
import { flattenKtap, parseKtap } from '../ktap.ts';
import { parseMbox } from '../mbox.ts';
import { assembleSeries } from '../series.ts';
import { parseSubject } from '../subject.ts';
import { withinTime } from './time-bound.ts';

const RUNS = 100_000;
const SEED = Number(process.env.PATCHBAY_FUZZ_SEED ?? 20261202);
/**
 * Per input. The inputs are small and a linear parse takes well under a
 * millisecond; the bound is this wide because the machine is shared (CI
 * runs beside other work, and a GC pause lands on some input), while a
 * quadratic or exponential path on a crafted input would miss it by far.
 */
const PER_INPUT_MS = 250;

function timed<T>(what: string, fn: () => T): T {
  return withinTime(what, PER_INPUT_MS, fn);
}

/** Runs fn; a PatchbayError (a documented refusal) is fine, any other throw fails the property. */
function refusesOnlyWithPatchbayError(what: string, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (isPatchbayError(e)) return;
    assert.fail(`${what} threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
}

function check<T>(arb: fc.Arbitrary<T>, body: (x: T) => void): void {
  fc.assert(fc.property(arb, body), { numRuns: RUNS, seed: SEED });
}

// ---------------------------------------------------------------------------
// Building blocks

/**
 * Noise: printable ASCII, any code point, blank runs, line-break chars, the
 * grammars' punctuation, and now and then a long run of one of them (what
 * makes a backtracking regex or a rescanning loop blow up).
 */
const noise: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 5, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) },
  {
    weight: 5,
    arbitrary: fc.constantFrom(' ', '   ', '\t', '\r', '\r\n', '\u2028', '\u00a0', '\u00e9', '\u{1F600}', '\0', '\\', '#', ':', '@', '<', '>', '(', ')', '[', ']', '.', '='),
  },
  { weight: 5, arbitrary: fc.nat({ max: 40 }).map((n) => ' '.repeat(n)) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(' ', '\t', '@', '[', '<', 'a', '.', ':', '#', '\r', '-safe -> ', 'lock ', 'a@', '# '), fc.nat({ max: 3000 }))
      .map(([unit, n]) => unit.repeat(n)),
  },
);

/** Mostly tokens, some noise, joined. */
function pieces(tokens: fc.Arbitrary<string>, maxLength: number): fc.Arbitrary<string> {
  return fc
    .array(fc.oneof({ weight: 4, arbitrary: tokens }, { weight: 1, arbitrary: noise }), { maxLength, size: 'medium' })
    .map((a) => a.join(''));
}

/** Lines joined with LF or CRLF ("medium": more lines than fast-check's default, for deeper nesting). */
function lines(line: fc.Arbitrary<string>, maxLength: number): fc.Arbitrary<string> {
  return fc.tuple(fc.array(line, { maxLength, size: 'medium' }), fc.constantFrom('\n', '\n', '\r\n')).map(([ls, nl]) => ls.join(nl));
}

const sometimes = (arb: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.oneof({ weight: 4, arbitrary: fc.constant('') }, { weight: 1, arbitrary: arb });

// ---------------------------------------------------------------------------
// Subjects

const subjectWord = fc.constantFrom(
  'PATCH', 'RFC', 'RESEND', 'v2', 'V3', 'PATCHv4', 'PATCH-v5', 'RFCv2', '1/3', '0/5', '06/25', '6 / 25', '10000/1', 'net-next',
  'io_uring-6.19', '6.12.y', '[net]', '[', ']',
);
const subjectTitle = fc.constantFrom('io_uring/kbuf: fix a leak', 'fuse: add passthrough', '', 'x', ' [PATCH 1/2] nested');
const structuredSubject = fc
  .tuple(
    fc.array(fc.constantFrom('Re: ', 'RE:', 'Aw: ', 'Fwd: ', 're[2]: ', 'Sv:', 'ab:'), { maxLength: 2 }),
    fc.array(
      fc.tuple(fc.array(subjectWord, { maxLength: 5 }), fc.constantFrom(' ', ',', ';', ', ')).map(([ws, sep]) => `[${ws.join(sep)}] `),
      { maxLength: 3 },
    ),
    subjectTitle,
  )
  .map(([re, groups, title]) => re.join('') + groups.join('') + title);
const subjectToken = fc.oneof(
  subjectWord,
  fc.constantFrom('Re: ', 'Fwd: ', '[', ']', ' ', '  ', '\t', ',', ';', '/', '[[', ']]', 'v', 'patch'),
);
const subject: fc.Arbitrary<string> = fc.oneof(structuredSubject, pieces(subjectToken, 16));

// ---------------------------------------------------------------------------
// KTAP

const ktapName = fc.oneof(fc.constantFrom('', 'kbuf_basic', '- fuse_test', 'name \\# not a hash', '-', 'x'), noise);
const ktapDirective = fc.constantFrom(
  '', '', ' # SKIP', ' # SKIP no fuse', ' # skip: x', ' # TODO later', ' # XFAIL', ' # TIMEOUT', ' # error', ' # exit=1', ' #', '#',
);
const ktapBody = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .tuple(fc.constantFrom('ok', 'not ok'), fc.option(fc.nat({ max: 12 })), ktapName, ktapDirective)
      .map(([k, n, name, d]) => `${k}${n === null ? '' : ` ${n}`} ${name}${d}`),
  },
  { weight: 2, arbitrary: fc.oneof(fc.nat({ max: 12 }), fc.constantFrom(4294967295, 20_000)).map((n) => `1..${n}`) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'KTAP version 1', 'TAP version 13', 'KTAP version 2', '1..0 # SKIP no fuse', '1..2 # comment', 'Bail out!', 'Bail out! cannot open /dev/fuse',
      '# Subtest: kbuf', '# selftests: fuse: fuse_test', '# module: kbuf_kunit', '',
    ),
  },
  { weight: 1, arbitrary: noise },
);
const ktapLine = fc
  .tuple(
    fc.constantFrom('', '', '', '[    1.234567] ', '[   12.000001][    T1] '),
    fc.constantFrom('', '', '', '  ', '    ', '\t', ' ', '      ', '        ', '\t  '),
    fc.constantFrom('', '', '', '# ', '# # ', '#', '# # # '),
    ktapBody,
    sometimes(noise),
  )
  .map((p) => p.join(''));
const ktap: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom('', 'KTAP version 1\n', 'TAP version 13\n', '[    0.500000] KTAP version 1\n'), lines(ktapLine, 40))
  .map(([head, body]) => head + body);

// ---------------------------------------------------------------------------
// Console logs

const consoleBody = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      'BUG: kernel NULL pointer dereference, address: 0000000000000008', 'BUG: soft lockup - CPU#0 stuck for 22s! [x:1]',
      'WARNING: CPU: 0 PID: 1 at fs/fuse/dev.c:123 fuse_foo+0x1f/0x90', 'WARNING: at x', 'WARNING: fs/x.c:1 at y+0x1/0x2',
      'Kernel panic - not syncing: Fatal exception', 'Kernel panic - not syncing: panic_on_warn set ...', 'Kernel panic - not syncing: softlockup: hung tasks',
      'Oops: 0000 [#1] PREEMPT SMP', 'invalid opcode: 0000 [#1] SMP', 'kernel BUG at mm/slub.c:123!', 'Call Trace:', ' <TASK>', ' </TASK>', ' <IRQ>', ' </IRQ>',
      ' io_kbuf_recycle+0x1f/0x90 [kbuf]', ' ? foo+0x1/0x2', ' __mutex_lock.constprop.0+0x1/0x2', ' [<ffffffff81234567>] bar+0x1f/0x90', ' __pfx_x+0x0/0x10',
      'RIP: 0010:io_kbuf_recycle+0x1f/0x90', 'RIP: 0033:0x7f0000', 'RIP: 0010:0x0', 'Code: 0f 0b', 'RAX: 0000000000000000', 'CR2: 0000000000000008',
      '------------[ cut here ]------------', '---[ end trace 0000000000000000 ]---', '---[ end Kernel panic - not syncing: x ]---',
      '==================================================================', 'BUG: KASAN: use-after-free in foo+0x1/0x2', 'UBSAN: shift-out-of-bounds in x.c:1:2',
      'WARNING: possible circular locking dependency detected', 'WARNING: irq-safe -> irq-unsafe lock order detected', 'WARNING: a lock was held',
      'INFO: task kworker/0:1:12 blocked for more than 120 seconds.', 'rcu: INFO: rcu_preempt self-detected stall on CPU',
      'NMI watchdog: Watchdog detected hard LOCKUP on cpu 1', 'BUG: sleeping function called from invalid context at x.c:1', 'BUG: MAX_LOCKDEP_KEYS too low!',
      'general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP', '',
    ),
  },
  { weight: 2, arbitrary: noise },
);
/** A call trace as the kernel prints one, so that frames are read. */
const trace = fc
  .array(fc.constantFrom(' foo+0x1/0x2', ' ? bar+0x3/0x4', ' io_uring_cmd+0x10/0x20 [io_uring]', ' RIP: 0010:baz+0x5/0x6', ' schedule+0x1/0x2', ' <IRQ>'), { maxLength: 6 })
  .map((fs) => ['Call Trace:', ' <TASK>', ...fs, ' </TASK>'].join('\n'));
const consoleLine = fc
  .tuple(
    fc.constantFrom('', '', '[    1.234567] ', '[   12.000001][    T1] ', '[ 3.0] '),
    fc.oneof({ weight: 6, arbitrary: consoleBody }, { weight: 1, arbitrary: trace }),
    sometimes(noise),
  )
  .map((p) => p.join(''));
const consoleLog: fc.Arbitrary<string> = lines(consoleLine, 40);

// ---------------------------------------------------------------------------
// Mail

const ids = ['p1@x', 'p2@x', 'p3@x', 'c0@x', 'r1@x', 'r2@x'];
const anId = fc.constantFrom(...ids);
const diffLine = fc.constantFrom(
  'diff --git a/io_uring/kbuf.c b/io_uring/kbuf.c', '--- a/io_uring/kbuf.c', '+++ b/io_uring/kbuf.c', '--- /dev/null', '+++ b/new', '@@ -1,2 +1,3 @@',
  '@@ -1 +1 @@', '+b', '-a', ' a', '', '\\ No newline at end of file', 'new file mode 100644', 'deleted file mode 100644', 'rename from a', 'rename to "b\\303\\266"',
  'diff --git "a/f\\303\\266o" "b/f\\303\\266o"', 'diff --git a/../x b/../x', 'Binary files a/x and b/x differ', 'GIT binary patch', '-- ',
);
const proseLine = fc.constantFrom(
  'Signed-off-by: A U Thor <author@example.org>', 'Reviewed-by: B <b@x.org>', 'Acked-by: b@x.org', 'Tested-by: C <c@y.org>', 'Fixes: abcdef012345 ("x',
  'y")', 'Link: https://e.org/1', 'Cc: d@z.org', '> Reviewed-by: quoted <q@x.org>', 'base-commit: 0123456789abcdef', 'change-id: 20260101-x',
  'prerequisite-patch-id: abcdef0', '[for the kbuf part]', ' 1 file changed, 1 insertion(+)', '---', '', 'Some prose.', '>From the start', 'From the start',
  '=41=42', 'soft break=',
);
const bodyLine = fc.oneof({ weight: 3, arbitrary: diffLine }, { weight: 3, arbitrary: proseLine }, { weight: 1, arbitrary: noise });
const fromHeader = fc.constantFrom(
  'From: A U Thor <author@example.org>', 'From: B <b@x.org>', 'From: b@x.org', 'From: b@x.org (B Name)', 'From: "Q, R" <q@x>',
  'From: =?utf-8?q?J=C3=B6rg?= <j@x>', 'From: @@@@ (x)', 'From:',
);
const extraHeader = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.constantFrom(
      'Date: Mon, 1 Dec 2026 10:00:00 +0000', 'Date: Thu, 8 Jan 2026 11:18:17 -0800 (PST)', 'Date: yesterday', 'Date: 1 Dec 26 10:00 -9900',
      'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Type: text/plain; charset="iso-8859-1"', 'Content-Type: text/x-patch; charset=koi8-r',
      'Content-Transfer-Encoding: quoted-printable', 'Content-Transfer-Encoding: base64', ' folded', '\tfolded', 'X-Mailer: git-send-email 2.47.0',
    ),
  },
  { weight: 1, arbitrary: fc.array(anId, { maxLength: 4 }).map((a) => `References: ${a.map((i) => `<${i}>`).join(' ')}`) },
  { weight: 1, arbitrary: pieces(fc.constantFrom('X-A: ', '=?utf-8?q?', '=?iso-8859-1?b?', '?=', ' ', 'QQ==', '=C3=B6'), 4).map((v) => `X-A: ${v}`) },
  { weight: 1, arbitrary: noise },
);
const separator = fc.constantFrom(
  'From patchbay Mon Sep 17 00:00:00 2001', 'From patchbay Mon Sep 17 00:00:00 2001', 'From mboxrd@z Thu Jan  1 00:00:00 1970', 'From someone',
);

interface Mail {
  subject: string;
  headers: string[];
  body: string[];
}

/** A patch: [PATCH vN k/m] title, a commit message, "---", a diff. */
const patchMail: fc.Arbitrary<Mail> = fc
  .tuple(
    fc.constantFrom('', ' v2', ' v3', ' RFC'),
    fc.nat({ max: 3 }),
    fc.constantFrom(1, 2, 3),
    anId,
    fc.option(anId),
    fc.array(proseLine, { maxLength: 5 }),
    fc.array(diffLine, { maxLength: 10 }),
  )
  .map(([v, k, m, id, parent, prose, diff]) => ({
    subject: `[PATCH${v} ${k}/${m}] io_uring: change ${k}`,
    headers: [`Message-ID: <${id}>`, ...(parent === null ? [] : [`In-Reply-To: <${parent}>`])],
    body: [...prose, '---', ...diff],
  }));
/** A reply giving trailers (or not), to some message of the thread. */
const replyMail: fc.Arbitrary<Mail> = fc
  .tuple(fc.constantFrom('Re: [PATCH 1/2] x', 'Re: [PATCH 0/2] x', 'RE: Re: x', 'x'), anId, fc.option(anId), fc.array(proseLine, { maxLength: 4 }))
  .map(([s, id, parent, body]) => ({ subject: s, headers: [`Message-ID: <${id}>`, ...(parent === null ? [] : [`In-Reply-To: <${parent}>`])], body }));
/** A multipart mail: the patch may be a later part, and parts may nest. */
const multipartMail: fc.Arbitrary<Mail> = fc
  .tuple(subject, fc.array(fc.oneof(bodyLine, fc.constantFrom('--b', '--b--', '--c', 'Content-Type: multipart/mixed; boundary=c', 'Content-Type: text/x-diff')), { maxLength: 16 }))
  .map(([s, body]) => ({ subject: s, headers: ['MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"'], body: ['--b', '', ...body] }));
const anyMail: fc.Arbitrary<Mail> = fc
  .tuple(subject, fc.array(bodyLine, { maxLength: 12 }))
  .map(([s, body]) => ({ subject: s, headers: [], body }));

/** A mail as an mbox holds it; now and then without the blank line that ends its headers. */
function mailText(mail: Mail): fc.Arbitrary<string> {
  return fc
    .tuple(
      separator,
      fromHeader,
      fc.array(extraHeader, { maxLength: 4 }),
      fc.oneof({ weight: 9, arbitrary: fc.constant('\n') }, { weight: 1, arbitrary: fc.constant('') }),
      fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    )
    .map(([sep, from, extra, blank, oneLine]) => {
      // Mostly a one-line subject, so that most mails get past their headers.
      const subj = oneLine ? mail.subject.replace(/[\r\n]/g, ' ') : mail.subject;
      return [sep, from, `Subject: ${subj}`, ...mail.headers, ...extra].join('\n') + '\n' + blank + mail.body.join('\n') + '\n';
    });
}
const message = fc
  .oneof({ weight: 4, arbitrary: patchMail }, { weight: 2, arbitrary: replyMail }, { weight: 1, arbitrary: multipartMail }, { weight: 1, arbitrary: anyMail })
  .chain(mailText);

/** A series as sent: patches 1..m of one revision (one may be missing), maybe a cover letter, replies. */
const series: fc.Arbitrary<string[]> = fc
  .tuple(
    fc.integer({ min: 1, max: 4 }),
    fc.constantFrom('', ' v2', ' RFC v3'),
    fc.boolean(),
    fc.array(fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }), { minLength: 4, maxLength: 4 }),
    fc.array(fc.tuple(fc.array(proseLine, { maxLength: 4 }), fc.array(diffLine, { maxLength: 6 })), { minLength: 4, maxLength: 4 }),
    fc.array(replyMail, { maxLength: 4 }),
  )
  .chain(([m, v, withCover, present, bodies, replies]) => {
    const mails: Mail[] = [];
    if (withCover) mails.push({ subject: `[PATCH${v} 0/${m}] the series`, headers: ['Message-ID: <c0@x>'], body: ['Why.', '', ' 2 files changed, 3 insertions(+)', 'base-commit: 0123456789abcdef'] });
    for (let k = 1; k <= m; k++) {
      if (present[k - 1] === false) continue;
      const [prose, diff] = bodies[k - 1] ?? [[], []];
      mails.push({
        subject: `[PATCH${v} ${k}/${m}] io_uring: change ${k}`,
        headers: [`Message-ID: <p${k}@x>`, `In-Reply-To: <${withCover ? 'c0@x' : 'p1@x'}>`],
        body: [...prose, 'Signed-off-by: A U Thor <author@example.org>', '---', 'diff --git a/f b/f', '--- a/f', '+++ b/f', '@@ -1 +1 @@', '-a', '+b', ...diff],
      });
    }
    return fc.tuple(...[...mails, ...replies].map(mailText));
  });

const mbox: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom('', '', '\xEF\xBB\xBF', '\n\n'),
    fc.oneof(
      { weight: 2, arbitrary: series },
      { weight: 2, arbitrary: fc.array(fc.oneof({ weight: 6, arbitrary: message }, { weight: 1, arbitrary: lines(bodyLine, 6) }), { minLength: 1, maxLength: 6 }) },
    ),
    fc.constantFrom('\n', '\n', '\r\n'),
  )
  .map(([head, ms, nl]) => head + ms.join('\n').replace(/\n/g, nl));

// ---------------------------------------------------------------------------

test('fuzz: parseMbox, then assembleSeries on what it gives', () => {
  check(mbox, (data) => {
    refusesOnlyWithPatchbayError('parseMbox + assembleSeries', () => {
      const messages = timed('parseMbox', () => parseMbox(data));
      timed('assembleSeries', () => assembleSeries(messages));
    });
  });
});

test('fuzz: parseSubject', () => {
  check(subject, (s) => {
    const info = timed('parseSubject', () => parseSubject(s));
    assert.ok(Number.isInteger(info.version));
  });
});

test('fuzz: parseKtap and flattenKtap', () => {
  check(ktap, (text) => {
    const doc = timed('parseKtap', () => parseKtap(text));
    timed('flattenKtap', () => flattenKtap(doc));
  });
});

test('fuzz: findCrashes', () => {
  check(consoleLog, (log) => {
    const crashes = timed('findCrashes', () => findCrashes(log));
    for (const c of crashes) assert.match(c.fingerprint, /^[0-9a-f]{16}$/);
  });
});

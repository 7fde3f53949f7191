/**
 * How the report goldens' inputs (NAME.input.json) were made, kept for the
 * record: from recorded results and real output, through the real judges.
 *
 *   pass                   services/api/test/golden/pass-result.json (a
 *                          recorded result of fixtures/series/pass-kbuf-pin.mbox),
 *                          with the environment a job records now
 *   fail-new-failures      fixtures/series/fail-kbuf-unregister-busy.mbox: the
 *                          real kbuf run of the base under TCG (golden/guest/
 *                          kbuf-base-tcg.*) with its two base failures passing
 *                          (as under KVM), the series' kernel failing
 *                          kbuf-unregister-busy as the suite prints it; judged
 *                          and compared by compare.ts over 4 boots a kernel
 *   fail-with-pre-existing the same series on the real TCG base run:
 *                          recvsend_bundle.t fails everywhere, mshot-shutdown-race.t
 *                          now and then
 *   does-not-apply         fixtures/series/fail-apply-needs-kmbuf.mbox, git am's
 *                          output as the apply stage saw it (build.test.ts)
 *   build-failure          fixtures/series/fail-build-undeclared.mbox, gcc's
 *                          output on it
 *   boot-crash             fixtures/series/fail-boot-panic.mbox, its real boot
 *                          (golden/guest/boot-oops.console.log)
 *   v2-fixes-v1            a v2 of fail-kbuf-unregister-busy that passes,
 *                          after the v1 of fail-new-failures
 *   v3-new-failure         a v3 of pass-kbuf-pin that breaks kbuf-ring-edges
 *                          and warns in io_kbuf_commit (the real warning of
 *                          golden/console/warning-kbuf.log, moved into that
 *                          test), after a v2 that passed
 *
 * Run: node --import tsx services/domain/test/golden/reports/make-inputs.ts
 * (then UPDATE_GOLDEN=1 on report.test.ts, and read every diff).
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBuildDiagnostics, parseGitAmFailure } from '../../../build.ts';
import { type BootEvidence, type BootSplat, compareSplats, compareWithBase, comparedVerdict, DEFAULT_POLICY, type KernelEvidence } from '../../../compare.ts';
import { type JobEnvironment, type JobResult, judgeGuestRun, type StageRun, type TestResult } from '../../../job.ts';
import type { PreviousRun, ReportInput } from '../../../report/model.ts';

const here = import.meta.dirname;
const golden = join(here, '..');
const read = (path: string): string => readFileSync(join(golden, path), 'utf8');
const hex = (seed: string, n: number): string => createHash('sha256').update(seed).digest('hex').slice(0, n);

const BASE = '0dfbac4f4be0f380cd34673a572ab902a33a82b2';
const TREE = { name: 'linux-7.1.y', ref: 'v7.1.8' };
const REPRO_TREE = { name: 'linux-7.1.y', url: 'linux-7.1.y (imported by `patchbay prepare`; see deploy/trees.json)' };
const ROBOT = { name: 'patchbay', email: 'ci@patchbay.invalid' };
const IO_URING = 'https://lore.kernel.org/io-uring/';
const SITE = 'https://patchbay.example.org';
const FRAGMENTS = ['images/guest/guest.config', ...['fuse', 'kbuf', 'selftests', 'smoke'].map((s) => `images/guest/suites/${s}/manifest.json`)];

function environment(seed: string, opts: { accel: 'kvm' | 'tcg' | null; booted: boolean; built: boolean }): JobEnvironment {
  const cpu = opts.accel === 'kvm' ? 'host' : 'max';
  return {
    image: { tag: 'patchbay/runner:3c9e0b71d4a2f865', id: `sha256:${hex('runner image', 64)}` },
    compiler: 'gcc (Debian 14.2.0-19) 14.2.0',
    qemu: 'QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)',
    qemuCommand: opts.booted && opts.accel !== null
      ? `qemu-system-x86_64 -accel ${opts.accel} -cpu ${cpu} -smp 2,sockets=2,cores=1,threads=1 -m 1024 -display none -monitor none -no-reboot -kernel /job/out/bzImage -initrd /job/out/guest-series/initramfs.cpio.gz -append 'console=ttyS0 rdinit=/init panic=-1 oops=panic loglevel=7 printk.time=1 fuse.enable_uring=1' -serial stdio -serial file:/tmp/ktap.${hex(`fifo ${seed}`, 6)}`
      : null,
    config: { base: 'tinyconfig', fragments: FRAGMENTS, sha256: opts.built ? hex(`config ${seed}`, 64) : null },
  };
}

const stage = (s: StageRun['stage'], status: StageRun['status'], durationMs: number, summary: string): StageRun => ({ stage: s, status, durationMs, summary });

/** The kbuf suite's KTAP with some tests' result lines (and the lines of output before them) replaced. */
function kbufKtap(replace: Record<string, string[]>): string {
  const lines = read('guest/kbuf-base-tcg.ktap').split('\n');
  const out: string[] = [];
  let pending: string[] = [];
  for (const line of lines) {
    const m = /^ {4}(?:not )?ok \d+ (\S+)/.exec(line);
    if (/^ {4}# /.test(line) || /^ {4}\.\/run\.sh/.test(line)) {
      pending.push(line);
      continue;
    }
    if (m?.[1] !== undefined && replace[m[1]] !== undefined) {
      out.push(...(replace[m[1]] ?? []));
    } else {
      out.push(...pending, line);
    }
    pending = [];
  }
  return out.join('\n');
}

const PASSING_KBUF_BASE = {
  'mshot-shutdown-race.t': ['    ok 10 mshot-shutdown-race.t # time=3.1s'],
  'recvsend_bundle.t': ['    ok 25 recvsend_bundle.t # time=0.6s'],
};

const BUSY_FAILS = ['    # FAIL: unregistering a ring a pending receive uses (got -16: Device or resource busy)', '    not ok 33 kbuf-unregister-busy # exit=1 time=0.4s'];

/** The real warning of golden/console/warning-kbuf.log, as it would come in kbuf-ring-edges on the 7.1.8 kernel. */
function ringEdgesWarning(): string[] {
  const src = read('console/warning-kbuf.log').split('\n');
  const from = src.findIndex((l) => l.includes('[ cut here ]'));
  const to = src.findIndex((l) => l.includes('[ end trace'));
  const body = src.slice(from, to + 1).filter((l) => !/fuse_uring_commit_fetch|fuse_uring_cmd|io_uring_cmd\+/.test(l));
  let t = 392.9812;
  return body.flatMap((l) => {
    const text = l.replace(/^\[\s*[\d.]+\] /, '')
      .replace('CPU: 0 PID: 312', 'CPU: 1 PID: 2231')
      .replace('CPU: 0 UID: 0 PID: 312 Comm: fuse_uring_kbuf Not tainted 6.12.0-rc3-00025-g1c2d3e4f5a6b #1', 'CPU: 1 UID: 0 PID: 2231 Comm: kbuf-ring-edges Not tainted 7.1.8+ #3 PREEMPTLAZY')
      .replace('BIOS 1.16.2-debian-1.16.2-1 04/01/2014', 'BIOS 1.16.3-debian-1.16.3-2 04/01/2014');
    t += 0.000141;
    const stamp = `[${t.toFixed(6).padStart(12)}] `;
    if (text.includes('__io_put_kbufs')) return [`${stamp}${text}`, `[${(t + 0.00007).toFixed(6).padStart(12)}]  io_read+0x1b2/0x3c0`];
    return [`${stamp}${text}`];
  });
}

interface KbufRunSpec {
  seed: string;
  seriesKtap: string;
  baseKtap: string;
  /** Per re-run boot, the statuses of the re-run tests: series, then base. */
  reruns: { series: Array<Record<string, 'PASS' | 'FAIL'>>; base: Array<Record<string, 'PASS' | 'FAIL'>> };
  /** Console lines put into the series' boots while kbuf-ring-edges runs (a splat). */
  splatLines?: string[];
  accel: 'kvm' | 'tcg';
}

function kbufRun(spec: KbufRunSpec): Pick<JobResult, 'results' | 'splats' | 'crashes' | 'stages' | 'status' | 'stage' | 'summary' | 'base'> {
  const consoleBase = read('guest/kbuf-base-tcg.console.log');
  const lines = consoleBase.split('\n');
  const at = lines.findIndex((l) => l.includes('patchbay: test kbuf/kbuf-ring-edges end'));
  const consoleSeries = spec.splatLines === undefined ? consoleBase : [...lines.slice(0, at), ...spec.splatLines, ...lines.slice(at)].join('\n');
  const judge = (consoleLog: string, ktap: string): ReturnType<typeof judgeGuestRun> =>
    judgeGuestRun({ consoleLog, ktap, exitCode: 0, timedOut: false, timeoutSeconds: 1800, suites: ['kbuf'] });
  const s = judge(consoleSeries, spec.seriesKtap);
  const b = judge(consoleBase, spec.baseKtap);
  const keys = Object.keys(spec.reruns.series[0] ?? {});
  const only = new Set(keys.map((t) => `kbuf\0${t}`));
  const detailOf = (first: readonly TestResult[], test: string): string => first.find((r) => r.test === test)?.detail ?? '';
  const rerunBoots = (first: readonly TestResult[], runs: Array<Record<string, 'PASS' | 'FAIL'>>, splats: readonly BootSplat[]): BootEvidence[] =>
    runs.map((statuses) => ({
      results: Object.entries(statuses).map(([test, status]) => ({ suite: 'kbuf', test, status, detail: status === 'FAIL' ? detailOf(first, test) : '' })),
      completed: new Set(['kbuf']),
      only,
      splats,
    }));
  const asked = new Map([...only].map((k) => [k, spec.reruns.series.length]));
  const series: KernelEvidence = {
    boots: [{ results: s.results, completed: new Set(s.completed), only: null, splats: s.splats }, ...rerunBoots(s.results, spec.reruns.series, s.splats)],
    asked,
    rerunBoots: spec.reruns.series.length,
  };
  const base: KernelEvidence = {
    boots: [{ results: b.results, completed: new Set(b.completed), only: null, splats: b.splats }, ...rerunBoots(b.results, spec.reruns.base, [])],
    asked,
    rerunBoots: spec.reruns.base.length,
  };
  const input = { series, base, policy: DEFAULT_POLICY };
  const results = compareWithBase(input);
  const splats = compareSplats(input);
  const verdict = comparedVerdict(results, splats);
  const accel = spec.accel.toUpperCase();
  const stages = [
    stage('setup', 'PASS', 41_870, `warm base 6f24cff7dfad1f59 (cached), ${accel}, base ${BASE.slice(0, 12)}`),
    stage('apply', 'PASS', 1_214, '1 patch(es) applied, 1 file(s) changed'),
    stage('build', 'PASS', 24_512, 'incremental build'),
    stage('boot', 'PASS', 5_130, 'booted to init'),
    stage('test', verdict.status, (spec.accel === 'kvm' ? 212_440 : 1_597_930) + Number.parseInt(hex(spec.seed, 4), 16), verdict.summary),
  ];
  return {
    results,
    splats,
    crashes: s.crashes,
    stages,
    status: verdict.status,
    stage: verdict.status === 'PASS' ? null : 'test',
    summary: verdict.status === 'PASS' ? verdict.summary : `test: ${verdict.summary}`,
    base: {
      commit: BASE,
      prerequisites: 0,
      kernel: BASE.slice(0, 12),
      suites: [{ suite: 'kbuf', source: 'cached', jobId: `20261120-231502-${hex(spec.seed, 6)}`, summary: 'cached from an earlier job on this base' }],
      rerun: keys.length === 0 ? null : { tests: keys.length, times: spec.reruns.series.length },
    },
  };
}

function result(jobId: string, fields: Partial<JobResult> & Pick<JobResult, 'status' | 'stage' | 'summary' | 'stages'>): JobResult {
  const durationMs = fields.stages.reduce((n, s) => n + s.durationMs, 0) + 1_402;
  return {
    jobId,
    tree: TREE,
    baseCommit: BASE,
    baseRule: 'base-commit',
    headCommit: null,
    series: null,
    prerequisites: null,
    suites: ['kbuf'],
    accel: null,
    buildMode: null,
    results: [],
    base: null,
    crashes: [],
    splats: [],
    ktapProblems: [],
    applyFailure: null,
    buildErrors: [],
    error: null,
    artifactsDir: `/root/.cache/patchbay/jobs/${jobId}/1`,
    artifacts: [],
    startedAt: `${jobId.slice(0, 4)}-${jobId.slice(4, 6)}-${jobId.slice(6, 8)}T${jobId.slice(9, 11)}:${jobId.slice(11, 13)}:${jobId.slice(13, 15)}.412Z`,
    durationMs,
    ...fields,
  };
}

const artifactsAfterTests = ['build.log', 'changed-files.txt', 'console.log', 'kernel.config', 'ktap.txt', 'result.json', 'setup.log', 'bzImage'].sort();

function write(name: string, input: ReportInput): void {
  writeFileSync(join(here, `${name}.input.json`), `${JSON.stringify(input, null, 2)}\n`);
}

const reportId = (jobId: string): string => `patchbay-${jobId}-report@patchbay.invalid`;

// --- pass ---------------------------------------------------------------
const recorded = JSON.parse(readFileSync(join(here, '../../../../api/test/golden/pass-result.json'), 'utf8')) as JobResult;
const passResult: JobResult = {
  ...recorded,
  baseRule: 'base-commit',
  prerequisites: null,
  results: recorded.results.map((r) => ({
    ...r,
    seriesRuns: { runs: r.seriesRuns.runs, fails: r.seriesRuns.fails, skips: 0, missing: 0 },
    baseRuns: r.baseRuns === null ? null : { runs: r.baseRuns.runs, fails: r.baseRuns.fails, skips: 0, missing: 0 },
  })),
  base: recorded.base === null ? null : { ...recorded.base, prerequisites: 0, kernel: BASE.slice(0, 12) },
  splats: [],
  ktapProblems: [],
  artifactsDir: `/root/.cache/patchbay/jobs/${recorded.jobId}/1`,
  artifacts: artifactsAfterTests,
  environment: environment('pass', { accel: 'tcg', booted: true, built: true }),
};
write('pass', {
  messageId: reportId(passResult.jobId),
  result: passResult,
  series: {
    subject: '[PATCH v2 0/3] io_uring/kbuf: buffer ring pinning',
    messageId: '20261120-kbuf-pin-v2-0@patchbay.invalid',
    version: 2,
    patches: 3,
    author: { name: 'Ada Lovelace', email: 'ada@patchbay.invalid' },
    inbox: IO_URING,
  },
  runner: 'worker-1',
  jobUrl: `${SITE}/jobs/${passResult.jobId}`,
  previous: null,
  reproducer: { tree: REPRO_TREE, suites: ['smoke'], tests: [] },
  robot: ROBOT,
});

// --- fail-new-failures --------------------------------------------------
const busySeries = {
  subject: '[PATCH] io_uring/kbuf: refuse to unregister a buffer ring that still holds buffers',
  messageId: '20261121-kbuf-busy-v1-1@patchbay.invalid',
  version: 1,
  patches: 1,
  author: { name: 'Grace Hopper', email: 'grace@patchbay.invalid' },
  inbox: IO_URING,
};
const busyKvm = kbufRun({
  seed: 'busy-kvm',
  seriesKtap: kbufKtap({ ...PASSING_KBUF_BASE, 'kbuf-unregister-busy': BUSY_FAILS }),
  baseKtap: kbufKtap(PASSING_KBUF_BASE),
  reruns: { series: [1, 2, 3].map(() => ({ 'kbuf-unregister-busy': 'FAIL' })), base: [1, 2, 3].map(() => ({ 'kbuf-unregister-busy': 'PASS' })) },
  accel: 'kvm',
});
const busyJob = '20261121-093412-5e71c0';
const busyResult = result(busyJob, {
  ...busyKvm,
  headCommit: '5c1d0e2f7a9b3e84d16c2f0a9e8b7d6c5a4f3e21',
  series: { title: 'io_uring/kbuf: refuse to unregister a buffer ring that still holds buffers', version: 1, patches: 1 },
  accel: 'kvm',
  buildMode: 'incremental',
  artifacts: artifactsAfterTests,
  environment: environment(busyJob, { accel: 'kvm', booted: true, built: true }),
});
const busyInput: ReportInput = {
  messageId: reportId(busyJob),
  result: busyResult,
  series: busySeries,
  runner: 'worker-2',
  jobUrl: `${SITE}/jobs/${busyJob}`,
  previous: null,
  reproducer: { tree: REPRO_TREE, suites: ['kbuf'], tests: ['kbuf/kbuf-unregister-busy'] },
  robot: ROBOT,
};
write('fail-new-failures', busyInput);

// --- fail-with-pre-existing ---------------------------------------------
const busyTcg = kbufRun({
  seed: 'busy-tcg',
  seriesKtap: kbufKtap({ 'kbuf-unregister-busy': BUSY_FAILS }),
  baseKtap: read('guest/kbuf-base-tcg.ktap'),
  reruns: {
    series: [
      { 'mshot-shutdown-race.t': 'PASS', 'recvsend_bundle.t': 'FAIL', 'kbuf-unregister-busy': 'FAIL' },
      { 'mshot-shutdown-race.t': 'FAIL', 'recvsend_bundle.t': 'FAIL', 'kbuf-unregister-busy': 'FAIL' },
      { 'mshot-shutdown-race.t': 'PASS', 'recvsend_bundle.t': 'FAIL', 'kbuf-unregister-busy': 'FAIL' },
    ],
    base: [
      { 'mshot-shutdown-race.t': 'PASS', 'recvsend_bundle.t': 'FAIL', 'kbuf-unregister-busy': 'PASS' },
      { 'mshot-shutdown-race.t': 'PASS', 'recvsend_bundle.t': 'FAIL', 'kbuf-unregister-busy': 'PASS' },
      { 'mshot-shutdown-race.t': 'FAIL', 'recvsend_bundle.t': 'FAIL', 'kbuf-unregister-busy': 'PASS' },
    ],
  },
  accel: 'tcg',
});
const busyTcgJob = '20261121-101755-a03b9d';
write('fail-with-pre-existing', {
  ...busyInput,
  messageId: reportId(busyTcgJob),
  result: result(busyTcgJob, {
    ...busyTcg,
    baseRule: 'requested',
    headCommit: '5c1d0e2f7a9b3e84d16c2f0a9e8b7d6c5a4f3e21',
    series: { title: 'io_uring/kbuf: refuse to unregister a buffer ring that still holds buffers', version: 1, patches: 1 },
    accel: 'tcg',
    buildMode: 'incremental',
    artifacts: artifactsAfterTests,
    environment: environment(busyTcgJob, { accel: 'tcg', booted: true, built: true }),
  }),
  runner: 'worker-tcg-1',
  jobUrl: `${SITE}/jobs/${busyTcgJob}`,
});

// --- does-not-apply -----------------------------------------------------
const amOutput = [
  'Applying: io_uring/kbuf: clarify the unit of PEEK_MAX_IMPORT',
  'Applying: io_uring/kbuf: refuse to unregister a pinned kernel-managed ring',
  'error: sha1 information is lacking or useless (io_uring/kbuf.h).',
  'error: could not build fake ancestor',
  'hint: Use \'git am --show-current-patch=diff\' to see the failed patch',
  'Patch failed at 0002 io_uring/kbuf: refuse to unregister a pinned kernel-managed ring',
  'When you have resolved this problem, run "git am --continue".',
].join('\n');
const applyFailure = parseGitAmFailure(amOutput);
const applyJob = '20261121-114020-c4d2e8';
const applySummary = `patch 2/2 "io_uring/kbuf: refuse to unregister a pinned kernel-managed ring" does not apply: ${applyFailure.messages.slice(0, 3).join('; ')}`;
write('does-not-apply', {
  messageId: reportId(applyJob),
  result: result(applyJob, {
    status: 'FAIL',
    stage: 'apply',
    summary: `apply: ${applySummary}`,
    series: { title: 'io_uring/kbuf: kernel-managed ring follow-ups', version: 1, patches: 2 },
    suites: ['kbuf', 'smoke'],
    stages: [
      stage('setup', 'PASS', 38_904, `warm base 6f24cff7dfad1f59 (cached), KVM, base ${BASE.slice(0, 12)}`),
      stage('apply', 'FAIL', 1_377, applySummary),
    ],
    applyFailure,
    artifacts: ['apply.log', 'result.json', 'setup.log'],
    environment: environment(applyJob, { accel: null, booted: false, built: false }),
  }),
  series: {
    subject: '[PATCH 0/2] io_uring/kbuf: kernel-managed ring follow-ups',
    messageId: '20261121-kmbuf-followups-v1-0@patchbay.invalid',
    version: 1,
    patches: 2,
    author: { name: 'Grace Hopper', email: 'grace@patchbay.invalid' },
    inbox: IO_URING,
  },
  runner: 'worker-1',
  jobUrl: `${SITE}/jobs/${applyJob}`,
  previous: null,
  reproducer: { tree: REPRO_TREE, suites: ['kbuf', 'smoke'], tests: [] },
  robot: ROBOT,
});

// --- build-failure ------------------------------------------------------
const buildLog = [
  '  CC      io_uring/kbuf.o',
  '../linux/io_uring/kbuf.c: In function \'io_unregister_pbuf_ring\':',
  '../linux/io_uring/kbuf.c:719:23: error: \'IOBL_PINNED\' undeclared (first use in this function)',
  '  719 |         if (bl->flags & IOBL_PINNED)',
  '      |                       ^~~~~~~~~~~',
  '../linux/io_uring/kbuf.c:719:23: note: each undeclared identifier is reported only once for each function it appears in',
  'make[4]: *** [../linux/scripts/Makefile.build:287: io_uring/kbuf.o] Error 1',
  'make[3]: *** [../linux/scripts/Makefile.build:544: io_uring] Error 2',
].join('\n');
const buildErrors = parseBuildDiagnostics(buildLog);
const buildJob = '20261122-080311-7b90fa';
const buildSummary = `incremental build failed: ${buildErrors.filter((d) => d.severity === 'error').map((d) => `${d.file}:${d.line ?? '?'}: ${d.message}`).join('; ')}`;
write('build-failure', {
  messageId: reportId(buildJob),
  result: result(buildJob, {
    status: 'FAIL',
    stage: 'build',
    summary: `build: ${buildSummary}`,
    headCommit: 'e3a1f09c6b2d4875a0c9e1f3b5d7a2c4e6f80912',
    series: { title: 'io_uring/kbuf: refuse to unregister a pinned buffer ring', version: 1, patches: 1 },
    suites: ['kbuf'],
    buildMode: 'incremental',
    stages: [
      stage('setup', 'PASS', 40_212, `warm base 6f24cff7dfad1f59 (cached), KVM, base ${BASE.slice(0, 12)}`),
      stage('apply', 'PASS', 1_102, '1 patch(es) applied, 1 file(s) changed'),
      stage('build', 'FAIL', 19_845, buildSummary),
    ],
    buildErrors,
    artifacts: ['build.log', 'changed-files.txt', 'result.json', 'setup.log'],
    environment: environment(buildJob, { accel: null, booted: false, built: false }),
  }),
  series: {
    subject: '[PATCH] io_uring/kbuf: refuse to unregister a pinned buffer ring',
    messageId: '20261122-kbuf-ebusy-v1-1@patchbay.invalid',
    version: 1,
    patches: 1,
    author: { name: 'Alan Turing', email: 'alan@patchbay.invalid' },
    inbox: IO_URING,
  },
  runner: 'worker-2',
  jobUrl: `${SITE}/jobs/${buildJob}`,
  previous: null,
  reproducer: { tree: REPRO_TREE, suites: ['kbuf'], tests: [] },
  robot: ROBOT,
});

// --- boot-crash ---------------------------------------------------------
const boot = judgeGuestRun({ consoleLog: read('guest/boot-oops.console.log'), ktap: '', exitCode: 0, timedOut: false, timeoutSeconds: 600, suites: ['smoke'] });
const bootJob = '20261122-091533-e15f07';
write('boot-crash', {
  messageId: reportId(bootJob),
  result: result(bootJob, {
    status: 'FAIL',
    stage: 'boot',
    summary: `boot: ${boot.boot.summary}`,
    headCommit: '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432',
    series: { title: 'io_uring/kbuf: pinning helpers with a boot self test', version: 1, patches: 2 },
    suites: ['smoke'],
    accel: 'tcg',
    buildMode: 'incremental',
    stages: [
      stage('setup', 'PASS', 39_077, `warm base 6f24cff7dfad1f59 (cached), TCG, base ${BASE.slice(0, 12)}`),
      stage('apply', 'PASS', 1_251, '2 patch(es) applied, 2 file(s) changed'),
      stage('build', 'PASS', 27_940, 'incremental build'),
      stage('boot', boot.boot.status, 2_310, boot.boot.summary),
    ],
    crashes: boot.crashes,
    splats: [],
    artifacts: ['build.log', 'bzImage', 'changed-files.txt', 'console.log', 'kernel.config', 'result.json', 'setup.log'],
    environment: environment(bootJob, { accel: 'tcg', booted: true, built: true }),
  }),
  series: {
    subject: '[PATCH RFC 0/2] io_uring/kbuf: pinning helpers with a boot self test',
    messageId: '20261122-kbuf-selftest-v1-0@patchbay.invalid',
    version: 1,
    patches: 2,
    author: { name: 'Alan Turing', email: 'alan@patchbay.invalid' },
    inbox: IO_URING,
  },
  runner: 'worker-tcg-1',
  jobUrl: `${SITE}/jobs/${bootJob}`,
  previous: null,
  reproducer: { tree: REPRO_TREE, suites: ['smoke'], tests: [] },
  robot: ROBOT,
});

// --- v2-fixes-v1 --------------------------------------------------------
const busyV2 = kbufRun({
  seed: 'busy-v2',
  seriesKtap: kbufKtap(PASSING_KBUF_BASE),
  baseKtap: kbufKtap(PASSING_KBUF_BASE),
  reruns: { series: [], base: [] },
  accel: 'kvm',
});
const v2Job = '20261124-155902-0d8c3b';
const v1Run: PreviousRun = { version: 1, jobId: busyJob, url: `${SITE}/jobs/${busyJob}`, result: busyResult };
write('v2-fixes-v1', {
  messageId: reportId(v2Job),
  result: result(v2Job, {
    ...busyV2,
    baseRule: 'tree-ref',
    headCommit: '71b0c2d9e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9',
    series: { title: 'io_uring/kbuf: refuse to unregister a buffer ring that still holds buffers', version: 2, patches: 1 },
    accel: 'kvm',
    buildMode: 'incremental',
    artifacts: artifactsAfterTests,
    environment: environment(v2Job, { accel: 'kvm', booted: true, built: true }),
  }),
  series: { ...busySeries, subject: '[PATCH v2] io_uring/kbuf: refuse to unregister a buffer ring that still holds buffers', messageId: '20261124-kbuf-busy-v2-1@patchbay.invalid', version: 2 },
  runner: 'worker-2',
  jobUrl: `${SITE}/jobs/${v2Job}`,
  previous: v1Run,
  reproducer: { tree: REPRO_TREE, suites: ['kbuf'], tests: [] },
  robot: ROBOT,
});

// --- v3-new-failure -----------------------------------------------------
const pinV2 = kbufRun({ seed: 'pin-v2', seriesKtap: kbufKtap(PASSING_KBUF_BASE), baseKtap: kbufKtap(PASSING_KBUF_BASE), reruns: { series: [], base: [] }, accel: 'kvm' });
const pinV2Job = '20261123-211410-6b2f94';
const pinV2Result = result(pinV2Job, {
  ...pinV2,
  headCommit: '1135e64fb91cfa695cc6a9be803a4fdcbecdbeba',
  series: { title: 'io_uring/kbuf: buffer ring pinning', version: 2, patches: 3 },
  accel: 'kvm',
  buildMode: 'incremental',
  artifacts: artifactsAfterTests,
  environment: environment(pinV2Job, { accel: 'kvm', booted: true, built: true }),
});
const EDGES_FAILS = [
  '    # ok: a second ring on group 10 is -EEXIST',
  '    # ok: ring sizes',
  '    # FAIL: buffer id out of range or used twice in one refill (got 7: -)',
  '    not ok 32 kbuf-ring-edges # exit=1 time=1.1s',
];
const pinV3 = kbufRun({
  seed: 'pin-v3',
  seriesKtap: kbufKtap({ ...PASSING_KBUF_BASE, 'kbuf-ring-edges': EDGES_FAILS }),
  baseKtap: kbufKtap(PASSING_KBUF_BASE),
  reruns: { series: [1, 2, 3].map(() => ({ 'kbuf-ring-edges': 'FAIL' })), base: [1, 2, 3].map(() => ({ 'kbuf-ring-edges': 'PASS' })) },
  splatLines: ringEdgesWarning(),
  accel: 'kvm',
});
const v3Job = '20261126-110245-f2a61d';
write('v3-new-failure', {
  messageId: reportId(v3Job),
  result: result(v3Job, {
    ...pinV3,
    headCommit: 'a4c3e2d1f0b9a8c7d6e5f4a3b2c1d0e9f8a7b6c5',
    series: { title: 'io_uring/kbuf: buffer ring pinning', version: 3, patches: 3 },
    accel: 'kvm',
    buildMode: 'incremental',
    artifacts: artifactsAfterTests,
    environment: environment(v3Job, { accel: 'kvm', booted: true, built: true }),
  }),
  series: {
    subject: '[PATCH v3 0/3] io_uring/kbuf: buffer ring pinning',
    messageId: '20261126-kbuf-pin-v3-0@patchbay.invalid',
    version: 3,
    patches: 3,
    author: { name: 'Ada Lovelace', email: 'ada@patchbay.invalid' },
    inbox: IO_URING,
  },
  runner: 'worker-1',
  jobUrl: `${SITE}/jobs/${v3Job}`,
  previous: { version: 2, jobId: pinV2Job, url: `${SITE}/jobs/${pinV2Job}`, result: pinV2Result },
  reproducer: { tree: REPRO_TREE, suites: ['kbuf'], tests: ['kbuf/kbuf-ring-edges'] },
  robot: ROBOT,
});

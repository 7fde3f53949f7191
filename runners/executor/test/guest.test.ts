/**
 * runGuest against a fake container (the narrow port): boot.sh's exit
 * contract and the evidence rules decide between a verdict and a retryable
 * error (MISS). The console and KTAP files are real guest output
 * (services/domain/test/golden/guest). The same on the real engine, QEMU
 * and kernel: faults.itest.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SuiteCatalog } from '../../../services/catalog/suites.ts';
import { isPatchbayError } from '../../../services/domain/errors.ts';
import type { ExecOutcome } from '../docker.ts';
import { ScriptedContainer, fakeSandbox } from './fake-container.ts';
import { BOOT_EXIT, type GuestOutcome, bootScriptOutcome, guestEvidenceProblem, runGuest } from '../guest.ts';
import { ArtifactsDir } from '../sandbox.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const golden = join(root, 'services', 'domain', 'test', 'golden', 'guest');
const read = (name: string): string => readFileSync(join(golden, name), 'utf8');
const PASS_CONSOLE = read('pass-smoke.console.log');
const PASS_KTAP = read('pass-smoke.ktap');
const OOPS_CONSOLE = read('boot-oops.console.log');
const smoke = SuiteCatalog.load(join(root, 'images', 'guest', 'suites')).select(['smoke']);

const dir = mkdtempSync(join(tmpdir(), 'patchbay-guest-unit-'));
after(() => { rmSync(dir, { recursive: true, force: true }); });

async function boot(outcome: ExecOutcome, files: Record<string, string>): Promise<GuestOutcome> {
  // boot.sh "ran" with the given outcome and left these files in its output folder.
  const box = await fakeSandbox(new ScriptedContainer(() => outcome, files));
  const artifacts = ArtifactsDir.create(join(dir, 'jobs'), 'j');
  return runGuest(box, artifacts, { name: 'series', accel: 'tcg', kernel: '/job/out/bzImage', plan: smoke.map((suite) => ({ suite, tests: [] })), suiteExtra: null, bootTimeoutSeconds: 60 }, 1 << 20);
}

async function missOf(p: Promise<unknown>): Promise<{ code: string; message: string; retryable: boolean }> {
  const e = await p.then(() => null, (err: unknown) => err);
  assert.ok(isPatchbayError(e), `a PatchbayError, got ${String(e)}`);
  return { code: e.code, message: e.message, retryable: e.retryable };
}

test('a clean boot is judged: smoke passes', async () => {
  const g = await boot({ exitCode: 0, timedOut: false, tail: 'patchbay: all suites done\n' }, { 'console.log': PASS_CONSOLE, 'ktap.txt': PASS_KTAP });
  assert.equal(g.boot.status, 'PASS');
  assert.equal(g.results.length, 6);
  assert.ok(g.results.every((r) => r.status === 'PASS'));
});

test('boot.sh failing before QEMU (exit 125) is a retryable harness error, not "the kernel stopped before init"', async () => {
  // Before: judged as a boot FAIL with an empty console.
  const tail = 'patchbay: boot harness failed: suite nosuch not found (no manifest.json in /job/in/suites, the image or SUITE_EXTRA)\n';
  const m = await missOf(boot({ exitCode: BOOT_EXIT.harness, timedOut: false, tail }, {}));
  assert.equal(m.code, 'GUEST_HARNESS');
  assert.equal(m.retryable, true);
  assert.match(m.message, /suite nosuch not found/);
});

test('QEMU killed by a signal the timeout did not send (exit 123) is a retryable error naming the signal', async () => {
  // Before: boot.sh turned 137 into 124, and the run read as a guest timeout.
  const tail = `${PASS_CONSOLE.split('\n').slice(0, 40).join('\n')}\npatchbay: QEMU was killed by signal 9 (KILL) after 3s, not by the timeout (120s)\n`;
  const m = await missOf(boot({ exitCode: BOOT_EXIT.killed, timedOut: false, tail }, { 'console.log': PASS_CONSOLE.split('\n').slice(0, 40).join('\n'), 'ktap.txt': '' }));
  assert.equal(m.code, 'GUEST_KILLED');
  assert.equal(m.retryable, true);
  assert.equal(m.message, 'QEMU was killed by signal 9, not by the timeout: out of memory?');
});

test('boot.sh itself SIGKILLed (137) before any limit is a retryable error, not a timeout', async () => {
  const m = await missOf(boot({ exitCode: 137, timedOut: true, tail: '' }, { 'console.log': PASS_CONSOLE.split('\n').slice(0, 40).join('\n') }));
  assert.equal(m.code, 'GUEST_KILLED');
  assert.match(m.message, /boot script was killed by signal 9/);
});

test('init started but the KTAP channel is empty: a retryable error, not a failing row per suite', async () => {
  // Before: every suite got "not run" rows, judged against the base.
  const m = await missOf(boot({ exitCode: 0, timedOut: false, tail: '' }, { 'console.log': PASS_CONSOLE, 'ktap.txt': '' }));
  assert.equal(m.code, 'GUEST_NO_KTAP');
  assert.equal(m.retryable, true);
  assert.match(m.message, /printed KTAP on the console but the KTAP channel \(ttyS1\) stayed empty/);
});

test('a crash after init with an empty KTAP channel is still judged: the crash is evidence', async () => {
  const lines = PASS_CONSOLE.split('\n');
  const init = lines.findIndex((l) => l.startsWith('patchbay: init started'));
  const oopsLines = OOPS_CONSOLE.split('\n');
  const oops = oopsLines.slice(oopsLines.findIndex((l) => l.includes('BUG: kernel NULL pointer dereference')));
  const console = [...lines.slice(0, init + 1), 'patchbay: suite smoke start (timeout 60s)', 'patchbay: test smoke/io_uring_setup start', ...oops].join('\n');
  const g = await boot({ exitCode: 0, timedOut: false, tail: '' }, { 'console.log': console, 'ktap.txt': '' });
  assert.ok(g.crashes.length > 0, 'the crash is found');
  assert.ok(g.results.some((r) => r.test === 'io_uring_setup' && r.detail.includes('NULL pointer dereference')), JSON.stringify(g.results));
});

test('no kernel banner at all is no evidence about the kernel', async () => {
  const m = await missOf(boot({ exitCode: 1, timedOut: false, tail: 'qemu: qemu-system-x86_64: could not load kernel \'/job/out/bzImage\'\n' }, { 'console.log': '', 'ktap.txt': '' }));
  assert.equal(m.code, 'GUEST_NO_BANNER');
  assert.match(m.message, /QEMU exited 1 before the kernel printed its banner/);
});

test('a kernel crash before init stays a boot FAIL', async () => {
  const g = await boot({ exitCode: 0, timedOut: false, tail: '' }, { 'console.log': OOPS_CONSOLE, 'ktap.txt': '' });
  assert.equal(g.boot.status, 'FAIL');
  assert.match(g.boot.summary, /kernel crashed during boot/);
});

test('boot.sh exit contract: 124 is the guest\'s timeout; past boot.sh\'s own limit it is the harness', () => {
  assert.deepEqual(bootScriptOutcome({ exitCode: 124, timedOut: true, tail: '', seconds: 125 }, 120), { exitCode: 124, timedOut: true });
  assert.deepEqual(bootScriptOutcome({ exitCode: 0, timedOut: false, tail: '', seconds: 5 }, 120), { exitCode: 0, timedOut: false });
  assert.deepEqual(bootScriptOutcome({ exitCode: 1, timedOut: false, tail: '', seconds: 1 }, 120), { exitCode: 1, timedOut: false });
  const code = (r: Parameters<typeof bootScriptOutcome>[0]): string => {
    try {
      bootScriptOutcome(r, 120);
      return 'no error';
    } catch (e) {
      return isPatchbayError(e) && e.retryable ? e.code : `not retryable: ${String(e)}`;
    }
  };
  assert.equal(code({ exitCode: 124, timedOut: true, tail: '', seconds: 180.5 }), 'GUEST_HARNESS', 'the exec wrapper\'s own timeout');
  assert.equal(code({ exitCode: 137, timedOut: true, tail: '', seconds: 190 }), 'GUEST_HARNESS', 'the exec wrapper\'s own SIGKILL');
  assert.equal(code({ exitCode: 127, timedOut: false, tail: '', seconds: 0.1 }), 'GUEST_HARNESS', 'boot.sh missing');
  assert.equal(code({ exitCode: -1, timedOut: false, tail: '', seconds: 3 }), 'GUEST_HARNESS', 'container gone');
  assert.equal(code({ exitCode: 143, timedOut: false, tail: '', seconds: 3 }), 'GUEST_KILLED', 'boot.sh terminated');
});

test('guestEvidenceProblem: the rules alone', () => {
  const run = { consoleLog: PASS_CONSOLE, ktap: PASS_KTAP, exitCode: 0, timedOut: false, timeoutSeconds: 120 };
  assert.equal(guestEvidenceProblem(run, { crashes: [] }), null);
  assert.equal(guestEvidenceProblem({ ...run, ktap: '' }, { crashes: [] })?.code, 'GUEST_NO_KTAP');
  // Init seen, nothing after it, timed out: no KTAP anywhere.
  const upToInit = PASS_CONSOLE.slice(0, PASS_CONSOLE.indexOf('KTAP version'));
  const e = guestEvidenceProblem({ ...run, consoleLog: upToInit, ktap: '', exitCode: null, timedOut: true }, { crashes: [] });
  assert.ok(e);
  assert.equal(e.code, 'GUEST_NO_KTAP');
  assert.match(e.message, /started but printed no KTAP \(QEMU ran out of its 120s\)/);
  // The banner then a hang before init: evidence (judged as a boot FAIL).
  const upToBoot = PASS_CONSOLE.slice(0, PASS_CONSOLE.indexOf('patchbay: init started'));
  assert.equal(guestEvidenceProblem({ ...run, consoleLog: upToBoot, ktap: '', exitCode: null, timedOut: true }, { crashes: [] }), null);
});

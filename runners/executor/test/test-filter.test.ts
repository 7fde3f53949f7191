/**
 * A filtered job (JobInput.only, `patchbay run --test SUITE/TEST`) on fake
 * containers: the guest's plan names the tests, the base runs the same
 * filtered set, its rows are kept by the same rule (smoke runs every test
 * whatever it is told), and its base runs are cached under a key of their
 * own, so filtered and whole runs never stand for each other. The same on
 * the real engine: fixtures.itest.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import tar from 'tar-stream';
import { SuiteCatalog } from '../../../services/catalog/suites.ts';
import { DEFAULT_POLICY } from '../../../services/domain/compare.ts';
import type { TestResult } from '../../../services/domain/job.ts';
import { judgeGuestRun } from '../../../services/domain/job.ts';
import { filterRows, testsBySuite } from '../../../services/domain/test-filter.ts';
import { compareAgainstBase, keyPartsOf } from '../against-base.ts';
import { BaseRunCache, type BaseRunKeyParts, baseRunKey } from '../base-runs.ts';
import type { ExecOutcome } from '../docker.ts';
import { ScriptedContainer, fakeSandbox } from './fake-container.ts';
import { planFor, planText } from '../guest.ts';
import { ArtifactsDir } from '../sandbox.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const golden = join(root, 'services', 'domain', 'test', 'golden', 'guest');
const PASS_CONSOLE = readFileSync(join(golden, 'pass-smoke.console.log'), 'utf8');
const PASS_KTAP = readFileSync(join(golden, 'pass-smoke.ktap'), 'utf8');
const catalog = SuiteCatalog.load(join(root, 'images', 'guest', 'suites'));
const dir = mkdtempSync(join(tmpdir(), 'patchbay-filter-unit-'));
after(() => { rmSync(dir, { recursive: true, force: true }); });

/** A container that also keeps the files put into it (the guest's plans). */
class RecordingContainer extends ScriptedContainer {
  readonly puts = new Map<string, string>();
  override put(archive: Readable): Promise<void> {
    const extract = tar.extract();
    extract.on('entry', (header, body, next) => {
      const chunks: Buffer[] = [];
      body.on('data', (c: Buffer) => { chunks.push(c); });
      body.on('end', () => { this.puts.set(`/${header.name}`, Buffer.concat(chunks).toString('utf8')); next(); });
    });
    archive.pipe(extract);
    return new Promise((resolve, reject) => { extract.on('finish', resolve); extract.on('error', reject); });
  }
}

const only = testsBySuite([{ suite: 'smoke', test: 'pbuf_ring_register' }, { suite: 'smoke', test: 'io_uring_setup' }]);

test('the plan: a filtered suite\'s line names its tests, the others run whole', () => {
  const plan = planFor(catalog.select(['kbuf', 'smoke']), only);
  assert.equal(planText(plan), 'kbuf\nsmoke io_uring_setup pbuf_ring_register\n');
  assert.equal(planText(planFor(catalog.select(['smoke']), new Map())), 'smoke\n');
});

test('a filtered job\'s base runs the same tests, is compared on them only, and is cached apart from whole runs', async () => {
  const smoke = catalog.select(['smoke']);
  const booted: ExecOutcome = { exitCode: 0, timedOut: false, tail: 'patchbay: all suites done\n' };
  const files = { 'console.log': PASS_CONSOLE, 'ktap.txt': PASS_KTAP };
  const seriesBox = new RecordingContainer(() => booted, files);
  const baseBox = new RecordingContainer(() => booted, files);
  const cache = new BaseRunCache(join(dir, 'base-runs'));
  const keyParts: Omit<BaseRunKeyParts, 'suite' | 'suiteVersion'> = { baseCommit: 'a'.repeat(40), fragment: 'f', toolchain: 't', guestInputs: 'g', accel: 'tcg' };
  // The series' first run as the pipeline keeps it: smoke printed all six tests; two are kept.
  const seriesRun = judgeGuestRun({ consoleLog: PASS_CONSOLE, ktap: PASS_KTAP, exitCode: 0, timedOut: false, timeoutSeconds: 160, suites: ['smoke'] });
  assert.equal(seriesRun.results.length, 6);
  const results: TestResult[] = filterRows(seriesRun.results, only);
  const run = async (filter: ReadonlyMap<string, readonly string[]>, rows: readonly TestResult[]): Promise<Awaited<ReturnType<typeof compareAgainstBase>>> => compareAgainstBase({
    jobId: 'j1', series: await fakeSandbox(seriesBox), base: await fakeSandbox(baseBox), artifacts: ArtifactsDir.create(join(dir, 'jobs'), 'j1'),
    logLimitBytes: 1 << 20, accel: 'tcg', bootTimeoutSeconds: 60, policy: DEFAULT_POLICY, suites: smoke, results: rows, completed: ['smoke'], splats: [],
    keyParts, suiteVersion: () => 'v1', unavailable: new Map(), cache, only: filter, log: () => undefined, checkAborted: () => undefined,
  });

  const filtered = await run(only, results);
  assert.equal(baseBox.puts.get('/job/in/plan-base.txt'), 'smoke io_uring_setup pbuf_ring_register\n', 'the base boots with the same filter');
  assert.deepEqual(filtered.results.map((r) => [r.test, r.status, r.baseStatus, r.comparison]), [
    ['io_uring_setup', 'PASS', 'PASS', 'unchanged'],
    ['pbuf_ring_register', 'PASS', 'PASS', 'unchanged'],
  ]);
  assert.deepEqual(filtered.base.suites.map((s) => [s.suite, s.source]), [['smoke', 'run']]);
  const filteredKey = baseRunKey(keyPartsOf({ keyParts, suiteVersion: () => 'v1', only }, smoke[0] ?? catalog.get('smoke')));
  const wholeKey = baseRunKey({ ...keyParts, suite: 'smoke', suiteVersion: 'v1' });
  assert.notEqual(filteredKey, wholeKey);
  assert.deepEqual(cache.get(filteredKey)?.run.inputs.only, ['io_uring_setup', 'pbuf_ring_register'], 'the entry says which tests it ran');
  assert.equal(cache.get(wholeKey), null, 'a filtered run is no whole run of the suite');

  // A whole run of the suite next: it does not take the filtered entry, it boots the base.
  baseBox.puts.clear();
  const whole = await run(new Map(), seriesRun.results);
  assert.equal(baseBox.puts.get('/job/in/plan-base.txt'), 'smoke\n');
  assert.deepEqual(whole.base.suites.map((s) => [s.suite, s.source]), [['smoke', 'run']]);
  assert.equal(whole.results.length, 6);
  assert.notEqual(cache.get(wholeKey), null);

  // The same filter again reads its own entry; the whole entry does not stand for it either way.
  baseBox.puts.clear();
  const again = await run(only, results);
  assert.deepEqual(again.base.suites.map((s) => [s.suite, s.source]), [['smoke', 'cached']]);
  assert.equal(baseBox.puts.get('/job/in/plan-base.txt'), undefined, 'no base boot');
  assert.deepEqual(again.results.map((r) => r.test), ['io_uring_setup', 'pbuf_ring_register']);
});

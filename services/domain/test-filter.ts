/**
 * A job's test filter: `SUITE/TEST` selectors (`patchbay run --test`), so a
 * run (and the base run it is compared with) runs only those tests of those
 * suites. A suite no selector names runs whole. The guest's plan carries the
 * names ("SUITE TEST...": images/runner/stages/boot.sh, ktap_selected in
 * images/guest/lib/ktap.sh, where a name also selects its subtests
 * "TEST.sub"); rows are kept on the host by the same rule, so a suite whose
 * program runs every test anyway (smoke) reports only the named ones.
 */
import { isSuiteRow } from './compare.ts';
import { PatchbayError } from './errors.ts';
import type { TestResult } from './job.ts';

export interface TestSelector {
  suite: string;
  test: string;
}

/**
 * What a test name may hold: it goes into the guest's plan (one line of
 * space-separated words) and the guest's shell splits it unquoted, so no
 * space, no glob or shell character. selftests' names hold a slash
 * (COLLECTION/TEST).
 */
const TEST_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:+,=@%/-]{0,199}$/;
const SUITE_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** One selector, "SUITE/TEST" (the test may hold more slashes); throws TEST_FILTER_INVALID. */
export function parseTestSelector(arg: string): TestSelector {
  const slash = arg.indexOf('/');
  const suite = slash < 0 ? arg : arg.slice(0, slash);
  const test = slash < 0 ? '' : arg.slice(slash + 1);
  const shown = JSON.stringify(arg.slice(0, 100));
  if (slash < 0 || !SUITE_NAME.test(suite)) throw new PatchbayError('TEST_FILTER_INVALID', `${shown} is not SUITE/TEST (e.g. smoke/pbuf_ring_register)`);
  if (!TEST_NAME.test(test) || test.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new PatchbayError('TEST_FILTER_INVALID', `${shown}: the test name may hold letters, digits and _ . : + , = @ % / - only, up to 200 characters`);
  }
  return { suite, test };
}

/** Checks selectors made elsewhere (a JobInput) by the same rules. */
export function checkTestSelectors(only: readonly TestSelector[]): void {
  for (const s of only) parseTestSelector(`${s.suite}/${s.test}`);
}

/** The named tests of each suite, sorted, without repeats. */
export function testsBySuite(only: readonly TestSelector[] | undefined): Map<string, string[]> {
  const out = new Map<string, Set<string>>();
  for (const s of only ?? []) {
    const set = out.get(s.suite) ?? new Set<string>();
    set.add(s.test);
    out.set(s.suite, set);
  }
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b)).map(([suite, tests]) => [suite, [...tests].sort()]));
}

/** Whether a row is one the filter keeps: a named test or one of its subtests, or a row about the whole suite (not run, timed out). */
export function rowSelected(test: string, tests: readonly string[]): boolean {
  return isSuiteRow(test) || tests.some((t) => test === t || test.startsWith(`${t}.`));
}

/** The rows the filter keeps: every row of a suite it does not name, the named tests' rows of one it does. */
export function filterRows<T extends Pick<TestResult, 'suite' | 'test'>>(rows: readonly T[], bySuite: ReadonlyMap<string, readonly string[]>): T[] {
  if (bySuite.size === 0) return [...rows];
  return rows.filter((r) => {
    const tests = bySuite.get(r.suite);
    return tests === undefined || rowSelected(r.test, tests);
  });
}

/** The named tests no row of the run answers for (a name the suite does not have, or a test that printed nothing). */
export function unanswered(rows: readonly Pick<TestResult, 'suite' | 'test'>[], bySuite: ReadonlyMap<string, readonly string[]>): TestSelector[] {
  const out: TestSelector[] = [];
  for (const [suite, tests] of bySuite) {
    for (const test of tests) {
      if (!rows.some((r) => r.suite === suite && (r.test === test || r.test.startsWith(`${test}.`)))) out.push({ suite, test });
    }
  }
  return out;
}

// A node:test reporter that prints one plain line at the end of the run:
//
//   N passed, N failed[ (N cancelled)][, N skipped][, N todo][, N suite errors]
//
// It counts tests, not suites: a describe() whose tests failed is not a
// failure of its own. A test file that fails to load is reported by node as a
// test (named by its path) and counts as failed. A test cut by its timeout or
// cancelled by its parent counts as failed ("cancelled" says how many of
// them). A todo test counts as todo whatever its outcome, as node does not
// fail a run for it. A suite that fails by itself (its body throws, one of
// its hooks fails, it times out) is a "suite error": node exits non-zero for
// it, so the line says why even when no test failed.
//
// It runs beside the spec reporter (.ci/test.mjs passes both), so the spec
// output is unchanged; it never changes the exit code.

const CANCELLED = new Set(['cancelledByParent', 'testTimeoutFailure']);

export default async function* summary(source) {
  let passed = 0;
  let failed = 0;
  let cancelled = 0;
  let skipped = 0;
  let todo = 0;
  let suiteErrors = 0;
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { data } = event;
    const failureType = data.details?.error?.failureType;
    if (data.details?.type === 'suite') {
      if (event.type === 'test:fail' && failureType !== 'subtestsFailed') suiteErrors++;
      continue;
    }
    if (data.todo !== undefined && data.todo !== false) todo++;
    else if (data.skip !== undefined && data.skip !== false) skipped++;
    else if (event.type === 'test:pass') passed++;
    else {
      failed++;
      if (CANCELLED.has(failureType)) cancelled++;
    }
  }
  let line = `${passed} passed, ${failed} failed`;
  if (cancelled > 0) line += ` (${cancelled} cancelled)`;
  if (skipped > 0) line += `, ${skipped} skipped`;
  if (todo > 0) line += `, ${todo} todo`;
  if (suiteErrors > 0) line += `, ${suiteErrors} suite error${suiteErrors === 1 ? '' : 's'}`;
  yield `${line}\n`;
}
